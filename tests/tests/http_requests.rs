//! Every request a Go HTTPS server serves is counted exactly, per method, path, query
//! and HTTP version, on every fixture build (Go 1.19 and 1.24, stripped and not).
//! Root only: loads real eBPF programs into the running kernel.

use apiprof_tests::{
    goserver::GoServer,
    load::{self, Counts, Http},
    recorder::{report_json, Recording},
};

async fn exact_counts_for(build: &str) {
    let server = GoServer::start(build);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));

    let mut sent = Counts::new();
    load::merge(&mut sent, load::drive(&server.url, Http::One).await);
    load::merge(&mut sent, load::drive(&server.url, Http::Two).await);

    let report = report_json(&recording.stop());
    assert_eq!(
        load::reported(&report),
        sent,
        "{build}: reported counts differ from what was sent"
    );
    assert_eq!(report["dropped_events"], 0, "{build}: events were dropped");
    assert_eq!(report["truncated_requests"], 0, "{build}");
    assert_eq!(report["complete"], true, "{build}");
}

#[tokio::test]
async fn counts_every_request_on_go_1_19() {
    exact_counts_for("goserver-go1.19").await;
}

#[tokio::test]
async fn counts_every_request_on_go_1_19_stripped() {
    exact_counts_for("goserver-go1.19-stripped").await;
}

#[tokio::test]
async fn counts_every_request_on_go_1_24() {
    exact_counts_for("goserver-go1.24").await;
}

#[tokio::test]
async fn counts_every_request_on_go_1_24_stripped() {
    exact_counts_for("goserver-go1.24-stripped").await;
}
