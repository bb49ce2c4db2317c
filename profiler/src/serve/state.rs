//! What the daemon knows: the window of rows every attached process feeds, each
//! process's attribution state, and the profiler's own health counters.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use crate::{
    analyze::detect::{Clock, Finding},
    analyze::{
        aggregate::{report, AllocTracking, Meta, Report},
        attribute::Attributor,
        filter::Filter,
        request::Request,
        rows::Rows,
        window::{Settings, Window, WindowError},
        Dimension,
    },
    capture::{monotonic_ns, Header, Record},
};

/// The state, even if a thread panicked holding it (it stays consistent record by
/// record).
pub fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name the clients followed with client-side probes count their records under.
pub const CLIENTS: &str = "clients";

/// One attached process.
struct Source {
    target: Arc<str>,
    attributor: Attributor,
    /// Events the kernel could not hand over, as last read.
    dropped: u64,
    /// What its reports must say (its capture header's cautions).
    cautions: Vec<String>,
}

/// The profiler's own health, per target name (so a restarted API server's counts
/// continue).
#[derive(Debug, Default)]
pub struct Health {
    /// Records taken, by target.
    pub events: BTreeMap<String, u64>,
    /// Events lost (ring buffer full, undecodable), by target.
    pub dropped: BTreeMap<String, u64>,
    /// Processes that could not be attached to.
    pub attach_errors: u64,
    /// Capture files that could not be written (captures then stop).
    pub capture_errors: u64,
    /// Seconds from each target's process start to its probes being attached, at its
    /// latest attach.
    pub attach_latency_seconds: BTreeMap<String, f64>,
    /// What the HTTP API refused or failed, by reason: `tls_handshake`, `unauthorized`,
    /// `tls_reload`, `token_reload`.
    pub listener_errors: BTreeMap<&'static str, u64>,
}

impl Health {
    /// Counts one listener error of `reason`.
    pub fn listener_error(&mut self, reason: &'static str) {
        *self.listener_errors.entry(reason).or_default() += 1;
    }
}

/// The daemon's state, shared by its drain tasks and its HTTP API.
pub struct Live {
    /// Rows per time bucket and totals.
    pub window: Window,
    sources: BTreeMap<u32, Source>,
    /// The profiler's own counters.
    pub health: Health,
    cpu_sample_period_ns: u64,
    /// The `runtime.MemProfileRate` of the process attached last.
    mem_profile_rate: u64,
    /// Whether that process's allocations are tracked.
    alloc_tracking: AllocTracking,
    /// Event time to Unix time: the first attached process's capture header's, so the
    /// daemon and its capture files give findings the same times.
    clock: Option<Clock>,
    /// When the daemon started (event time).
    started_ns: u64,
}

impl Live {
    /// Nothing attached yet.
    pub fn new(settings: Settings, cpu_sample_period_ns: u64) -> Self {
        Self {
            window: Window::new(settings),
            sources: BTreeMap::new(),
            health: Health::default(),
            cpu_sample_period_ns,
            mem_profile_rate: 0,
            alloc_tracking: AllocTracking::default(),
            clock: None,
            started_ns: monotonic_ns(),
        }
    }

    /// The process `header` describes is attached. Its target name is the header's,
    /// unless another attached process has that name: then it gains `/PID`.
    pub fn attached(&mut self, header: &Header) -> Arc<str> {
        // A process that exited may not be detached yet: its successor takes its name.
        self.sources
            .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
        let mut name = header.target_name();
        if self.sources.values().any(|s| *s.target == *name) {
            name = format!("{name}/{}", header.pid);
        }
        let target: Arc<str> = Arc::from(name);
        self.mem_profile_rate = header.mem_profile_rate;
        self.alloc_tracking = AllocTracking::of(header);
        self.clock.get_or_insert(header.clock());
        self.sources.insert(
            header.pid,
            Source {
                target: target.clone(),
                attributor: Attributor::new(header, target.clone()),
                dropped: 0,
                cautions: header.cautions.clone(),
            },
        );
        self.health.events.entry(target.to_string()).or_default();
        self.health.dropped.entry(target.to_string()).or_default();
        target
    }

    /// The next record of process `pid`.
    pub fn record(&mut self, pid: u32, record: Record) {
        let Some(source) = self.sources.get_mut(&pid) else {
            return;
        };
        // `attached` made the entry: no allocation per record.
        if let Some(events) = self.health.events.get_mut(&*source.target) {
            *events += 1;
        }
        source.attributor.record(record, &mut self.window);
    }

    /// A record of a client followed with the client-side probes.
    pub fn client(&mut self, record: Record) {
        *self.health.events.entry(CLIENTS.to_owned()).or_default() += 1;
        self.window.detectors.client(&record);
    }

    /// Process `pid` has lost `total` events since it was attached.
    pub fn dropped(&mut self, pid: u32, total: u64) {
        let Some(source) = self.sources.get_mut(&pid) else {
            return;
        };
        let new = total.saturating_sub(source.dropped);
        source.dropped = total;
        if let Some(dropped) = self.health.dropped.get_mut(&*source.target) {
            *dropped += new;
        }
    }

    /// Process `pid` is detached (it exited, or the daemon stops).
    pub fn detached(&mut self, pid: u32) {
        self.sources.remove(&pid);
    }

    /// Processes attached now, with their target names.
    pub fn targets(&self) -> impl Iterator<Item = (u32, &str)> {
        self.sources.iter().map(|(pid, s)| (*pid, &*s.target))
    }

    /// Requests being served now, in every attached process.
    pub fn in_flight(&self) -> impl Iterator<Item = &Request> {
        self.sources.values().flat_map(|s| s.attributor.in_flight())
    }

    /// The report of `window_ns` up to `ago_ns` before `now_ns`, of the requests `filter`
    /// keeps, grouped by `by`, and its rows. Requests in flight count when the window
    /// reaches now.
    pub fn report(
        &self,
        now_ns: u64,
        (window_ns, ago_ns): (u64, u64),
        by: &[Dimension],
        filter: &Filter,
    ) -> Result<(Report, Rows), WindowError> {
        let until = now_ns.saturating_sub(ago_ns);
        let since = until.saturating_sub(window_ns);
        // A window in the past (a --diff baseline) that the daemon never saw whole would
        // read as if nothing happened then.
        let remembered = self
            .started_ns
            .max(now_ns.saturating_sub(self.window.retention_ns()));
        if ago_ns > 0 && since < remembered {
            let ago = |ns: u64| {
                humantime::format_duration(Duration::from_secs(ns / 1_000_000_000)).to_string()
            };
            return Err(WindowError::BeforeMemory {
                from: ago(now_ns - since),
                to: ago(ago_ns),
                kept: ago(now_ns - remembered),
                retention: ago(self.window.retention_ns()),
                uptime: ago(now_ns - self.started_ns),
            });
        }
        let rows = self.window.rows(since, until, by, filter)?;
        let meta = Meta {
            mem_profile_rate: self.mem_profile_rate,
            alloc_tracking: self.alloc_tracking,
            cpu_sample_period_ns: self.cpu_sample_period_ns,
            dropped_events: self.health.dropped.values().sum(),
            complete: true,
            target_exited_unix_ms: None,
            cautions: self
                .sources
                .values()
                .flat_map(|s| s.cautions.iter().map(|c| format!("{}: {c}", s.target)))
                .collect(),
        };
        let findings = self.findings(now_ns);
        let in_flight = self.in_flight().filter(|r| ago_ns == 0 && filter.admits(r));
        Ok((report(&rows, in_flight, meta, findings), rows))
    }

    /// Event time `ktime_ns` as Unix seconds (0 before any process is attached).
    pub fn unix_s(&self, ktime_ns: u64) -> f64 {
        self.clock.map_or(0.0, |c| c.unix_s(ktime_ns))
    }

    /// What the detectors find as of `now_ns` (event time).
    pub fn findings(&self, now_ns: u64) -> Vec<Finding> {
        match &self.clock {
            Some(clock) => self.window.detectors.findings(now_ns, clock),
            None => Vec::new(),
        }
    }
}
