//! Go heap allocation samples, attributed to the request the allocating goroutine works
//! for. Only the runtime's own memory-profile samples are probed (one per
//! `runtime.MemProfileRate` bytes on average), never every `mallocgc`.

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use aya_ebpf::{
    bindings::BPF_F_USER_STACK, helpers::generated::bpf_get_stack, macros::uprobe,
    programs::ProbeContext, EbpfContext,
};
use profiler_common::{
    alloc::{AllocEvent, STACK_DEPTH},
    event::kind,
};

use crate::{
    go,
    http::{header, wakeup_flags},
    maps::{count_dropped, EVENTS, REQUEST_OF},
};

/// `func profilealloc(mp *m, x unsafe.Pointer, size uintptr)` entry (Go 1.19–1.27):
/// object in RBX, size in RCX; on the allocating goroutine (R14).
#[uprobe]
pub fn go_alloc(ctx: ProbeContext) -> u32 {
    let goroutine = go::goroutine(&ctx);
    let Some(mut entry) = EVENTS.reserve::<AllocEvent>(0) else {
        count_dropped();
        return 0;
    };
    // SAFETY: reserved ring-buffer memory large enough for the event; every field the
    // decoder reads is written below before submit.
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(kind::ALLOC, bpf_get_current_pid_tgid(), goroutine);
    // SAFETY: the value is copied out.
    event.request = unsafe { REQUEST_OF.get(goroutine) }.copied().unwrap_or(0);
    event.address = go::arg(&ctx, 1);
    event.size = go::arg(&ctx, 2);
    // SAFETY: the buffer is the event's own stack array, of the size passed.
    let bytes = unsafe {
        bpf_get_stack(
            ctx.as_ptr(),
            event.stack.as_mut_ptr().cast(),
            (STACK_DEPTH * 8) as u32,
            u64::from(BPF_F_USER_STACK),
        )
    };
    event.stack_len = if bytes > 0 { bytes as u64 / 8 } else { 0 };
    entry.submit(wakeup_flags());
    0
}
