//! Report rows from [`Rows`]: what `apiprof report` prints for a capture file and the
//! daemon's `/report` serves for a window, from the same code.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    attribute::{Attributor, Sample, Sink},
    detect::{Clock, Detectors, Finding},
    dimension::{Dimension, MIXED},
    filter::Filter,
    request::Request,
    rows::{Rows, Stats},
    stacks::{StackId, StackTable},
};
use crate::{
    capture::{CaptureError, Header, Reader, Record},
    events::decode::HttpResponse,
};

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
    /// Handler latency of the same, summed: seconds spent serving them.
    pub latency_seconds: f64,
    /// Requests still being served at the end (open WATCHes among them).
    pub in_flight: u64,
    /// Finished WATCHes: their summed duration, seconds.
    pub watch_seconds: f64,
    /// Estimated Go heap bytes allocated while serving (scaled from samples).
    pub alloc_bytes: u64,
    /// Allocation samples behind `alloc_bytes`.
    pub alloc_samples: u64,
    /// On-CPU time of the row's goroutines (and those they started), seconds.
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
    /// Whether heap allocations were tracked, and if not, why.
    pub alloc_tracking: AllocTracking,
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
    /// When the observed process exited, ending the capture (Unix ms; 0 when the
    /// capture does not say); absent when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_exited_unix_ms: Option<u64>,
    /// What the figures above must be read with: how far they can be trusted for this
    /// target (see `offsets::caution`).
    pub cautions: Vec<String>,
    /// What the detectors found, client by client (see `analyze::detect`).
    pub findings: Vec<Finding>,
}

/// Whether a process's heap allocations were tracked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocTracking {
    /// Sampled at the process's `runtime.MemProfileRate`.
    #[default]
    Sampled,
    /// Not asked for (`--no-alloc`).
    Off,
    /// The process's `runtime.MemProfileRate` is 0: its runtime samples nothing (a
    /// binary that never links heap profiling sets it so at start).
    DisabledInProcess,
}

impl AllocTracking {
    /// What the capture `header` says.
    pub fn of(header: &Header) -> Self {
        match (
            header.mem_profile_rate,
            header.mem_profile_rate_source.as_str(),
        ) {
            (0, "not tracked") => Self::Off,
            (0, _) => Self::DisabledInProcess,
            _ => Self::Sampled,
        }
    }
}

/// What a report says about how its data was gathered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// See [`Report::mem_profile_rate`].
    pub mem_profile_rate: u64,
    /// See [`Report::alloc_tracking`].
    pub alloc_tracking: AllocTracking,
    /// See [`Report::cpu_sample_period_ns`].
    pub cpu_sample_period_ns: u64,
    /// See [`Report::dropped_events`].
    pub dropped_events: u64,
    /// See [`Report::complete`].
    pub complete: bool,
    /// See [`Report::target_exited_unix_ms`].
    pub target_exited_unix_ms: Option<u64>,
    /// See [`Report::cautions`].
    pub cautions: Vec<String>,
}

/// The report of `rows`, with `in_flight` the requests still being served and the
/// detectors' `findings`.
pub fn report<'r>(
    rows: &Rows,
    in_flight: impl Iterator<Item = &'r Request>,
    meta: Meta,
    findings: Vec<Finding>,
) -> Report {
    let mut rows_by_key: BTreeMap<Vec<String>, (Stats, u64)> = rows
        .rows
        .iter()
        .map(|(key, stats)| (key.clone(), (stats.clone(), 0)))
        .collect();
    for request in in_flight {
        // A request begun before the rows' window has no row of its own yet.
        let (_, open) = rows_by_key
            .entry(rows.key(&request.dimensions))
            .or_insert_with(|| (Stats::of(&request.dimensions), 0));
        *open += 1;
    }
    let mut requests: Vec<(Vec<String>, Row)> = rows_by_key
        .into_iter()
        .map(|(key, (stats, in_flight))| (key, row(&stats, in_flight)))
        .collect();
    // Busiest first; ties in key order.
    requests.sort_by(|(ka, a), (kb, b)| b.count.cmp(&a.count).then_with(|| ka.cmp(kb)));
    let mut requests: Vec<Row> = requests.into_iter().map(|(_, row)| row).collect();
    if meta.mem_profile_rate > 0 || meta.cpu_sample_period_ns > 0 {
        let mut all = Stats::default();
        for stats in rows.background.values() {
            all.merge(stats);
        }
        let mut background = row(&all, 0);
        background.background = true;
        background.dimensions = Dimension::ALL
            .iter()
            .map(|d| (d.name().to_owned(), Value::Null))
            .collect();
        requests.push(background);
    }
    Report {
        by: rows.by.iter().map(|d| d.name()).collect(),
        mem_profile_rate: meta.mem_profile_rate,
        alloc_tracking: meta.alloc_tracking,
        cpu_sample_period_ns: meta.cpu_sample_period_ns,
        requests,
        dropped_events: meta.dropped_events,
        truncated_requests: rows.truncated_requests,
        complete: meta.complete,
        target_exited_unix_ms: meta.target_exited_unix_ms,
        cautions: meta.cautions,
        findings,
    }
}

fn row(stats: &Stats, in_flight: u64) -> Row {
    Row {
        dimensions: Dimension::ALL
            .iter()
            .map(|d| {
                let value = match stats.dimensions.get(d.index()) {
                    Some(Some(v)) => v.clone(),
                    Some(None) => Value::from(MIXED),
                    None => Value::Null,
                };
                (d.name().to_owned(), value)
            })
            .collect(),
        background: false,
        count: stats.count,
        status: stats.status.clone(),
        response_bytes: stats.response_bytes,
        latency_ms_p50: stats.latency.percentile_ms(50),
        latency_ms_p99: stats.latency.percentile_ms(99),
        latency_seconds: stats.latency.sum_ns as f64 / 1e9,
        in_flight,
        watch_seconds: stats.watch_ns as f64 / 1e9,
        alloc_bytes: stats.alloc_bytes.round() as u64,
        alloc_samples: stats.alloc_samples,
        cpu_seconds: stats.cpu_ns as f64 / 1e9,
        cpu_samples: stats.cpu_samples,
    }
}

/// A capture's requests and samples, grouped: what `apiprof report FILE` prints.
pub struct Analysis {
    /// The rows, keyed by the dimensions asked for.
    pub rows: Rows,
    /// The stacks samples were taken on.
    pub stacks: StackTable,
    attributor: Attributor,
    /// What the detectors remember.
    pub detectors: Detectors,
    clock: Clock,
    /// How the capture was recorded and whether it is complete.
    pub meta: Meta,
    /// The requests the rows keep.
    filter: Filter,
}

/// [`Sink`] of a capture's analysis: the rows keep what the filter admits, the
/// detectors see everything.
struct FileSink<'a> {
    rows: &'a mut Rows,
    stacks: &'a mut StackTable,
    detectors: &'a mut Detectors,
    filter: &'a Filter,
}

impl Sink for FileSink<'_> {
    fn stack(&mut self, frames: &[String]) -> StackId {
        self.stacks.intern(frames)
    }

    fn start(&mut self, at_ns: u64, request: &Request) {
        if self.filter.admits(request) {
            self.rows.start(request);
        }
        self.detectors.start(at_ns, request);
    }

    fn end(&mut self, at_ns: u64, request: &Request, response: &HttpResponse) {
        if self.filter.admits(request) {
            self.rows.end(request, response);
        }
        self.detectors.end(at_ns, request, response);
    }

    fn sample(&mut self, at_ns: u64, target: &str, owner: Option<&Request>, sample: Sample) {
        let kept = match owner {
            Some(request) => self.filter.admits(request),
            None => self.filter.admits_background(),
        };
        if kept {
            self.rows.sample(target, owner, sample);
        }
        self.detectors.sample(at_ns, target, owner, sample.cost);
    }

    fn client(&mut self, record: &Record) {
        self.detectors.client(record);
    }
}

impl Analysis {
    /// An empty analysis of the capture `header` starts, grouped by `by`, of the
    /// requests `filter` keeps.
    pub fn new(header: &Header, by: &[Dimension], filter: Filter) -> Self {
        Self {
            rows: Rows::new(by, true),
            stacks: StackTable::default(),
            attributor: Attributor::new(header, Arc::from(header.target_name())),
            detectors: Detectors::default(),
            clock: header.clock(),
            meta: Meta {
                mem_profile_rate: header.mem_profile_rate,
                alloc_tracking: AllocTracking::of(header),
                cpu_sample_period_ns: header.cpu_sample_period_ns,
                dropped_events: 0,
                complete: false,
                target_exited_unix_ms: None,
                cautions: header.cautions.clone(),
            },
            filter,
        }
    }

    /// Reads the capture at `path` and groups by `by` the requests `filter` keeps. A
    /// record that cannot be read (a damaged file) ends the reading: the analysis of the
    /// records before it comes back with that error. A file without a readable header
    /// is an error.
    pub fn of_capture(
        path: &Path,
        by: &[Dimension],
        filter: Filter,
    ) -> Result<(Self, Option<CaptureError>), CaptureError> {
        Ok(Self::of_reader(Reader::open(path)?, by, filter))
    }

    /// As [`Analysis::of_capture`], of a capture already opened.
    pub fn of_reader(
        mut reader: Reader,
        by: &[Dimension],
        filter: Filter,
    ) -> (Self, Option<CaptureError>) {
        let mut analysis = Self::new(reader.header(), by, filter);
        loop {
            match reader.next_record() {
                Ok(Some(record)) => analysis.record(record),
                Ok(None) => return (analysis, None),
                Err(damage) => return (analysis, Some(damage)),
            }
        }
    }

    /// Takes the capture's next record.
    pub fn record(&mut self, record: Record) {
        if let Record::End(end) = &record {
            self.meta.dropped_events = end.dropped_events;
            self.meta.complete = true;
            if end.reason == "target exited" {
                self.meta.target_exited_unix_ms = Some(end.unix_ms.unwrap_or(0));
            }
        }
        // Captures before findings lack the clock's event time: their first event's.
        if self.clock.ktime_ns == 0 {
            if let Record::HttpRequest(r) = &record {
                self.clock.ktime_ns = r.ktime_ns;
            }
        }
        let mut sink = FileSink {
            rows: &mut self.rows,
            stacks: &mut self.stacks,
            detectors: &mut self.detectors,
            filter: &self.filter,
        };
        self.attributor.record(record, &mut sink);
    }

    /// The report of what was read; the capture is over, so every burst has ended.
    pub fn report(&self) -> Report {
        let findings = self.detectors.findings(u64::MAX / 2, &self.clock);
        let in_flight = self
            .attributor
            .in_flight()
            .filter(|r| self.filter.admits(r));
        report(&self.rows, in_flight, self.meta.clone(), findings)
    }
}

#[cfg(test)]
pub(crate) mod tests;
