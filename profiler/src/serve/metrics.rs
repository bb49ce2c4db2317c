//! `/metrics`: the daemon's totals since it started, in Prometheus's text format, built
//! at each scrape from the same rows `/report` reads. Labels are bounded: the top user
//! agents by name (the rest `other`), verbs, groups, resources and rv_class; never
//! namespaces, names or paths.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use prometheus::{
    core::{Collector, Desc},
    proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType},
    Encoder as _, Registry, TextEncoder,
};
use serde_json::Value;

use super::state::{lock, Live};
use crate::{
    analyze::{detect::throttling, rows::Stats, window::METRIC_LABELS, Dimension},
    capture::monotonic_ns,
};

/// How long after a client's last pinned request `apiprof_client_throttled` stays 1: at
/// least two scrapes at Prometheus's usual 15 s, so an episode is never missed.
const THROTTLED_GRACE_S: f64 = 30.0;

/// The `user_agent` label of work done outside any request.
pub const BACKGROUND: &str = "(background)";

/// The families this collector exports: (name, help, type).
const FAMILIES: [(&str, &str, MetricType); 19] = [
    ("apiprof_requests_total", "Requests the observed server finished, by client, verb, resource, rv_class and status code.", MetricType::COUNTER),
    ("apiprof_response_bytes_total", "Response body bytes the observed server wrote for finished requests.", MetricType::COUNTER),
    ("apiprof_request_duration_seconds", "Handler latency of finished requests other than WATCHes, seconds (the API server's own buckets).", MetricType::HISTOGRAM),
    ("apiprof_alloc_bytes_total", "Estimated Go heap bytes allocated serving requests (user_agent=\"(background)\": outside any request), scaled from the runtime's samples.", MetricType::COUNTER),
    ("apiprof_cpu_seconds_total", "On-CPU seconds serving requests (user_agent=\"(background)\": outside any request), from CPU samples.", MetricType::COUNTER),
    ("apiprof_watches_open", "WATCH requests being served now.", MetricType::GAUGE),
    ("apiprof_events_total", "Kernel events apiprof took from each target.", MetricType::COUNTER),
    ("apiprof_dropped_events_total", "Kernel events lost (ring buffer full, unreadable request, undecodable); counts are low by at most this many.", MetricType::COUNTER),
    ("apiprof_targets_attached", "Processes apiprof is attached to now.", MetricType::GAUGE),
    ("apiprof_attach_errors_total", "Processes apiprof failed to attach to (see its log).", MetricType::COUNTER),
    ("apiprof_capture_errors_total", "Capture files apiprof failed to write; captures then stop, metrics and reports go on (see its log).", MetricType::COUNTER),
    ("apiprof_attach_latency_seconds", "Seconds from the target process's start to apiprof's probes being attached, at its latest (re)start.", MetricType::GAUGE),
    ("apiprof_clients_kept", "User agents kept by name; the rest are counted as user_agent=\"other\".", MetricType::GAUGE),
    ("apiprof_findings", "Findings the detectors hold now, by kind and client: resync ticks, throttling episodes, catch-ups, bursts (see /findings).", MetricType::GAUGE),
    ("apiprof_resync_period_seconds", "The resync period found for a client (its periodic bursts).", MetricType::GAUGE),
    ("apiprof_client_throttled", "1 while a client's request rate is pinned by its client-side rate limiter (and for 30 s after its last pinned request).", MetricType::GAUGE),
    ("apiprof_build_info", "apiprof's version; always 1.", MetricType::GAUGE),
    ("apiprof_client_throttle_wait_seconds_total", "Seconds client-go's rate limiter held back the requests of a client followed with client-side probes (--client), as the client measured them.", MetricType::COUNTER),
    ("apiprof_listener_errors_total", "What the daemon's HTTP API refused or failed, by reason: tls_handshake (not TLS, no or a wrong client certificate, too slow), unauthorized (no or a wrong bearer token), tls_reload and token_reload (changed files that could not be used; the previous ones stay).", MetricType::COUNTER),
];

/// Builds every family from [`Live`] at each scrape.
struct LiveCollector {
    live: Arc<Mutex<Live>>,
    descs: Vec<Desc>,
}

/// The registry `/metrics` encodes.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics of `live`.
    pub fn new(live: Arc<Mutex<Live>>) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, _)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    vec![],
                    Default::default(),
                )
                .expect("family names are valid")
            })
            .collect();
        let registry = Registry::new();
        registry
            .register(Box::new(LiveCollector { live, descs }))
            .expect("one collector registers once");
        Self { registry }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("writing to a Vec does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Collector for LiveCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let live = lock(&self.live);
        let mut metrics: Vec<Vec<Metric>> = vec![Vec::new(); FAMILIES.len()];
        for stats in live.window.totals.rows.values() {
            let labels = labels(|d| {
                stats
                    .dimensions
                    .get(d.index())
                    .and_then(Option::as_ref)
                    .map_or_else(String::new, label_value)
            });
            for (code, n) in &stats.status {
                let mut with_code = labels.clone();
                with_code.push(pair("code", &code.to_string()));
                metrics[0].push(counter(with_code, *n as f64));
            }
            metrics[1].push(counter(labels.clone(), stats.response_bytes as f64));
            if stats.latency.count > 0 {
                metrics[2].push(histogram(labels.clone(), stats));
            }
            metrics[3].push(counter(labels.clone(), stats.alloc_bytes.round()));
            metrics[4].push(counter(labels, stats.cpu_ns as f64 / 1e9));
        }
        for (target, stats) in &live.window.totals.background {
            let labels = labels(|d| match d {
                Dimension::Target => target.clone(),
                Dimension::UserAgent => BACKGROUND.to_owned(),
                _ => String::new(),
            });
            metrics[3].push(counter(labels.clone(), stats.alloc_bytes.round()));
            metrics[4].push(counter(labels, stats.cpu_ns as f64 / 1e9));
        }
        let mut watches: BTreeMap<Vec<String>, u64> = BTreeMap::new();
        for request in live.in_flight().filter(|r| r.is_watch()) {
            let key = METRIC_LABELS
                .iter()
                .map(|d| label_value(request.dimension(*d)))
                .collect();
            *watches.entry(key).or_default() += 1;
        }
        for (values, open) in watches {
            let labels = labels(|d| {
                let i = METRIC_LABELS.iter().position(|m| *m == d).unwrap_or(0);
                values[i].clone()
            });
            metrics[5].push(gauge(labels, open as f64));
        }
        for (target, n) in &live.health.events {
            metrics[6].push(counter(vec![pair("target", target)], *n as f64));
        }
        for (target, n) in &live.health.dropped {
            metrics[7].push(counter(vec![pair("target", target)], *n as f64));
        }
        metrics[8].push(gauge(vec![], live.targets().count() as f64));
        metrics[9].push(counter(vec![], live.health.attach_errors as f64));
        metrics[10].push(counter(vec![], live.health.capture_errors as f64));
        for (target, seconds) in &live.health.attach_latency_seconds {
            metrics[11].push(gauge(vec![pair("target", target)], *seconds));
        }
        metrics[12].push(gauge(vec![], live.window.clients_kept() as f64));
        // By user agent: clients of one user agent in several workloads add up.
        let mut found: BTreeMap<(&str, String), u64> = BTreeMap::new();
        let mut periods: BTreeMap<String, f64> = BTreeMap::new();
        let mut throttled: BTreeMap<String, f64> = BTreeMap::new();
        let mut waited: BTreeMap<String, f64> = BTreeMap::new();
        let now = monotonic_ns();
        let now_unix = live.unix_s(now);
        for f in live.findings(now) {
            let n = f.ticks.as_ref().map_or(1, |t| t.len() as u64);
            *found.entry((f.kind, f.user_agent.clone())).or_default() += n;
            if let Some(period) = f.period_s {
                periods.insert(f.user_agent.clone(), period);
            }
            // Pinned now: its last pinned request came less than THROTTLED_GRACE_S ago.
            if let Some(t) = &f.throttle {
                *waited.entry(f.user_agent.clone()).or_default() += t.wait_s;
            }
            if f.kind == throttling::KIND && now_unix - f.end_unix_s <= THROTTLED_GRACE_S {
                throttled.insert(f.user_agent, 1.0);
            }
        }
        for ((kind, user_agent), n) in found {
            metrics[13].push(gauge(
                vec![pair("kind", kind), pair("user_agent", &user_agent)],
                n as f64,
            ));
        }
        for (family, values) in [(14, periods), (15, throttled)] {
            for (user_agent, value) in values {
                metrics[family].push(gauge(vec![pair("user_agent", &user_agent)], value));
            }
        }
        metrics[16].push(gauge(vec![pair("version", env!("CARGO_PKG_VERSION"))], 1.0));
        for (user_agent, seconds) in waited {
            metrics[17].push(counter(vec![pair("user_agent", &user_agent)], seconds));
        }
        for (reason, n) in &live.health.listener_errors {
            metrics[18].push(counter(vec![pair("reason", reason)], *n as f64));
        }
        FAMILIES
            .iter()
            .zip(metrics)
            .filter(|(_, m)| !m.is_empty())
            .map(|((name, help, kind), m)| {
                let mut family = MetricFamily::default();
                family.set_name((*name).to_owned());
                family.set_help((*help).to_owned());
                family.set_field_type(*kind);
                family.set_metric(m);
                family
            })
            .collect()
    }
}

/// The [`METRIC_LABELS`] of a row whose dimensions are `value`, sorted by name as the
/// text format wants them.
fn labels(value: impl Fn(Dimension) -> String) -> Vec<LabelPair> {
    let mut labels: Vec<LabelPair> = METRIC_LABELS
        .iter()
        .map(|d| pair(d.name(), &value(*d)))
        .collect();
    labels.sort_by(|a, b| a.name().cmp(b.name()));
    labels
}

/// A dimension's value as a label value: the text itself; empty for null.
fn label_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn pair(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_counter(c);
    m
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

fn histogram(labels: Vec<LabelPair>, stats: &Stats) -> Metric {
    let mut h = Histogram::default();
    h.set_sample_count(stats.latency.count);
    h.set_sample_sum(stats.latency.sum_ns as f64 / 1e9);
    h.set_bucket(
        stats
            .latency
            .prometheus_cumulative()
            .map(|(le, n)| {
                let mut b = Bucket::default();
                b.set_upper_bound(le);
                b.set_cumulative_count(n);
                b
            })
            .collect(),
    );
    let mut m = Metric::from_label(labels);
    m.set_histogram(h);
    m
}
