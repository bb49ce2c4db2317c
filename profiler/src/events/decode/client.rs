//! The client-side probes' events (`--client`), decoded.

use profiler_common::client::{phase, queue_op, QueueEvent, ResyncEvent, ThrottleEvent, ITEM_CAP};
use serde::{Deserialize, Serialize};

use super::text;

/// One end of a client-go rate-limiter wait, on the goroutine that sends the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttle {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The goroutine.
    pub goroutine: u64,
    /// At the start, the limiter's settings when it is a token bucket (its two rates
    /// agree); `None` at the end, or for a limiter of another kind.
    pub limiter: Option<Limiter>,
    /// Whether this is the start.
    pub start: bool,
}

/// A client-go token bucket's settings, read from the client's memory.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limiter {
    /// Requests per second.
    pub qps: f64,
    /// Requests it lets go at once.
    pub burst: u64,
}

/// An informer's resync fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resync {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The informer's FIFO (its address).
    pub fifo: u64,
    /// Its name (`RealFIFO *v1.ConfigMap`); empty when what was read names no FIFO.
    pub informer: String,
}

/// A workqueue took an item not already waiting, or handed one to a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueChange {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The queue (its `dirty` set's address).
    pub queue: u64,
    /// Whether it took the item (else it handed it over).
    pub added: bool,
    /// Items waiting for a worker after it.
    pub depth: u64,
    /// The item: its first bytes, and its length (they tell items apart).
    pub item: (Vec<u8>, u64),
}

/// A limiter is taken for client-go's token bucket only when the `qps` client-go keeps
/// beside its `rate.Limiter` is that limiter's rate: another limiter type has other
/// fields there.
pub(super) fn throttle(raw: &ThrottleEvent) -> Throttle {
    let limit = f64::from_bits(raw.limit_bits);
    let qps = f32::from_bits(raw.qps_bits as u32);
    let bucket = limit.is_finite() && limit > 0.0 && limit as f32 == qps && raw.burst > 0;
    Throttle {
        ktime_ns: raw.header.ktime_ns,
        goroutine: raw.header.goroutine,
        limiter: bucket.then_some(Limiter {
            qps: f64::from(qps),
            burst: raw.burst,
        }),
        start: raw.phase == phase::START,
    }
}

/// The informer is named only when what was read names a FIFO.
pub(super) fn resync(raw: &ResyncEvent) -> Resync {
    let (name, _) = text(&raw.name, raw.name_len.min(u64::from(u32::MAX)) as u32);
    let fifo = ["RealFIFO ", "DeltaFIFO "]
        .iter()
        .any(|kind| name.starts_with(kind));
    Resync {
        ktime_ns: raw.header.ktime_ns,
        fifo: raw.fifo,
        informer: if fifo { name } else { String::new() },
    }
}

/// Whether the queue took the item or handed it over, from the operation.
pub(super) fn queue(raw: &QueueEvent) -> QueueChange {
    let kept = (raw.item_len as usize).min(ITEM_CAP);
    QueueChange {
        ktime_ns: raw.header.ktime_ns,
        queue: raw.queue,
        added: raw.op == queue_op::ADD,
        depth: raw.depth,
        item: (raw.item[..kept].to_vec(), raw.item_len),
    }
}
