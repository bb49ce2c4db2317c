//! `client_throttling`: a client-side token bucket's signature (incident 002). The
//! bucket lets `burst` requests go at once, then one every 1/qps: the client's request
//! starts show long runs of evenly spaced starts, with the client idle between them
//! rather than sending each request as the previous one returns. The rate
//! is the runs' mean; the burst is the smallest bucket the starts fit in: the most any
//! stretch of requests exceeds the rate by, `max(count − qps × duration)`.

use std::collections::{BTreeSet, VecDeque};

use super::{history::Seen, Clock, Finding, History};

/// The finding's kind.
pub const KIND: &str = "client_throttling";

/// Evenly spaced starts a pinned run needs.
const MIN_RUN: usize = 20;

/// How far a gap in a pinned run may stray from the client's typical gap. A token
/// bucket's gaps barely wobble (refctl's: 50 ms ±1 ms, all within 37–55 ms); 20 gaps in
/// a row within 30% of each other almost never happen by chance (a client with random
/// gaps of 1–20 minutes has 20 such in a row once in 10^9).
const GAP_TOLERANCE: f64 = 0.3;

/// A pinned run: indexes of its first and last request.
struct Run {
    first: usize,
    last: usize,
}

/// A throttled stretch of a client's requests. A client remembers only its last
/// requests, so an episode longer than that is followed piece by piece
/// ([`Episode::merge`]): its burst is the largest any piece showed.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// Its first request's start.
    pub first_ns: u64,
    /// Its last pinned request's start.
    pub last_ns: u64,
    /// The pinned rate, requests per second.
    pub rate: f64,
    /// The burst (1 when the piece holds none).
    pub burst: f64,
    /// Requests in it.
    pub requests: u64,
}

impl Episode {
    /// `self` continued by `next` (a later look at the client's requests), or `next`
    /// alone when it begins after `self` ended.
    pub fn merge(self, next: Episode) -> Episode {
        if next.first_ns > self.last_ns + super::BURST_GAP_NS {
            return next;
        }
        let overlap = if next.first_ns <= self.last_ns {
            // Requests both saw, at the pinned rate.
            ((self.last_ns - next.first_ns) as f64 / 1e9 * next.rate).round() as u64 + 1
        } else {
            0
        };
        Episode {
            first_ns: self.first_ns.min(next.first_ns),
            last_ns: self.last_ns.max(next.last_ns),
            rate: next.rate,
            burst: self.burst.max(next.burst),
            requests: self.requests + next.requests.saturating_sub(overlap),
        }
    }
}

/// The throttled episode the remembered `seen` requests show, if any.
pub fn evaluate(seen: &VecDeque<Seen>) -> Option<Episode> {
    let seen: Vec<&Seen> = seen.iter().collect();
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
    let burst = if bursting.is_some_and(|v| verbs.contains(v)) {
        burst
    } else {
        1.0
    };
    let first = seen[window.0]
        .start_ns
        .min(seen[runs.first()?.first].start_ns);
    let last = seen[runs.last()?.last].start_ns;
    let requests = seen
        .iter()
        .filter(|s| (first..=last).contains(&s.start_ns))
        .count();
    Some(Episode {
        first_ns: first,
        last_ns: last,
        rate: qps,
        burst,
        requests: requests as u64,
    })
}

/// The client's throttling finding: the episode it remembers, continued by what its
/// last requests show; only after a burst (a bucket that let several requests go at
/// once).
pub fn find(base: &Finding, history: &History, clock: &Clock) -> Option<Finding> {
    let episode = match (history.throttling.clone(), evaluate(&history.seen)) {
        (Some(old), Some(new)) => old.merge(new),
        (old, new) => old.or(new)?,
    };
    if episode.burst < 2.0 {
        return None;
    }
    Some(Finding {
        kind: KIND,
        start_unix_s: clock.unix_s(episode.first_ns),
        end_unix_s: clock.unix_s(episode.last_ns),
        rate_per_s: Some(episode.rate),
        burst: Some(episode.burst.round() as u64),
        duration_s: Some((episode.last_ns - episode.first_ns) as f64 / 1e9),
        requests: Some(episode.requests),
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
