//! Maps shared by every probe family.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use profiler_common::{
    event::RINGBUF_BYTES,
    http::{Inflight, Response, UserAgent},
    offsets::GoOffsets,
};

/// Events for userspace, in the order they happened per CPU.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RINGBUF_BYTES, 0);

/// Events that found the ring buffer full (index 0); userspace reports the sum.
#[map]
pub static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Go struct offsets for each observed process, keyed by tgid. A probe hit in a process
/// without an entry is ignored.
#[map]
pub static GO_OFFSETS: HashMap<u32, GoOffsets> = HashMap::with_max_entries(1024, 0);

/// Requests being served, by goroutine (`runtime.g` address).
#[map]
pub static INFLIGHT: LruHashMap<u64, Inflight> = LruHashMap::with_max_entries(65536, 0);

/// The `*http.Request` each goroutine works for: the goroutine serving it, and the
/// goroutines it (transitively) started while serving it.
#[map]
pub static REQUEST_OF: LruHashMap<u64, u64> = LruHashMap::with_max_entries(65536, 0);

/// What each response writer has written, by its address.
#[map]
pub static RESPONSES: LruHashMap<u64, Response> = LruHashMap::with_max_entries(65536, 0);

/// User-Agent values parsed but not yet claimed by a request, by the goroutine that
/// parsed them (HTTP/1: the connection's goroutine, which also serves the request;
/// HTTP/2: the connection's goroutine, until the request is created).
#[map]
pub static UA_BY_GOROUTINE: LruHashMap<u64, UserAgent> = LruHashMap::with_max_entries(16384, 0);

/// HTTP/2 User-Agent values by the request's `*url.URL`, until its handler starts.
#[map]
pub static UA_BY_REQUEST: LruHashMap<u64, UserAgent> = LruHashMap::with_max_entries(16384, 0);

/// Per-CPU room to build a [`UserAgent`] (too large for the 512-byte BPF stack).
#[map]
pub static UA_SCRATCH: PerCpuArray<UserAgent> = PerCpuArray::with_max_entries(1, 0);

/// Counts one event lost because the ring buffer was full.
pub fn count_dropped() {
    if let Some(slot) = DROPPED.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// The Go offsets for the current process, if it is observed.
pub fn offsets(tgid: u32) -> Option<GoOffsets> {
    // SAFETY: the value is copied out before the map can change.
    unsafe { GO_OFFSETS.get(tgid) }.copied()
}
