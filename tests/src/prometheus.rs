//! Prometheus tooling for the daemon's `/metrics`, from Debian sid (see
//! [`crate::prometheus_dir`]): `promtool check metrics` on an exposition, and a real
//! Prometheus server scraping targets and answering queries, as a guard.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use jiff::Timestamp;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    apiserver::{dies_with_parent, free_port},
    daemon::metric_tallies,
    load::Tally,
    prometheus_dir,
};

/// The scrape job every target belongs to: the `job` label of what Prometheus stores.
pub const JOB: &str = "apiprof";

/// How long Prometheus may take to become ready, and a scrape to arrive.
const WAIT: Duration = Duration::from_secs(20);

/// How often readiness and scrapes are polled.
const POLL: Duration = Duration::from_millis(100);

/// Runs `promtool check metrics` on the exposition `text`; panics with promtool's whole
/// output (and the text) unless it exits 0 and reports no problem. promtool exits 3 when
/// it only finds lint problems (e.g. a counter not named `*_total`), 1 when it cannot
/// parse the text.
pub fn check_metrics(text: &str) {
    let promtool = prometheus_dir().join("usr/bin/promtool");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", promtool.display()));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let output = std::thread::scope(|scope| {
        // promtool may stop reading early on a bad text: its status and output say why.
        scope.spawn(move || stdin.write_all(text.as_bytes()));
        child.wait_with_output()
    })
    .expect("waiting for promtool");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics exited with {}:\n{stdout}{stderr}\non this exposition:\n{text}",
        output.status
    );
}

/// A running Prometheus server scraping targets every second; killed on drop.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    targets: Vec<String>,
    http: reqwest::Client,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus (its own config and storage in a temporary folder) scraping each
    /// of `targets` ("127.0.0.1:PORT") over plain HTTP at `/metrics` every second, in job
    /// [`JOB`], and waits until it is ready. Its first scrapes come about 5 s later:
    /// Prometheus hands discovered targets to its scrapers every 5 s.
    pub fn start(targets: &[String]) -> Self {
        Self::start_scraping(targets, None)
    }

    /// [`Prometheus::start`] scraping over HTTPS as `tls` says.
    pub fn start_tls(targets: &[String], tls: &ScrapeTls) -> Self {
        Self::start_scraping(targets, Some(tls))
    }

    fn start_scraping(targets: &[String], tls: Option<&ScrapeTls>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets, tls).to_string())
            .expect("writing prometheus.yml");
        let address = format!("127.0.0.1:{}", free_port());
        let bin = prometheus_dir().join("usr/bin/prometheus");
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .expect("creating prometheus.log");
        let mut child = dies_with_parent(&mut Command::new(&bin))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let deadline = Instant::now() + WAIT;
        while !ready(&address) {
            let exited = child.try_wait().expect("polling prometheus");
            if exited.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let state = exited.map_or(format!("not ready after {WAIT:?}"), |s| s.to_string());
                panic!(
                    "prometheus on {address}: {state}; its log ends:\n{}",
                    log_tail(dir.path())
                );
            }
            std::thread::sleep(POLL);
        }
        Self {
            child,
            url: format!("http://{address}"),
            targets: targets.to_vec(),
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// The instant query `promql` evaluated now: each series' labels (a selector's with
    /// `__name__`, `instance` and `job`) and value, sorted by labels; a scalar comes back
    /// as one value with no labels. Panics with Prometheus's answer on an error.
    pub async fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api("/api/v1/query", &[("query", promql)]).await;
        let result = &data["result"];
        let samples = match data["resultType"].as_str() {
            Some("vector") => result.as_array().and_then(|series| {
                series
                    .iter()
                    .map(|s| Some((labels(&s["metric"])?, value(&s["value"])?)))
                    .collect::<Option<Vec<_>>>()
            }),
            Some("scalar") => value(result).map(|v| vec![(BTreeMap::new(), v)]),
            _ => None,
        };
        let mut samples = samples.unwrap_or_else(|| {
            panic!("{promql:?} is not an instant vector or a scalar; Prometheus answered {data}")
        });
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        samples
    }

    /// `apiprof_requests_total` and `apiprof_response_bytes_total` summed by the labels
    /// `by` (and `code`), as [`metric_tallies`] keys them.
    pub async fn request_tallies(&self, by: &[&str]) -> BTreeMap<Vec<String>, Tally> {
        let labels = by.join(",");
        let requests = self
            .query(&format!("sum by ({labels},code) (apiprof_requests_total)"))
            .await;
        let bytes = self
            .query(&format!("sum by ({labels}) (apiprof_response_bytes_total)"))
            .await;
        metric_tallies(&requests, &bytes, by)
    }

    /// Waits until every target was last scraped after `since`, successfully, and what
    /// that scrape stored can be queried; panics after 20 s with Prometheus's targets.
    pub async fn wait_for_scrape_after(&self, since: SystemTime) {
        let since = Timestamp::try_from(since).expect("a time after year -9999");
        let deadline = Instant::now() + WAIT;
        loop {
            let targets = self.api("/api/v1/targets", &[("state", "active")]).await;
            if let Some(scrapes) = self.scraped_after(&targets, since) {
                if self.stored(&scrapes).await {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "not every target of {} ({:?}) was scraped successfully after {since} within \
                 {WAIT:?}; its targets:\n{targets:#}\nits log ends:\n{}",
                self.url,
                self.targets,
                log_tail(self.dir.path())
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Each target's last scrape start, if every target's last scrape started after
    /// `since` and succeeded.
    fn scraped_after<'a>(
        &self,
        targets: &'a Value,
        since: Timestamp,
    ) -> Option<BTreeMap<&'a str, i64>> {
        let mut scrapes = BTreeMap::new();
        for target in targets["activeTargets"].as_array()? {
            let at: Timestamp = target["lastScrape"].as_str()?.parse().ok()?;
            if target["health"] != "up" || at <= since {
                return None;
            }
            scrapes.insert(target["labels"]["instance"].as_str()?, at.as_millisecond());
        }
        let all = self
            .targets
            .iter()
            .all(|t| scrapes.contains_key(t.as_str()));
        all.then_some(scrapes)
    }

    /// Whether the samples of these scrapes (instance → start in ms) can be queried:
    /// Prometheus reports a scrape in its targets just before it commits the scrape's
    /// samples (`scrapeLoop.report` runs before the appender's commit, scrape/scrape.go).
    async fn stored(&self, scrapes: &BTreeMap<&str, i64>) -> bool {
        let up = self.query("timestamp(up)").await;
        scrapes.iter().all(|(instance, at)| {
            up.iter().any(|(labels, seconds)| {
                labels.get("instance").map(String::as_str) == Some(*instance)
                    && (seconds * 1000.0).round() as i64 >= *at
            })
        })
    }

    /// GETs `path` of Prometheus's HTTP API with `params` and returns its `data`; panics
    /// with the answer unless it succeeded.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = format!("{}{path}", self.url);
        let response = self
            .http
            .get(&url)
            .query(params)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} {params:?}: {e}"));
        let status = response.status();
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("reading the answer to GET {url} {params:?}: {e}"));
        let mut answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("GET {url} {params:?} answered {status} with no JSON ({e}): {body}")
        });
        assert!(
            status.is_success() && answer["status"] == "success",
            "GET {url} {params:?} answered {status}: {body}"
        );
        answer["data"].take()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How Prometheus scrapes a daemon serving TLS: the files of its `tls_config` and of
/// its `authorization`, as a PodMonitor's Secrets would be mounted.
pub struct ScrapeTls<'a> {
    /// The CA that signed the daemon's certificate.
    pub ca: &'a Path,
    /// Prometheus's client certificate and key.
    pub cert: &'a Path,
    /// The key of `cert`.
    pub key: &'a Path,
    /// The bearer token.
    pub token: &'a Path,
}

/// Prometheus's configuration (JSON is YAML): scrape `targets` every second (over
/// `tls` if given).
fn scrape_config(targets: &[String], tls: Option<&ScrapeTls>) -> Value {
    let mut job = json!({
        "job_name": JOB,
        "scheme": "http",
        "metrics_path": "/metrics",
        "static_configs": [{ "targets": targets }],
    });
    if let Some(tls) = tls {
        job["scheme"] = json!("https");
        job["tls_config"] = json!({
            "ca_file": tls.ca,
            "cert_file": tls.cert,
            "key_file": tls.key,
        });
        job["authorization"] = json!({ "type": "Bearer", "credentials_file": tls.token });
    }
    json!({
        "global": {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        },
        "scrape_configs": [job],
    })
}

/// Whether Prometheus on `address` answers `/-/ready` with 200 (a plain HTTP/1.0 request:
/// [`Prometheus::start`] is not async).
fn ready(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let mut status = [0; 12];
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_ok()
        && stream.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_exact(&mut status).is_ok()
        && status.ends_with(b" 200")
}

/// A series' labels from a `metric` object.
fn labels(metric: &Value) -> Option<BTreeMap<String, String>> {
    metric
        .as_object()?
        .iter()
        .map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
        .collect()
}

/// The value of a `[time, "value"]` pair ("NaN" and "+Inf" included).
fn value(pair: &Value) -> Option<f64> {
    pair.get(1)?.as_str()?.parse().ok()
}

/// The last lines of Prometheus's log in `dir`.
fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}
