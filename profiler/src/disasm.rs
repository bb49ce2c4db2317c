//! Reading Go machine code: the RET instructions of a function, where apiprof attaches
//! its "function returned" probes (a uretprobe rewrites the return address on the
//! stack, and Go's stack moves then kill the process: "unexpected return pc"), and the
//! globals a function reads, for stripped binaries that name no variables.

use iced_x86::{Decoder, DecoderOptions, Instruction, MemorySize, Mnemonic, OpKind, Register};

/// Addresses of every RET in `code`, the machine code of a function at `address`.
/// Decoding stops at the first undecodable byte or INT3 padding after the last RET.
pub fn ret_addresses(code: &[u8], address: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut rets = Vec::new();
    for instruction in &mut decoder {
        if instruction.is_invalid() {
            break;
        }
        if instruction.mnemonic() == Mnemonic::Ret {
            rets.push(instruction.ip());
        }
    }
    rets
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_ret_and_not_c3_bytes_inside_other_instructions() {
        // mov eax, 0xc3; ret; cmp rax, 1; je +1; ret; int3 padding
        let code = [
            0xb8, 0xc3, 0x00, 0x00, 0x00, // mov eax, 0xc3
            0xc3, // ret
            0x48, 0x83, 0xf8, 0x01, // cmp rax, 1
            0x74, 0x01, // je +1
            0xc3, // ret
            0xcc, 0xcc, // int3 padding
        ];
        assert_eq!(ret_addresses(&code, 0x1000), [0x1005, 0x100c]);
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
