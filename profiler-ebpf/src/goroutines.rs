//! Goroutine lineage at any depth (`--deep-lineage`, and Go before 1.21): each goroutine a
//! `go` statement starts, with the one that started it, so userspace can follow work a
//! handler hands on through any number of goroutines. Otherwise lineage comes from
//! `runtime.g.parentGoid`, read when a sample is taken, at no cost per goroutine.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};
use profiler_common::event::{kind, GoroutineEvent};

use crate::{
    go,
    http::{emit, header},
    maps::offsets,
};

/// The `CALL runtime.runqput` in `runtime.newproc`'s closure (`newproc.func1`, Go
/// 1.19–1.27), which queues the goroutine `newproc1` has just made:
/// `runqput(pp *p, gp *g, next bool)`, the new goroutine in RBX. The closure runs on
/// the system stack for the goroutine that executes the `go` statement: `m.curg` of the
/// `g0` in R14. The kernel emulates the call: no single-step.
#[uprobe]
pub fn go_newproc(ctx: ProbeContext) -> u32 {
    let offsets = offsets();
    let creator = go::current_user_goroutine(go::goroutine(&ctx), &offsets);
    let (Ok(creator_goid), Ok(child_goid)) = (
        go::read_u64(creator + offsets.g_goid),
        go::read_u64(go::arg(&ctx, 1) + offsets.g_goid),
    ) else {
        return 0;
    };
    let event = GoroutineEvent {
        header: header(kind::GOROUTINE, bpf_get_current_pid_tgid(), creator),
        creator_goid,
        child_goid,
    };
    emit(&event);
    0
}
