//! Every way a request can end is seen, once: its handler returns, panics (the HTTP/1
//! server closes the connection, HTTP/2 resets the stream; `http.ErrAbortHandler` alike)
//! or takes the connection over (`Hijack`, as exec and port-forward do). A request that
//! ended without a response through its writer has status 0. On every fixture build,
//! over HTTP/1.1 and HTTP/2. Root only: loads real eBPF programs.

use std::collections::BTreeMap;

use apiprof_tests::{
    goserver::GoServer,
    load::Http,
    recorder::{report_json, row, Recording},
};

const PATH: &str = "/api/v1/namespaces/default/configmaps";

/// Sends each `(end, times)` as `?end=…` (empty: a normal GET) on `http`, with the
/// user agent `ua`; answers and errors alike are expected.
async fn send(url: &str, http: Http, ua: &str, ends: &[(&str, u32)]) {
    let (client, ..) = http.client(ua);
    for (end, times) in ends {
        for _ in 0..*times {
            let url = format!("{url}{PATH}?end={end}");
            if let Ok(response) = client.get(&url).send().await {
                let _ = response.bytes().await;
            }
        }
    }
}

async fn every_end_of_a_request_is_seen_once(build: &str) {
    let server = GoServer::start(build);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    let ends = [("", 3), ("panic", 2), ("", 1), ("abort", 2), ("", 1)];
    send(&server.url, Http::Two, "ends-h2", &ends).await;
    send(&server.url, Http::One, "ends-h1", &ends).await;
    send(
        &server.url,
        Http::One,
        "ends-hijack",
        &[("hijack", 2), ("", 1)],
    )
    .await;
    let capture = recording.stop();

    let report = report_json(&capture, &["user_agent"]);
    let status = |ua: &str| -> BTreeMap<String, u64> {
        let row = row(&report, ua);
        assert_eq!(row["in_flight"], 0, "{build}: {ua}: {row}");
        serde_json::from_value(row["status"].clone()).expect("status counts")
    };
    let want = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    };
    assert_eq!(status("ends-h2"), want(&[("0", 4), ("200", 5)]), "{build}");
    assert_eq!(status("ends-h1"), want(&[("0", 4), ("200", 5)]), "{build}");
    assert_eq!(
        status("ends-hijack"),
        want(&[("0", 2), ("200", 1)]),
        "{build}"
    );
}

apiprof_tests::goserver_tests!(every_end_of_a_request_is_seen_once);
