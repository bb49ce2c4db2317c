//! Rows of requests that share the grouped dimensions, with what they cost. Rows merge:
//! grouping finer rows by fewer dimensions gives exactly what grouping the requests
//! would, which lets the daemon keep fine rows per time bucket and answer any coarser
//! grouping over any window.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{
    attribute::{Cost, Sample},
    dimension::Dimension,
    filter::Filter,
    latency::Latency,
    request::Request,
    stacks::StackId,
};
use crate::events::decode::HttpResponse;

/// Distinct rows one [`Rows`] keeps at most; later new keys all go to one overflow row
/// whose grouped dimensions read `other`.
pub const MAX_ROWS: usize = 20_000;

/// The value of a bounded dimension past its bound, and of the overflow row's.
pub const OTHER: &str = "other";

/// What the requests of one row (or the background) cost.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Each dimension's value in [`Dimension::ALL`] order when every request of the row
    /// shares it, `None` when they differ; empty before the first request.
    pub dimensions: Vec<Option<Value>>,
    /// Requests begun.
    pub count: u64,
    /// Finished requests by status code.
    pub status: BTreeMap<u16, u64>,
    /// Body bytes written for finished requests.
    pub response_bytes: u64,
    /// Handler latency of finished requests other than WATCHes.
    pub latency: Latency,
    /// Finished WATCHes: summed duration.
    pub watch_ns: u64,
    /// Estimated heap bytes allocated.
    pub alloc_bytes: f64,
    /// Allocation samples behind `alloc_bytes`.
    pub alloc_samples: u64,
    /// On-CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// On-CPU samples behind `cpu_ns`.
    pub cpu_samples: u64,
    /// Samples by stack: (CPU samples, estimated alloc bytes); kept for folded stacks.
    pub stacks: HashMap<StackId, (u64, f64)>,
}

impl Stats {
    /// No requests yet, of a row whose requests have `dimensions`.
    pub fn of(dimensions: &[Value]) -> Self {
        let mut stats = Self::default();
        stats.note(dimensions);
        stats
    }

    /// Notes the dimensions of one more request.
    fn note(&mut self, dimensions: &[Value]) {
        if self.dimensions.is_empty() {
            self.dimensions = dimensions.iter().cloned().map(Some).collect();
            return;
        }
        for (mine, theirs) in self.dimensions.iter_mut().zip(dimensions) {
            if mine.as_ref().is_some_and(|v| v != theirs) {
                *mine = None;
            }
        }
    }

    /// Adds `other`'s requests and costs.
    pub fn merge(&mut self, other: &Stats) {
        if self.dimensions.is_empty() {
            self.dimensions = other.dimensions.clone();
        } else if !other.dimensions.is_empty() {
            for (mine, theirs) in self.dimensions.iter_mut().zip(&other.dimensions) {
                if *mine != *theirs {
                    *mine = None;
                }
            }
        }
        self.count += other.count;
        for (code, n) in &other.status {
            *self.status.entry(*code).or_default() += n;
        }
        self.response_bytes += other.response_bytes;
        self.latency.merge(&other.latency);
        self.watch_ns += other.watch_ns;
        self.alloc_bytes += other.alloc_bytes;
        self.alloc_samples += other.alloc_samples;
        self.cpu_ns += other.cpu_ns;
        self.cpu_samples += other.cpu_samples;
        for (stack, (cpu, alloc)) in &other.stacks {
            let mine = self.stacks.entry(*stack).or_default();
            mine.0 += cpu;
            mine.1 += alloc;
        }
    }

    fn end(&mut self, request: &Request, response: &HttpResponse) {
        *self.status.entry(response.status).or_default() += 1;
        self.response_bytes += response.response_bytes;
        let latency = response.ktime_ns.saturating_sub(request.http.ktime_ns);
        if request.is_watch() {
            self.watch_ns += latency;
        } else {
            self.latency.add(latency);
        }
    }

    fn sample(&mut self, sample: Sample, keep_stacks: bool) {
        let (cpu, alloc) = match sample.cost {
            Cost::Alloc { bytes } => {
                self.alloc_bytes += bytes;
                self.alloc_samples += 1;
                (0, bytes)
            }
            Cost::Cpu { ns } => {
                self.cpu_ns += ns;
                self.cpu_samples += 1;
                (1, 0.0)
            }
        };
        if keep_stacks {
            let entry = self.stacks.entry(sample.stack).or_default();
            entry.0 += cpu;
            entry.1 += alloc;
        }
    }
}

/// Requests grouped by some dimensions, and the work done outside any request.
#[derive(Clone, Debug)]
pub struct Rows {
    /// The dimensions rows are keyed by.
    pub by: Vec<Dimension>,
    /// Rows by their key: the grouped dimensions' values as JSON text.
    pub rows: HashMap<Vec<String>, Stats>,
    /// Work outside any request, by target.
    pub background: BTreeMap<String, Stats>,
    /// Requests whose method, path, query, user agent or remote address was cut to the
    /// kernel's copy size.
    pub truncated_requests: u64,
    /// Whether samples are kept by stack (for folded stacks).
    keep_stacks: bool,
}

impl Rows {
    /// No rows yet, keyed by `by`; `keep_stacks` keeps samples by stack.
    pub fn new(by: &[Dimension], keep_stacks: bool) -> Self {
        Self {
            by: by.to_vec(),
            rows: HashMap::new(),
            background: BTreeMap::new(),
            truncated_requests: 0,
            keep_stacks,
        }
    }

    /// The key of a request with `dimensions` (in [`Dimension::ALL`] order).
    pub fn key(&self, dimensions: &[Value]) -> Vec<String> {
        self.by
            .iter()
            .map(|d| dimensions[d.index()].to_string())
            .collect()
    }

    /// The row of `dimensions`, created when new (the overflow row past [`MAX_ROWS`]).
    fn row(&mut self, dimensions: &[Value]) -> &mut Stats {
        let mut key = self.key(dimensions);
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_ROWS {
            key = vec![Value::from(OTHER).to_string(); self.by.len()];
        }
        self.rows.entry(key).or_default()
    }

    /// Adds a row of another grouping (a finer one, or this one's renamed) to the row
    /// its dimensions fall in here.
    fn add(&mut self, stats: &Stats) {
        let dimensions: Vec<Value> = stats
            .dimensions
            .iter()
            .map(|d| d.clone().unwrap_or_else(|| Value::from(super::MIXED)))
            .collect();
        self.row(&dimensions).merge(stats);
    }

    /// A request began.
    pub fn start(&mut self, request: &Request) {
        self.truncated_requests += u64::from(request.http.truncated);
        let row = self.row(&request.dimensions);
        row.note(&request.dimensions);
        row.count += 1;
    }

    /// A request ended.
    pub fn end(&mut self, request: &Request, response: &HttpResponse) {
        let row = self.row(&request.dimensions);
        row.note(&request.dimensions);
        row.end(request, response);
    }

    /// A sample for `owner`, or outside any request in `target`.
    pub fn sample(&mut self, target: &str, owner: Option<&Request>, sample: Sample) {
        let keep_stacks = self.keep_stacks;
        let row = match owner {
            Some(request) => {
                let row = self.row(&request.dimensions);
                row.note(&request.dimensions);
                row
            }
            None => self.background.entry(target.to_owned()).or_default(),
        };
        row.sample(sample, keep_stacks);
    }

    /// Renames `from` to `to` in the rows' `dimension`, merging rows that then share a
    /// key (the daemon folds a user agent it gives up into `other`).
    pub fn rename(&mut self, dimension: Dimension, from: &Value, to: &Value) {
        let index = dimension.index();
        let renamed: Vec<Vec<String>> = self
            .rows
            .iter()
            .filter(|(_, s)| s.dimensions.get(index) == Some(&Some(from.clone())))
            .map(|(key, _)| key.clone())
            .collect();
        for key in renamed {
            let Some(mut stats) = self.rows.remove(&key) else {
                continue;
            };
            stats.dimensions[index] = Some(to.clone());
            self.add(&stats);
        }
    }

    /// Adds `other`'s rows, regrouped by this one's dimensions.
    pub fn merge(&mut self, other: &Rows) {
        for stats in other.rows.values() {
            self.add(stats);
        }
        for (target, stats) in &other.background {
            self.background
                .entry(target.clone())
                .or_default()
                .merge(stats);
        }
        self.truncated_requests += other.truncated_requests;
    }

    /// Adds the rows of `other` (a finer grouping) that `filter` keeps, regrouped by this
    /// one's dimensions; the background matches no filter.
    pub fn merge_filtered(&mut self, other: &Rows, filter: &Filter) {
        for stats in other.rows.values().filter(|s| filter.admits_row(s)) {
            self.add(stats);
        }
    }
}
