//! `cargo xtask demo`: profiles the Go fixture server (Go 1.24, stripped like a release
//! build) under the known load and prints apiprof's report beside what was sent.

use apiprof_tests::{
    goserver::GoServer,
    load::{self, Counts, Http},
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

    let mut sent = Counts::new();
    load::merge(&mut sent, load::drive(&server.url, Http::One).await);
    load::merge(&mut sent, load::drive(&server.url, Http::Two).await);
    let total: u64 = sent.values().sum();
    println!(
        "demo: sent {total} requests ({} kinds) over HTTP/1.1 and HTTP/2\n",
        sent.len()
    );

    let capture = recording.stop();
    print!("{}", report(&capture, "table"));
    let reported =
        load::reported(&serde_json::from_str(&report(&capture, "json")).expect("JSON report"));
    if reported == sent {
        println!("\ndemo: every row matches the load that was sent ({total} requests)");
    } else {
        println!("\ndemo: MISMATCH between the report and the load sent:\n sent {sent:?}\n reported {reported:?}");
        std::process::exit(1);
    }
}
