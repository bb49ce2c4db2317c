//! `apiprof daemon` run as an operator runs it, and what it serves read back.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::{
    apiprof_bin,
    apiserver::ApiServer,
    load::Tally,
    refctl::{self, Size},
};

/// A running `apiprof daemon` on a free loopback port; killed on drop if not stopped.
pub struct Daemon {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` (`https://` with `--tls-cert`).
    pub url: String,
    /// What [`Daemon::get`] asks with (see [`Daemon::with_client`]).
    http: reqwest::Client,
}

impl Daemon {
    /// Starts `apiprof daemon ARGS --listen 127.0.0.1:0` and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`Daemon::start`] with environment variables (`KUBECONFIG`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &Path)]) -> Self {
        let mut command = Command::new(apiprof_bin());
        command.envs(env.iter().copied());
        Self::start_command(command, args)
    }

    /// [`Daemon::start`] of a prepared apiprof command (the container image's binary,
    /// run as its DaemonSet would run it): `COMMAND daemon ARGS --listen 127.0.0.1:0`.
    pub fn start_command(mut command: Command, args: &[&str]) -> Self {
        let mut child = command
            .arg("daemon")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("reading the daemon's first line");
        let Some(addr) = line
            .strip_prefix("apiprof daemon listening on ")
            .and_then(|rest| rest.split_whitespace().next())
        else {
            let status = child.wait().expect("waiting for apiprof daemon");
            panic!("apiprof daemon did not start ({status}); it printed {line:?}, see its stderr above");
        };
        let scheme = if args.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        Self {
            url: format!("{scheme}://{addr}"),
            child: Some(child),
            http: reqwest::Client::new(),
        }
    }

    /// The daemon, asked with `http` from now on (a client trusting its CA, with a
    /// client certificate and its token).
    pub fn with_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `GET path`'s body; panics unless it answers 200.
    pub async fn get(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let body = response.text().await.expect("reading the body");
        assert!(status.is_success(), "GET {path}: {status}: {body}");
        body
    }

    /// `/report?format=json&window=1h&by=BY`, parsed; panics if the kernel dropped
    /// events (the exact figures tests compare cannot hold then, as in
    /// [`crate::recorder::report_json`]).
    pub async fn report(&self, by: &[&str]) -> serde_json::Value {
        let report = self.report_with_drops(by).await;
        assert_eq!(
            report["dropped_events"], 0,
            "the kernel dropped events: exact figures cannot hold"
        );
        report
    }

    /// [`Daemon::report`] of a daemon that may have dropped events (a test that makes
    /// it drop them).
    pub async fn report_with_drops(&self, by: &[&str]) -> serde_json::Value {
        let body = self
            .get(&format!(
                "/report?format=json&window=1h&by={}",
                by.join(",")
            ))
            .await;
        serde_json::from_str(&body).expect("/report is JSON")
    }

    /// Waits until the daemon is attached to process `pid`; returns how long that took.
    pub async fn wait_attached(&self, pid: u32) -> Duration {
        let limit = Duration::from_secs(20);
        match self.attached_within(pid, limit).await {
            Some(took) => took,
            None => {
                let health = self.get("/healthz").await;
                panic!(
                    "the daemon did not attach to pid {pid} in {limit:?}: /healthz says {health:?}"
                )
            }
        }
    }

    /// How long the daemon took to attach to process `pid`, if it did within `limit`.
    pub async fn attached_within(&self, pid: u32, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let needle = format!("(pid {pid})");
        while start.elapsed() < limit {
            if self.get("/healthz").await.contains(&needle) {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Runs the reference controller's scenario `name` (short) against `server` while
    /// this daemon follows the server, waits for the last requests' ends, and asserts
    /// the daemon's `/findings` pass the scenario's checks against the ledger (printed);
    /// returns the ledger.
    pub async fn run_checked(&self, server: &ApiServer, name: &str) -> refctl::Ledger {
        let dir = tempfile::tempdir().expect("temp dir");
        let scenario = refctl::scenario(name).expect("a scenario");
        let ledger = refctl::run(server, scenario, Size::Short, dir.path());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let findings: serde_json::Value =
            serde_json::from_str(&self.get("/findings").await).expect("/findings is JSON");
        let checks = crate::findings::check(
            scenario,
            Size::Short,
            &ledger,
            &serde_json::json!({ "findings": findings }),
        );
        print!("{checks}");
        assert!(checks.passed(), "{checks}");
        ledger
    }

    /// Stops the daemon with SIGTERM, as Kubernetes stops a pod, and waits for it.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("not yet stopped");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().expect("waiting for apiprof daemon")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The files in a daemon's capture directory, by name (oldest first).
pub fn capture_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the capture directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    files
}

/// The samples of metric `name` in a Prometheus text exposition: (labels, value).
pub fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            (metric == name).then(|| (parse_labels(labels), value.parse().expect("a sample value")))
        })
        .collect()
}

/// `a="x",b="y"` (values escaped as the text format escapes them).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    labels
}

/// Tallies of `apiprof_requests_total` and `apiprof_response_bytes_total` keyed by the
/// labels `by` (finished requests: counts and status codes by `code`, bytes).
pub fn metric_tallies(
    metrics: &[(BTreeMap<String, String>, f64)],
    bytes: &[(BTreeMap<String, String>, f64)],
    by: &[&str],
) -> BTreeMap<Vec<String>, Tally> {
    let key = |labels: &BTreeMap<String, String>| -> Vec<String> {
        by.iter()
            .map(|l| match labels.get(*l).map(String::as_str) {
                // A write's rv_class is null in reports and an empty label (which
                // Prometheus drops) in metrics.
                None | Some("") if *l == "rv_class" => "null".to_owned(),
                Some(v) => v.to_owned(),
                None => panic!("no label {l} in {labels:?}"),
            })
            .collect()
    };
    let mut tallies: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    for (labels, n) in metrics {
        let t = tallies.entry(key(labels)).or_default();
        t.count += *n as u64;
        let code: u16 = labels["code"].parse().expect("code label");
        *t.status.entry(code).or_default() += *n as u64;
    }
    for (labels, n) in bytes {
        if let Some(t) = tallies.get_mut(&key(labels)) {
            t.bytes += *n as u64;
        }
    }
    tallies
}
