//! Goroutine lineage at any depth: a goroutine started while serving a request works
//! for it, and so do the goroutines it starts. Without this probe, lineage comes from
//! `runtime.g.parentGoid` when a sample is taken (see `go::request_of`).

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};
use profiler_common::http::WorksFor;

use crate::{
    go,
    maps::{offsets, WORKS_FOR},
};

/// The `CALL runtime.runqput` in `runtime.newproc`'s closure (`newproc.func1`, Go
/// 1.19–1.27), which queues the goroutine `newproc1` has just made:
/// `runqput(pp *p, gp *g, next bool)`, the new goroutine in RBX. The closure runs on
/// the system stack for the goroutine that executes the `go` statement: `m.curg` of the
/// `g0` in R14. The new goroutine inherits its creator's request. The kernel emulates
/// the call: no single-step.
#[uprobe]
pub fn go_newproc(ctx: ProbeContext) -> u32 {
    let Some(offsets) = offsets((bpf_get_current_pid_tgid() >> 32) as u32) else {
        return 0;
    };
    let creator = go::current_user_goroutine(go::goroutine(&ctx), &offsets);
    let request = go::request_of(creator, &offsets);
    if request == 0 {
        return 0;
    }
    if let Ok(child) = go::read_u64(go::arg(&ctx, 1) + offsets.g_goid) {
        let _ = WORKS_FOR.insert(
            child,
            WorksFor {
                request,
                response_writer: 0,
            },
            0,
        );
    }
    0
}
