//! Goroutine lineage: a goroutine started while serving a request works for it, so its
//! allocations and CPU are the request's.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};

use crate::{
    go,
    maps::{offsets, REQUEST_OF},
};

/// The `CALL runtime.runqput` in `runtime.newproc`'s closure (`newproc.func1`, Go
/// 1.19–1.27), which queues the goroutine `newproc1` has just made:
/// `runqput(pp *p, gp *g, next bool)`, the new goroutine in RBX. The closure runs on
/// the system stack for the goroutine that executes the `go` statement: `m.curg` of the
/// `g0` in R14. The new goroutine inherits its creator's request, or forgets one its
/// reused `g` served before. The kernel emulates the call: no single-step.
#[uprobe]
pub fn go_newproc(ctx: ProbeContext) -> u32 {
    let Some(offsets) = offsets((bpf_get_current_pid_tgid() >> 32) as u32) else {
        return 0;
    };
    let child = go::arg(&ctx, 1);
    let creator = go::current_user_goroutine(go::goroutine(&ctx), &offsets);
    // SAFETY: the value is copied before the map changes.
    match unsafe { REQUEST_OF.get(creator) }.copied() {
        Some(request) => {
            let _ = REQUEST_OF.insert(child, request, 0);
        }
        None => {
            let _ = REQUEST_OF.remove(child);
        }
    }
    0
}
