//! Reading Go machine code: the jump of a function's stack check, where entry probes
//! cost the least; the CALLs of a function, where probes also cost little (never a
//! uretprobe: it rewrites the return address on the stack, and Go's stack moves then
//! kill the process, "unexpected return pc"); the globals a function reads, for
//! stripped binaries that name no variables; and where an HTTP/2 server keeps what a
//! handler wrote.

use iced_x86::{Decoder, DecoderOptions, Instruction, MemorySize, Mnemonic, OpKind, Register};
use profiler_common::{attach::WriterFields, offsets::WRITER_STATE_WINDOW};

/// The address of the `JBE` that ends the stack check a Go function (ABIInternal, g in
/// R14) opens with: `CMP RSP, [R14+16]; JBE`, or for larger frames `LEA R12,
/// [RSP-frame]; CMP R12, [R14+16]; JBE`. `None` when the function has none
/// (`//go:nosplit` and frameless functions) or another prologue (huge frames).
pub fn stack_check_jump(code: &[u8], address: u64) -> Option<u64> {
    let prologue: Vec<Instruction> = Decoder::with_ip(64, code, address, DecoderOptions::NONE)
        .into_iter()
        .take(3)
        .collect();
    prologue.windows(2).find_map(|pair| {
        let (cmp, jump) = (&pair[0], &pair[1]);
        let checks_stack_guard = cmp.mnemonic() == Mnemonic::Cmp
            && cmp.op0_kind() == OpKind::Register
            && matches!(cmp.op0_register(), Register::RSP | Register::R12)
            && cmp.op1_kind() == OpKind::Memory
            && cmp.memory_base() == Register::R14
            && cmp.memory_displacement64() == 16;
        (checks_stack_guard && jump.mnemonic() == Mnemonic::Jbe).then(|| jump.ip())
    })
}

/// Addresses of every CALL in `code` (a function at `address`) of the function at
/// `callee`.
pub fn calls_to(code: &[u8], address: u64, callee: u64) -> Vec<u64> {
    Decoder::with_ip(64, code, address, DecoderOptions::NONE)
        .into_iter()
        .take_while(|i| !i.is_invalid())
        .filter(|i| i.mnemonic() == Mnemonic::Call && i.near_branch_target() == callee)
        .map(|i| i.ip())
        .collect()
}

/// The displacement of the first `CMP QWORD [RAX+disp], 0` in `code` (a function at
/// `address`) before its first CALL: the field of its receiver (in RAX) that a method
/// opening with `if r.field == nil` tests, as client-go's `tryThrottleWithInfo` tests
/// `r.rateLimiter`.
pub fn nil_checked_field(code: &[u8], address: u64) -> Option<u64> {
    Decoder::with_ip(64, code, address, DecoderOptions::NONE)
        .into_iter()
        .take_while(|i| !i.is_invalid() && i.mnemonic() != Mnemonic::Call)
        .find(|i| {
            i.mnemonic() == Mnemonic::Cmp
                && i.op0_kind() == OpKind::Memory
                && i.memory_base() == Register::RAX
                && i.memory_index() == Register::None
                && matches!(i.memory_size(), MemorySize::UInt64 | MemorySize::Int64)
                && matches!(
                    i.op1_kind(),
                    OpKind::Immediate8to64 | OpKind::Immediate32to64
                )
                && i.immediate(1) == 0
        })
        .map(|i| i.memory_displacement64())
}

/// How many instructions after a load [`global_compared_with_one`] looks for the compare.
const COMPARE_WINDOW: usize = 8;

/// The address of the first 8-byte global that `code` (a function at `address`) loads
/// into a register which one of the next few instructions compares with 1: how
/// `runtime.profilealloc` reads `runtime.MemProfileRate` in Go 1.19 to 1.27 (its
/// inlined `nextSample` tests `MemProfileRate == 1`), unlike the other global it reads
/// (`mcache0`, tested against 0).
pub fn global_compared_with_one(code: &[u8], address: u64) -> Option<u64> {
    let instructions: Vec<Instruction> = Decoder::with_ip(64, code, address, DecoderOptions::NONE)
        .into_iter()
        .take_while(|i| !i.is_invalid())
        .collect();
    instructions.iter().enumerate().find_map(|(n, load)| {
        let global_load = load.mnemonic() == Mnemonic::Mov
            && load.op0_kind() == OpKind::Register
            && load.memory_size() == MemorySize::UInt64
            && load.op1_kind() == OpKind::Memory
            && load.memory_base() == Register::RIP;
        let compared_with_one = |next: &Instruction| {
            next.mnemonic() == Mnemonic::Cmp
                && next.op0_kind() == OpKind::Register
                && next.op0_register() == load.op0_register()
                && matches!(
                    next.op1_kind(),
                    OpKind::Immediate8to64 | OpKind::Immediate32to64
                )
                && next.immediate(1) == 1
        };
        (global_load
            && instructions[n + 1..]
                .iter()
                .take(COMPARE_WINDOW)
                .any(compared_with_one))
        .then(|| load.memory_displacement64())
    })
}

/// Where `responseWriterState` keeps `wroteHeader`, `status` and `wroteBytes`, from the
/// code of the HTTP/2 server's `(*responseWriter).write` (net/http's bundled server,
/// Go 1.27's internal one and golang.org/x/net's share its source):
///
/// ```text
/// if !rws.wroteHeader { w.WriteHeader(200) }          CMP byte [rws+wroteHeader], 0
/// if !bodyAllowedForStatus(rws.status) { ... }        MOV r, [rws+status]; LEA r2, [r-100]
/// rws.wroteBytes += int64(len(dataB)) + ...           MOV [rws+wroteBytes], r (after it)
/// ```
pub fn writer_fields(code: &[u8], address: u64) -> Option<WriterFields> {
    let instructions: Vec<Instruction> = Decoder::with_ip(64, code, address, DecoderOptions::NONE)
        .into_iter()
        .take_while(|i| !i.is_invalid())
        .collect();
    let displacement = |i: &Instruction| u16::try_from(i.memory_displacement64()).ok();
    let wrote_header = instructions.iter().find(|i| {
        i.mnemonic() == Mnemonic::Cmp
            && i.op0_kind() == OpKind::Memory
            && i.memory_size() == MemorySize::UInt8
            && i.memory_base() != Register::RSP
            && matches!(i.op1_kind(), OpKind::Immediate8)
            && i.immediate(1) == 0
    })?;
    let (n, status) = instructions.windows(2).enumerate().find_map(|(n, pair)| {
        let (load, lea) = (&pair[0], &pair[1]);
        let status_load = load.mnemonic() == Mnemonic::Mov
            && load.op0_kind() == OpKind::Register
            && load.op1_kind() == OpKind::Memory
            && load.memory_size() == MemorySize::UInt64
            && load.memory_base() != Register::RSP
            && load.memory_base() != Register::RIP;
        let minus_100 = lea.mnemonic() == Mnemonic::Lea
            && lea.memory_base() == load.op0_register()
            && lea.memory_displacement64() as i64 == -100;
        (status_load && minus_100).then_some((n, load))
    })?;
    let wrote_bytes = instructions[n..].iter().find(|i| {
        i.mnemonic() == Mnemonic::Mov
            && i.op0_kind() == OpKind::Memory
            && i.memory_size() == MemorySize::UInt64
            && i.memory_base() == status.memory_base()
            && i.op1_kind() == OpKind::Register
    })?;
    let fields = WriterFields {
        status: displacement(status)?,
        wrote_header: displacement(wrote_header)?,
        wrote_bytes: displacement(wrote_bytes)?,
    };
    // The program copies WRITER_STATE_WINDOW bytes from `status` on.
    let end = usize::from(fields.wrote_bytes.max(fields.wrote_header)) + 8;
    (fields.wrote_header > fields.status
        && fields.wrote_bytes > fields.status
        && end - usize::from(fields.status) <= WRITER_STATE_WINDOW)
        .then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limiter_field_is_the_first_compared_with_nil() {
        // k8s.io/client-go/rest.(*Request).tryThrottleWithInfo, client-go 0.36, Go 1.27.
        let code = [
            0x4c, 0x8d, 0xa4, 0x24, 0x90, 0xfc, 0xff, 0xff, // lea r12, [rsp-0x370]
            0x4d, 0x3b, 0x66, 0x10, // cmp r12, [r14+0x10]
            0x0f, 0x86, 0xb6, 0x07, 0x00, 0x00, // jbe
            0x55, // push rbp
            0x48, 0x89, 0x9c, 0x24, 0x00, 0x04, 0x00, 0x00, // mov [rsp+0x400], rbx
            0x48, 0x83, 0x78, 0x70, 0x00, // cmp qword [rax+0x70], 0
            0x0f, 0x84, 0x75, 0x07, 0x00, 0x00, // je
        ];
        assert_eq!(nil_checked_field(&code, 0x1282120), Some(0x70));
        // Not before a CALL.
        let mut called = vec![0xe8, 0, 0, 0, 0];
        called.extend_from_slice(&code);
        assert_eq!(nil_checked_field(&called, 0x1282120), None);
    }

    #[test]
    fn calls_of_one_function_are_found_and_others_are_not() {
        // runtime.newproc.func1, Go 1.24: CALL newproc1 (0x449900); CALL runqput
        // (0x44de20).
        let code = [
            0xe8, 0x5b, 0x00, 0x00, 0x00, // 0x4498a0: call 0x449900
            0xe8, 0x76, 0x45, 0x00, 0x00, // 0x4498a5: call 0x44de20
            0xc3,
        ];
        assert_eq!(calls_to(&code, 0x4498a0, 0x44de20), [0x4498a5]);
        assert_eq!(calls_to(&code, 0x4498a0, 0x449900), [0x4498a0]);
        assert!(calls_to(&code, 0x4498a0, 0x1234).is_empty());
    }

    #[test]
    fn entry_probes_go_on_the_jump_of_the_stack_check_when_there_is_one() {
        // net/http.(*http2responseWriter).write, Go 1.24: CMP RSP,[R14+16]; JBE; PUSH RBP.
        let small = [
            0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x36, 0x01, 0x00, 0x00, 0x55,
        ];
        assert_eq!(stack_check_jump(&small, 0x64a320), Some(0x64a324));
        // net/http.(*response).write: LEA R12,[RSP-0x78]; CMP R12,[R14+16]; JBE.
        let large = [
            0x4c, 0x8d, 0x64, 0x24, 0x88, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0xcc, 0x02, 0x00,
            0x00, 0x55,
        ];
        assert_eq!(stack_check_jump(&large, 0x65daa0), Some(0x65daa9));
        // A frameless function: PUSH RBP; MOV RBP,RSP; CMP RSP,[R14+16] is no stack check
        // here (no JBE follows within the prologue).
        let nosplit = [0x55, 0x48, 0x89, 0xe5, 0x49, 0x3b, 0x66, 0x10, 0xc3];
        assert_eq!(stack_check_jump(&nosplit, 0x1000), None);
    }

    #[test]
    fn finds_where_the_http2_writer_keeps_status_and_bytes() {
        // golang.org/x/net/http2.(*responseWriter).write as in the apiserver fixture,
        // from the load of rws to the wroteBytes store (the call to WriteHeader and
        // the register reloads around it elided).
        let code = [
            0x48, 0x8b, 0x00, // mov rax, [rax]
            0x48, 0x85, 0xc0, // test rax, rax
            0x0f, 0x84, 0x18, 0x01, 0x00, 0x00, // je
            0x80, 0x78, 0x50, 0x00, // cmp byte [rax+0x50], 0
            0x75, 0x00, // jne
            0x48, 0x8b, 0x50, 0x48, // mov rdx, [rax+0x48]
            0x4c, 0x8d, 0x52, 0x9c, // lea r10, [rdx-0x64]
            0x49, 0x83, 0xfa, 0x63, // cmp r10, 0x63
            0x49, 0x8d, 0x14, 0x39, // lea rdx, [r9+rdi]
            0x48, 0x03, 0x50, 0x60, // add rdx, [rax+0x60]
            0x48, 0x89, 0x50, 0x60, // mov [rax+0x60], rdx
        ];
        assert_eq!(
            writer_fields(&code, 0x977b5c),
            Some(WriterFields {
                status: 0x48,
                wrote_header: 0x50,
                wrote_bytes: 0x60
            })
        );
        assert_eq!(writer_fields(&code[..22], 0x977b5c), None);
    }

    #[test]
    fn finds_the_global_compared_with_one_not_the_one_tested_against_zero() {
        // Go 1.19's profilealloc: mov rdx, [mcache0]; test rdx, rdx; je;
        // mov rax, [MemProfileRate]; nop; cmp rax, 1
        let code = [
            0x48, 0x8b, 0x15, 0x16, 0xf0, 0x56, 0x00, // mov rdx, [rip+0x56f016]
            0x48, 0x85, 0xd2, // test rdx, rdx
            0x74, 0x58, // je
            0x48, 0x8b, 0x05, 0x6a, 0xef, 0x56, 0x00, // mov rax, [rip+0x56ef6a]
            0x66, 0x90, // nop
            0x48, 0x83, 0xf8, 0x01, // cmp rax, 1
        ];
        assert_eq!(
            global_compared_with_one(&code, 0x40d36b),
            Some(0x40d377 + 7 + 0x56ef6a)
        );
        assert_eq!(global_compared_with_one(&code[..12], 0x40d36b), None);
    }
}
