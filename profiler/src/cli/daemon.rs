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
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tracing::{info, warn};

use super::TrackingArgs;
use crate::{
    analyze::{clients::Clients, window::Settings},
    attach::{
        clients,
        processes::{Selector, SCAN_INTERVAL},
        Tracking,
    },
    capture::Rotation,
    serve::{
        api,
        follow::{follow, LiveClient},
        state::{lock, Live},
        tls::ServerFiles,
        Bearer, Certificates, TlsListener,
    },
    target::Binaries,
};

/// Arguments of `apiprof daemon` (each may also be set in the config file).
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Args {
    /// TOML file with any of these settings (`process = ["kube-apiserver"]`,
    /// `listen = "0.0.0.0:9464"`, `tls-cert = "/etc/apiprof/tls.crt"`, `top-clients =
    /// 100`, …); flags win over it.
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
    /// Also attach the client-side probes to every client-go program whose executable
    /// has this file name (repeatable; e.g. kube-controller-manager): their rate-limiter
    /// waits, informer resyncs and workqueue depth make findings measured.
    #[arg(long = "client", value_name = "NAME")]
    client: Vec<String>,
    /// Address of the HTTP API (`/metrics`, `/report`, `/healthz`); default
    /// 127.0.0.1:9464 (this host or Pod only: Prometheus needs an address it reaches,
    /// given here, e.g. 0.0.0.0:9464). Port 0 picks a free port. The address, scheme
    /// and checks are printed at start.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate (chain), with --tls-key; both are loaded
    /// again when they change (cert-manager renewals).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// With TLS: refuse clients without a certificate signed by a CA in this PEM file.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on every endpoint but /healthz, TOKEN being
    /// this file's contents (a mounted Secret, so it never shows in `ps`; loaded again
    /// when it changes). Use with TLS: over plain HTTP the token travels in clear.
    #[arg(long, value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
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
    clients: Vec<String>,
    client_pods: bool,
    listen: SocketAddr,
    tls: Option<ServerFiles>,
    bearer_token_file: Option<PathBuf>,
    window: Settings,
    tracking: Tracking,
    capture: Option<Rotation>,
}

impl Config {
    /// How the API is served and who may read it, for the start line (no secret).
    fn access(&self) -> String {
        let mut access = vec![match &self.tls {
            Some(tls) => format!("https, certificate {}", tls.cert.display()),
            None => "http".to_owned(),
        }];
        if let Some(ca) = self.tls.as_ref().and_then(|t| t.client_ca.as_ref()) {
            access.push(format!("client certificates of {}", ca.display()));
        }
        if let Some(token) = &self.bearer_token_file {
            access.push(format!("bearer token of {}", token.display()));
        }
        access.join("; ")
    }
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
            deep_lineage: self.tracking.deep_lineage || file.tracking.deep_lineage,
            no_alloc: self.tracking.no_alloc || file.tracking.no_alloc,
            no_cpu: self.tracking.no_cpu || file.tracking.no_cpu,
            cpu_hz: self.tracking.cpu_hz.or(file.tracking.cpu_hz),
        };
        let client_ca = self.client_ca.or(file.client_ca);
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(ServerFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None) => {
                anyhow::ensure!(
                    client_ca.is_none(),
                    "--client-ca checks the certificates of TLS clients: add --tls-cert and --tls-key"
                );
                None
            }
            _ => anyhow::bail!(
                "--tls-cert and --tls-key go together: pass the PEM certificate and its key"
            ),
        };
        Ok(Config {
            selector: Selector { names, pids },
            clients: or(self.client, file.client),
            tls,
            bearer_token_file: self.bearer_token_file.or(file.bearer_token_file),
            client_pods: !(self.no_client_pods || file.no_client_pods),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9464))),
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
    // Bad files are refused before anything listens.
    let bearer = match &config.bearer_token_file {
        Some(path) => Some(Bearer::from_file(path, live.clone())?),
        None => None,
    };
    let certificates = match &config.tls {
        Some(files) => {
            let (load, counted) = (files.clone(), live.clone());
            Some(Arc::new(Certificates::new(
                "the TLS certificate",
                files.paths(),
                move || load.load(),
                move || lock(&counted).health.listener_error("tls_reload"),
            )?))
        }
        None => None,
    };
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
    let router = api::router(live.clone(), bearer);
    let shut = async {
        let _ = shut.await;
    };
    let server = match certificates {
        None => tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(shut)
                .into_future(),
        ),
        Some(certificates) => {
            let counted = live.clone();
            let refused = move || lock(&counted).health.listener_error("tls_handshake");
            let listener = TlsListener::new(listener, certificates, refused)
                .context("reading the listener's address")?;
            tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(shut)
                    .into_future(),
            )
        }
    };
    if config.bearer_token_file.is_some() && config.tls.is_none() {
        warn!("--bearer-token-file without --tls-cert: the token travels in clear text");
    }
    if !addr.ip().is_loopback() && config.tls.is_none() && config.bearer_token_file.is_none() {
        warn!(%addr, "the HTTP API answers anyone who reaches this address, in clear text and without a token; where that is more than Prometheus, add --tls-cert/--tls-key, --client-ca or --bearer-token-file");
    }
    println!(
        "apiprof daemon listening on {} ({}) for processes {:?} and pids {:?}, clients {:?}",
        addr,
        config.access(),
        config.selector.names,
        config.selector.pids,
        config.clients
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
    let (stop_clients, clients_stop) = watch::channel(false);
    let client_probes = (!config.clients.is_empty()).then(|| {
        let live = live.clone();
        tokio::task::spawn_local(clients::follow(
            config.clients.clone(),
            move || LiveClient(live.clone()),
            clients_stop,
        ))
    });
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
    let _ = stop_clients.send(true);
    if let Some(client_probes) = client_probes {
        let _ = client_probes.await;
    }
    for (_, f) in std::mem::take(&mut following) {
        let _ = f.stop.send(());
        let _ = f.task.await;
    }
    let _ = shutdown.send(());
    let _ = server.await;
    eprintln!("apiprof: daemon stopped; every probe detached");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_takes_every_flag_and_flags_win() {
        let file = std::env::temp_dir().join(format!("apiprof-config-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            r#"
process = ["kube-apiserver"]
client = ["kube-controller-manager"]
listen = "0.0.0.0:9464"
top-clients = 200
retention = "6h"
bucket = "10s"
capture = "/var/lib/apiprof"
capture-file-mib = 64
capture-files = 8
no-client-pods = true
no-alloc = false
no-cpu = false
cpu-hz = 49
tls-cert = "/etc/apiprof/tls/tls.crt"
tls-key = "/etc/apiprof/tls/tls.key"
client-ca = "/etc/apiprof/tls/ca.crt"
bearer-token-file = "/etc/apiprof/token/token"
"#,
        )
        .unwrap();
        let args = Args {
            config: Some(file.clone()),
            top_clients: Some(7),
            ..Args::default()
        };
        let config = args.resolve().unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(config.selector.names, ["kube-apiserver"]);
        assert_eq!(config.clients, ["kube-controller-manager"]);
        assert_eq!(config.window.top_clients, 7, "the flag wins");
        assert_eq!(config.window.retention_ns, 6 * 3600 * 1_000_000_000);
        assert_eq!(config.tracking.cpu_period_ns, Some(1_000_000_000 / 49));
        assert!(!config.client_pods);
        assert_eq!(
            config.capture.map(|c| (c.max_file_bytes, c.max_files)),
            Some((64 << 20, 8))
        );
        let tls = config.tls.expect("TLS from the file");
        assert_eq!(
            tls.paths(),
            [
                "/etc/apiprof/tls/tls.crt",
                "/etc/apiprof/tls/tls.key",
                "/etc/apiprof/tls/ca.crt"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            config.bearer_token_file,
            Some(PathBuf::from("/etc/apiprof/token/token"))
        );
    }

    #[test]
    fn a_certificate_needs_its_key_and_a_client_ca_needs_tls() {
        let cert_only = Args {
            tls_cert: Some("tls.crt".into()),
            ..Args::default()
        };
        let error = cert_only.resolve().err().expect("refused").to_string();
        assert!(
            error.contains("--tls-cert and --tls-key go together"),
            "{error}"
        );
        let ca_only = Args {
            client_ca: Some("ca.crt".into()),
            ..Args::default()
        };
        let error = ca_only.resolve().err().expect("refused").to_string();
        assert!(error.contains("add --tls-cert and --tls-key"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_the_config_file_is_refused() {
        let error = toml::from_str::<Args>("proces = [\"x\"]").unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }
}
