//! `reconcile_burst`: a client's requests rising from idle to a burst (at least
//! [`MIN_BURST`](super::MIN_BURST) requests, gaps under
//! [`BURST_GAP_NS`](super::BURST_GAP_NS)), with its trigger, decided from what came
//! before: `resync` (a tick of its periodic bursts), `restart` (its informers
//! reconnected: a WATCH began in it), `watch_events` (other clients wrote the
//! resources it touches just before: its WATCHes told it), else `unknown`.

use super::{Clock, Finding, History, Tick};

/// The finding's kind.
pub const KIND: &str = "reconcile_burst";

/// Bursts reported per client: the latest.
const LATEST: usize = 10;

/// The client's latest bursts; `resync_starts` are the starts of those its resync
/// finding counts; `queue(since_ns, until_ns)` is what client-side probes measured of
/// the client's workqueues then (deepest, longest wait in nanoseconds), if anything.
pub fn find(
    base: &Finding,
    history: &History,
    now_ns: u64,
    clock: &Clock,
    resync_starts: &[u64],
    queue: impl Fn(u64, u64) -> (Option<u64>, Option<u64>),
) -> Vec<Finding> {
    let bursts: Vec<_> = history.bursts(now_ns).collect();
    bursts
        .iter()
        .skip(bursts.len().saturating_sub(LATEST))
        .map(|b| {
            let trigger = if b.restart {
                "restart"
            } else if resync_starts.contains(&b.start_ns) {
                "resync"
            } else if b.writes_before > 0 {
                "watch_events"
            } else {
                "unknown"
            };
            // The items a burst works on were queued just before it began.
            let (queue_depth, queue_wait_ns) =
                queue(b.start_ns.saturating_sub(super::BURST_GAP_NS), b.last_ns);
            Finding {
                kind: KIND,
                start_unix_s: clock.unix_s(b.start_ns),
                end_unix_s: clock.unix_s(b.last_ns),
                duration_s: Some((b.last_ns - b.start_ns) as f64 / 1e9),
                requests: Some(b.count),
                trigger: Some(trigger),
                burst_detail: Some(Tick::of(b, clock)),
                queue_depth,
                queue_wait_ms: queue_wait_ns.map(|w| w as f64 / 1e6),
                ..base.clone()
            }
        })
        .collect()
}

/// "X sent a burst of 120 requests in 1.2s, set off by …".
pub fn sentence(f: &Finding) -> String {
    let cause = match f.trigger {
        Some("resync") => "its informers' resync",
        Some("restart") => "its (re)start: informers re-listing and re-watching",
        Some("watch_events") => "watch events: other clients had just written what it watches",
        _ => "nothing apiprof saw (a timer, an external event?)",
    };
    let depth = f.queue_depth.map_or(String::new(), |d| {
        format!(" Its workqueue grew to {d} items waiting for a worker")
            + &f.queue_wait_ms.map_or(String::new(), |w| {
                format!(", the longest waiting {w:.1} ms")
            })
            + "."
    });
    format!(
        "{} sent a burst of {} requests in {}, set off by {cause}.{depth}",
        f.who(),
        f.requests.unwrap_or_default(),
        super::resync::human(f.duration_s.unwrap_or_default()),
    )
}
