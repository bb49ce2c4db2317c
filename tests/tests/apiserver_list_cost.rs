//! Incident 001's second question — does a LIST served from the watch cache
//! (`resourceVersion=0`) still cost apiserver memory and CPU? — answered on the apiserver
//! fixture: K ConfigMaps LISTed with resourceVersion unset and with resourceVersion=0,
//! each by its own client, and the heap each LIST allocated and the CPU it used printed
//! side by side.
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
    recorder::{background_row, report, report_json, row, Recording},
    APISERVER_BUILDS,
};
use serde_json::json;

/// Objects listed.
const K: usize = 300;
/// LISTs per client: enough for some tens of CPU samples at 99 Hz each.
const LISTS: u64 = 100;
/// CPU each LIST costs the apiserver at least, in samples per 100 LISTs: 2 ms a LIST
/// (measured here: 4–6 ms).
const MIN_SAMPLES_PER_100_LISTS: u64 = 20;
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
    let json = report_json(&capture, &by);
    assert_eq!(json["mem_profile_rate"], MEM_PROFILE_RATE);

    let (quorum, cache) = (row(&json, "list-quorum"), row(&json, "list-watch-cache"));
    assert_eq!(
        (quorum["rv_class"].as_str(), cache["rv_class"].as_str()),
        (Some("most_recent"), Some("any"))
    );
    let per_list = |r: &serde_json::Value| r["alloc_bytes"].as_u64().expect("alloc_bytes") / LISTS;
    let cpu_ms = |r: &serde_json::Value| {
        r["cpu_seconds"].as_f64().expect("cpu_seconds") * 1e3 / LISTS as f64
    };
    let response = received.iter().min().copied().unwrap_or_default() as u64;
    println!(
        "\n{K} ConfigMaps of 1 KiB, {LISTS} LISTs each, MemProfileRate {MEM_PROFILE_RATE}, CPU sampled at 99 Hz:\n\
         {:<36} {:>16} {:>10} {:>12} {:>12}\n\
         {:<36} {:>16} {:>10} {:>12.2} {:>12}\n\
         {:<36} {:>16} {:>10} {:>12.2} {:>12}\n\
         (response ≈ {response} bytes of JSON)",
        "LIST",
        "heap bytes/LIST",
        "samples",
        "CPU ms/LIST",
        "CPU samples",
        "resourceVersion unset (consistent)",
        per_list(quorum),
        quorum["alloc_samples"],
        cpu_ms(quorum),
        quorum["cpu_samples"],
        "resourceVersion=0 (watch cache)",
        per_list(cache),
        cache["alloc_samples"],
        cpu_ms(cache),
        cache["cpu_samples"],
    );
    // Either way the apiserver at least builds the JSON it sends.
    for r in [quorum, cache] {
        assert!(per_list(r) >= response, "{r}");
        assert!(r["alloc_samples"].as_u64() >= Some(LISTS * 10), "{r}");
    }
    // Building a LIST of K objects costs CPU: each variant's row holds its samples.
    let background = background_row(&json);
    let samples = |r: &serde_json::Value| r["cpu_samples"].as_u64().expect("cpu_samples");
    for r in [quorum, cache] {
        assert!(
            samples(r) >= MIN_SAMPLES_PER_100_LISTS * LISTS / 100,
            "{r}: fewer CPU samples than {LISTS} LISTs of {K} objects cost (the background row, \
             outside any request: {} samples)",
            samples(background)
        );
    }
    let lists = samples(quorum) + samples(cache);

    // Where the CPU went, as folded stacks (the flame graph's input): every sample once.
    let folded = report(
        &capture,
        "folded",
        &["--by", "user_agent", "--weight", "cpu"],
    );
    let mut stacks: Vec<(u64, &str)> = folded
        .lines()
        .map(|l| {
            let (stack, n) = l.rsplit_once(' ').expect("`stack weight`");
            (n.parse().expect("a sample count"), stack)
        })
        .collect();
    let total: u64 = stacks.iter().map(|(n, _)| n).sum();
    assert_eq!(total, lists + samples(background), "{folded}");
    // Samples taken while the kernel handled one of apiprof's own uprobes: the observer's
    // cost, on the request that hit the probe (mostly the write probe: a streamed LIST
    // writes once per object).
    let in_probes: u64 = stacks
        .iter()
        .filter(|(_, s)| s.ends_with(";[apiprof uprobe]"))
        .map(|(n, _)| n)
        .sum();
    println!(
        "\nsamples in apiprof's own uprobes: {in_probes} of {total} ({:.0}%)",
        in_probes as f64 * 100.0 / total as f64
    );
    stacks.sort_unstable_by(|a, b| b.cmp(a));
    println!("\nheaviest stacks (samples; client, then outermost frame first):");
    for (n, stack) in stacks.iter().take(8) {
        let frames: Vec<&str> = stack.split(';').collect();
        let shown = if frames.len() > 5 {
            format!(
                "{};…;{}",
                frames[..2].join(";"),
                frames[frames.len() - 3..].join(";")
            )
        } else {
            stack.to_string()
        };
        println!("{n:>5}  {shown}");
    }
}
