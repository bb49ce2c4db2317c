//! An executable: its ELF headers, `.go.buildinfo` version, and functions from `.symtab`
//! or `.gopclntab`; then the lookups probes are placed by.
#![no_main]

use std::path::Path;

use apiprof::target::symbols::GoBinary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(binary) = GoBinary::parse(Path::new("fuzz"), data.to_vec()) else {
        return;
    };
    let _ = binary.variable("runtime.MemProfileRate");
    if let Ok(f) = binary.function("main.main") {
        let _ = binary.code(&f);
        let _ = binary.function_at(f.address);
    }
});
