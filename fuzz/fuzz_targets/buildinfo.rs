//! A `.go.buildinfo` section: the Go version, inline (Go 1.18+) or behind the pointers of
//! older builds, which resolve into the section itself, loaded at a fixed address.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Where the seeds' section is loaded.
const ADDRESS: u64 = 0x50_0000;

fuzz_target!(|data: &[u8]| {
    let segments = [(ADDRESS, data.len() as u64, 0)];
    let _ = apiprof::target::symbols::fuzzing::buildinfo(data, data, &segments);
});
