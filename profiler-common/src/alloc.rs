//! Events of the Go heap allocation probes.

use crate::event::{EventHeader, Lineage};

/// User stack frames kept per sample (return addresses, innermost first).
pub const STACK_DEPTH: usize = 64;

/// The Go runtime's memory profiler sampled an allocation
/// (`runtime.profilealloc(mp *m, x unsafe.Pointer, size uintptr)` entry): on average one
/// per `runtime.MemProfileRate` bytes allocated, on the allocating goroutine.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AllocEvent {
    /// Common header; `kind` is [`crate::event::kind::ALLOC`].
    pub header: EventHeader,
    /// The allocating goroutine, by id.
    pub lineage: Lineage,
    /// The allocated object's address: a sample repeated by a uprobe re-run (a signal
    /// during the probe's single-step restarts the instruction) has the same one.
    pub address: u64,
    /// Bytes of the sampled allocation (its size class).
    pub size: u64,
    /// Valid entries of `stack`.
    pub stack_len: u64,
    /// The user stack, from frame pointers (Go keeps them on amd64).
    pub stack: [u64; STACK_DEPTH],
}

const _: () = assert!(core::mem::size_of::<AllocEvent>() == 32 + 5 * 8 + STACK_DEPTH * 8);

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for AllocEvent {}
