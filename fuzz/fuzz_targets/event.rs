//! One ring-buffer record, as the kernel hands it over: decoded into an event.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = apiprof::events::decode::decode(data);
});
