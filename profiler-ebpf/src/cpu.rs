//! On-CPU samples: a software CPU-clock perf event on every CPU runs this program once per
//! sampling period; samples of the observed process go to userspace with the goroutine
//! on CPU and its user stack.

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_probe_read_kernel,
        generated::bpf_task_pt_regs,
    },
    macros::perf_event,
    programs::PerfEventContext,
};
use profiler_common::{
    cpu::{CpuEvent, MODE_KERNEL, MODE_USER},
    event::kind,
};

use crate::{
    go,
    http::{header, wakeup_flags},
    maps::{count_dropped, offsets, tgid, EVENTS},
};

/// The sampling clock fired on some CPU. Threads of unobserved processes are ignored.
#[perf_event]
pub fn cpu_sample(ctx: PerfEventContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 != tgid() {
        return 0;
    }
    let offsets = offsets();
    // SAFETY: the kernel hands the program its bpf_perf_event_data.
    let regs = unsafe { &(*ctx.ctx).regs };
    // The privilege level of the interrupted code is in the low bits of CS.
    let (mode, r14) = if regs.cs & 3 == 3 {
        (MODE_USER, regs.r14)
    } else {
        (MODE_KERNEL, user_r14().unwrap_or(0))
    };
    let goroutine = go::current_user_goroutine(r14, &offsets);
    let Some(mut entry) = EVENTS.reserve::<CpuEvent>(0) else {
        count_dropped();
        return 0;
    };
    // SAFETY: reserved ring-buffer memory large enough for the event; every field the
    // decoder reads is written below before submit.
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(kind::CPU, pid_tgid, goroutine);
    event.lineage = go::lineage(goroutine, &offsets);
    event.mode = mode;
    event.stack_len = go::user_stack(&ctx, &mut event.stack);
    entry.submit(wakeup_flags());
    0
}

/// R14 as the thread left user mode (system call, fault): the registers the kernel
/// saved at entry.
fn user_r14() -> Option<u64> {
    // SAFETY: helpers without preconditions; the task's saved registers are read with
    // bpf_probe_read_kernel, which checks the address.
    unsafe {
        let regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as *const pt_regs;
        if regs.is_null() {
            return None;
        }
        bpf_probe_read_kernel(core::ptr::addr_of!((*regs).r14)).ok()
    }
}
