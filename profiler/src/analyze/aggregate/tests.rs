use std::path::PathBuf;

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::analyze::{attribute::scaled_alloc, DEFAULT_BY};
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
        goid: 2,
        request: ptr,
        method: method.into(),
        path: path.into(),
        query: query.into(),
        http_version: "HTTP/2.0".into(),
        user_agent: ua.into(),
        remote_addr: String::new(),
        client_pod: None,
        client_owner: None,
        truncated: false,
        query_cut: false,
    }
}

fn response(at: u64, ptr: u64, status: u16, bytes: u64) -> HttpResponse {
    HttpResponse {
        ktime_ns: at,
        goroutine: 2,
        request: ptr,
        status,
        response_bytes: bytes,
    }
}

pub(crate) fn header() -> Header {
    Header {
        format_version: FORMAT_VERSION,
        pid: 1,
        binary: PathBuf::from("/x"),
        target: String::new(),
        go_version: "1.24.4".into(),
        symbols: SymbolSource::Symtab,
        probes: vec![],
        started_unix_ms: 0,
        started_ktime_ns: 0,
        mem_profile_rate: 0,
        mem_profile_rate_source: "default".into(),
        cpu_sample_period_ns: 0,
        cautions: Vec::new(),
    }
}

/// The analysis of a capture with `header` and `records` (in event order), ended when
/// `end`, grouped by `by`.
pub(crate) fn analyze(
    header: &Header,
    records: Vec<Record>,
    end: bool,
    by: &[Dimension],
) -> Analysis {
    let mut analysis = Analysis::new(header, by, Filter::default());
    for record in records {
        analysis.record(record);
    }
    if end {
        analysis.record(Record::End(End {
            dropped_events: 3,
            reason: "signal".into(),
            unix_ms: None,
        }));
    }
    analysis
}

fn start(r: HttpRequest) -> Record {
    Record::HttpRequest(r)
}

fn end(r: HttpResponse) -> Record {
    Record::HttpResponse(r)
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[test]
fn rows_group_by_client_verb_resource_and_rv_class_with_status_bytes_and_latency() {
    // The same *http.Request address is reused once the first request is done.
    let records = vec![
        start(request(0, 0xa, "ctl", "GET", PODS, "resourceVersion=0")),
        end(response(2_000_000, 0xa, 200, 100)),
        start(request(
            10_000_000,
            0xa,
            "ctl",
            "GET",
            PODS,
            "resourceVersion=0&limit=5",
        )),
        start(request(11_000_000, 0xb, "ctl", "GET", PODS, "")),
        start(request(12_000_000, 0xc, "ctl", "POST", PODS, "")),
        end(response(13_000_000, 0xc, 201, 9)),
        end(response(14_000_000, 0xa, 200, 50)),
        end(response(15_000_000, 0xb, 200, 7)),
    ];
    let r = analyze(&header(), records, true, &DEFAULT_BY).report();
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
    let (p50, p99) = (any.latency_ms_p50.unwrap(), any.latency_ms_p99.unwrap());
    assert!(
        (p50 - 2.0).abs() < 0.022 && (p99 - 4.0).abs() < 0.044,
        "{p50} {p99}"
    );
    assert_eq!(
        (
            any.dimensions["limit"].clone(),
            any.dimensions["query"].clone()
        ),
        (Value::from(MIXED), Value::from(MIXED))
    );
    assert_eq!(any.dimensions["resource"], "pods");
    assert_eq!(any.dimensions["target"], "x");
    assert_eq!(r.requests[1].status, BTreeMap::from([(201, 1)]));
    assert_eq!(
        (r.by.clone(), r.dropped_events, r.complete),
        (vec!["user_agent", "verb", "resource", "rv_class"], 3, true)
    );
}

#[test]
fn watches_are_reported_by_duration_and_events_and_open_ones_as_in_flight() {
    let records = vec![
        start(request(
            0,
            0xa,
            "w",
            "GET",
            PODS,
            "watch=true&resourceVersion=5",
        )),
        start(request(
            0,
            0xb,
            "w",
            "GET",
            PODS,
            "watch=true&resourceVersion=5",
        )),
        end(response(3_000_000_000, 0xa, 200, 4096)),
    ];
    let r = analyze(&header(), records, false, &[Dimension::Verb]).report();
    let w = &r.requests[0];
    assert_eq!(
        (w.count, w.in_flight, w.response_bytes, w.watch_seconds),
        (2, 1, 4096, 3.0)
    );
    assert_eq!(
        (w.latency_ms_p50, w.dimensions["rv_class"].clone()),
        (None, "exact".into())
    );
    assert!(!r.complete);
}

fn alloc(at: u64, ptr: u64, size: u64) -> Record {
    Record::Alloc(Alloc {
        ktime_ns: at,
        goroutine: 3,
        request: ptr,
        size,
        stack_id: 0,
    })
}

fn cpu(at: u64, ptr: u64, kernel: bool) -> Record {
    Record::Cpu(Cpu {
        ktime_ns: at,
        goroutine: 3,
        request: ptr,
        kernel,
        stack_id: 0,
    })
}

#[test]
fn samples_go_to_the_request_instance_their_goroutine_served_and_the_rest_to_background() {
    let mut h = header();
    h.mem_profile_rate = 1;
    h.cpu_sample_period_ns = 10_000_000;
    let records = vec![
        start(request(0, 0xa, "one", "GET", PODS, "")),
        alloc(10, 0xa, 1000),
        cpu(10, 0xa, false),
        cpu(20, 0xa, true),
        end(response(50, 0xa, 200, 1)),
        // After the first request ended, from a goroutine it started: still its own.
        alloc(60, 0xa, 24),
        cpu(60, 0xa, false),
        start(request(100, 0xa, "two", "GET", PODS, "")),
        cpu(110, 0xa, true),
        alloc(120, 0xa, 4096),
        alloc(130, 0, 512),
        cpu(130, 0, false),
        alloc(140, 0xdead, 8),
        cpu(140, 0xdead, false),
        end(response(150, 0xa, 200, 1)),
    ];
    let r = analyze(&h, records, true, &[Dimension::UserAgent]).report();
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
    // A 512 KiB sample at the default rate stands for 512 KiB / (1 - 1/e).
    let cost = scaled_alloc(512 * 1024, 512 * 1024);
    assert!((cost - 829_411.4).abs() < 1.0, "{cost}");
    // Far larger than the rate: (almost) exactly itself.
    assert_eq!(scaled_alloc(64 << 20, 512 * 1024).round() as u64, 64 << 20);
}

#[test]
fn no_background_row_when_allocations_were_not_tracked() {
    let records = vec![start(request(0, 0xa, "one", "GET", PODS, ""))];
    assert!(analyze(&header(), records, true, &DEFAULT_BY)
        .report()
        .requests
        .iter()
        .all(|r| !r.background));
}

#[test]
fn rows_merged_into_a_coarser_grouping_equal_grouping_the_requests() {
    let records = || {
        vec![
            start(request(0, 0xa, "a", "GET", PODS, "")),
            end(response(5, 0xa, 200, 10)),
            start(request(6, 0xb, "b", "GET", PODS, "resourceVersion=0")),
            start(request(7, 0xc, "b", "POST", PODS, "")),
            end(response(9, 0xc, 201, 3)),
        ]
    };
    let fine = analyze(&header(), records(), true, &Dimension::ALL);
    let mut merged = crate::analyze::rows::Rows::new(&[Dimension::Resource], true);
    merged.merge(&fine.rows);
    let direct = analyze(&header(), records(), true, &[Dimension::Resource]);
    let meta = direct.meta.clone();
    assert_eq!(
        report(&merged, fine.attributor.in_flight(), meta, Vec::new()),
        direct.report()
    );
}
