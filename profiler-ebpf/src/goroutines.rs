//! Goroutine lineage: a goroutine started while serving a request works for it, so its
//! allocations and CPU are the request's.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};

use crate::{
    go,
    maps::{NEWPROC_PARENT, REQUEST_OF},
};

/// `func newproc1(fn *funcval, callergp *g, callerpc uintptr, ...) *g` entry (Go 1.19:
/// three arguments; 1.21+: five): callergp in RBX. It runs on the system stack, so R14 is
/// not the creator; keep callergp for the return probe on this thread.
#[uprobe]
pub fn go_newproc(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = NEWPROC_PARENT.insert(tid, go::arg(&ctx, 1), 0);
    0
}

/// Every RET instruction of `newproc1`: the new goroutine in RAX. It inherits its
/// creator's request, or forgets a request its reused `g` served before.
#[uprobe]
pub fn go_newproc_return(ctx: ProbeContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let child = go::arg(&ctx, 0);
    // SAFETY: values are copied before the maps change.
    let Some(parent) = (unsafe { NEWPROC_PARENT.get(tid) }).copied() else {
        return 0;
    };
    let _ = NEWPROC_PARENT.remove(tid);
    match unsafe { REQUEST_OF.get(parent) }.copied() {
        Some(request) => {
            let _ = REQUEST_OF.insert(child, request, 0);
        }
        None => {
            let _ = REQUEST_OF.remove(child);
        }
    }
    0
}
