//! `apiprof daemon`: attach to every matching process, now and as they start, keep
//! bounded state, serve `/metrics`, `/report` and `/healthz`. Flags override the
//! optional TOML config file (`--config`), whose keys are the flags' names.

use std::{
    collections::BTreeMap,
    future::IntoFuture,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use serde::Deserialize;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::oneshot,
    task::JoinHandle,
};
use tracing::{error, info, warn};

use super::TrackingArgs;
use crate::{
    analyze::{clients::Clients, window::Settings},
    attach::{
        processes::{age, Selector, SCAN_INTERVAL},
        Probes, Tracking,
    },
    capture::{CaptureError, Record, Rotating, Rotation},
    events::drain::{drain, Consumer, StopReason},
    serve::{api, state::Live},
    target::{Binaries, Target},
};

/// Arguments of `apiprof daemon` (each may also be set in the config file).
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Args {
    /// TOML file with any of these settings (`process = ["kube-apiserver"]`,
    /// `listen = "0.0.0.0:9464"`, `top-clients = 100`, …); flags win over it.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Observe processes whose executable has this file name (repeatable; default
    /// kube-apiserver unless --pid is given).
    #[arg(long = "process")]
    process: Vec<String>,
    /// Observe this process id (repeatable).
    #[arg(long = "pid")]
    pid: Vec<u32>,
    /// Address of the HTTP API (`/metrics`, `/report`, `/healthz`); default
    /// 0.0.0.0:9464. Port 0 picks a free port (printed at start).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// User agents kept by name (the busiest); the rest count as `other` (default 100).
    #[arg(long)]
    top_clients: Option<usize>,
    /// How far back `/report` can look (default 1h).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    retention: Option<Duration>,
    /// Width of the time buckets `/report` windows are made of (default 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde_opt")]
    bucket: Option<Duration>,
    /// Also write rotating capture files into this directory, for `apiprof report`.
    #[arg(long)]
    capture: Option<PathBuf>,
    /// With --capture: start a new file past this many MiB (default 64).
    #[arg(long)]
    capture_file_mib: Option<u64>,
    /// With --capture: keep this many files (default 8); the oldest go first.
    #[arg(long)]
    capture_files: Option<usize>,
    /// Do not watch the cluster's Pods (through KUBECONFIG, ~/.kube/config or the
    /// in-cluster service account) to name the Pod and workload behind each client IP.
    #[arg(long)]
    no_client_pods: bool,
    #[command(flatten)]
    #[serde(flatten)]
    tracking: TrackingArgs,
}

/// `humantime` strings ("10s") for optional durations in the config file.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The daemon's settings: flags over the config file over defaults.
struct Config {
    selector: Selector,
    client_pods: bool,
    listen: SocketAddr,
    window: Settings,
    tracking: Tracking,
    capture: Option<Rotation>,
}

impl Args {
    fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the config file {}", path.display()))?;
                toml::from_str::<Args>(&text).with_context(|| {
                    format!("{}: not a valid apiprof daemon config; its keys are the flags' names (see apiprof daemon --help)", path.display())
                })?
            }
            None => Args::default(),
        };
        let or = |flag: Vec<String>, file: Vec<String>| if flag.is_empty() { file } else { flag };
        let mut names = or(self.process, file.process);
        let pids = if self.pid.is_empty() {
            file.pid
        } else {
            self.pid
        };
        if names.is_empty() && pids.is_empty() {
            names.push("kube-apiserver".into());
        }
        let bucket = self
            .bucket
            .or(file.bucket)
            .unwrap_or(Duration::from_secs(10));
        let retention = self
            .retention
            .or(file.retention)
            .unwrap_or(Duration::from_secs(3600));
        anyhow::ensure!(
            !bucket.is_zero() && retention >= bucket,
            "--bucket must be positive and --retention at least one bucket (got {bucket:?} and {retention:?})"
        );
        let tracking = TrackingArgs {
            no_alloc: self.tracking.no_alloc || file.tracking.no_alloc,
            no_cpu: self.tracking.no_cpu || file.tracking.no_cpu,
            cpu_hz: self.tracking.cpu_hz.or(file.tracking.cpu_hz),
        };
        Ok(Config {
            selector: Selector { names, pids },
            client_pods: !(self.no_client_pods || file.no_client_pods),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 9464))),
            window: Settings {
                bucket_ns: bucket.as_nanos() as u64,
                retention_ns: retention.as_nanos() as u64,
                top_clients: self.top_clients.or(file.top_clients).unwrap_or(100),
            },
            tracking: tracking.tracking(),
            capture: self.capture.or(file.capture).map(|dir| Rotation {
                dir,
                max_file_bytes: self
                    .capture_file_mib
                    .or(file.capture_file_mib)
                    .unwrap_or(64)
                    << 20,
                max_files: self.capture_files.or(file.capture_files).unwrap_or(8),
            }),
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(config))
}

/// A followed process: how to stop it, and the task that follows it.
struct Following {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let live = Arc::new(Mutex::new(Live::new(
        config.window,
        config.tracking.cpu_period_ns.unwrap_or(0),
    )));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "listening on {}; is the port in use? choose another with --listen",
                config.listen
            )
        })?;
    let addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let (shutdown, shut) = oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, api::router(live.clone()))
            .with_graceful_shutdown(async {
                let _ = shut.await;
            })
            .into_future(),
    );
    println!(
        "apiprof daemon listening on {} for processes {:?} and pids {:?}",
        addr, config.selector.names, config.selector.pids
    );
    let clients = if config.client_pods {
        match Clients::connect().await {
            Ok((clients, watch)) => {
                tokio::spawn(watch);
                info!("watching the cluster's Pods to name client Pods and workloads");
                clients
            }
            Err(error) => {
                warn!(%error, "client_pod and client_owner stay empty (pass --no-client-pods to skip this)");
                Clients::none()
            }
        }
    } else {
        Clients::none()
    };
    let mut following: BTreeMap<u32, Following> = BTreeMap::new();
    let binaries = Arc::new(Mutex::new(Binaries::default()));
    // Processes that could not be attached to: not tried again while they run.
    let mut refused: Vec<u32> = Vec::new();
    let mut scan = tokio::time::interval(SCAN_INTERVAL);
    loop {
        tokio::select! {
            _ = scan.tick() => {}
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
        let found = config.selector.scan();
        // A follower that ended while its process still runs failed to attach.
        following.retain(|pid, f| {
            let ended = f.task.is_finished();
            if ended && found.contains(pid) {
                refused.push(*pid);
            }
            !ended
        });
        refused.retain(|pid| found.contains(pid));
        for pid in found {
            if following.contains_key(&pid) || refused.contains(&pid) {
                continue;
            }
            let (stop, stopped) = oneshot::channel();
            let task = tokio::task::spawn_local(follow(
                pid,
                live.clone(),
                config.tracking,
                config.capture.clone(),
                clients.clone(),
                binaries.clone(),
                stopped,
            ));
            following.insert(pid, Following { stop, task });
        }
    }
    info!("stopping: detaching from every process");
    for (_, f) in std::mem::take(&mut following) {
        let _ = f.stop.send(());
        let _ = f.task.await;
    }
    let _ = shutdown.send(());
    let _ = server.await;
    eprintln!("apiprof: daemon stopped; every probe detached");
    Ok(())
}

/// Attaches to process `pid` and feeds its records to `live` (and the capture) until it
/// exits or `stop` fires; detaches on return.
async fn follow(
    pid: u32,
    live: Arc<Mutex<Live>>,
    tracking: Tracking,
    capture: Option<Rotation>,
    clients: Clients,
    binaries: Arc<Mutex<Binaries>>,
    stop: oneshot::Receiver<()>,
) {
    let started = std::time::Instant::now();
    let attached = tokio::task::spawn_blocking(move || {
        let target =
            Target::open_cached(pid, &mut binaries.lock().unwrap_or_else(|e| e.into_inner()))?;
        let probes = Probes::attach(&target, tracking)?;
        anyhow::Ok((target, probes))
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    let (target, probes) = match attached {
        Ok(attached) => attached,
        Err(error) => {
            warn!(
                pid,
                error = format!("{error:#}"),
                "cannot attach; not retried while the process runs"
            );
            lock(&live).health.attach_errors += 1;
            return;
        }
    };
    let header = probes.header(&target);
    let latency = age(pid).unwrap_or_default();
    let name = {
        let mut live = lock(&live);
        let name = live.attached(&header);
        live.health
            .attach_latency_seconds
            .insert(name.to_string(), latency.as_secs_f64());
        name
    };
    info!(pid, target = %name, attach_ms = started.elapsed().as_millis() as u64, since_start_ms = latency.as_millis() as u64, probes = probes.functions.len(), "attached");
    let capture = capture.and_then(
        |rotation| match Rotating::create(rotation, header.clone()) {
            Ok(capture) => Some(capture),
            Err(error) => {
                error!(%error, "cannot write captures; going on without");
                None
            }
        },
    );
    let mut consumer = LiveConsumer {
        live: live.clone(),
        pid,
        capture,
        clients,
    };
    let stopped = async {
        let _ = stop.await;
        StopReason::Signal
    };
    match drain(probes, pid, &target.binary, &mut consumer, stopped).await {
        Ok(end) => {
            info!(pid, target = %name, reason = end.reason, dropped = end.dropped_events, "detached")
        }
        Err(error) => error!(pid, target = %name, %error, "following stopped; detached"),
    }
    lock(&live).detached(pid);
}

/// Feeds one process's records to the daemon's state and, when asked, to capture files,
/// naming each request's client Pod on the way.
struct LiveConsumer {
    live: Arc<Mutex<Live>>,
    pid: u32,
    capture: Option<Rotating>,
    clients: Clients,
}

impl LiveConsumer {
    /// Runs `write` on the capture; a failing capture is closed, never the analysis.
    fn capture(&mut self, write: impl FnOnce(&mut Rotating) -> Result<(), CaptureError>) {
        if let Some(capture) = &mut self.capture {
            if let Err(error) = write(capture) {
                error!(%error, "writing the capture failed; captures stop, metrics and reports go on");
                lock(&self.live).health.capture_errors += 1;
                self.capture = None;
            }
        }
    }
}

impl Consumer for LiveConsumer {
    fn consume(&mut self, mut record: Record) -> Result<(), CaptureError> {
        if let Record::HttpRequest(request) = &mut record {
            let identity = self.clients.identify(&request.remote_addr);
            request.client_pod = identity.pod;
            request.client_owner = identity.owner;
        }
        if self.capture.is_some() {
            let copy = record.clone();
            self.capture(|c| c.consume(copy));
        }
        lock(&self.live).record(self.pid, record);
        Ok(())
    }

    fn tick(&mut self, dropped_events: u64) -> Result<(), CaptureError> {
        lock(&self.live).dropped(self.pid, dropped_events);
        self.capture(|c| c.tick(dropped_events));
        Ok(())
    }
}

/// The state, even if a thread panicked holding it (it stays consistent record by
/// record).
fn lock(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}
