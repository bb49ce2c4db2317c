//! A function's machine code: where its stack check jumps (JBE), the CALLs to a callee,
//! the field its first nil check reads, the global compared with one, and the HTTP/2
//! writer's fields.
#![no_main]

use apiprof::target::disasm;
use libfuzzer_sys::fuzz_target;

/// Where the code is taken to start, and a callee a few bytes on (the seeds' addresses).
const ADDRESS: u64 = 0x4498a0;
const CALLEE: u64 = 0x449900;

fuzz_target!(|code: &[u8]| {
    let _ = disasm::stack_check_jump(code, ADDRESS);
    let _ = disasm::calls_to(code, ADDRESS, CALLEE);
    let _ = disasm::nil_checked_field(code, ADDRESS);
    let _ = disasm::global_compared_with_one(code, ADDRESS);
    let _ = disasm::writer_fields(code, ADDRESS);
});
