//! `client_throttling`: a client-side token bucket's signature (incident 002). The
//! bucket lets `burst` requests go at once, then one every 1/qps: the client's request
//! starts show long runs of evenly spaced starts, with the client idle between them
//! rather than sending each request as the previous one returns. The rate
//! is the runs' mean; the burst is the smallest bucket the starts fit in: the most any
//! stretch of requests exceeds the rate by, `max(count − qps × duration)`.

use std::collections::BTreeSet;

use super::{history::Seen, Clock, Finding, History};

/// The finding's kind.
pub const KIND: &str = "client_throttling";

/// Evenly spaced starts a pinned run needs.
const MIN_RUN: usize = 20;

/// How far a gap in a pinned run may stray from the run's typical gap: a token bucket
/// hands out late tokens early, so gaps wobble around 1/qps.
const GAP_TOLERANCE: f64 = 0.7;

/// A pinned run: indexes of its first and last request.
struct Run {
    first: usize,
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
    let runs: Vec<Run> = runs(&gaps, pinned)
        .into_iter()
        .filter(|r| waits(&seen, r, typical))
        .collect();
    let (mut gaps_in_runs, mut ns_in_runs) = (0, 0);
    let mut verbs: BTreeSet<&str> = BTreeSet::new();
    for r in &runs {
        gaps_in_runs += r.last - r.first;
        ns_in_runs += seen[r.last].start_ns - seen[r.first].start_ns;
        verbs.extend(seen[r.first..=r.last].iter().map(|s| s.verb.as_str()));
    }
    if ns_in_runs == 0 {
        return None;
    }
    let qps = gaps_in_runs as f64 / (ns_in_runs as f64 / 1e9);
    // f(i) = i − qps·t_i: a stretch i..=j exceeds the rate by f(j) − f(i) + 1.
    let f = |i: usize| i as f64 - qps * (seen[i].start_ns - seen[0].start_ns) as f64 / 1e9;
    let (mut burst, mut window, mut lowest) = (0.0, (0, 0), (f(0), 0));
    for j in 0..seen.len() {
        if f(j) < lowest.0 {
            lowest = (f(j), j);
        }
        let excess = f(j) - lowest.0 + 1.0;
        if excess > burst {
            (burst, window) = (excess, (lowest.1, j));
        }
    }
    // The burst is the throttled work itself, not (say) a restart's LIST pages.
    let bursting = dominant(&seen[window.0..=window.1]);
    if burst < 2.0 || !bursting.is_some_and(|v| verbs.contains(v)) {
        return None;
    }
    let first = seen[window.0]
        .start_ns
        .min(seen[runs.first()?.first].start_ns);
    let last = seen[runs.last()?.last].start_ns;
    let requests = seen
        .iter()
        .filter(|s| (first..=last).contains(&s.start_ns))
        .count();
    Some(Finding {
        kind: KIND,
        start_unix_s: clock.unix_s(first),
        end_unix_s: clock.unix_s(last),
        rate_per_s: Some(qps),
        burst: Some(burst.round() as u64),
        duration_s: Some((last - first) as f64 / 1e9),
        requests: Some(requests as u64),
        ..base.clone()
    })
}

/// Maximal runs of at least [`MIN_RUN`] pinned gaps.
fn runs(gaps: &[u64], pinned: impl Fn(u64) -> bool) -> Vec<Run> {
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
            runs.push(Run { first, last: i });
        }
    }
    runs
}

/// The most common verb of `seen`.
fn dominant<'s>(seen: &[&'s Seen]) -> Option<&'s str> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in seen {
        *counts.entry(s.verb.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(verb, _)| verb)
}
/// Between its requests the client waits for the bucket: most requests end well before
/// the next begins (idle for over half the gap). A client sending each request as the
/// previous one returns is never idle, and one sending many at once (a burst over
/// several connections) overlaps them: neither is held back by a rate.
fn waits(seen: &[&Seen], run: &Run, typical: f64) -> bool {
    let (mut waiting, mut known) = (0, 0);
    for w in seen[run.first..=run.last].windows(2) {
        let Some(end) = w[0].end_ns else { continue };
        known += 1;
        if w[1].start_ns as f64 - end as f64 > 0.5 * typical {
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
