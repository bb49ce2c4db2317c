//! Reading Go values from a stopped goroutine: registers of the Go amd64 register ABI
//! (ABIInternal, Go 1.17+), Go strings in user memory, and the goroutine's stack.

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    cty::c_void,
    helpers::{
        bpf_probe_read_user,
        generated::{bpf_get_attach_cookie, bpf_get_stack, bpf_loop},
    },
    programs::ProbeContext,
    EbpfContext,
};
use profiler_common::{
    alloc::STACK_DEPTH, attach::AT_STACK_CHECK, event::Lineage, offsets::GoOffsets,
};

use crate::{header_map::SLOTS_BYTES, maps::scratch};

/// Carry and zero flags of RFLAGS: `JBE` jumps when either is set.
const CF_OR_ZF: u64 = 1 | 1 << 6;

/// Whether an entry probe hit is a function's first pass that is about to grow its
/// stack and start over (see [`AT_STACK_CHECK`]): the program must ignore it, or the
/// call counts twice.
pub fn restarts(ctx: &ProbeContext) -> bool {
    // SAFETY: a helper without preconditions; regs points at the saved registers.
    let (cookie, flags) = unsafe { (bpf_get_attach_cookie(ctx.as_ptr()), (*ctx.regs).eflags) };
    cookie == AT_STACK_CHECK && flags & CF_OR_ZF != 0
}

/// The n-th integer argument register of Go's ABIInternal on amd64:
/// RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11. `ProbeContext::arg` assumes the C ABI.
pub fn arg(ctx: &ProbeContext, n: usize) -> u64 {
    // SAFETY: regs points at the pt_regs the kernel saved for this probe hit.
    let regs = unsafe { &*ctx.regs };
    match n {
        0 => regs.rax,
        1 => regs.rbx,
        2 => regs.rcx,
        3 => regs.rdi,
        4 => regs.rsi,
        5 => regs.r8,
        6 => regs.r9,
        7 => regs.r10,
        _ => regs.r11,
    }
}

/// The running goroutine (`runtime.g`), which Go keeps in R14 on amd64.
pub fn goroutine(ctx: &ProbeContext) -> u64 {
    // SAFETY: as in `arg`.
    unsafe { (*ctx.regs).r14 }
}

/// The user goroutine a thread runs: `g.m.curg` of the `g` in R14. It differs from that
/// `g` while the thread works on its system stack (`g0`) for the goroutine (GC assist,
/// large allocations, starting goroutines), as in Go's own CPU profiler; when it is nil
/// (the scheduler) or unreadable, the `g` itself.
pub fn current_user_goroutine(g: u64, offsets: &GoOffsets) -> u64 {
    read_u64(g + offsets.g_m)
        .and_then(|m| read_u64(m + offsets.m_curg))
        .ok()
        .filter(|curg| *curg != 0)
        .unwrap_or(g)
}

/// The goroutine `g` by id, with its parent's id (Go 1.21+), for userspace to find the
/// request it works for.
pub fn lineage(g: u64, offsets: &GoOffsets) -> Lineage {
    Lineage {
        goid: read_u64(g + offsets.g_goid).unwrap_or(0),
        parent_goid: if offsets.g_parent_goid == 0 {
            0
        } else {
            read_u64(g + offsets.g_parent_goid).unwrap_or(0)
        },
    }
}

/// Copies `len` bytes (at most the scratch buffer's) at `addr` into the per-CPU scratch
/// buffer, for [`field`] to pick from: one read for several fields of a struct.
pub fn window(addr: u64, len: usize) -> Result<&'static [u8; SLOTS_BYTES], i64> {
    let buf = scratch().ok_or(-1i64)?;
    read_bytes(addr, len as u64, &mut buf[..])?;
    Ok(buf)
}

/// [`window`] of a block of a map (a bucket or a group) that may run into a page the
/// process never wrote: a fresh allocation's untouched tail is not mapped in yet, and
/// `bpf_probe_read_user` cannot fault it in, so one read of the whole block fails. Then
/// the block is read word by word, and a word that cannot be read reads as zero: slots
/// there were never written, so they are empty.
pub fn window_of_block(addr: u64, len: usize) -> Result<&'static [u8; SLOTS_BYTES], i64> {
    let buf = scratch().ok_or(-1i64)?;
    if read_bytes(addr, len as u64, &mut buf[..]).is_ok() {
        return Ok(buf);
    }
    let mut block = Block {
        addr,
        len: len as u64,
    };
    let callback: extern "C" fn(u64, *mut c_void) -> i64 = read_word;
    // SAFETY: the callback and its context match bpf_loop's contract; `block` outlives
    // the call. The callback is verified once, not once per bucket of a map walk.
    unsafe {
        bpf_loop(
            (SLOTS_BYTES / 8) as u32,
            callback as *mut c_void,
            (&mut block as *mut Block).cast(),
            0,
        );
    }
    Ok(buf)
}

/// The block [`read_word`] copies.
#[repr(C)]
struct Block {
    addr: u64,
    len: u64,
}

/// `bpf_loop` callback: copies word `i` of the block into the scratch buffer, 0 when it
/// cannot be read (or lies past the block).
extern "C" fn read_word(i: u64, block: *mut c_void) -> i64 {
    // SAFETY: the context is `window_of_block`'s `Block`.
    let block = unsafe { &*block.cast::<Block>() };
    let Some(buf) = scratch() else {
        return 1;
    };
    // Bounded here, not by the slice below, so the verifier sees every write in range.
    if i >= (SLOTS_BYTES / 8) as u64 {
        return 1;
    }
    let at = (i as usize) * 8;
    let word = if (at as u64) < block.len {
        read_u64(block.addr + at as u64).unwrap_or(0)
    } else {
        0
    };
    match buf.get_mut(at..at + 8) {
        Some(dst) => {
            dst.copy_from_slice(&word.to_le_bytes());
            0
        }
        None => 1,
    }
}

/// The 8-byte little-endian word at `at` in `buf` (0 when out of range, which userspace
/// rules out before loading).
pub fn field(buf: &[u8; SLOTS_BYTES], at: u64) -> u64 {
    word(buf, at as usize).unwrap_or(0)
}

/// The 8-byte little-endian word at `at` in `buf`.
pub fn word<const N: usize>(buf: &[u8; N], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at + 8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

/// Reads a user-space `u64` (a Go pointer or int) at `addr`.
pub fn read_u64(addr: u64) -> Result<u64, i64> {
    // SAFETY: bpf_probe_read_user checks the address; a bad one returns an error.
    unsafe { bpf_probe_read_user(addr as *const u64) }.map_err(i64::from)
}

/// Copies the Go string whose header (pointer, length) is at `addr` into `dst`, as many
/// bytes as fit, and returns its true length.
pub fn read_string(addr: u64, dst: &mut [u8]) -> Result<u32, i64> {
    let mut header = [0u8; 16];
    read_bytes(addr, 16, &mut header)?;
    string(&header, 0, dst)
}

/// Copies the Go string whose header is at `at` in `buf` (a copy of a struct) into
/// `dst`, as many bytes as fit, and returns its true length.
pub fn string<const N: usize>(buf: &[u8; N], at: usize, dst: &mut [u8]) -> Result<u32, i64> {
    let (Some(data), Some(len)) = (word(buf, at), word(buf, at + 8)) else {
        return Err(-1);
    };
    if len == 0 {
        return Ok(0);
    }
    read_bytes(data, len, dst)
}

/// Copies as many of the `len` bytes at `data` as fit into `dst`; returns `len`
/// (saturated to `u32`).
pub fn read_bytes(data: u64, len: u64, dst: &mut [u8]) -> Result<u32, i64> {
    let n = (len as usize).min(dst.len());
    // SAFETY: as in `read_u64`; `n` never exceeds `dst`.
    unsafe {
        aya_ebpf::helpers::bpf_probe_read_user_buf(data as *const u8, &mut dst[..n])
            .map_err(i64::from)?;
    }
    Ok(len.min(u64::from(u32::MAX)) as u32)
}

/// Copies the user stack of the current thread (return addresses from Go's frame
/// pointers, innermost first) into `stack`; returns how many frames it holds. In a
/// program that interrupted the kernel, the walk starts from the registers saved at
/// kernel entry.
pub fn user_stack(ctx: &impl EbpfContext, stack: &mut [u64; STACK_DEPTH]) -> u64 {
    // SAFETY: the buffer is `stack` itself, of the size passed.
    let bytes = unsafe {
        bpf_get_stack(
            ctx.as_ptr(),
            stack.as_mut_ptr().cast(),
            (STACK_DEPTH * 8) as u32,
            u64::from(BPF_F_USER_STACK),
        )
    };
    if bytes > 0 {
        bytes as u64 / 8
    } else {
        0
    }
}
