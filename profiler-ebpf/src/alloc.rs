//! Go heap allocation samples, with the goroutine that allocated (userspace finds its
//! request). Only the runtime's own memory-profile samples are probed (one per
//! `runtime.MemProfileRate` bytes on average), never every `mallocgc`.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};
use profiler_common::{alloc::AllocEvent, event::kind};

use crate::{
    go,
    http::{header, wakeup_flags},
    maps::{count_dropped, offsets, EVENTS},
};

/// `func profilealloc(mp *m, x unsafe.Pointer, size uintptr)` entry (Go 1.19–1.27):
/// object in RBX, size in RCX; on the allocating goroutine (R14).
#[uprobe]
pub fn go_alloc(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let goroutine = go::goroutine(&ctx);
    let Some(mut entry) = EVENTS.reserve::<AllocEvent>(0) else {
        count_dropped();
        return 0;
    };
    // SAFETY: reserved ring-buffer memory large enough for the event; every field the
    // decoder reads is written below before submit.
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(kind::ALLOC, bpf_get_current_pid_tgid(), goroutine);
    event.lineage = go::lineage(goroutine, &offsets());
    event.address = go::arg(&ctx, 1);
    event.size = go::arg(&ctx, 2);
    event.stack_len = go::user_stack(&ctx, &mut event.stack);
    entry.submit(wakeup_flags());
    0
}
