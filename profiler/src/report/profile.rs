//! What flame graphs and pprof files show: one sample per row and stack, whose frames
//! are the row's grouped dimensions (root first: the client, then the verb, …) and
//! below them the API server's Go stack, and one per row, with no Go stack, for what
//! requests cost as a whole (count, bytes, latency). Folded stacks, SVG and pprof are
//! all rendered from it, so they show the same frames and the same totals. CPU and
//! allocation samples on one stack become two samples: allocations stop where the
//! allocating function called the runtime's allocator, as in Go's heap profiles.

use std::collections::BTreeMap;

use crate::analyze::{
    aggregate::Row, dimension::shown, rows::Rows, stacks::StackTable, Dimension, MIXED,
};

/// What widths (folded counts, SVG frame widths, pprof's default sample type) mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
pub enum Weight {
    /// On-CPU samples (each one sampling period of CPU time).
    Cpu,
    /// Estimated heap bytes allocated (samples scaled as pprof scales heap profiles).
    Alloc,
    /// Requests served.
    Requests,
    /// Response body bytes written.
    ResponseBytes,
    /// Handler latency summed over finished requests (WATCHes, open by design, left out).
    Latency,
}

impl Weight {
    /// Its name on the command line and in `/report?weight=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Alloc => "alloc",
            Self::Requests => "requests",
            Self::ResponseBytes => "response_bytes",
            Self::Latency => "latency",
        }
    }

    /// What one unit of width is, in folded stacks and flame graphs.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Cpu => "samples",
            Self::Alloc | Self::ResponseBytes => "bytes",
            Self::Requests => "requests",
            Self::Latency => "ns",
        }
    }

    /// A sample's width.
    pub fn of(self, values: &Values) -> u64 {
        match self {
            Self::Cpu => values.samples,
            Self::Alloc => values.alloc_bytes,
            Self::Requests => values.requests,
            Self::ResponseBytes => values.response_bytes,
            Self::Latency => values.latency_ns,
        }
    }

    /// A report row's figure of the same, to sort tables by.
    pub fn of_row(self, row: &Row) -> f64 {
        match self {
            Self::Cpu => row.cpu_seconds,
            Self::Alloc => row.alloc_bytes as f64,
            Self::Requests => row.count as f64,
            Self::ResponseBytes => row.response_bytes as f64,
            Self::Latency => row.latency_seconds,
        }
    }
}

/// What one sample of a [`Profile`] stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Values {
    /// On-CPU samples.
    pub samples: u64,
    /// CPU time: samples × the sampling period.
    pub cpu_ns: u64,
    /// Estimated heap bytes allocated.
    pub alloc_bytes: u64,
    /// Requests begun.
    pub requests: u64,
    /// Response body bytes of finished requests.
    pub response_bytes: u64,
    /// Summed handler latency of finished requests other than WATCHes.
    pub latency_ns: u64,
}

/// One stack and what was measured on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Outermost first: the grouped dimensions' values (or `(background)`), then the Go
    /// stack's functions.
    pub frames: Vec<String>,
    /// The grouped dimensions by name, as the frames show them; none in the background.
    pub labels: Vec<(&'static str, String)>,
    /// What it stands for.
    pub values: Values,
}

/// A report's rows and stacks as samples.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// The dimensions at the root, outermost first.
    pub by: Vec<Dimension>,
    /// Samples, rows in key order, each row's stacks in the order they were first seen.
    pub samples: Vec<Sample>,
    /// CPU time one on-CPU sample stands for (0: CPU not sampled).
    pub cpu_sample_period_ns: u64,
}

/// The root frame of work done outside any request.
pub const BACKGROUND: &str = "(background)";

impl Profile {
    /// The samples of `rows`, whose stacks `stacks` holds.
    pub fn of(rows: &Rows, stacks: &StackTable, cpu_sample_period_ns: u64) -> Self {
        let mut samples = Vec::new();
        let keyed: BTreeMap<_, _> = rows.rows.iter().collect();
        let rooted = keyed
            .into_values()
            .map(|stats| {
                let shown: Vec<String> = rows
                    .by
                    .iter()
                    .map(|d| match stats.dimensions.get(d.index()) {
                        Some(Some(value)) => shown(value),
                        _ => MIXED.to_owned(),
                    })
                    .collect();
                let labels = rows.by.iter().map(|d| d.name()).zip(shown.clone());
                (shown, labels.collect(), stats)
            })
            .chain(
                rows.background
                    .values()
                    .map(|stats| (vec![BACKGROUND.to_owned()], Vec::new(), stats)),
            );
        for (root, labels, stats) in rooted {
            let whole = Values {
                requests: stats.count,
                response_bytes: stats.response_bytes,
                latency_ns: stats.latency.sum_ns,
                ..Values::default()
            };
            if whole != Values::default() {
                samples.push(Sample {
                    frames: root.clone(),
                    labels: labels.clone(),
                    values: whole,
                });
            }
            let mut by_stack: Vec<_> = stats.stacks.iter().collect();
            by_stack.sort_by_key(|(id, _)| **id);
            for (stack, (cpu, alloc)) in by_stack {
                let frames = stacks.frames(*stack);
                let cpu = Values {
                    samples: *cpu,
                    cpu_ns: cpu * cpu_sample_period_ns,
                    ..Values::default()
                };
                let alloc = Values {
                    alloc_bytes: alloc.round() as u64,
                    ..Values::default()
                };
                for (frames, values) in [(frames, cpu), (allocation_site(frames), alloc)] {
                    if values == Values::default() {
                        continue;
                    }
                    let mut rooted = root.clone();
                    rooted.extend(frames.iter().rev().cloned());
                    samples.push(Sample {
                        frames: rooted,
                        labels: labels.clone(),
                        values,
                    });
                }
            }
        }
        Self {
            by: rows.by.clone(),
            samples,
            cpu_sample_period_ns,
        }
    }

    /// Every sample's values added up.
    pub fn totals(&self) -> Values {
        let mut t = Values::default();
        for s in &self.samples {
            let v = &s.values;
            t.samples += v.samples;
            t.cpu_ns += v.cpu_ns;
            t.alloc_bytes += v.alloc_bytes;
            t.requests += v.requests;
            t.response_bytes += v.response_bytes;
            t.latency_ns += v.latency_ns;
        }
        t
    }
}

/// An allocation sample's stack (innermost first) without the runtime's allocator
/// frames under it, as Go's own heap profiles show it: the function that allocated
/// (`runtime.newobject`, `runtime.makeslice`, …) is the leaf.
fn allocation_site(frames: &[String]) -> &[String] {
    let allocator = frames
        .iter()
        .take_while(|f| *f == "runtime.profilealloc" || f.starts_with("runtime.mallocgc"))
        .count();
    &frames[allocator..]
}
