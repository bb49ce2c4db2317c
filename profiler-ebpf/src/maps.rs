//! Maps and load-time constants shared by every probe family.

use aya_ebpf::{
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use profiler_common::{event::RINGBUF_BYTES, offsets::GoOffsets};

use crate::header_map::SLOTS_BYTES;

/// Entries of the per-CPU arrays below: one, as each is a per-CPU variable (a counter or
/// a buffer) read and written at index 0, and userspace sums or ignores the CPUs' copies.
const PER_CPU_VARIABLE: u32 = 1;

/// Events for userspace, in the order they were reserved (one order across CPUs);
/// [`RINGBUF_BYTES`] says why that size.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RINGBUF_BYTES, 0);

/// Events each CPU submitted (index 0), for waking userspace every so many.
#[map]
pub static SUBMITTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(PER_CPU_VARIABLE, 0);

/// Events that found the ring buffer full (index 0); userspace reports the sum.
#[map]
pub static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(PER_CPU_VARIABLE, 0);

/// Per-CPU room to copy a Go struct, or one bucket or group of a Go map (too large for
/// the 512-byte stack).
#[map]
pub static SCRATCH: PerCpuArray<[u8; SLOTS_BYTES]> =
    PerCpuArray::with_max_entries(PER_CPU_VARIABLE, 0);

/// The observed process: userspace loads the programs once per process and sets it.
#[unsafe(no_mangle)]
static TGID: u32 = 0;

/// The Go struct offsets of the observed process's Go version, set at load time.
#[unsafe(no_mangle)]
static GO_OFFSETS: GoOffsets = GoOffsets::ZERO;

/// Counts one event lost because the ring buffer was full.
pub fn count_dropped() {
    if let Some(slot) = DROPPED.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// The observed process's tgid.
pub fn tgid() -> u32 {
    // SAFETY: a constant set at load time; the volatile read keeps the compiler from
    // folding the zero it was compiled with.
    unsafe { core::ptr::read_volatile(&TGID) }
}

/// The Go offsets of the observed process.
pub fn offsets() -> GoOffsets {
    // SAFETY: as in `tgid`.
    unsafe { core::ptr::read_volatile(&GO_OFFSETS) }
}

/// The per-CPU scratch buffer.
pub fn scratch() -> Option<&'static mut [u8; SLOTS_BYTES]> {
    let buf = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot; a BPF program runs to completion on its CPU, and each user
    // finishes with it before the next one fills it.
    Some(unsafe { &mut *buf })
}
