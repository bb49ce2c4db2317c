//! The daemon's own cost: its CPU and memory while it follows a server at the highest
//! rate of small GETs this machine drives, the cost of each kernel event it takes, the
//! events it loses, and a sweep at 1×, 4× and 16× a base rate.
//!
//! The server is the Go fixture, the cheapest to drive: the daemon's work per event does
//! not depend on what serves the request, and every core the server does not use goes to
//! the load. The daemon runs as operators run it (`apiprof daemon --pid`), without the
//! Pods reflector (no cluster here).

use std::time::{Duration, Instant};

use super::{
    drive::{at_rate, Sender},
    observe::daemon_events,
    out::Out,
    Settings,
};
use crate::{
    daemon::Daemon,
    goserver::GoServer,
    load::Http,
    process::{cpu_seconds, rss_bytes},
};

const BUILD: &str = "goserver-go1.24-stripped";
const PATH: &str = "/api/v1/namespaces/default/configmaps";
/// The rate the issue asks the daemon to keep up with.
pub const TARGET_RATE: f64 = 5000.0;
/// Concurrent HTTP/1.1 connections of the load.
const WORKERS: usize = 16;

/// A server of small GETs with the daemon attached.
pub struct Setup {
    /// The Go fixture.
    pub server: GoServer,
    /// `apiprof daemon --pid` on it.
    pub daemon: Daemon,
    /// A client of the server.
    pub sender: Sender,
}

impl Setup {
    /// Starts the server and the daemon (with `args`), waits until it is attached and
    /// warms both up.
    pub async fn start(args: &[&str]) -> Self {
        let server = GoServer::start(BUILD);
        let pid = server.pid().to_string();
        let mut all = vec!["--pid", pid.as_str(), "--no-client-pods"];
        all.extend_from_slice(args);
        let daemon = Daemon::start(&all);
        daemon.wait_attached(server.pid()).await;
        let sender = Sender::new(Http::One, &server.url, None);
        at_rate(&sender, PATH, None, Duration::from_secs(2), WORKERS).await;
        Self {
            server,
            daemon,
            sender,
        }
    }

    /// Sends small GETs at `rate` (as fast as possible when `None`) for `duration` and
    /// measures the daemon meanwhile.
    pub async fn step(&self, rate: Option<f64>, duration: Duration) -> Step {
        let pid = self.daemon.pid();
        let (cpu, events) = (cpu_seconds(pid), daemon_events(&self.daemon).await);
        let started = Instant::now();
        let sent = at_rate(&self.sender, PATH, rate, duration, WORKERS).await;
        let seconds = started.elapsed().as_secs_f64();
        let after = daemon_events(&self.daemon).await;
        Step {
            asked: rate,
            rate: sent as f64 / seconds,
            cores: (cpu_seconds(pid) - cpu) / seconds,
            events_per_s: (after.taken - events.taken) / seconds,
            dropped: after.dropped - events.dropped,
            rss_mib: rss_bytes(pid) as f64 / (1 << 20) as f64,
        }
    }
}

/// What the daemon did over one step.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// The rate asked for (`None`: as fast as possible).
    pub asked: Option<f64>,
    /// Requests per second achieved.
    pub rate: f64,
    /// The daemon's CPU, in cores.
    pub cores: f64,
    /// Kernel events it took per second.
    pub events_per_s: f64,
    /// Events it lost.
    pub dropped: f64,
    /// Its resident memory at the end, MiB.
    pub rss_mib: f64,
}

impl Step {
    /// The daemon's CPU per event it took, ns.
    pub fn ns_per_event(&self) -> f64 {
        self.cores * 1e9 / self.events_per_s
    }

    fn row(&self, label: &str, reference_ns: f64) -> Vec<String> {
        vec![
            label.to_owned(),
            self.asked
                .map_or("as fast as answered".into(), |r| format!("{r:.0}")),
            format!("{:.0}", self.rate),
            format!("{:.2}", self.events_per_s / self.rate),
            format!("{:.3}", self.cores),
            format!("{:.0}", self.ns_per_event()),
            format!("×{:.2}", self.ns_per_event() / reference_ns),
            format!("{:.1}", self.rss_mib),
            format!("{:.0}", self.dropped),
        ]
    }
}

const HEADER: [&str; 9] = [
    "step",
    "rate asked (req/s)",
    "achieved (req/s)",
    "events/request",
    "daemon CPU (cores)",
    "ns/event",
    "ns/event ÷ 1×",
    "daemon RSS MiB",
    "dropped",
];

/// The highest rate, the rate when this machine reaches it, then the sweep;
/// prints the table and what it means.
pub async fn section(out: &mut Out, settings: &Settings) {
    out.heading("The daemon's own cost");
    let duration = settings.duration(Duration::from_secs(15));
    out.paragraph(format!(
        "`apiprof daemon --pid` (release build, default settings, `--no-client-pods`) on the Go fixture ({BUILD}), \
         small GETs over {WORKERS} HTTP/1.1 connections from this process for {} s a step, one daemon throughout; \
         CPU and RSS from /proc, events and drops from the daemon's `/metrics`. \
         The sweep's base rate is the highest rate ÷ 16.",
        duration.as_secs()
    ));
    let setup = Setup::start(&[]).await;
    let max = setup.step(None, duration).await;
    let mut rows = vec![("highest".to_owned(), max)];
    if max.rate >= TARGET_RATE {
        let target = setup.step(Some(TARGET_RATE), duration).await;
        rows.push(("the issue's rate".to_owned(), target));
    }
    let base = (max.rate / 16.0 / 10.0).floor() * 10.0;
    let mut sweep = Vec::new();
    for k in [1.0, 4.0, 16.0] {
        let step = setup.step(Some(base * k), duration).await;
        rows.push((format!("{k}× base"), step));
        sweep.push(step);
    }
    let reference = sweep[0].ns_per_event();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, step)| step.row(label, reference))
        .collect();
    out.table(&HEADER, &table);
    conclusions(out, &rows, &sweep);
}

fn conclusions(out: &mut Out, rows: &[(String, Step)], sweep: &[Step]) {
    let max = rows[0].1;
    let events_per_request = max.events_per_s / max.rate;
    let extrapolated = TARGET_RATE * events_per_request * max.ns_per_event() / 1e9;
    match rows.iter().find(|(label, _)| label == "the issue's rate") {
        Some((_, at)) => out.paragraph(format!(
            "At {:.0} req/s the daemon used {:.3} cores and {:.1} MiB, dropping {:.0} events (targets: ≤ 0.25 core, ≤ 100 MiB, 0).",
            at.rate, at.cores, at.rss_mib, at.dropped
        )),
        None => out.paragraph(format!(
            "This machine drives at most {:.0} req/s of small GETs (load, server and daemon share its cores), short of {TARGET_RATE:.0}.",
            max.rate
        )),
    }
    out.paragraph(format!(
        "Per event at the highest rate: {:.0} ns, {events_per_request:.2} events a request; so {TARGET_RATE:.0} req/s cost {extrapolated:.3} cores \
         (target ≤ 0.25). RSS at most {:.1} MiB (target ≤ 100 MiB).",
        max.ns_per_event(),
        rows.iter().map(|(_, s)| s.rss_mib).fold(0.0, f64::max)
    ));
    let fastest = rows.iter().map(|(_, s)| s.rate).fold(0.0, f64::max);
    match rows
        .iter()
        .filter(|(_, s)| s.dropped > 0.0)
        .map(|(_, s)| s.rate)
        .reduce(f64::min)
    {
        Some(rate) => out.paragraph(format!("Drops begin at {rate:.0} req/s.")),
        None => out.paragraph(format!(
            "No event dropped at any rate up to {fastest:.0} req/s: drops begin beyond what this machine can drive."
        )),
    }
    let growth = sweep[2].ns_per_event() / sweep[0].ns_per_event();
    out.paragraph(format!(
        "Cost per event at 16× ÷ at 1×: {growth:.2}: the daemon's CPU grows {} than linearly with the rate.",
        if growth <= 1.05 { "no faster" } else { "faster" }
    ));
}
