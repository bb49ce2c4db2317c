//! Events of the client-side probes: client-go programs (controllers, operators,
//! kube-controller-manager) on the node, whose requests the observed server serves.

use crate::event::EventHeader;

/// Bytes of an informer's FIFO name kept (`RealFIFO *v1.ConfigMap`).
pub const INFORMER_CAP: usize = 64;

/// Which end of a rate-limiter wait a [`ThrottleEvent`] marks.
pub mod phase {
    /// `rest.(*Request).tryThrottleWithInfo` began: the request asks its limiter.
    pub const START: u64 = 1;
    /// The limiter let it go (the `time.Since` client-go measures the wait with).
    pub const END: u64 = 2;
}

/// client-go's rate limiter began or finished holding a request back, on the goroutine
/// that then sends it. A start carries the limiter's settings, read from the client's
/// memory: the token bucket's `rate.Limiter` (`limit`, `burst`) and the `qps` client-go
/// keeps beside it; userspace takes them as a token bucket's only when both rates agree.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThrottleEvent {
    /// Common header; `kind` is [`crate::event::kind::CLIENT_THROTTLE`].
    pub header: EventHeader,
    /// One of [`phase`].
    pub phase: u64,
    /// `rate.Limiter.limit` (float64 bits: events per second).
    pub limit_bits: u64,
    /// `rate.Limiter.burst`.
    pub burst: u64,
    /// `tokenBucketRateLimiter.qps` (float32 bits), widened.
    pub qps_bits: u64,
}

const _: () = assert!(core::mem::size_of::<ThrottleEvent>() == 32 + 4 * 8);

/// An informer's periodic resync fired (`(*RealFIFO).Resync` or `(*DeltaFIFO).Resync`
/// entry): every cached object is about to be handed to its handlers again.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ResyncEvent {
    /// Common header; `kind` is [`crate::event::kind::CLIENT_RESYNC`].
    pub header: EventHeader,
    /// The FIFO's address: one per informer.
    pub fifo: u64,
    /// True length of the FIFO's name; more than [`INFORMER_CAP`] means it is cut.
    pub name_len: u64,
    /// The FIFO's name (`RealFIFO *v1.ConfigMap`), the first
    /// `min(name_len, INFORMER_CAP)` bytes.
    pub name: [u8; INFORMER_CAP],
}

const _: () = assert!(core::mem::size_of::<ResyncEvent>() == 32 + 2 * 8 + INFORMER_CAP);

/// A shared informer handed an object to its handlers as part of a resync
/// (`sharedProcessor.distribute(obj, sync=true)`): one per object re-queued.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ResyncedEvent {
    /// Common header; `kind` is [`crate::event::kind::CLIENT_RESYNCED`].
    pub header: EventHeader,
}

const _: () = assert!(core::mem::size_of::<ResyncedEvent>() == 32);

/// Bytes of a workqueue item kept to tell items apart (a string key's first bytes, a
/// word, or the start of a struct).
pub const ITEM_CAP: usize = 32;

/// What a workqueue did with an item, in [`QueueEvent::op`].
pub mod queue_op {
    /// `(*Typed[T]).Add` took an item not already waiting: inserting it into `dirty`.
    pub const ADD: u64 = 1;
    /// `(*Typed[T]).Get` handed an item to a worker: deleting it from `dirty`.
    pub const GET: u64 = 2;
}

/// How the runtime map function the workqueue probe sits on takes its key, in the
/// probe's cookie: `mapassign_faststr`/`mapdelete_faststr` (a string in RCX and RDI),
/// `…_fast64` and `…_fast32` (the value in RCX), or the generic ones (a pointer to it in
/// RCX).
pub mod key_kind {
    /// A string.
    pub const STRING: u64 = 0;
    /// A 64-bit word.
    pub const WORD64: u64 = 1;
    /// A 32-bit word.
    pub const WORD32: u64 = 2;
    /// Anything else, by pointer.
    pub const POINTER: u64 = 3;
}

/// A workqueue took an item or handed one to a worker, under its lock, with its depth:
/// the items added and not yet taken (`len(dirty)`, what client-go's depth metric
/// counts), the item included at an add and no longer at a get.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QueueEvent {
    /// Common header; `kind` is [`crate::event::kind::CLIENT_QUEUE`].
    pub header: EventHeader,
    /// One of [`queue_op`].
    pub op: u64,
    /// The queue's `dirty` set (its address): one per queue.
    pub queue: u64,
    /// Its depth after the operation.
    pub depth: u64,
    /// The item's length (a string's; a word's or the copied bytes' otherwise).
    pub item_len: u64,
    /// The item's first `min(item_len, ITEM_CAP)` bytes.
    pub item: [u8; ITEM_CAP],
}

const _: () = assert!(core::mem::size_of::<QueueEvent>() == 32 + 4 * 8 + ITEM_CAP);
const _: () = assert!(core::mem::size_of::<ClientOffsets>() == 2 * 8);

/// Where client-go keeps what the probes read, for the observed client's client-go,
/// set at load time (userspace finds `rest.Request.rateLimiter` in the machine code
/// that reads it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientOffsets {
    /// `rest.Request.rateLimiter` (a `flowcontrol.RateLimiter` interface).
    pub request_rate_limiter: u64,
    /// `RealFIFO.name` and `DeltaFIFO.name` (string): after their `klog.Logger` since
    /// client-go 0.31.
    pub fifo_name: u64,
}

impl ClientOffsets {
    /// All zero: what the kernel programs are compiled with.
    pub const ZERO: Self = Self {
        request_rate_limiter: 0,
        fifo_name: 0,
    };
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all): plain old data, no implicit padding, every bit pattern valid.
    unsafe impl aya::Pod for super::ThrottleEvent {}
    unsafe impl aya::Pod for super::ResyncEvent {}
    unsafe impl aya::Pod for super::ResyncedEvent {}
    unsafe impl aya::Pod for super::QueueEvent {}
    unsafe impl aya::Pod for super::ClientOffsets {}
}
