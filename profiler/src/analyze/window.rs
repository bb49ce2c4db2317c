//! The daemon's bounded memory of what it saw: rows per time bucket over a retention
//! period (for `/report?window=…`), totals since start (for `/metrics`), the stacks
//! samples were taken on, and the busiest user agents by name, the rest as `other`.

use std::collections::VecDeque;

use serde_json::Value;

use super::{
    attribute::{Sample, Sink},
    detect::Detectors,
    dimension::Dimension,
    filter::Filter,
    names::{bounded, Names},
    request::Request,
    rows::{Rows, OTHER},
    stacks::{StackId, StackTable},
};
use crate::{capture::Record, events::decode::HttpResponse};

/// Dimensions the daemon keeps rows by: every one with few values. The others
/// (namespace, path, query, limit) are kept per row as one value or `*`.
pub const KEPT: [Dimension; 14] = [
    Dimension::Target,
    Dimension::UserAgent,
    Dimension::Verb,
    Dimension::Group,
    Dimension::Version,
    Dimension::Resource,
    Dimension::Subresource,
    Dimension::RvClass,
    Dimension::Selector,
    Dimension::Method,
    Dimension::HttpVersion,
    Dimension::ClientIp,
    Dimension::ClientPod,
    Dimension::ClientOwner,
];

/// Dimensions of the request metrics' labels (besides `code`).
pub const METRIC_LABELS: [Dimension; 6] = [
    Dimension::Target,
    Dimension::UserAgent,
    Dimension::Verb,
    Dimension::Group,
    Dimension::Resource,
    Dimension::RvClass,
];

/// Distinct values kept of each kept dimension other than the user agent (verbs,
/// groups, resources…): far more than any API server serves, a bound against garbage
/// paths and methods.
const OTHER_DIMENSION_NAMES: usize = 512;

/// How much the daemon remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Width of a time bucket, nanoseconds.
    pub bucket_ns: u64,
    /// How far back `/report` can look, nanoseconds.
    pub retention_ns: u64,
    /// User agents kept by name.
    pub top_clients: usize,
}

/// A report asked for something the daemon does not keep.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Grouping or filtering by a dimension with unbounded values.
    #[error("the daemon does not keep requests apart by {dimension} (its values are unbounded; each row keeps one value or \"*\"); group or filter by {kept}, or record a capture (apiprof daemon --capture DIR) and report that")]
    NotKept {
        /// The dimension asked for.
        dimension: &'static str,
        /// The ones it keeps.
        kept: String,
    },
    /// A window in the past that reaches back before what the daemon remembers.
    #[error("the window {from} to {to} ago reaches back before what the daemon remembers ({kept} back: it keeps {retention} and has run for {uptime}); ask for a shorter --window or --diff")]
    BeforeMemory {
        /// How long ago the window starts.
        from: String,
        /// How long ago it ends.
        to: String,
        /// How far back the daemon remembers now.
        kept: String,
        /// Its retention.
        retention: String,
        /// How long it has run.
        uptime: String,
    },
}

/// Rows per time bucket, totals, stacks and bounded names.
#[derive(Debug)]
pub struct Window {
    settings: Settings,
    /// (bucket start, rows), oldest first.
    buckets: VecDeque<(u64, Rows)>,
    /// Everything since the daemon started, by [`METRIC_LABELS`].
    pub totals: Rows,
    /// Stacks of every sample.
    pub stacks: StackTable,
    /// What the detectors remember.
    pub detectors: Detectors,
    user_agents: Names,
    /// Bounds of the other kept dimensions, by [`Dimension::index`].
    others: Vec<(Dimension, Names)>,
}

impl Window {
    /// Empty, remembering what `settings` say.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            buckets: VecDeque::new(),
            totals: Rows::new(&METRIC_LABELS, false),
            stacks: StackTable::default(),
            detectors: Detectors::default(),
            user_agents: Names::new(settings.top_clients),
            others: KEPT
                .iter()
                .filter(|d| !matches!(d, Dimension::UserAgent | Dimension::Target))
                .map(|d| {
                    let kept = match d {
                        // Clients: as many as user agents.
                        Dimension::ClientIp | Dimension::ClientPod | Dimension::ClientOwner => {
                            settings.top_clients
                        }
                        _ => OTHER_DIMENSION_NAMES,
                    };
                    (*d, Names::new(kept))
                })
                .collect(),
        }
    }

    /// Time buckets kept, and rows in them and in the totals.
    pub fn footprint(&self) -> (usize, usize) {
        let rows = self
            .buckets
            .iter()
            .map(|(_, b)| b.rows.len())
            .sum::<usize>();
        (self.buckets.len(), rows + self.totals.rows.len())
    }

    /// How far back `/report` can look, nanoseconds.
    pub fn retention_ns(&self) -> u64 {
        self.settings.retention_ns
    }

    /// User agents kept by name now.
    pub fn clients_kept(&self) -> usize {
        self.user_agents.len()
    }

    /// The rows of the buckets that overlap `since_ns..until_ns`, of the requests
    /// `filter` keeps, grouped by `by`.
    pub fn rows(
        &self,
        since_ns: u64,
        until_ns: u64,
        by: &[Dimension],
        filter: &Filter,
    ) -> Result<Rows, WindowError> {
        if let Some(d) = by
            .iter()
            .copied()
            .chain(filter.dimensions())
            .find(|d| !KEPT.contains(d))
        {
            return Err(WindowError::NotKept {
                dimension: d.name(),
                kept: KEPT.map(Dimension::name).join(","),
            });
        }
        let mut rows = Rows::new(by, true);
        let overlapping = self
            .buckets
            .iter()
            .filter(|(start, _)| start + self.settings.bucket_ns > since_ns && *start < until_ns);
        for (_, bucket) in overlapping {
            if filter.is_empty() {
                rows.merge(bucket);
            } else {
                rows.merge_filtered(bucket, filter);
            }
        }
        Ok(rows)
    }

    /// The bucket of time `at_ns`, opening a new one (and rotating the names) when it is
    /// past the newest; an event older than every bucket goes to the oldest.
    fn bucket(&mut self, at_ns: u64) -> &mut Rows {
        let start = at_ns - at_ns % self.settings.bucket_ns;
        if self
            .buckets
            .back()
            .is_none_or(|(newest, _)| *newest < start)
        {
            self.rotate(start);
            self.buckets.push_back((start, Rows::new(&KEPT, true)));
        }
        let i = self
            .buckets
            .iter()
            .rposition(|(s, _)| *s <= start)
            .unwrap_or(0);
        &mut self.buckets[i].1
    }

    /// Drops buckets past the retention and lets busier newcomers take kept names.
    fn rotate(&mut self, new_start: u64) {
        let oldest = new_start.saturating_sub(self.settings.retention_ns);
        while self
            .buckets
            .front()
            .is_some_and(|(start, _)| *start < oldest)
        {
            self.buckets.pop_front();
        }
        for evicted in self.user_agents.rotate() {
            self.totals.rename(
                Dimension::UserAgent,
                &Value::from(evicted),
                &Value::from(OTHER),
            );
        }
        for (_, names) in &mut self.others {
            names.rotate();
        }
    }
}

impl Sink for Window {
    fn admit(&mut self, _at_ns: u64, dimensions: &mut [Value]) {
        let ua = &mut dimensions[Dimension::UserAgent.index()];
        if let Value::String(s) = ua {
            *ua = Value::from(bounded(&mut self.user_agents, s));
        }
        for (d, names) in &mut self.others {
            if let Value::String(s) = &mut dimensions[d.index()] {
                *s = bounded(names, s);
            }
        }
    }

    fn stack(&mut self, frames: &[String]) -> StackId {
        self.stacks.intern(frames)
    }

    fn start(&mut self, at_ns: u64, request: &Request) {
        self.bucket(at_ns).start(request);
        self.totals.start(request);
        self.detectors.start(at_ns, request);
    }

    fn end(&mut self, at_ns: u64, request: &Request, response: &HttpResponse) {
        self.bucket(at_ns).end(request, response);
        self.totals.end(request, response);
        self.detectors.end(at_ns, request, response);
    }

    fn sample(&mut self, at_ns: u64, target: &str, owner: Option<&Request>, sample: Sample) {
        self.bucket(at_ns).sample(target, owner, sample);
        self.totals.sample(target, owner, sample);
        self.detectors.sample(at_ns, target, owner, sample.cost);
    }

    fn client(&mut self, record: &Record) {
        self.detectors.client(record);
    }
}
