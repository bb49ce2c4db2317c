//! `cargo xtask demo`: profiles the Go fixture server (Go 1.24, stripped like a release
//! build) under the known load from two clients and prints apiprof's report beside what
//! was sent.

use apiprof_tests::{
    goserver::GoServer,
    load::{self, truth, Http},
    recorder::{report, Recording},
};

#[tokio::main]
async fn main() {
    let build = "goserver-go1.24-stripped";
    let server = GoServer::start(build);
    println!(
        "demo: {build} (pid {}) serving {}",
        server.pid(),
        server.url
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));

    let mut sent = load::drive(&server.url, Http::One, "demo-client-h1/1.0").await;
    sent.extend(load::drive(&server.url, Http::Two, "demo-controller-h2/1.0").await);
    println!(
        "demo: sent {} requests from two clients over HTTP/1.1 and HTTP/2\n",
        sent.len()
    );

    let capture = recording.stop();
    print!("{}", report(&capture, "table", &[]));
    let by = load::BY_CLIENT;
    let json = serde_json::from_str(&report(&capture, "json", &["--by", &by.join(",")]))
        .expect("JSON report");
    let expected = truth(&sent, load::by_client);
    if load::reported(&json, &by) == expected {
        println!(
            "\ndemo: every row matches what the clients sent and received ({} requests)",
            sent.len()
        );
    } else {
        println!("\ndemo: MISMATCH between the report and the load sent");
        std::process::exit(1);
    }
}
