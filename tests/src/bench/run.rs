//! One measured run on the apiserver fixture: a fresh etcd and apiserver, the objects
//! the load reads, the observer started, a warm-up, then the load with the CPU time of
//! the apiserver, its etcd and the observer read from /proc around it.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::{
    drive::{closed_loop, Sender, Shape},
    observe::{Events, Observer},
    out::percentile_ms,
    probes::{self, Counters},
};
use profiler_common::{event::RINGBUF_BYTES, http::HttpRequestEvent};

use crate::{apiserver::ApiServer, load::Http, process::cpu_seconds};

/// Concurrent requests: HTTP/2 streams on one connection, or HTTP/1.1 connections.
pub const CONCURRENCY: usize = 8;

/// The ConfigMaps' namespace and path.
pub const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// The first of them (`bench-0`): what the GET loads get.
pub const CONFIGMAP: &str = "/api/v1/namespaces/default/configmaps/bench-0";

/// A load on the apiserver fixture.
pub struct Load {
    /// Its name in the tables.
    pub name: &'static str,
    /// The HTTP version it is sent on.
    pub http: Http,
    /// What each worker sends.
    pub shape: Shape,
    /// ConfigMaps of ~1 KiB it needs, named `bench-N`.
    pub objects: usize,
    /// Cycles of `shape` measured per run (a tenth more warm the server up first).
    pub cycles: usize,
    /// What its apiserver CPU is normalised by.
    pub normaliser: Normaliser,
}

impl Load {
    /// Requests measured per run.
    pub fn requests(&self) -> usize {
        self.cycles * self.shape.requests_per_cycle()
    }
}

/// How the apiserver is observed in a run.
#[derive(Clone, Copy, Debug)]
pub enum Observation {
    /// Not at all.
    Off,
    /// `apiprof record --pid PID` with these flags.
    Record(&'static [&'static str]),
    /// `apiprof daemon --pid PID`: with the fixture's kubeconfig when it watches the
    /// cluster's Pods to name clients (client identity), else `--no-client-pods`.
    Daemon {
        /// Whether it watches the cluster's Pods.
        client_pods: bool,
    },
    /// `apiprof daemon --pid PID --no-client-pods`, stopped with SIGSTOP once attached
    /// (a daemon that stops draining: the apiserver's cost with its ring buffer full).
    StoppedDaemon,
    /// Metadata-level audit logging to a file (kube-apiserver's `--audit-policy-file` and
    /// `--audit-log-path`).
    Audit,
}

/// kube-apiserver's documented "log every request at the Metadata level" policy.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n";

/// What the apiserver's CPU is divided by to cancel the machine's drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normaliser {
    /// etcd's CPU: it serves every GET (../shared/MEASURING.md).
    Etcd,
    /// The load generator's CPU: LISTs come from the watch cache, leaving etcd idle, but
    /// the client decrypts (and for pages, parses) every byte the apiserver sends.
    Client,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Run {
    /// Apiserver CPU per request, µs.
    pub server_us: f64,
    /// Apiserver CPU ÷ etcd CPU.
    pub per_etcd: f64,
    /// Apiserver CPU ÷ the load generator's CPU.
    pub per_client: f64,
    /// The observer's CPU per request, µs.
    pub observer_us: Option<f64>,
    /// Kernel events the daemon took per request.
    pub events_per_request: Option<f64>,
    /// Events lost over the observation.
    pub dropped: Option<u64>,
    /// Client-observed latency percentiles, ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// apiprof's programs' counters over the measured load, when asked for.
    pub programs: Option<Counters>,
}

impl Run {
    /// Apiserver CPU ÷ the normaliser's CPU.
    pub fn ratio(&self, by: Normaliser) -> f64 {
        match by {
            Normaliser::Etcd => self.per_etcd,
            Normaliser::Client => self.per_client,
        }
    }
}

/// How long the observer gets to take the load's last events (apiprof drains its ring
/// buffer every 100 ms) before its CPU and counters are read.
const SETTLE: Duration = Duration::from_millis(500);

/// CPU seconds so far of the apiserver, etcd and the load generator (this process).
#[derive(Clone, Copy)]
struct Cpu([f64; 3]);

impl Cpu {
    fn now(server: &ApiServer) -> Self {
        Self([server.pid(), server.etcd_pid(), std::process::id()].map(cpu_seconds))
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu([0, 1, 2].map(|i| self.0[i] - before.0[i]))
    }
}

/// The observer's CPU seconds, event counters and program counters so far.
struct Observed {
    cpu: Option<f64>,
    events: Option<Events>,
    programs: Option<Counters>,
}

impl Observed {
    async fn now(observer: &Observer, program_stats: bool) -> Self {
        Self {
            cpu: observer.pid().map(cpu_seconds),
            events: observer.events().await,
            programs: program_stats
                .then(|| probes::counters(observer.pid().expect("statistics need an observer"))),
        }
    }
}

/// Measures `load` on a fresh apiserver fixture `build` observed as `how`; with
/// `program_stats`, also reads apiprof's programs' counters (BPF statistics must be on).
pub async fn measure(build: &str, load: &Load, how: Observation, program_stats: bool) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = audit_flags(how, &dir);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = ApiServer::start_with_args(build, &flags);
    let sender = Sender::new(load.http, &server.url, Some(&server.token));
    sender
        .create_configmaps("default", "bench", load.objects, 1024)
        .await;
    let observer = observe(how, &server, dir.path()).await;
    if let Observation::StoppedDaemon = how {
        fill_ring_buffer(&sender).await;
    }
    closed_loop(&sender, load.shape, load.cycles.div_ceil(10), CONCURRENCY).await;

    let (cpu, observed) = (
        Cpu::now(&server),
        Observed::now(&observer, program_stats).await,
    );
    let started = Instant::now();
    let mut latencies = closed_loop(&sender, load.shape, load.cycles, CONCURRENCY).await;
    let elapsed = started.elapsed();
    let cpu = Cpu::now(&server).since(cpu);
    tokio::time::sleep(SETTLE).await;
    let after = Observed::now(&observer, program_stats).await;
    let dropped = observer.stop().await;

    assert_eq!(latencies.len(), load.requests(), "requests answered");
    let n = latencies.len() as f64;
    let [server_cpu, etcd_cpu, client_cpu] = cpu.0;
    eprintln!(
        "bench: {} {how:?}: {n} requests in {:.2} s; CPU: apiserver {server_cpu:.2} s, etcd {etcd_cpu:.2} s, client {client_cpu:.2} s",
        load.name,
        elapsed.as_secs_f64()
    );
    Run {
        server_us: server_cpu * 1e6 / n,
        per_etcd: server_cpu / etcd_cpu,
        per_client: server_cpu / client_cpu,
        observer_us: after.cpu.zip(observed.cpu).map(|(a, b)| (a - b) * 1e6 / n),
        events_per_request: after
            .events
            .zip(observed.events)
            .map(|(a, b)| (a.taken - b.taken) / n),
        dropped,
        p50_ms: percentile_ms(&mut latencies, 50.0),
        p99_ms: percentile_ms(&mut latencies, 99.0),
        programs: after.programs.zip(observed.programs).map(|(a, b)| a - b),
    }
}

/// Fills a stopped daemon's ring buffer before the run: every GET hands it at least a
/// request event, so a buffer's worth of them cannot all fit.
async fn fill_ring_buffer(sender: &Sender) {
    let events = RINGBUF_BYTES as usize / std::mem::size_of::<HttpRequestEvent>();
    let get = Shape::Get {
        path: CONFIGMAP,
        query: "",
    };
    closed_loop(sender, get, events, CONCURRENCY).await;
}

/// The audit flags of `how` (policy and log in `dir`); none unless auditing.
fn audit_flags(how: Observation, dir: &TempDir) -> Vec<String> {
    let Observation::Audit = how else {
        return Vec::new();
    };
    let policy = dir.path().join("audit-policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY).expect("writing the audit policy");
    let log = dir.path().join("audit.log");
    let path = |p: &Path| p.to_str().expect("a UTF-8 temp path").to_owned();
    vec![
        "--audit-policy-file".into(),
        path(&policy),
        "--audit-log-path".into(),
        path(&log),
    ]
}

/// Starts the observer `how` names on `server`.
async fn observe(how: Observation, server: &ApiServer, dir: &Path) -> Observer {
    match how {
        Observation::Off | Observation::Audit => Observer::None,
        Observation::Record(flags) => Observer::record(server.pid(), dir, flags),
        Observation::Daemon { client_pods: true } => {
            Observer::daemon(server.pid(), &[], Some(&server.kubeconfig)).await
        }
        Observation::Daemon { client_pods: false } => {
            Observer::daemon(server.pid(), &["--no-client-pods"], None).await
        }
        Observation::StoppedDaemon => Observer::stopped_daemon(server.pid()).await,
    }
}
