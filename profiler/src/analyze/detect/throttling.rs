//! `client_throttling`: a client-side token bucket's signature (incident 002). The
//! bucket lets `burst` requests go at once, then one every 1/qps: the client's request
//! starts show a dense cluster, then a long run of evenly spaced starts, of the same
//! kind of request, with the client idle (or overlapping) between them rather than
//! sending each request as the previous one ends.

use super::{history::Seen, Clock, Finding, History};

/// The finding's kind.
pub const KIND: &str = "client_throttling";

/// Evenly spaced starts a pinned run needs.
const MIN_RUN: usize = 20;

/// How far a gap in a pinned run may stray from the run's typical gap: a token bucket
/// hands out late tokens early, so gaps wobble around 1/qps.
const GAP_TOLERANCE: f64 = 0.7;

/// A gap under this share of the pinned gap belongs to the burst before the run.
const DENSE: f64 = 0.3;

/// A pinned run and the burst before it.
struct Run {
    /// Index in the requests of the burst's first request.
    burst_first: usize,
    /// Index of the run's first request (the last of the burst).
    first: usize,
    /// Index of its last request.
    last: usize,
}

/// The client's throttling finding, if its requests show one.
pub fn find(base: &Finding, history: &History, clock: &Clock) -> Option<Finding> {
    let seen: Vec<&Seen> = history.seen.iter().collect();
    if seen.len() < MIN_RUN + 2 {
        return None;
    }
    let gaps: Vec<u64> = seen
        .windows(2)
        .map(|w| w[1].start_ns.saturating_sub(w[0].start_ns))
        .collect();
    let mut sorted: Vec<u64> = gaps.iter().copied().filter(|g| *g > 0).collect();
    sorted.sort_unstable();
    let typical = *sorted.get(sorted.len() / 2)? as f64;
    let pinned = |g: u64| (g as f64 - typical).abs() <= GAP_TOLERANCE * typical;
    let runs = runs(&gaps, pinned, typical);
    let runs: Vec<Run> = runs
        .into_iter()
        .filter(|r| same_kind(&seen, r) && waits(&seen, r, typical))
        .collect();
    let burst = runs.iter().map(|r| r.first - r.burst_first + 1).max()? as u64;
    if burst < 2 {
        return None;
    }
    let (mut gaps_in_runs, mut ns_in_runs, mut requests) = (0, 0, 0);
    for r in &runs {
        gaps_in_runs += r.last - r.first;
        ns_in_runs += seen[r.last].start_ns - seen[r.first].start_ns;
        requests += r.last - r.burst_first + 1;
    }
    let first = seen[runs.first()?.burst_first].start_ns;
    let last = seen[runs.last()?.last].start_ns;
    Some(Finding {
        kind: KIND,
        start_unix_s: clock.unix_s(first),
        end_unix_s: clock.unix_s(last),
        rate_per_s: Some(gaps_in_runs as f64 / (ns_in_runs as f64 / 1e9)),
        burst: Some(burst),
        duration_s: Some((last - first) as f64 / 1e9),
        requests: Some(requests as u64),
        ..base.clone()
    })
}

/// Maximal runs of at least [`MIN_RUN`] pinned gaps, each with the dense burst just
/// before it.
fn runs(gaps: &[u64], pinned: impl Fn(u64) -> bool, typical: f64) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < gaps.len() {
        if !pinned(gaps[i]) {
            i += 1;
            continue;
        }
        let first = i;
        while i < gaps.len() && pinned(gaps[i]) {
            i += 1;
        }
        if i - first >= MIN_RUN {
            let mut burst_first = first;
            while burst_first > 0 && (gaps[burst_first - 1] as f64) < DENSE * typical {
                burst_first -= 1;
            }
            runs.push(Run {
                burst_first,
                first,
                last: i,
            });
        }
    }
    runs
}

/// The burst and the run send the same kind of request (a restart's LIST pages before
/// a steady stream of writes are not a bucket's burst).
fn same_kind(seen: &[&Seen], run: &Run) -> bool {
    let dominant = |from: usize, to: usize| {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in &seen[from..=to] {
            *counts.entry(s.verb.as_str()).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(verb, _)| verb)
    };
    run.first > run.burst_first
        && dominant(run.burst_first, run.first) == dominant(run.first, run.last)
}

/// Between its requests the client waits for the bucket: most requests end well before
/// the next begins, or overlap it — unlike a client sending each request as the last
/// one returns.
fn waits(seen: &[&Seen], run: &Run, typical: f64) -> bool {
    let (mut waiting, mut known) = (0, 0);
    for w in seen[run.first..=run.last].windows(2) {
        let Some(end) = w[0].end_ns else { continue };
        known += 1;
        let idle = w[1].start_ns as f64 - end as f64;
        if idle < 0.0 || idle > 0.3 * typical {
            waiting += 1;
        }
    }
    known > 0 && waiting * 2 > known
}

/// "X has been pinned at 20.0 req/s for 95 s after a burst of 30 …".
pub fn sentence(f: &Finding) -> String {
    format!(
        "{} was pinned at {:.1} req/s for {} after a burst of {}: its client-side rate limiter (qps {:.0}, burst {}) is throttling it. Raise its QPS and burst (e.g. --kube-api-qps / --kube-api-burst).",
        f.who(),
        f.rate_per_s.unwrap_or_default(),
        super::resync::human(f.duration_s.unwrap_or_default()),
        f.burst.unwrap_or_default(),
        f.rate_per_s.unwrap_or_default(),
        f.burst.unwrap_or_default(),
    )
}
