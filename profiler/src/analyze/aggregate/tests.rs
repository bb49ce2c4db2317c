use std::path::PathBuf;

use super::*;
use crate::analyze::attribute::AllocCost;
use crate::{
    capture::{Alloc, Cpu, End, Header, FORMAT_VERSION},
    events::decode::{HttpRequest, HttpResponse},
    target::symbols::SymbolSource,
};

pub(crate) fn request(
    at: u64,
    ptr: u64,
    ua: &str,
    method: &str,
    path: &str,
    query: &str,
) -> HttpRequest {
    HttpRequest {
        ktime_ns: at,
        tid: 1,
        goroutine: 2,
        request: ptr,
        method: method.into(),
        path: path.into(),
        query: query.into(),
        http_version: "HTTP/2.0".into(),
        user_agent: ua.into(),
        remote_addr: String::new(),
        truncated: false,
    }
}

fn response(at: u64, ptr: u64, status: u16, bytes: u64, writes: u64) -> HttpResponse {
    HttpResponse {
        ktime_ns: at,
        goroutine: 2,
        request: ptr,
        status,
        response_bytes: bytes,
        writes,
    }
}

pub(crate) fn capture(
    requests: Vec<HttpRequest>,
    responses: Vec<HttpResponse>,
    end: bool,
) -> Capture {
    let header = Header {
        format_version: FORMAT_VERSION,
        pid: 1,
        binary: PathBuf::from("/x"),
        go_version: "1.24.4".into(),
        symbols: SymbolSource::Symtab,
        probes: vec![],
        started_unix_ms: 0,
        mem_profile_rate: 0,
        mem_profile_rate_source: "default".into(),
        cpu_sample_period_ns: 0,
    };
    let end = end.then(|| End {
        dropped_events: 3,
        reason: "signal".into(),
    });
    Capture {
        header,
        requests,
        responses,
        allocs: vec![],
        cpu: vec![],
        stacks: vec![],
        end,
    }
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[test]
fn rows_group_by_client_verb_resource_and_rv_class_with_status_bytes_and_latency() {
    // The same *http.Request address is reused once the first request is done.
    let c = capture(
        vec![
            request(0, 0xa, "ctl", "GET", PODS, "resourceVersion=0"),
            request(
                10_000_000,
                0xa,
                "ctl",
                "GET",
                PODS,
                "resourceVersion=0&limit=5",
            ),
            request(11_000_000, 0xb, "ctl", "GET", PODS, ""),
            request(12_000_000, 0xc, "ctl", "POST", PODS, ""),
        ],
        vec![
            response(2_000_000, 0xa, 200, 100, 1),
            response(14_000_000, 0xa, 200, 50, 1),
            response(15_000_000, 0xb, 200, 7, 1),
            response(13_000_000, 0xc, 201, 9, 1),
        ],
        true,
    );
    let r = aggregate(&c, &DEFAULT_BY);
    let rows: Vec<_> = r
        .requests
        .iter()
        .map(|row| {
            (
                row.dimensions["verb"].clone(),
                row.dimensions["rv_class"].clone(),
                row.count,
                row.response_bytes,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("list".into(), "any".into(), 2, 150),
            ("create".into(), Value::Null, 1, 9),
            ("list".into(), "most_recent".into(), 1, 7),
        ]
    );
    let any = &r.requests[0];
    assert_eq!(any.status, BTreeMap::from([(200, 2)]));
    assert_eq!(
        (any.latency_ms_p50, any.latency_ms_p99),
        (Some(2.0), Some(4.0))
    );
    assert_eq!(
        (
            any.dimensions["limit"].clone(),
            any.dimensions["query"].clone()
        ),
        (Value::from(MIXED), Value::from(MIXED))
    );
    assert_eq!(any.dimensions["resource"], "pods");
    assert_eq!(r.requests[1].status, BTreeMap::from([(201, 1)]));
    assert_eq!(
        (r.by.clone(), r.dropped_events, r.complete),
        (vec!["user_agent", "verb", "resource", "rv_class"], 3, true)
    );
}

#[test]
fn watches_are_reported_by_duration_and_events_and_open_ones_as_in_flight() {
    let c = capture(
        vec![
            request(0, 0xa, "w", "GET", PODS, "watch=true&resourceVersion=5"),
            request(0, 0xb, "w", "GET", PODS, "watch=true&resourceVersion=5"),
        ],
        vec![response(3_000_000_000, 0xa, 200, 4096, 12)],
        false,
    );
    let r = aggregate(&c, &[Dimension::Verb]);
    let w = &r.requests[0];
    assert_eq!(
        (w.count, w.in_flight, w.watch_events, w.watch_seconds),
        (2, 1, 12, 3.0)
    );
    assert_eq!(
        (w.latency_ms_p50, w.dimensions["rv_class"].clone()),
        (None, "exact".into())
    );
    assert!(!r.complete);
}

#[test]
fn percentiles_use_the_nearest_rank() {
    let ns: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
    assert_eq!(
        (percentile_ms(&ns, 50), percentile_ms(&ns, 99)),
        (Some(50.0), Some(99.0))
    );
    assert_eq!(percentile_ms(&ns[..1], 99), Some(1.0));
    assert_eq!(percentile_ms(&[], 50), None);
}

fn alloc(at: u64, ptr: u64, size: u64) -> Alloc {
    Alloc {
        ktime_ns: at,
        goroutine: 3,
        request: ptr,
        size,
        stack_id: 0,
    }
}

fn cpu(at: u64, ptr: u64, kernel: bool) -> Cpu {
    Cpu {
        ktime_ns: at,
        goroutine: 3,
        request: ptr,
        kernel,
        stack_id: 0,
    }
}

#[test]
fn samples_go_to_the_request_instance_their_goroutine_served_and_the_rest_to_background() {
    let mut c = capture(
        vec![
            request(0, 0xa, "one", "GET", PODS, ""),
            request(100, 0xa, "two", "GET", PODS, ""),
        ],
        vec![response(50, 0xa, 200, 1, 1), response(150, 0xa, 200, 1, 1)],
        true,
    );
    c.header.mem_profile_rate = 1;
    c.header.cpu_sample_period_ns = 10_000_000;
    c.allocs = vec![
        alloc(10, 0xa, 1000),
        // After the first request ended, from a goroutine it started: still its own.
        alloc(60, 0xa, 24),
        alloc(120, 0xa, 4096),
        alloc(130, 0, 512),
        alloc(140, 0xdead, 8),
    ];
    c.cpu = vec![
        cpu(10, 0xa, false),
        cpu(20, 0xa, true),
        cpu(60, 0xa, false),
        cpu(110, 0xa, true),
        cpu(130, 0, false),
        cpu(140, 0xdead, false),
    ];
    let r = aggregate(&c, &[Dimension::UserAgent]);
    let rows: Vec<_> = r
        .requests
        .iter()
        .map(|row| {
            (
                row.dimensions["user_agent"].clone(),
                row.background,
                (row.alloc_bytes, row.alloc_samples),
                (row.cpu_samples, row.cpu_seconds),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("one".into(), false, (1024, 2), (3, 0.03)),
            ("two".into(), false, (4096, 1), (1, 0.01)),
            (Value::Null, true, (520, 2), (2, 0.02)),
        ]
    );
    assert_eq!(
        (r.mem_profile_rate, r.cpu_sample_period_ns),
        (1, 10_000_000)
    );
}

#[test]
fn samples_are_scaled_as_pprof_scales_heap_profiles() {
    let mut cost = AllocCost::default();
    // A 512 KiB sample at the default rate stands for 512 KiB / (1 - 1/e).
    cost.add(512 * 1024, 512 * 1024);
    assert!((cost.bytes - 829_411.4).abs() < 1.0, "{}", cost.bytes);
    // Far larger than the rate: (almost) exactly itself.
    let mut big = AllocCost::default();
    big.add(64 << 20, 512 * 1024);
    assert_eq!(big.bytes.round() as u64, 64 << 20);
    assert_eq!((cost.samples, big.samples), (1, 1));
}

#[test]
fn no_background_row_when_allocations_were_not_tracked() {
    let c = capture(vec![request(0, 0xa, "one", "GET", PODS, "")], vec![], true);
    assert!(aggregate(&c, &DEFAULT_BY)
        .requests
        .iter()
        .all(|r| !r.background));
}
