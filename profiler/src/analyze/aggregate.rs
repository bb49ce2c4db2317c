//! Aggregates served requests into report rows, grouped by the dimensions asked for.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    analyze::attribute::{attribute, AllocCost, Attribution, Served},
    capture::Capture,
};

/// What requests can be grouped by (`apiprof report --by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
pub enum Dimension {
    /// The User-Agent header.
    UserAgent,
    /// The apiserver's verb (list, get, watch, create, ...).
    Verb,
    /// API group ("" for core).
    Group,
    /// API version.
    Version,
    /// Resource.
    Resource,
    /// Subresource.
    Subresource,
    /// Namespace.
    Namespace,
    /// resourceVersion semantics of reads.
    RvClass,
    /// The limit parameter.
    Limit,
    /// Label and field selectors present.
    Selector,
    /// HTTP method.
    Method,
    /// URL path.
    Path,
    /// Raw query.
    Query,
    /// HTTP version.
    HttpVersion,
}

/// The grouping `apiprof report` uses unless told otherwise.
pub const DEFAULT_BY: [Dimension; 4] = [
    Dimension::UserAgent,
    Dimension::Verb,
    Dimension::Resource,
    Dimension::RvClass,
];

impl Dimension {
    /// Every dimension, in report column order.
    pub const ALL: [Self; 14] = [
        Self::UserAgent,
        Self::Verb,
        Self::Group,
        Self::Version,
        Self::Resource,
        Self::Subresource,
        Self::Namespace,
        Self::RvClass,
        Self::Limit,
        Self::Selector,
        Self::Method,
        Self::Path,
        Self::Query,
        Self::HttpVersion,
    ];

    /// Its field name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::UserAgent => "user_agent",
            Self::Verb => "verb",
            Self::Group => "group",
            Self::Version => "version",
            Self::Resource => "resource",
            Self::Subresource => "subresource",
            Self::Namespace => "namespace",
            Self::RvClass => "rv_class",
            Self::Limit => "limit",
            Self::Selector => "selector",
            Self::Method => "method",
            Self::Path => "path",
            Self::Query => "query",
            Self::HttpVersion => "http_version",
        }
    }

    /// Its value for one request: a string, a number, or null where it does not apply
    /// (rv_class of writes, limit when absent).
    pub fn of(self, s: &Served) -> Value {
        let text = |t: &str| Value::String(t.to_owned());
        match self {
            Self::UserAgent => text(&s.request.user_agent),
            Self::Verb => text(&s.info.verb),
            Self::Group => text(&s.info.group),
            Self::Version => text(&s.info.version),
            Self::Resource => text(&s.info.resource),
            Self::Subresource => text(&s.info.subresource),
            Self::Namespace => text(&s.info.namespace),
            Self::RvClass => s.rv_class.map_or(Value::Null, |c| text(c.as_str())),
            Self::Limit => s.limit.map_or(Value::Null, Value::from),
            Self::Selector => text(s.selector.as_str()),
            Self::Method => text(&s.request.method),
            Self::Path => text(&s.request.path),
            Self::Query => text(&s.request.query),
            Self::HttpVersion => text(&s.request.http_version),
        }
    }
}

/// Value shown for a dimension that is not grouped by and differs within a row.
pub const MIXED: &str = "*";

/// Requests that share the grouped dimensions, or the background row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Every dimension: its value when all the row's requests share it, else `"*"`;
    /// all null in the background row.
    #[serde(flatten)]
    pub dimensions: Map<String, Value>,
    /// Whether this is the row of work done outside any request.
    pub background: bool,
    /// Requests the server began serving.
    pub count: u64,
    /// Finished requests by status code.
    pub status: BTreeMap<u16, u64>,
    /// Body bytes written for finished requests.
    pub response_bytes: u64,
    /// Median handler latency of finished requests other than WATCHes, milliseconds.
    pub latency_ms_p50: Option<f64>,
    /// 99th percentile of the same.
    pub latency_ms_p99: Option<f64>,
    /// Requests still being served when recording stopped (open WATCHes among them).
    pub in_flight: u64,
    /// Finished WATCHes: their summed duration, seconds.
    pub watch_seconds: f64,
    /// Finished WATCHes: writes they made (at least one per event sent).
    pub watch_events: u64,
    /// Estimated Go heap bytes allocated while serving (scaled from samples).
    pub alloc_bytes: u64,
    /// Allocation samples behind `alloc_bytes`.
    pub alloc_samples: u64,
    /// On-CPU time of the row's goroutines (and those they started), seconds: samples ×
    /// the sampling period.
    pub cpu_seconds: f64,
    /// On-CPU samples behind `cpu_seconds`.
    pub cpu_samples: u64,
}

/// Everything `apiprof report` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The dimensions rows are grouped by.
    pub by: Vec<&'static str>,
    /// The observed process's `runtime.MemProfileRate` (bytes per allocation sample on
    /// average; 0: allocations not tracked).
    pub mem_profile_rate: u64,
    /// CPU time each on-CPU sample stands for, nanoseconds (0: CPU not sampled).
    pub cpu_sample_period_ns: u64,
    /// Rows, most requests first (ties in key order).
    pub requests: Vec<Row>,
    /// Events the kernel could not hand over; counts above are low by up to this many.
    pub dropped_events: u64,
    /// Requests whose method, path, query, user agent or remote address was longer than
    /// the kernel copies.
    pub truncated_requests: u64,
    /// False when the capture has no end record (the recorder was killed): the counts
    /// cover only what was written before that.
    pub complete: bool,
}

/// Groups the capture's requests by `by`.
pub fn aggregate(capture: &Capture, by: &[Dimension]) -> Report {
    let attribution = attribute(capture);
    let mut groups: BTreeMap<Vec<String>, Vec<&Served>> = BTreeMap::new();
    for s in &attribution.served {
        let key = by.iter().map(|d| d.of(s).to_string()).collect();
        groups.entry(key).or_default().push(s);
    }
    let period_ns = capture.header.cpu_sample_period_ns;
    let mut requests: Vec<Row> = groups
        .into_values()
        .map(|members| row(&members, period_ns))
        .collect();
    requests.sort_by_key(|r| std::cmp::Reverse(r.count));
    if capture.header.mem_profile_rate > 0 || period_ns > 0 {
        requests.push(background_row(&attribution, period_ns));
    }
    Report {
        by: by.iter().map(|d| d.name()).collect(),
        mem_profile_rate: capture.header.mem_profile_rate,
        cpu_sample_period_ns: period_ns,
        requests,
        dropped_events: capture.end.as_ref().map_or(0, |e| e.dropped_events),
        truncated_requests: capture.requests.iter().filter(|r| r.truncated).count() as u64,
        complete: capture.end.is_some(),
    }
}

/// Seconds of CPU that `samples` taken every `period_ns` stand for.
fn cpu_seconds(samples: u64, period_ns: u64) -> f64 {
    (samples * period_ns) as f64 / 1e9
}

fn row(members: &[&Served], period_ns: u64) -> Row {
    let mut dimensions = Map::new();
    for d in Dimension::ALL {
        let first = d.of(members[0]);
        let same = members.iter().all(|s| d.of(s) == first);
        dimensions.insert(
            d.name().to_owned(),
            if same { first } else { Value::from(MIXED) },
        );
    }
    let mut status = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut alloc = AllocCost::default();
    let mut cpu_samples = 0;
    let (mut response_bytes, mut in_flight, mut watch_ns, mut watch_events) = (0, 0, 0, 0);
    for s in members {
        alloc.bytes += s.alloc.bytes;
        alloc.samples += s.alloc.samples;
        cpu_samples += s.cpu_samples;
        let Some(response) = s.response else {
            in_flight += 1;
            continue;
        };
        *status.entry(response.status).or_default() += 1;
        response_bytes += response.response_bytes;
        let latency = s.latency_ns().unwrap_or_default();
        if s.is_watch() {
            watch_ns += latency;
            watch_events += response.writes;
        } else {
            latencies.push(latency);
        }
    }
    latencies.sort_unstable();
    Row {
        dimensions,
        background: false,
        count: members.len() as u64,
        status,
        response_bytes,
        latency_ms_p50: percentile_ms(&latencies, 50),
        latency_ms_p99: percentile_ms(&latencies, 99),
        in_flight,
        watch_seconds: watch_ns as f64 / 1e9,
        watch_events,
        alloc_bytes: alloc.bytes.round() as u64,
        alloc_samples: alloc.samples,
        cpu_seconds: cpu_seconds(cpu_samples, period_ns),
        cpu_samples,
    }
}

/// The row of work outside any request: no dimension applies.
fn background_row(attribution: &Attribution, period_ns: u64) -> Row {
    let alloc = attribution.background;
    let cpu_samples = attribution.background_cpu_samples;
    Row {
        dimensions: Dimension::ALL
            .iter()
            .map(|d| (d.name().to_owned(), Value::Null))
            .collect(),
        background: true,
        count: 0,
        status: BTreeMap::new(),
        response_bytes: 0,
        latency_ms_p50: None,
        latency_ms_p99: None,
        in_flight: 0,
        watch_seconds: 0.0,
        watch_events: 0,
        alloc_bytes: alloc.bytes.round() as u64,
        alloc_samples: alloc.samples,
        cpu_seconds: cpu_seconds(cpu_samples, period_ns),
        cpu_samples,
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted_ns: &[u64], p: usize) -> Option<f64> {
    let rank = (p * sorted_ns.len()).div_ceil(100).max(1);
    sorted_ns.get(rank - 1).map(|ns| *ns as f64 / 1e6)
}

#[cfg(test)]
pub(crate) mod tests;
