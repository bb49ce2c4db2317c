//! Heap allocations are attributed to the client whose request caused them: the Go
//! fixture allocates exactly N bytes for `?alloc=N` (half on the request's goroutine,
//! half on a goroutine it starts), and the bytes apiprof attributes per user agent are
//! within 10% of N. On every fixture build. Root only: loads real eBPF programs.

use std::collections::BTreeMap;

use apiprof_tests::{
    goserver::GoServer,
    load::Http,
    recorder::{background_row, report_json, Recording},
};
use serde_json::Value;

const PATH: &str = "/api/v1/namespaces/default/configmaps";
/// Size of each object the fixture allocates: a Go size class, so none is rounded up.
const OBJECT: u64 = 4096;

/// Sends one `?alloc=N` request per `(user agent, N)` on its own HTTP/2 connection,
/// after a warm-up request (the first request a process serves pays one-time runtime
/// initialisation that would otherwise land on the first client), and returns the
/// bytes attributed per user agent with their sample counts, plus the background row.
async fn attributed(
    build: &str,
    memprofilerate: u64,
    clients: &[(&str, u64)],
) -> (BTreeMap<String, (f64, u64)>, Value) {
    let flag = format!("-memprofilerate={memprofilerate}");
    let server = GoServer::start_with_args(build, &[&flag]);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    let get = |ua: &str, query: String| {
        let (client, ..) = Http::Two.client(ua);
        let url = format!("{}{PATH}?{query}", server.url);
        async move {
            let response = client.get(&url).send().await.expect(&url);
            assert_eq!(response.status(), 200, "{url}");
        }
    };
    get("warm-up", String::new()).await;
    for (ua, n) in clients {
        get(ua, format!("alloc={n}&size={OBJECT}")).await;
    }
    let capture = recording.stop();
    let report = report_json(&capture, &["user_agent"]);
    assert_eq!(report["mem_profile_rate"], memprofilerate, "{build}");
    let rows = report["requests"].as_array().expect("rows");
    let per_client = rows
        .iter()
        .filter(|r| r["background"] == false)
        .map(|r| {
            (
                r["user_agent"].as_str().expect("user agent").to_owned(),
                (
                    r["alloc_bytes"].as_f64().expect("alloc_bytes"),
                    r["alloc_samples"].as_u64().expect("alloc_samples"),
                ),
            )
        })
        .collect();
    let background = background_row(&report).clone();
    (per_client, background)
}

fn assert_within_10_percent(
    build: &str,
    attributed: &BTreeMap<String, (f64, u64)>,
    clients: &[(&str, u64)],
) {
    for (ua, n) in clients {
        let (bytes, samples) = attributed[*ua];
        let n = *n as f64;
        eprintln!("{build}: {ua}: allocated {n} bytes, attributed {bytes:.0} ({samples} samples, {:+.1}%)", (bytes - n) / n * 100.0);
        assert!(
            (bytes - n).abs() <= 0.1 * n,
            "{build}: {ua} allocated {n} bytes, apiprof attributed {bytes:.0} ({samples} samples)"
        );
    }
}

/// Every allocation sampled (`memprofilerate=1`): the figures are exact counts, so the
/// 10% bound measures attribution alone (what the server itself allocates per request
/// is a few KiB on top of N).
async fn every_allocation_attributed_within_10_percent(build: &str) {
    let clients = [
        ("alloc-64k", 64 << 10),
        ("alloc-1m", 1 << 20),
        ("alloc-16m", 16 << 20),
        ("alloc-64m", 64 << 20),
    ];
    let (attributed, background) = attributed(build, 1, &clients).await;
    assert_within_10_percent(build, &attributed, &clients);
    for (ua, n) in clients {
        // One sample per object, at least.
        assert!(
            attributed[ua].1 >= n / OBJECT,
            "{build}: {ua}: {:?}",
            attributed[ua]
        );
    }
    assert!(
        background["alloc_samples"].as_u64() > Some(0),
        "{build}: {background}"
    );
}

/// Sampled as the runtime samples by default, at a rate where the estimate of 64 MiB
/// in 4 KiB objects has a standard error of 1.5% (about 3,600 samples of 16,384).
async fn sampled_allocations_scaled_within_10_percent(build: &str) {
    let clients = [("alloc-64m-sampled", 64 << 20)];
    let (attributed, _) = attributed(build, 16 << 10, &clients).await;
    assert_within_10_percent(build, &attributed, &clients);
    let samples = attributed["alloc-64m-sampled"].1;
    assert!(
        (2_000..10_000).contains(&samples),
        "{build}: {samples} samples: the runtime sampled every allocation or far too few"
    );
}

apiprof_tests::goserver_tests!(
    every_allocation_attributed_within_10_percent,
    sampled_allocations_scaled_within_10_percent,
);
