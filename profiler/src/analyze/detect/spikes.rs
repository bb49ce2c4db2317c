//! `allocation_spike`: a second in which the API server allocated far more heap than
//! in the minute before it — at least [`FACTOR`] times the mean and [`SIGMAS`] standard
//! deviations above it, and at least [`FLOOR_BYTES`] — and who caused it: the clients,
//! verbs, resources and rv_classes whose requests allocated it, with their shares.
//! Consecutive spiking seconds are one spike. Decided second by second as events come,
//! so its memory is a minute of seconds and the last spikes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::{attribute_key, Clock, Finding};
use crate::analyze::{attribute::Cost, request::Request};

/// The finding's kind.
pub const KIND: &str = "allocation_spike";

/// Seconds of baseline before a second.
const BASELINE: usize = 60;

/// Seconds of baseline needed before any second is judged.
const MIN_BASELINE: usize = 10;

/// How many times the baseline's mean a spiking second allocates at least.
const FACTOR: f64 = 5.0;

/// How many of the baseline's standard deviations above its mean.
const SIGMAS: f64 = 4.0;

/// The least a spiking second allocates: below this, sampled allocations are too few
/// to tell (at the default rate, 8 samples).
const FLOOR_BYTES: f64 = 4.0 * 1024.0 * 1024.0;

/// Contributors kept per second (the rest add up as `other`).
const MAX_CONTRIBUTORS: usize = 64;

/// Spikes remembered per target.
const MAX_SPIKES: usize = 16;

/// Contributors a finding names.
const SHOWN: usize = 5;

/// Who allocated a share of a spike.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Contributor {
    /// "user_agent verb resource rv_class", or `(background)`.
    pub requests: String,
    /// Their share of the spike's heap, 0 to 1.
    pub share: f64,
    /// The heap they allocated in it, estimated bytes.
    pub alloc_bytes: u64,
}

/// One second of one target.
#[derive(Debug, Default)]
struct Second {
    at: u64,
    alloc: f64,
    cpu_ns: u64,
    by: HashMap<String, f64>,
}

/// Consecutive spiking seconds.
#[derive(Clone, Debug, Default)]
struct Spike {
    first: u64,
    last: u64,
    alloc: f64,
    cpu_ns: u64,
    baseline: f64,
    by: HashMap<String, f64>,
}

/// One target's seconds and spikes.
#[derive(Debug, Default)]
struct Series {
    seconds: VecDeque<Second>,
    current: Option<Spike>,
    found: VecDeque<Spike>,
}

/// Every target's series.
#[derive(Debug, Default)]
pub struct Spikes(BTreeMap<String, Series>);

impl Spikes {
    /// A cost sample at `at_ns` in `target`.
    pub fn sample(&mut self, at_ns: u64, target: &str, owner: Option<&Request>, cost: Cost) {
        let series = match self.0.get_mut(target) {
            Some(series) => series,
            None => self.0.entry(target.to_owned()).or_default(),
        };
        let second = series.at(at_ns / 1_000_000_000);
        let who = owner.map_or_else(|| "(background)".to_owned(), attribute_key);
        match cost {
            Cost::Alloc { bytes } => {
                second.alloc += bytes;
                if second.by.len() < MAX_CONTRIBUTORS || second.by.contains_key(&who) {
                    *second.by.entry(who).or_default() += bytes;
                } else {
                    *second.by.entry("other".into()).or_default() += bytes;
                }
            }
            Cost::Cpu { ns } => second.cpu_ns += ns,
        }
    }

    /// Every target's remembered spikes, the one going on included.
    pub fn findings(&self, clock: &Clock) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (target, series) in &self.0 {
            for spike in series.found.iter().chain(&series.current) {
                findings.push(finding(target, spike, clock));
            }
        }
        findings
    }
}

impl Series {
    /// The second `at` (seconds of event time), judging those before it as they close.
    fn at(&mut self, at: u64) -> &mut Second {
        while self.seconds.back().is_none_or(|s| s.at < at) {
            if self.seconds.back().is_some() {
                self.judge_last();
            }
            let next = self
                .seconds
                .back()
                .map_or(at, |s| (s.at + 1).max(at.saturating_sub(BASELINE as u64)));
            self.seconds.push_back(Second {
                at: next,
                ..Second::default()
            });
            if self.seconds.len() > BASELINE + 1 {
                self.seconds.pop_front();
            }
        }
        // A late sample counts in the second it came in (samples drain in order).
        self.seconds.back_mut().expect("a second was pushed")
    }

    /// Judges the newest second against the ones before it.
    fn judge_last(&mut self) {
        let n = self.seconds.len() - 1;
        let second = &self.seconds[n];
        let before: Vec<f64> = self.seconds.iter().take(n).map(|s| s.alloc).collect();
        let spiking = before.len() >= MIN_BASELINE && {
            let mean = before.iter().sum::<f64>() / before.len() as f64;
            let sd = (before.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / before.len() as f64)
                .sqrt();
            second.alloc >= FLOOR_BYTES
                && second.alloc >= FACTOR * mean
                && second.alloc >= mean + SIGMAS * sd
        };
        if spiking {
            let baseline = before.iter().sum::<f64>() / before.len() as f64;
            let spike = self.current.get_or_insert_with(|| Spike {
                first: second.at,
                baseline,
                ..Spike::default()
            });
            spike.last = second.at;
            spike.alloc += second.alloc;
            spike.cpu_ns += second.cpu_ns;
            for (who, bytes) in &second.by {
                *spike.by.entry(who.clone()).or_default() += bytes;
            }
        } else if let Some(spike) = self.current.take() {
            self.found.push_back(spike);
            if self.found.len() > MAX_SPIKES {
                self.found.pop_front();
            }
        }
    }
}

fn finding(target: &str, spike: &Spike, clock: &Clock) -> Finding {
    let mut by: Vec<(&String, &f64)> = spike.by.iter().collect();
    by.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let contributors = by
        .into_iter()
        .take(SHOWN)
        .map(|(who, bytes)| Contributor {
            requests: who.clone(),
            share: bytes / spike.alloc,
            alloc_bytes: bytes.round() as u64,
        })
        .collect();
    Finding {
        kind: KIND,
        evidence: super::INFERRED,
        user_agent: String::new(),
        target: Some(target.to_owned()),
        start_unix_s: clock.unix_s(spike.first * 1_000_000_000),
        end_unix_s: clock.unix_s((spike.last + 1) * 1_000_000_000),
        duration_s: Some((spike.last + 1 - spike.first) as f64),
        alloc_bytes: Some(spike.alloc.round() as u64),
        baseline_bytes_per_s: Some(spike.baseline),
        cpu_seconds: Some(spike.cpu_ns as f64 / 1e9),
        contributors: Some(contributors),
        ..Finding::default()
    }
}

/// "kube-apiserver allocated 180 MB in 3 s, 40 times its baseline: 92% …".
pub fn sentence(f: &Finding) -> String {
    let alloc = f.alloc_bytes.unwrap_or_default() as f64;
    let duration = f.duration_s.unwrap_or(1.0);
    let baseline = f.baseline_bytes_per_s.unwrap_or_default();
    let times = if baseline > 0.0 {
        format!("{:.0} times its baseline", alloc / duration / baseline)
    } else {
        "from nothing".to_owned()
    };
    let shares: Vec<String> = f
        .contributors
        .iter()
        .flatten()
        .map(|c| format!("{:.0}% {}", c.share * 100.0, c.requests))
        .collect();
    format!(
        "{} allocated {:.1} MB of heap in {duration:.0} s ({times}) and spent {:.2} s of CPU; by request: {}.",
        f.target.as_deref().unwrap_or("the API server"),
        alloc / 1e6,
        f.cpu_seconds.unwrap_or_default(),
        shares.join(", "),
    )
}
