//! A Go 1.18+ function table (`.gopclntab`): the functions it lists, and the tables a
//! search of data sections for its header would find in it.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Where `.text` starts in the seeds (Go 1.26+ tables store no textStart).
const TEXT: u64 = 0x40_1000;

fuzz_target!(|data: &[u8]| {
    let _ = apiprof::target::symbols::fuzzing::gopclntab(data, Some(TEXT));
});
