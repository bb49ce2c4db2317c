//! Incident 001's second question — does a LIST served from the watch cache
//! (`resourceVersion=0`) still cost apiserver memory? — answered on the apiserver
//! fixture: K ConfigMaps LISTed with resourceVersion unset and with resourceVersion=0,
//! each by its own client, and the heap each LIST allocated printed side by side.
//!
//! Measured here (k8s.io/apiserver 0.36): both cost about the same, ~1.5x the JSON sent.
//! Since Kubernetes 1.31 (ConsistentListFromCache, locked on since 1.34) an unset
//! resourceVersion is also served from the watch cache, once etcd confirms the cache is
//! fresh; on 1.28–1.30 it was a quorum read from etcd. Either way the LIST's cost is
//! dominated by building the response, which resourceVersion=0 does not avoid.
//! Root only: loads real eBPF programs.

use apiprof_tests::{
    apiserver::ApiServer,
    load::Http,
    recorder::{report, report_json, Recording},
    APISERVER_BUILDS,
};
use serde_json::json;

/// Objects listed.
const K: usize = 300;
/// LISTs per client.
const LISTS: u64 = 10;
/// Sampling rate: one sample per 4 KiB allocated on average, so a LIST of ~400 KiB of
/// JSON yields about a hundred samples.
const MEM_PROFILE_RATE: u64 = 4096;

#[tokio::test]
async fn lists_from_etcd_and_from_the_watch_cache_side_by_side() {
    let build = APISERVER_BUILDS[0];
    let rate = format!("-memprofilerate={MEM_PROFILE_RATE}");
    let server = ApiServer::start_with_args(build, &[&rate]);
    let (client, ..) = Http::Two.client("apiprof-setup/1.0");
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url);
    for i in 0..K {
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i:04}")},
            "data": {"payload": "x".repeat(1024)},
        });
        let response = client
            .post(&url)
            .bearer_auth(&server.token)
            .header("Content-Type", "application/json")
            .body(object.to_string())
            .send()
            .await
            .expect("creating a ConfigMap");
        assert_eq!(response.status(), 201);
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    let mut received = Vec::new();
    for (ua, query) in [
        ("list-quorum", ""),
        ("list-watch-cache", "?resourceVersion=0"),
    ] {
        for _ in 0..LISTS {
            let response = client
                .get(format!("{url}{query}"))
                .bearer_auth(&server.token)
                .header("User-Agent", ua)
                .send()
                .await
                .expect("listing");
            assert_eq!(response.status(), 200);
            let bytes = response.bytes().await.expect("reading the list");
            let body: serde_json::Value = serde_json::from_slice(&bytes).expect("a ConfigMapList");
            assert_eq!(body["items"].as_array().map(Vec::len), Some(K), "{ua}");
            received.push(bytes.len());
        }
    }
    let capture = recording.stop();
    let by = ["user_agent", "rv_class"];
    print!("{}", report(&capture, "table", &["--by", &by.join(",")]));
    let report = report_json(&capture, &by);
    assert_eq!(report["mem_profile_rate"], MEM_PROFILE_RATE);

    let row = |ua: &str| {
        report["requests"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["user_agent"] == ua)
            .unwrap_or_else(|| panic!("no row for {ua}"))
            .clone()
    };
    let (quorum, cache) = (row("list-quorum"), row("list-watch-cache"));
    assert_eq!(
        (quorum["rv_class"].as_str(), cache["rv_class"].as_str()),
        (Some("most_recent"), Some("any"))
    );
    let per_list = |r: &serde_json::Value| r["alloc_bytes"].as_u64().expect("alloc_bytes") / LISTS;
    let response = received.iter().min().copied().unwrap_or_default() as u64;
    println!(
        "\n{K} ConfigMaps of 1 KiB, {LISTS} LISTs each, MemProfileRate {MEM_PROFILE_RATE}:\n\
         {:<36} {:>16} {:>10}\n\
         {:<36} {:>16} {:>10}\n\
         {:<36} {:>16} {:>10}\n\
         (response ≈ {response} bytes of JSON)",
        "LIST",
        "heap bytes/LIST",
        "samples",
        "resourceVersion unset (consistent)",
        per_list(&quorum),
        quorum["alloc_samples"],
        "resourceVersion=0 (watch cache)",
        per_list(&cache),
        cache["alloc_samples"],
    );
    // Either way the apiserver at least builds the JSON it sends.
    for r in [&quorum, &cache] {
        assert!(per_list(r) >= response, "{r}");
        assert!(r["alloc_samples"].as_u64() >= Some(LISTS * 10), "{r}");
    }
}
