//! `restart_catchup` (incident 000): from a client's (re)start — its informers
//! reconnect: a WATCH begins, after the initial LISTs — to the end of the burst of work
//! that follows, when its rate falls back to its baseline (no request for
//! [`BURST_GAP_NS`](super::BURST_GAP_NS)).

use super::{Clock, Finding, History, Tick};

/// The finding's kind.
pub const KIND: &str = "restart_catchup";

/// Catch-ups reported per client: the latest.
const LATEST: usize = 5;

/// The client's latest catch-ups.
pub fn find(base: &Finding, history: &History, now_ns: u64, clock: &Clock) -> Vec<Finding> {
    let restarts: Vec<_> = history.bursts(now_ns).filter(|b| b.restart).collect();
    restarts
        .iter()
        .skip(restarts.len().saturating_sub(LATEST))
        .map(|b| Finding {
            kind: KIND,
            start_unix_s: clock.unix_s(b.start_ns),
            end_unix_s: clock.unix_s(b.last_ns),
            duration_s: Some((b.last_ns - b.start_ns) as f64 / 1e9),
            requests: Some(b.count),
            lists: Some(b.lists),
            burst_detail: Some(Tick::of(b, clock)),
            ..base.clone()
        })
        .collect()
}

/// "X took 12.0m to catch up after its restart …".
pub fn sentence(f: &Finding) -> String {
    format!(
        "{} took {} to catch up after (re)starting: {} requests, {} of them LISTs, before its rate fell back. A slow catch-up means few workers or costly reconciles (scans of the informer cache): index what reconciles look up, add workers.",
        f.who(),
        super::resync::human(f.duration_s.unwrap_or_default()),
        f.requests.unwrap_or_default(),
        f.lists.unwrap_or_default(),
    )
}
