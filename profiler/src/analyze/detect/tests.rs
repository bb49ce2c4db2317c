//! The detectors on synthetic clients, at the scales of tests (seconds) and of
//! production (hours): the same findings.

use std::sync::Arc;

use super::*;
use crate::analyze::attribute::Cost;
use crate::{
    analyze::{aggregate::tests::request, request::Request},
    events::decode::HttpResponse,
};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const SECOND: u64 = 1_000_000_000;

/// Feeds requests to the detectors, each ending `latency_ns` after it starts.
#[derive(Default)]
struct Feed {
    detectors: Detectors,
    next_address: u64,
}

impl Feed {
    fn send(&mut self, at: u64, ua: &str, method: &str, query: &str, latency_ns: u64) {
        self.next_address += 8;
        let http = request(at, self.next_address, ua, method, CONFIGMAPS, query);
        let r = Request::classify(http, Arc::from("apiserver"));
        self.detectors.start(at, &r);
        let response = HttpResponse {
            ktime_ns: at + latency_ns,
            goroutine: 1,
            request: r.http.request,
            status: 200,
            response_bytes: 100,
        };
        self.detectors.end(at + latency_ns, &r, &response);
    }

    fn findings(&self) -> Vec<Finding> {
        self.detectors.findings(u64::MAX / 2, &Clock::default())
    }
}

/// A resyncing controller: a start (LIST, WATCH, a reconcile LIST per object), then a
/// tick every `period` jittered by up to `jitter` of it, each reconciling `objects`.
/// Returns the ticks' times.
fn resyncing(feed: &mut Feed, ua: &str, period: u64, jitter: f64, objects: u64) -> Vec<u64> {
    let t0 = 100 * SECOND;
    feed.send(t0, ua, "GET", "", 2_000_000);
    feed.send(t0 + 3_000_000, ua, "GET", "watch=true&resourceVersion=5", 0);
    let mut ticks = Vec::new();
    let mut lcg: u64 = 7;
    for tick in 0..=6 {
        // Deterministic jitter in [-jitter, +jitter].
        lcg = lcg
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let offset = ((lcg >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * jitter;
        let at = if tick == 0 {
            t0 + 10_000_000
        } else {
            (t0 as f64 + tick as f64 * period as f64 * (1.0 + offset / tick as f64)) as u64
        };
        if tick > 0 {
            ticks.push(at);
        }
        for i in 0..objects {
            feed.send(
                at + i * 2_000_000,
                ua,
                "GET",
                "labelSelector=app%3Dweb",
                1_000_000,
            );
        }
    }
    ticks
}

#[test]
fn a_resync_period_is_found_at_any_scale_with_every_tick() {
    for (period, jitter) in [
        (3 * SECOND, 0.0),
        (10 * 3600 * SECOND, 0.1),
        (18 * 3600 * SECOND, 0.0),
    ] {
        let mut feed = Feed::default();
        let ticks = resyncing(&mut feed, "ctl", period, jitter, 50);
        let findings = feed.findings();
        let resync: Vec<&Finding> = findings.iter().filter(|f| f.kind == resync::KIND).collect();
        assert_eq!(resync.len(), 1, "{period}: {findings:#?}");
        let found = resync[0];
        // The truth: the mean interval of the ticks, the start's sync counting as tick 0.
        let truth = (ticks[5] - 100 * SECOND - 10_000_000) as f64 / 6.0 / 1e9;
        let error = (found.period_s.unwrap() - truth).abs() / truth;
        assert!(
            error < 0.02,
            "period {} s vs {truth} s",
            found.period_s.unwrap()
        );
        let seen: Vec<f64> = found
            .ticks
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.unix_s)
            .collect();
        assert_eq!(seen.len(), ticks.len(), "every tick, none invented");
        for (got, want) in seen.iter().zip(&ticks) {
            assert!((got - *want as f64 / 1e9).abs() < 0.01, "{got} vs {want}");
        }
        assert_eq!(
            found.requests_by_rv_class.as_ref().unwrap()["most_recent"],
            300
        );
        assert!(
            found.sentence().contains("sends 50 LISTs in a burst every"),
            "{}",
            found.sentence()
        );
        assert!(findings.iter().all(|f| f.kind != throttling::KIND));
        let triggers: Vec<_> = findings
            .iter()
            .filter(|f| f.kind == bursts::KIND)
            .map(|f| f.trigger.unwrap())
            .collect();
        assert_eq!(
            triggers,
            ["restart", "resync", "resync", "resync", "resync", "resync", "resync"]
        );
    }
}

/// A client behind a token bucket (`qps`, `burst`, full at the start) that wants to
/// send `n` requests at once, each taking 2 ms.
fn throttled(feed: &mut Feed, ua: &str, qps: f64, burst: f64, n: u64, start: u64) {
    let mut tokens = burst;
    let mut now = start as f64 / 1e9;
    let mut last = now;
    for _ in 0..n {
        tokens = (tokens + (now - last) * qps).min(burst);
        last = now;
        if tokens < 1.0 {
            now += (1.0 - tokens) / qps;
            tokens = 1.0;
            last = now;
        }
        tokens -= 1.0;
        feed.send((now * 1e9) as u64, ua, "POST", "", 2_000_000);
    }
}

#[test]
fn a_token_bucket_is_found_with_its_qps_and_burst_at_any_rate() {
    for (qps, burst) in [(20.0, 30.0), (5.0, 10.0), (100.0, 150.0)] {
        let mut feed = Feed::default();
        throttled(&mut feed, "endpoint-controller", qps, burst, 1_000, SECOND);
        let findings = feed.findings();
        let found: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.kind == throttling::KIND)
            .collect();
        assert_eq!(found.len(), 1, "{qps}: {findings:#?}");
        let rate = found[0].rate_per_s.unwrap();
        assert!((rate - qps).abs() / qps < 0.05, "rate {rate} vs {qps}");
        let b = found[0].burst.unwrap() as f64;
        assert!((b - burst).abs() / burst <= 0.1, "burst {b} vs {burst}");
        assert!(found[0].sentence().contains("client-side rate limiter"));
    }
}

#[test]
fn a_client_sending_each_request_as_the_last_returns_is_not_throttled() {
    let mut feed = Feed::default();
    // A restart's LIST pages, then one worker: each PATCH as soon as the last returns.
    let mut at = SECOND;
    for _ in 0..5 {
        feed.send(at, "one-worker", "GET", "limit=500&continue=x", 1_000_000);
        at += 1_100_000;
    }
    for _ in 0..200 {
        feed.send(at, "one-worker", "PATCH", "", 20_000_000);
        at += 20_300_000;
    }
    let findings = feed.findings();
    assert!(
        findings.iter().all(|f| f.kind != throttling::KIND),
        "{findings:#?}"
    );
}

#[test]
fn a_burst_over_many_connections_is_not_throttled() {
    let mut feed = Feed::default();
    // 60 LISTs 0.1 ms apart, each taking 20 ms (a resync's reconciles, all at once).
    for i in 0..60 {
        feed.send(
            SECOND + i * 100_000,
            "resync",
            "GET",
            "labelSelector=a%3Db",
            20_000_000,
        );
    }
    let findings = feed.findings();
    assert!(
        findings.iter().all(|f| f.kind != throttling::KIND),
        "{findings:#?}"
    );
}

#[test]
fn a_restart_catchup_spans_the_burst_after_the_new_watch() {
    let mut feed = Feed::default();
    let start = 50 * SECOND;
    feed.send(start, "ctl", "GET", "limit=500", 1_000_000);
    feed.send(
        start + 2_000_000,
        "ctl",
        "GET",
        "watch=true&resourceVersion=9",
        0,
    );
    for i in 0..100 {
        feed.send(
            start + 5_000_000 + i * 100_000_000,
            "ctl",
            "PATCH",
            "",
            50_000_000,
        );
    }
    let findings = feed.findings();
    let catchup: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == catchup::KIND)
        .collect();
    assert_eq!(catchup.len(), 1, "{findings:#?}");
    let duration = catchup[0].duration_s.unwrap();
    assert!((duration - 9.905).abs() < 1e-6, "{duration}");
    assert_eq!(
        (catchup[0].requests, catchup[0].lists),
        (Some(102), Some(1))
    );
}

#[test]
fn an_allocation_spike_is_found_with_who_caused_it() {
    let mut feed = Feed::default();
    let heap = |feed: &mut Feed, at: u64, owner: Option<&Request>, bytes: f64| {
        feed.detectors
            .sample(at, "apiserver", owner, Cost::Alloc { bytes });
    };
    let lists = Request::classify(
        request(0, 8, "resync-ctl", "GET", CONFIGMAPS, "labelSelector=a%3Db"),
        Arc::from("apiserver"),
    );
    let gets = Request::classify(
        request(0, 16, "kubectl", "GET", &format!("{CONFIGMAPS}/x"), ""),
        Arc::from("apiserver"),
    );
    // A minute of background at 512 KiB/s, then 3 seconds of LISTs (48 MB a second,
    // 1 MB of GETs), then quiet again.
    for s in 0..60 {
        heap(&mut feed, s * SECOND, None, 512.0 * 1024.0);
    }
    for s in 60..63 {
        heap(&mut feed, s * SECOND, Some(&lists), 48e6);
        heap(&mut feed, s * SECOND + 1, Some(&gets), 1e6);
    }
    for s in 63..70 {
        heap(&mut feed, s * SECOND, None, 512.0 * 1024.0);
    }
    let findings = feed.findings();
    let spikes: Vec<&Finding> = findings.iter().filter(|f| f.kind == spikes::KIND).collect();
    assert_eq!(spikes.len(), 1, "{findings:#?}");
    let spike = spikes[0];
    assert_eq!(
        (spike.duration_s, spike.alloc_bytes),
        (Some(3.0), Some(147_000_000))
    );
    let contributors = spike.contributors.as_ref().unwrap();
    assert_eq!(
        contributors[0].requests,
        "resync-ctl list configmaps most_recent"
    );
    assert!((contributors[0].share - 48.0 / 49.0).abs() < 1e-9);
    assert_eq!(
        contributors[1].requests,
        "kubectl get configmaps most_recent"
    );
    assert!(
        spike
            .sentence()
            .contains("98% resync-ctl list configmaps most_recent"),
        "{}",
        spike.sentence()
    );
}
