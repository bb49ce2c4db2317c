//! Finds the RET instructions of a Go function, where apiprof attaches its "function
//! returned" probes: a uretprobe rewrites the return address on the stack, and Go's
//! stack moves then kill the process ("unexpected return pc").

use iced_x86::{Decoder, DecoderOptions, Mnemonic};

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
}
