//! What the detectors remember of each client, bounded whatever the uptime: its last
//! requests (start, end, kind) and its last bursts, each summarized with its cost.

use std::collections::{BTreeMap, VecDeque};

use super::throttling::{evaluate, Episode};
use crate::analyze::request::Request;

/// Requests of one client remembered, most recent last.
pub const MAX_SEEN: usize = 1024;

/// Bursts of one client remembered.
pub const MAX_BURSTS: usize = 256;

/// A gap this long between two of a client's request starts ends its burst. Bursts are
/// requests a controller sends as fast as it can (milliseconds apart); resync periods
/// and idle times are seconds to hours.
pub const BURST_GAP_NS: u64 = 250_000_000;

/// Requests a burst needs to count as one.
pub const MIN_BURST: u64 = 5;

/// One request of the client.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When serving began.
    pub start_ns: u64,
    /// When it ended, once known.
    pub end_ns: Option<u64>,
    /// The `*http.Request` address (to find it again at its end).
    pub address: u64,
    /// Its verb.
    pub verb: String,
    /// Its rv_class (reads only).
    rv_class: Option<&'static str>,
    /// For a WATCH: its path and label selector, an informer's identity.
    watch: Option<String>,
}

/// Requests a client sent close together (gaps under [`BURST_GAP_NS`]), summarized.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Burst {
    /// First request's start.
    pub start_ns: u64,
    /// Last request's start.
    pub last_ns: u64,
    /// Requests.
    pub count: u64,
    /// Requests by "verb rv_class" (rv_class `null` for writes).
    pub mix: BTreeMap<String, u64>,
    /// Requests by rv_class of reads.
    pub by_rv_class: BTreeMap<String, u64>,
    /// LISTs among them.
    pub lists: u64,
    /// Response bytes of those that ended.
    pub response_bytes: u64,
    /// Estimated heap bytes allocated serving them.
    pub alloc_bytes: f64,
    /// CPU serving them, nanoseconds.
    pub cpu_ns: u64,
    /// A WATCH began in it: the client (re)connected its informers.
    pub restart: bool,
    /// Writes other clients made to the resources it touched in the
    /// [`BURST_GAP_NS`]s before it began (what its WATCHes were told about).
    pub writes_before: u64,
    /// The WATCHes begun in it (path and label selector).
    watches: Vec<String>,
}

impl Burst {
    /// Its most common "verb rv_class".
    pub fn dominant(&self) -> &str {
        self.mix
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map_or("", |(kind, _)| kind.as_str())
    }

    /// Whether it spans the time `at_ns`.
    fn spans(&self, at_ns: u64) -> bool {
        self.start_ns <= at_ns && at_ns <= self.last_ns
    }

    /// Adds one request.
    fn add(&mut self, seen: &Seen) {
        if self.count == 0 {
            self.start_ns = seen.start_ns;
        }
        self.last_ns = self.last_ns.max(seen.start_ns);
        self.count += 1;
        let rv_class = seen.rv_class.unwrap_or("null");
        *self
            .mix
            .entry(format!("{} {rv_class}", seen.verb))
            .or_default() += 1;
        if seen.rv_class.is_some() {
            *self.by_rv_class.entry(rv_class.to_owned()).or_default() += 1;
        }
        self.lists += u64::from(seen.verb == "list");
        if let Some(watch) = &seen.watch {
            self.restart = true;
            self.watches.push(watch.clone());
        }
    }
}

/// One client's remembered requests and bursts.
#[derive(Debug, Default)]
pub struct History {
    /// Its last requests, oldest first.
    pub seen: VecDeque<Seen>,
    /// Its closed bursts, oldest first.
    pub bursts: VecDeque<Burst>,
    /// The burst still growing.
    pub open: Option<Burst>,
    /// Its latest throttled episode, followed as its requests come (they outlast
    /// what [`MAX_SEEN`] remembers).
    pub throttling: Option<Episode>,
    /// Requests it began.
    started: u64,
}

impl History {
    /// The client began `request` at `at_ns`; `writes_before` counts other clients'
    /// writes that may have woken it, asked only when a burst begins.
    pub fn start(&mut self, at_ns: u64, request: &Request, writes_before: impl FnOnce() -> u64) {
        let seen = Seen {
            start_ns: at_ns,
            end_ns: None,
            address: request.http.request,
            verb: request.info.verb.clone(),
            rv_class: request.rv_class.map(|c| c.as_str()),
            watch: request.is_watch().then(|| {
                let selector = request
                    .http
                    .query
                    .split('&')
                    .find(|p| p.starts_with("labelSelector="));
                format!("{} {}", request.http.path, selector.unwrap_or(""))
            }),
        };
        if self
            .open
            .as_ref()
            .is_some_and(|b| at_ns > b.last_ns + BURST_GAP_NS)
        {
            self.close();
        }
        // A WATCH the client began before (in the open burst, or in any it remembers)
        // begins again inside a burst: the client restarted without a pause.
        let restarted = self.open.as_ref().is_some_and(|b| {
            seen.watch.as_ref().is_some_and(|w| {
                b.watches.contains(w) || self.seen.iter().any(|s| s.watch.as_ref() == Some(w))
            })
        });
        if restarted {
            self.split_at_restart();
        }
        self.open
            .get_or_insert_with(|| Burst {
                writes_before: writes_before(),
                ..Burst::default()
            })
            .add(&seen);
        self.seen.push_back(seen);
        if self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
        // Looked at twice per memory's worth of requests, so no stretch goes unseen.
        self.started += 1;
        if self.started.is_multiple_of(MAX_SEEN as u64 / 2) {
            if let Some(next) = evaluate(&self.seen) {
                self.throttling = Some(match self.throttling.take() {
                    Some(old) => old.merge(next),
                    None => next,
                });
            }
        }
    }

    /// A WATCH the client already began begins again in the open burst: the client
    /// restarted, and its catch-up is a burst of its own even without a pause. It began
    /// with the informers' initial LISTs and WATCHes: the requests after the last one of
    /// another kind.
    fn split_at_restart(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let first = self
            .seen
            .iter()
            .position(|s| s.start_ns >= open.start_ns)
            .unwrap_or(self.seen.len());
        let restart = self
            .seen
            .iter()
            .skip(first)
            .rposition(|s| s.verb != "list" && s.verb != "watch")
            .map_or(first, |i| first + i + 1);
        let mut before = Burst {
            writes_before: open.writes_before,
            ..Burst::default()
        };
        let mut after = Burst::default();
        for (i, s) in self.seen.iter().enumerate().skip(first) {
            if i < restart {
                before.add(s);
            } else {
                after.add(s);
            }
        }
        self.open = Some(before);
        self.close();
        if after.count > 0 {
            self.open = Some(after);
        }
    }

    /// `request` (begun at `start_ns`) ended at `at_ns` with `response_bytes`.
    pub fn end(&mut self, start_ns: u64, address: u64, at_ns: u64, response_bytes: u64) {
        if let Some(seen) = self
            .seen
            .iter_mut()
            .rev()
            .find(|s| s.address == address && s.start_ns == start_ns)
        {
            seen.end_ns = Some(at_ns);
        }
        if let Some(burst) = self.burst_at(start_ns) {
            burst.response_bytes += response_bytes;
        }
    }

    /// A cost sample of the request begun at `start_ns`.
    pub fn cost(&mut self, start_ns: u64, alloc_bytes: f64, cpu_ns: u64) {
        if let Some(burst) = self.burst_at(start_ns) {
            burst.alloc_bytes += alloc_bytes;
            burst.cpu_ns += cpu_ns;
        }
    }

    /// Closed bursts, and the open one if no request came in the last
    /// [`BURST_GAP_NS`] before `now_ns`; of at least [`MIN_BURST`] requests.
    pub fn bursts(&self, now_ns: u64) -> impl Iterator<Item = &Burst> {
        let open = self
            .open
            .as_ref()
            .filter(|b| now_ns > b.last_ns + BURST_GAP_NS);
        self.bursts
            .iter()
            .chain(open)
            .filter(|b| b.count >= MIN_BURST)
    }

    fn burst_at(&mut self, at_ns: u64) -> Option<&mut Burst> {
        if let Some(open) = self.open.as_mut().filter(|b| b.spans(at_ns)) {
            return Some(open);
        }
        self.bursts.iter_mut().rev().find(|b| b.spans(at_ns))
    }

    fn close(&mut self) {
        if let Some(burst) = self.open.take() {
            if burst.count >= MIN_BURST {
                self.bursts.push_back(burst);
                if self.bursts.len() > MAX_BURSTS {
                    self.bursts.pop_front();
                }
            }
        }
    }
}
