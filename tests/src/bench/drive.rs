//! The bench's load generators: a fixed number of requests as fast as `concurrency`
//! workers send them (closed loop, every latency kept), and small GETs at a set rate
//! (open loop, for the daemon's cost at a known rate).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::{task::JoinSet, time::MissedTickBehavior};

use crate::load::Http;

/// The User-Agent of every request the bench sends.
pub const USER_AGENT: &str = "apiprof-bench/1.0";

/// A client of one server: its base URL and, for the apiserver fixture, a bearer token.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Sender {
    /// A client speaking `http` to the server at `base` (`https://127.0.0.1:PORT`).
    pub fn new(http: Http, base: &str, token: Option<&str>) -> Self {
        Self {
            client: http.client(USER_AGENT).0,
            base: base.to_owned(),
            token: token.map(str::to_owned),
        }
    }

    /// GETs `path` with `query`; returns the body and the time from sending to its last
    /// byte. Panics unless the answer is 200.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (bytes::Bytes, Duration) {
        let started = Instant::now();
        let response = self
            .authorized(self.client.get(format!("{}{path}", self.base)))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), 200, "GET {path}?{query:?}");
        let body = response.bytes().await.expect("reading the body");
        (body, started.elapsed())
    }

    /// Creates `count` ConfigMaps named `PREFIX-N` holding `bytes` bytes of data each, in
    /// `namespace`, 8 at a time.
    pub async fn create_configmaps(
        &self,
        namespace: &str,
        prefix: &str,
        count: usize,
        bytes: usize,
    ) {
        let url = format!("{}/api/v1/namespaces/{namespace}/configmaps", self.base);
        let mut tasks = JoinSet::new();
        for lane in 0..8 {
            let (sender, url, prefix) = (self.clone(), url.clone(), prefix.to_owned());
            tasks.spawn(async move {
                for i in (lane..count).step_by(8) {
                    let object = json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("{prefix}-{i}")},
                        "data": {"payload": "x".repeat(bytes)},
                    });
                    let response = sender
                        .authorized(sender.client.post(&url))
                        .header("Content-Type", "application/json")
                        .body(object.to_string())
                        .send()
                        .await
                        .expect("creating a ConfigMap");
                    assert_eq!(response.status(), 201, "creating {prefix}-{i}");
                }
            });
        }
        join_all(tasks).await;
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// What a worker sends, over and over.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// One GET of `path` with `query` (`k=v&…`, possibly empty).
    Get {
        /// URL path.
        path: &'static str,
        /// Raw query.
        query: &'static str,
    },
    /// LISTs of the collection at `path`: a walk through it in pages of `page` objects
    /// (resourceVersion unset, then `continue` tokens), one full LIST with resourceVersion
    /// unset and one with `resourceVersion=0` (the watch cache).
    ListMix {
        /// The collection's path.
        path: &'static str,
        /// Objects per page.
        page: usize,
        /// Objects in the collection.
        objects: usize,
    },
}

impl Shape {
    /// Requests one cycle of this shape sends.
    pub fn requests_per_cycle(&self) -> usize {
        match *self {
            Shape::Get { .. } => 1,
            Shape::ListMix { page, objects, .. } => objects.div_ceil(page) + 2,
        }
    }

    /// Sends one cycle; pushes each request's latency.
    async fn cycle(&self, sender: &Sender, latencies: &mut Vec<Duration>) {
        match *self {
            Shape::Get { path, query } => {
                let pairs: Vec<(&str, &str)> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                latencies.push(sender.get(path, &pairs).await.1);
            }
            Shape::ListMix { path, page, .. } => {
                let limit = page.to_string();
                let mut token = String::new();
                loop {
                    let mut query = vec![("limit", limit.as_str())];
                    if !token.is_empty() {
                        query.push(("continue", token.as_str()));
                    }
                    let (body, latency) = sender.get(path, &query).await;
                    latencies.push(latency);
                    let list: Value = serde_json::from_slice(&body).expect("a list");
                    match list["metadata"]["continue"].as_str() {
                        Some(next) if !next.is_empty() => token = next.to_owned(),
                        _ => break,
                    }
                }
                latencies.push(sender.get(path, &[]).await.1);
                latencies.push(sender.get(path, &[("resourceVersion", "0")]).await.1);
            }
        }
    }
}

/// Sends `cycles` cycles of `shape` from `concurrency` workers, each starting its next
/// cycle when its last one is answered; returns every request's latency.
pub async fn closed_loop(
    sender: &Sender,
    shape: Shape,
    cycles: usize,
    concurrency: usize,
) -> Vec<Duration> {
    let mut tasks = JoinSet::new();
    for worker in 0..concurrency {
        let sender = sender.clone();
        let share = cycles / concurrency + usize::from(worker < cycles % concurrency);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(share * shape.requests_per_cycle());
            for _ in 0..share {
                shape.cycle(&sender, &mut latencies).await;
            }
            latencies
        });
    }
    join_all(tasks).await.into_iter().flatten().collect()
}

/// Sends GETs of `path` at `rate` per second (as fast as they are answered when `None`)
/// for `duration`, from `concurrency` workers each on its own schedule (a worker that
/// falls behind skips the ticks it missed, so the rate achieved shows what the machine
/// can do); returns the requests sent.
pub async fn at_rate(
    sender: &Sender,
    path: &'static str,
    rate: Option<f64>,
    duration: Duration,
    concurrency: usize,
) -> usize {
    let mut tasks = JoinSet::new();
    let started = tokio::time::Instant::now();
    for worker in 0..concurrency {
        let sender = sender.clone();
        let mut ticks = rate.map(|rate| {
            let period = Duration::from_secs_f64(concurrency as f64 / rate);
            // Workers start spread over one period, so requests are evenly spaced.
            let offset = period.mul_f64(worker as f64 / concurrency as f64);
            let mut ticks = tokio::time::interval_at(started + offset, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            ticks
        });
        tasks.spawn(async move {
            let mut sent = 0;
            while started.elapsed() < duration {
                if let Some(ticks) = &mut ticks {
                    ticks.tick().await;
                }
                sender.get(path, &[]).await;
                sent += 1;
            }
            sent
        });
    }
    join_all(tasks).await.into_iter().sum()
}

/// Waits for every task; panics if one did.
async fn join_all<T: 'static>(mut tasks: JoinSet<T>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        results.push(done.expect("a load task panicked"));
    }
    results
}
