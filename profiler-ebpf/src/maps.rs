//! Maps shared by every probe family.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use profiler_common::{event::RINGBUF_BYTES, http::WorksFor, offsets::GoOffsets};

use crate::header_map::SLOTS_BYTES;

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

/// What each goroutine works for, by goroutine id (`runtime.g.goid`, never reused, so an
/// entry cannot outlive its goroutine into another's). The goroutine serving a request
/// gets an entry when its handler starts and loses it when the handler returns;
/// goroutines started meanwhile inherit it.
#[map]
pub static WORKS_FOR: LruHashMap<u64, WorksFor> = LruHashMap::with_max_entries(65536, 0);

/// Per-CPU room for one bucket or group of a Go map (too large for the 512-byte stack).
#[map]
pub static MAP_SCRATCH: PerCpuArray<[u8; SLOTS_BYTES]> = PerCpuArray::with_max_entries(1, 0);

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
