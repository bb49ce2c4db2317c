//! Reading Go values from a stopped goroutine: registers of the Go amd64 register ABI
//! (ABIInternal, Go 1.17+), Go strings in user memory, and the goroutine's stack.

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{
        bpf_probe_read_user,
        generated::{bpf_get_attach_cookie, bpf_get_stack},
    },
    programs::ProbeContext,
    EbpfContext,
};
use profiler_common::{
    alloc::STACK_DEPTH, attach::AT_STACK_CHECK, http::WorksFor, offsets::GoOffsets,
};

use crate::maps::WORKS_FOR;

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

/// The `*http.Request` the goroutine `g` works for, or 0: the one it serves, or the
/// one its parent (`g.parentGoid`, Go 1.21+) worked for when it started it. A goroutine
/// found through its parent is remembered, so that the goroutines it starts are found
/// through it in turn (deeper lineage needs the `go_newproc` probe, which Go before
/// 1.21 always uses).
pub fn request_of(g: u64, offsets: &GoOffsets) -> u64 {
    let Ok(goid) = read_u64(g + offsets.g_goid) else {
        return 0;
    };
    // SAFETY: values are copied out.
    if let Some(works_for) = unsafe { WORKS_FOR.get(goid) } {
        return works_for.request;
    }
    if offsets.g_parent_goid == 0 {
        return 0;
    }
    let Ok(parent) = read_u64(g + offsets.g_parent_goid) else {
        return 0;
    };
    // SAFETY: as above.
    let Some(request) = (unsafe { WORKS_FOR.get(parent) }).map(|w| w.request) else {
        return 0;
    };
    let _ = WORKS_FOR.insert(
        goid,
        WorksFor {
            request,
            response_writer: 0,
        },
        0,
    );
    request
}

/// Reads a user-space `u64` (a Go pointer or int) at `addr`.
pub fn read_u64(addr: u64) -> Result<u64, i64> {
    // SAFETY: bpf_probe_read_user checks the address; a bad one returns an error.
    unsafe { bpf_probe_read_user(addr as *const u64) }.map_err(i64::from)
}

/// Copies the Go string whose header (pointer, length) is at `addr` into `dst`, as many
/// bytes as fit, and returns its true length.
pub fn read_string(addr: u64, dst: &mut [u8]) -> Result<u32, i64> {
    read_bytes(read_u64(addr)?, read_u64(addr + 8)?, dst)
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
