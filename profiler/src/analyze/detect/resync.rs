//! `resync_tick`: a client's bursts of the same kind of request, at a regular period —
//! an informer resync re-queueing every cached object, each reconcile sending the same
//! requests. Exact periods (knative: 10 h), jittered ones (controller-runtime: 10 h
//! ±10%) and per-informer random ones (kube-controller-manager: 12–24 h, fixed once
//! chosen) all show as bursts whose intervals stay within [`MAX_DEVIATION`] of their
//! mean; nothing depends on the period's scale.

use std::collections::BTreeMap;

use super::{Burst, Clock, Finding, History, Tick};

/// The finding's kind.
pub const KIND: &str = "resync_tick";

/// How far one interval may stray from the mean and the bursts still be periodic:
/// controller-runtime jitters each resync by up to ±10%, so an interval by up to ±20%.
const MAX_DEVIATION: f64 = 0.35;

/// How far a tick's size may stray from the median tick's (objects come and go).
const SIZE_TOLERANCE: f64 = 0.3;

/// The client's resync finding, and the start times of the bursts that make it.
pub fn find(
    base: &Finding,
    history: &History,
    now_ns: u64,
    clock: &Clock,
) -> Option<(Finding, Vec<u64>)> {
    // Bursts right after other clients' writes are explained by watch events.
    let bursts: Vec<&Burst> = history
        .bursts(now_ns)
        .filter(|b| b.writes_before == 0)
        .collect();
    // The most common kind of burst.
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &bursts {
        *kinds.entry(b.dominant()).or_default() += 1;
    }
    let (kind, _) = kinds.into_iter().max_by_key(|(_, n)| *n)?;
    let same: Vec<&Burst> = bursts
        .into_iter()
        .filter(|b| b.dominant() == kind)
        .collect();
    let mut sizes: Vec<u64> = same.iter().map(|b| b.count).collect();
    sizes.sort_unstable();
    let median = *sizes.get(sizes.len() / 2)? as f64;
    let members: Vec<&Burst> = same
        .into_iter()
        .filter(|b| (b.count as f64 - median).abs() <= SIZE_TOLERANCE * median)
        .collect();
    if members.len() < 3 {
        return None;
    }
    let starts: Vec<u64> = members.iter().map(|b| b.start_ns).collect();
    let (period, jitter) = period(&starts)?;
    if starts
        .windows(2)
        .any(|w| ((w[1] - w[0]) as f64 - period).abs() > MAX_DEVIATION * period)
    {
        return None;
    }
    // The burst of a (re)start is the initial sync, not a resync (it counts for the
    // period: the resync timer starts with it).
    let ticks: Vec<&Burst> = members.iter().copied().filter(|b| !b.restart).collect();
    let first = ticks.first()?;
    let last = ticks.last()?;
    let mut by_rv_class: BTreeMap<String, u64> = BTreeMap::new();
    for t in &ticks {
        for (rv_class, n) in &t.by_rv_class {
            *by_rv_class.entry(rv_class.clone()).or_default() += n;
        }
    }
    let finding = Finding {
        kind: KIND,
        start_unix_s: clock.unix_s(first.start_ns),
        end_unix_s: clock.unix_s(last.last_ns),
        period_s: Some(period / 1e9),
        jitter_s: Some(jitter / 1e9),
        ticks: Some(ticks.iter().map(|b| Tick::of(b, clock)).collect()),
        requests_by_rv_class: Some(by_rv_class),
        ..base.clone()
    };
    Some((finding, starts))
}

/// The mean interval between `ticks` (event times, in order) and the intervals'
/// standard deviation, nanoseconds; `None` for fewer than two ticks.
pub fn period(ticks: &[u64]) -> Option<(f64, f64)> {
    let (first, last) = (*ticks.first()?, *ticks.last()?);
    let n = (ticks.len() - 1) as f64;
    if n == 0.0 {
        return None;
    }
    let period = (last - first) as f64 / n;
    let variance = ticks
        .windows(2)
        .map(|w| ((w[1] - w[0]) as f64 - period).powi(2))
        .sum::<f64>()
        / n;
    Some((period, variance.sqrt()))
}

/// "X sends 300 LISTs … every 10 h ±1 h …".
pub fn sentence(f: &Finding) -> String {
    let ticks = f.ticks.as_deref().unwrap_or_default();
    let n = ticks.len().max(1) as f64;
    let per_tick = ticks.iter().map(|t| t.requests).sum::<u64>() as f64 / n;
    let kind = ticks
        .last()
        .and_then(|t| t.by_verb_rv_class.iter().max_by_key(|(_, n)| **n))
        .map_or_else(String::new, |(k, _)| k.clone());
    let (verb, rv_class) = kind.split_once(' ').unwrap_or((kind.as_str(), "null"));
    let cpu = ticks.iter().map(|t| t.cpu_seconds).sum::<f64>() / n;
    let alloc = ticks.iter().map(|t| t.alloc_bytes).sum::<u64>() as f64 / n;
    let rv = match rv_class {
        "most_recent" => ", with resourceVersion unset (consistent reads)",
        "any" => ", with resourceVersion=0 (from the watch cache)",
        "null" => "",
        _ => ", with a resourceVersion",
    };
    format!(
        "{} sends {per_tick:.0} {}s in a burst every {} ±{} ({} ticks seen). It is an informer resync re-reconciling every object{rv}; each burst costs the API server {cpu:.2} s of CPU and {:.1} MB of heap. Filter resync events in the controller (or lengthen its resync period), or serve its reads from the watch cache.",
        f.who(),
        verb.to_uppercase(),
        human(f.period_s.unwrap_or_default()),
        human(f.jitter_s.unwrap_or_default()),
        ticks.len(),
        alloc / 1e6,
    )
}

/// Seconds as people say them: 950ms, 3.0s, 12.5m, 10.0h.
pub fn human(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0}ms", seconds * 1e3)
    } else if seconds < 120.0 {
        format!("{seconds:.1}s")
    } else if seconds < 7200.0 {
        format!("{:.1}m", seconds / 60.0)
    } else {
        format!("{:.1}h", seconds / 3600.0)
    }
}
