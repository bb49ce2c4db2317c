//! The header every kernel event starts with.

/// Kinds of event, stored in [`EventHeader::kind`].
pub mod kind {
    /// An [`crate::http::HttpRequestEvent`]: a Go HTTP server began serving a request.
    pub const HTTP_REQUEST: u32 = 1;
    /// An [`crate::http::HttpResponseEvent`]: the server finished serving a request.
    pub const HTTP_RESPONSE: u32 = 2;
    /// An [`crate::alloc::AllocEvent`]: the Go runtime sampled a heap allocation.
    pub const ALLOC: u32 = 3;
    /// A [`crate::cpu::CpuEvent`]: the sampling clock found the process on CPU.
    pub const CPU: u32 = 4;
    /// A [`GoroutineEvent`]: a goroutine started another (only with deep lineage).
    pub const GOROUTINE: u32 = 5;
    /// A [`crate::http::HttpRequestEvent`] of a client: a client-go program handed a
    /// request to its HTTP transport (`net/http.(*Transport).roundTrip`).
    pub const CLIENT_REQUEST: u32 = 6;
    /// A [`crate::client::ThrottleEvent`].
    pub const CLIENT_THROTTLE: u32 = 7;
    /// A [`crate::client::ResyncEvent`].
    pub const CLIENT_RESYNC: u32 = 8;
    /// A [`crate::client::ResyncedEvent`].
    pub const CLIENT_RESYNCED: u32 = 9;
    /// A [`crate::client::QueueEvent`].
    pub const CLIENT_QUEUE: u32 = 10;
}

/// Which goroutine a sample was taken on, by id, for userspace to find the request it
/// works for: the one it serves, or its parent's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    /// `runtime.g.goid`; 0 when unreadable.
    pub goid: u64,
    /// `runtime.g.parentGoid` (Go 1.21+); 0 when the runtime has none.
    pub parent_goid: u64,
}

/// A goroutine started another (`runtime.newproc`): the probe that sees it is attached
/// only for deep lineage.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GoroutineEvent {
    /// Common header; `kind` is [`kind::GOROUTINE`], its goroutine the creator.
    pub header: EventHeader,
    /// The creator's `goid`.
    pub creator_goid: u64,
    /// The new goroutine's `goid`.
    pub child_goid: u64,
}

const _: () = assert!(core::mem::size_of::<GoroutineEvent>() == 32 + 16);

/// First field of every event written to the ring buffer: the decoder reads it before
/// anything else to learn which event type follows, so it must stay first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// One of the constants in [`kind`].
    pub kind: u32,
    /// Process id (kernel tgid) of the observed process.
    pub tgid: u32,
    /// Thread id (kernel pid) that hit the probe.
    pub tid: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// `bpf_ktime_get_ns()` at the probe: monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The Go goroutine (`runtime.g` pointer, register R14) that hit the probe.
    pub goroutine: u64,
}

const _: () = assert!(core::mem::size_of::<EventHeader>() == 32);

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for EventHeader {}

#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for GoroutineEvent {}

/// Size of the event ring buffer, in bytes (a power of two, as the kernel requires).
/// Userspace drains it when woken and every 20 ms. 16 MiB absorb a burst of ~29,000
/// allocation samples (the tests' 64 MiB allocated at `MemProfileRate` 4096 make 16,000
/// in ~60 ms, faster than a debug build drains them) or ~14,000 request starts.
pub const RINGBUF_BYTES: u32 = 16 * 1024 * 1024;

/// Each CPU wakes userspace once per this many events (at most ~64 KiB of them): per-event
/// wake-ups cost a traced Go server dearly (../shared/MEASURING.md).
pub const WAKEUP_EVERY: u64 = 64;
