//! Findings: what an SRE would say about each client, decided from its requests on
//! event time (never the wall clock), so a capture file and the live daemon find the
//! same. One module per detector:
//!
//! - [`resync`]: periodic bursts of similar requests (informer resyncs);
//! - [`throttling`]: a rate pinned at a constant after a burst (a client-side token
//!   bucket);
//! - [`catchup`]: from a client's (re)start until its burst of work ends;
//! - [`bursts`]: the other bursts, with what triggered them;
//! - [`spikes`]: the server's heap allocation far above its baseline, and who caused it;
//! - [`measured`]: with client-side probes, what the clients themselves measured
//!   (throttling waits, resyncs, workqueue depth), which replaces what the server side
//!   infers for them.

pub mod bursts;
pub mod catchup;
mod history;
pub mod measured;
pub mod resync;
pub mod spikes;
pub mod throttling;

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

pub use history::{Burst, History, BURST_GAP_NS, MAX_BURSTS, MAX_SEEN, MIN_BURST};
pub use spikes::Contributor;

use super::{attribute::Cost, dimension::Dimension, request::Request, rows::OTHER};
use crate::events::decode::HttpResponse;

/// Other clients' writes remembered, to tell what woke a client.
const MAX_WRITES: usize = 4096;

/// Clients followed at most (the daemon keeps far fewer user agents by name).
const MAX_CLIENTS: usize = 20_000;

/// Maps event time (monotonic nanoseconds since boot) to Unix time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// A Unix time, milliseconds…
    pub unix_ms: u64,
    /// …and the event time at that instant.
    pub ktime_ns: u64,
}

impl Clock {
    /// The Unix time, seconds, of event time `ktime_ns`.
    pub fn unix_s(&self, ktime_ns: u64) -> f64 {
        self.unix_ms as f64 / 1e3 + (ktime_ns as f64 - self.ktime_ns as f64) / 1e9
    }
}

/// One resync tick or burst, as findings list them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tick {
    /// When its first request began (a measured resync tick: when it fired).
    pub unix_s: f64,
    /// A measured resync tick: the objects it re-queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Its requests.
    pub requests: u64,
    /// Its requests by "verb rv_class".
    pub by_verb_rv_class: BTreeMap<String, u64>,
    /// Response bytes the API server wrote for them.
    pub response_bytes: u64,
    /// Estimated heap bytes the API server allocated serving them.
    pub alloc_bytes: u64,
    /// CPU the API server spent serving them, seconds.
    pub cpu_seconds: f64,
}

impl Tick {
    fn of(burst: &Burst, clock: &Clock) -> Self {
        Self {
            unix_s: clock.unix_s(burst.start_ns),
            objects: None,
            requests: burst.count,
            by_verb_rv_class: burst.mix.clone(),
            response_bytes: burst.response_bytes,
            alloc_bytes: burst.alloc_bytes.round() as u64,
            cpu_seconds: burst.cpu_ns as f64 / 1e9,
        }
    }
}

/// A finding: a kind, a client, a time span and the kind's figures (absent when they do
/// not apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Finding {
    /// `resync_tick`, `client_throttling`, `restart_catchup`, `reconcile_burst` or
    /// `allocation_spike`.
    pub kind: &'static str,
    /// `measured` (by client-side probes in the client itself) or `inferred` (from the
    /// requests the server saw).
    pub evidence: &'static str,
    /// A measured finding: the client's process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A measured resync_tick: the informer (its FIFO's name, `RealFIFO *v1.ConfigMap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub informer: Option<String>,
    /// A measured client_throttling: the waits client-go's rate limiter imposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<measured::ThrottleWaits>,
    /// reconcile_burst, with client-side probes: the deepest the client's workqueues
    /// grew in it (items waiting for a worker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
    /// reconcile_burst, with client-side probes: the longest an item its workqueues
    /// handed to a worker in it had waited, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_ms: Option<f64>,
    /// The client's user agent.
    pub user_agent: String,
    /// Its workload, when the daemon knows the cluster's Pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// When it began.
    pub start_unix_s: f64,
    /// When it ended (or was last seen).
    pub end_unix_s: f64,
    /// resync_tick: the period, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_s: Option<f64>,
    /// resync_tick: the standard deviation of the intervals between ticks, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_s: Option<f64>,
    /// resync_tick: each tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticks: Option<Vec<Tick>>,
    /// resync_tick: the ticks' reads by rv_class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_by_rv_class: Option<BTreeMap<String, u64>>,
    /// client_throttling: the pinned rate, requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    /// client_throttling: the requests sent at once before the rate was pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// client_throttling, restart_catchup, reconcile_burst: how long, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// restart_catchup, reconcile_burst, client_throttling: requests in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// restart_catchup: LISTs in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lists: Option<u64>,
    /// reconcile_burst: what set it off: `resync`, `watch_events`, `restart`, `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<&'static str>,
    /// reconcile_burst, restart_catchup: the burst itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_detail: Option<Tick>,
    /// allocation_spike: the observed server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// allocation_spike: heap allocated in it, estimated bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alloc_bytes: Option<u64>,
    /// allocation_spike: the heap allocated per second before it, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_bytes_per_s: Option<f64>,
    /// allocation_spike: CPU the server spent in it, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// allocation_spike: who caused it, biggest share first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributors: Option<Vec<Contributor>>,
}

impl Finding {
    /// The sentence an SRE reads, naming the cause and the fix.
    pub fn sentence(&self) -> String {
        match (self.kind, self.evidence) {
            (resync::KIND, measured::MEASURED) => measured::resync_sentence(self),
            (throttling::KIND, measured::MEASURED) => measured::throttling_sentence(self),
            _ => self.inferred_sentence(),
        }
    }

    fn inferred_sentence(&self) -> String {
        match self.kind {
            resync::KIND => resync::sentence(self),
            throttling::KIND => throttling::sentence(self),
            catchup::KIND => catchup::sentence(self),
            spikes::KIND => spikes::sentence(self),
            _ => bursts::sentence(self),
        }
    }

    /// The client as sentences name it.
    fn who(&self) -> String {
        match &self.client {
            Some(owner) => format!("{} ({owner})", self.user_agent),
            None => self.user_agent.clone(),
        }
    }
}

/// A client: its user agent and, when known, its workload.
type ClientKey = (String, Option<String>);

/// Every client's history, and the writes that may wake clients.
#[derive(Debug, Default)]
pub struct Detectors {
    clients: HashMap<ClientKey, History>,
    /// (time, client, resource) of recent writes, oldest first.
    writes: VecDeque<(u64, ClientKey, String)>,
    /// Each target's allocation over time.
    spikes: spikes::Spikes,
    /// What client-side probes measured.
    measured: measured::Measured,
}

/// "user_agent verb resource rv_class" of a request, as spikes name contributors.
fn attribute_key(request: &Request) -> String {
    let text = |d: Dimension| match request.dimension(d) {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    [
        Dimension::UserAgent,
        Dimension::Verb,
        Dimension::Resource,
        Dimension::RvClass,
    ]
    .map(text)
    .join(" ")
}

fn key(request: &Request) -> Option<ClientKey> {
    let text = |d: Dimension| request.dimension(d).as_str().map(str::to_owned);
    let user_agent = text(Dimension::UserAgent)?;
    // `other` is many clients: no one client's pattern.
    (user_agent != OTHER).then(|| (user_agent, text(Dimension::ClientOwner)))
}

impl Detectors {
    /// A client-side record (client-side probes are on).
    pub fn client(&mut self, record: &crate::capture::Record) {
        self.measured.record(record);
    }

    /// `request` began at `at_ns`.
    pub fn start(&mut self, at_ns: u64, request: &Request) {
        self.measured.server_request(at_ns, request);
        let Some(client) = key(request) else {
            return;
        };
        if !self.clients.contains_key(&client) && self.clients.len() >= MAX_CLIENTS {
            return;
        }
        let resource = request.info.resource.clone();
        let writes = &self.writes;
        let woke = || {
            writes
                .iter()
                .rev()
                .take_while(|(t, _, _)| *t + BURST_GAP_NS >= at_ns)
                .filter(|(_, c, r)| *c != client && *r == resource)
                .count() as u64
        };
        self.clients
            .entry(client.clone())
            .or_default()
            .start(at_ns, request, woke);
        if matches!(
            request.info.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) {
            self.writes.push_back((at_ns, client, resource));
            if self.writes.len() > MAX_WRITES {
                self.writes.pop_front();
            }
        }
    }

    /// `request` ended.
    pub fn end(&mut self, at_ns: u64, request: &Request, response: &HttpResponse) {
        if let Some(history) = key(request).and_then(|k| self.clients.get_mut(&k)) {
            history.end(
                request.http.ktime_ns,
                request.http.request,
                at_ns,
                response.response_bytes,
            );
        }
    }

    /// A cost sample taken at `at_ns` in `target`, for `owner` or outside any request.
    pub fn sample(&mut self, at_ns: u64, target: &str, owner: Option<&Request>, cost: Cost) {
        self.spikes.sample(at_ns, target, owner, cost);
        let Some(owner) = owner else {
            return;
        };
        if let Some(history) = key(owner).and_then(|k| self.clients.get_mut(&k)) {
            let (alloc, cpu) = match cost {
                Cost::Alloc { bytes } => (bytes, 0),
                Cost::Cpu { ns } => (0.0, ns),
            };
            history.cost(owner.http.ktime_ns, alloc, cpu);
        }
    }

    /// What they remember: clients, requests and bursts (each bounded per client).
    pub fn remembered(&self) -> (usize, usize, usize) {
        self.clients.values().fold((0, 0, 0), |(c, r, b), h| {
            (c + 1, r + h.seen.len(), b + h.bursts.len())
        })
    }

    /// Everything the detectors find as of `now_ns`, client by client: measured
    /// findings where client-side probes measured a client, inferred ones elsewhere.
    pub fn findings(&self, now_ns: u64, clock: &Clock) -> Vec<Finding> {
        let histories: HashMap<&str, &History> = self
            .clients
            .iter()
            .map(|((ua, _), h)| (ua.as_str(), h))
            .collect();
        let (measured, triggered) = self.measured.findings(clock, &histories, now_ns);
        let replaced = |kind: &str, ua: &str| {
            measured
                .iter()
                .any(|m| m.kind == kind && m.user_agent == ua)
        };
        let mut clients: Vec<(&ClientKey, &History)> = self.clients.iter().collect();
        clients.sort_by(|a, b| a.0.cmp(b.0));
        let mut findings = Vec::new();
        for ((user_agent, client), history) in clients {
            let base = Finding {
                evidence: INFERRED,
                user_agent: user_agent.clone(),
                client: client.clone(),
                ..Finding::default()
            };
            let resync = resync::find(&base, history, now_ns, clock);
            let mut ticks: Vec<u64> = resync.as_ref().map_or(Vec::new(), |(_, t)| t.clone());
            if replaced(resync::KIND, user_agent) {
                // The measured ticks set off the bursts that follow them.
                ticks = triggered
                    .iter()
                    .filter(|(ua, _)| ua == user_agent)
                    .map(|(_, start)| *start)
                    .collect();
            } else {
                findings.extend(resync.map(|(f, _)| f));
            }
            if !replaced(throttling::KIND, user_agent) {
                findings.extend(throttling::find(&base, history, clock));
            }
            findings.extend(catchup::find(&base, history, now_ns, clock));
            findings.extend(bursts::find(
                &base,
                history,
                now_ns,
                clock,
                &ticks,
                |since, until| self.measured.queue(user_agent, since, until),
            ));
        }
        findings.extend(measured);
        findings.extend(self.spikes.findings(clock));
        findings
    }
}

/// Findings inferred from the requests the server saw.
pub const INFERRED: &str = "inferred";

#[cfg(test)]
mod tests;
