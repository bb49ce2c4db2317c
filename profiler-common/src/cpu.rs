//! Events of the on-CPU sampler.

use crate::{
    alloc::STACK_DEPTH,
    event::{EventHeader, Lineage},
};

/// [`CpuEvent::mode`]: the sample interrupted user code.
pub const MODE_USER: u64 = 0;
/// [`CpuEvent::mode`]: the sample interrupted the kernel (a system call or fault of the
/// process); the goroutine and stack are those saved at kernel entry.
pub const MODE_KERNEL: u64 = 1;

/// A thread of an observed process was on CPU when the sampling clock fired (a BPF
/// program on a software CPU-clock perf event, one per CPU): each sample stands for one
/// sampling period of CPU time.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CpuEvent {
    /// Common header; `kind` is [`crate::event::kind::CPU`]. Its goroutine is the
    /// thread's current user goroutine (`m.curg`, as Go's own profiler takes it), or the
    /// `g` in R14 when the thread runs none (scheduler, GC workers on `g0`).
    pub header: EventHeader,
    /// That goroutine, by id.
    pub lineage: Lineage,
    /// [`MODE_USER`] or [`MODE_KERNEL`].
    pub mode: u64,
    /// Valid entries of `stack`.
    pub stack_len: u64,
    /// The user stack, from frame pointers, innermost first.
    pub stack: [u64; STACK_DEPTH],
}

const _: () = assert!(core::mem::size_of::<CpuEvent>() == 32 + 4 * 8 + STACK_DEPTH * 8);

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for CpuEvent {}
