//! Every request a Go HTTPS server serves is attributed exactly: per request line and
//! HTTP version, and per client, verb, resource and resourceVersion semantics with its
//! status codes and response bytes, and to the client's address; on every fixture build
//! (Go 1.19, 1.24, 1.26 and 1.27, stripped and not; Go 1.27 position-independent too), over
//! HTTP/1.1 and HTTP/2. Root only: loads real eBPF programs.

use apiprof_tests::{
    goserver::GoServer,
    load::{self, truth, Http},
    recorder::{self, client_ports, report_json, Recording},
};

async fn attributes_every_request(build: &str) {
    let server = GoServer::start(build);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));

    let mut sent = load::drive(&server.url, Http::One, "apiprof-test-h1/1.0").await;
    sent.extend(load::drive(&server.url, Http::Two, "apiprof-test-h2/1.0").await);
    let capture = recording.stop();

    let by_line = ["method", "path", "query", "http_version"];
    let report = report_json(&capture, &by_line);
    let expected = truth(&sent, |s| {
        vec![
            s.asked.method.clone(),
            s.asked.path.clone(),
            s.asked.query.clone(),
            s.http_version.into(),
        ]
    });
    assert_eq!(
        load::reported(&report, &by_line),
        expected,
        "{build}: per request line"
    );
    assert_eq!(report["truncated_requests"], 0, "{build}");
    assert_eq!(report["complete"], true, "{build}");

    let by_client = load::BY_CLIENT;
    let report = report_json(&capture, &by_client);
    let expected = truth(&sent, load::by_client);
    // Bytes are exact here: the fixture never compresses.
    assert_eq!(
        load::reported(&report, &by_client),
        expected,
        "{build}: per client, verb, resource, rv_class"
    );

    // Every request names its client's socket; the HTTP/2 client sent all of its
    // requests on one connection.
    let ports = client_ports(&capture, &server.url);
    assert_eq!(
        ports.keys().collect::<Vec<_>>(),
        ["apiprof-test-h1/1.0", "apiprof-test-h2/1.0"],
        "{build}"
    );
    assert_eq!(ports["apiprof-test-h2/1.0"].len(), 1, "{build}: {ports:?}");
}

#[tokio::test]
async fn attributes_every_request_on_go_1_19() {
    attributes_every_request("goserver-go1.19").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_19_stripped() {
    attributes_every_request("goserver-go1.19-stripped").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_24() {
    attributes_every_request("goserver-go1.24").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_24_stripped() {
    attributes_every_request("goserver-go1.24-stripped").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_26() {
    attributes_every_request("goserver-go1.26").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_26_stripped() {
    attributes_every_request("goserver-go1.26-stripped").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_27() {
    attributes_every_request("goserver-go1.27").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_27_stripped() {
    attributes_every_request("goserver-go1.27-stripped").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_27_pie() {
    attributes_every_request("goserver-go1.27-pie").await;
}

#[tokio::test]
async fn attributes_every_request_on_go_1_27_pie_stripped() {
    attributes_every_request("goserver-go1.27-pie-stripped").await;
}

/// A position-independent build runs at a load address of the kernel's choosing: its
/// stacks are named once that bias is taken off, and its `runtime.MemProfileRate` is
/// read where the process has it.
async fn a_pie_build_is_symbolized_and_its_memprofilerate_read(build: &str) {
    let server = GoServer::start_with_args(build, &["-memprofilerate=8192"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    let (client, ..) = Http::One.client("pie/1.0");
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?spin=30&alloc=64",
        server.url
    );
    for _ in 0..5 {
        client
            .get(&url)
            .send()
            .await
            .expect(&url)
            .bytes()
            .await
            .expect("body");
    }
    let capture = recording.stop();
    let report = report_json(&capture, &["user_agent"]);
    assert_eq!(report["mem_profile_rate"], 8192, "{build}");
    let folded = recorder::report(&capture, "folded", &["--filter", "user_agent=pie/1.0"]);
    let stacks: Vec<&str> = folded.lines().collect();
    assert!(!stacks.is_empty(), "{build}: no CPU samples");
    assert!(
        stacks.iter().all(|s| !s.contains(";0x")),
        "{build}: frames left unnamed:\n{folded}"
    );
    assert!(folded.contains(";main.burn"), "{build}:\n{folded}");
}

#[tokio::test]
async fn a_pie_build_is_symbolized_and_its_memprofilerate_read_on_go_1_27() {
    a_pie_build_is_symbolized_and_its_memprofilerate_read("goserver-go1.27-pie").await;
}

#[tokio::test]
async fn a_pie_build_is_symbolized_and_its_memprofilerate_read_on_go_1_27_stripped() {
    a_pie_build_is_symbolized_and_its_memprofilerate_read("goserver-go1.27-pie-stripped").await;
}
