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
}

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

/// Ring-buffer wake-up policy: the kernel wakes the reader only once this many bytes
/// are waiting; userspace also drains on a timer. Per-event wake-ups cost a traced Go
/// server dearly (../shared/MEASURING.md).
pub const RINGBUF_WAKEUP_BYTES: u64 = 64 * 1024;

/// Size of the event ring buffer, in bytes (a power of two, as the kernel requires).
pub const RINGBUF_BYTES: u32 = 4 * 1024 * 1024;
