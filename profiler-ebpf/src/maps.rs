//! Maps shared by every probe family.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use profiler_common::{event::RINGBUF_BYTES, offsets::GoOffsets};

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

/// Counts one event lost because the ring buffer was full.
pub fn count_dropped() {
    if let Some(slot) = DROPPED.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}
