//! `cargo xtask demo`: profiles the apiserver fixture (k8s.io/apiserver with etcd and
//! the watch cache) under a known load from two clients — every verb and every
//! resourceVersion semantics, over HTTP/1.1 and HTTP/2 — and prints apiprof's report
//! beside a check against what was sent.

use apiprof_tests::{
    apiserver::ApiServer,
    kube,
    load::{self, truth, Http},
    recorder::{report, Recording},
    APISERVER_BUILDS,
};

#[tokio::main]
async fn main() {
    let build = APISERVER_BUILDS[0];
    let server = ApiServer::start(build);
    println!(
        "demo: {build} (pid {}) serving {}",
        server.pid(),
        server.url
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));

    let mut sent = kube::drive(
        &server.url,
        &server.token,
        Http::One,
        "demo-operator-h1/1.0",
        "operator",
    )
    .await;
    sent.extend(
        kube::drive(
            &server.url,
            &server.token,
            Http::Two,
            "demo-controller-h2/1.0",
            "controller",
        )
        .await,
    );
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
    let reported = load::reported(&json, &by);
    let counts = |t: &std::collections::BTreeMap<Vec<String>, load::Tally>| {
        t.iter()
            .map(|(k, v)| (k.clone(), v.count, v.status.clone()))
            .collect::<Vec<_>>()
    };
    if counts(&reported) == counts(&expected) {
        println!(
            "\ndemo: every row's count and status codes match what the clients sent and received ({} requests)",
            sent.len()
        );
    } else {
        println!("\ndemo: MISMATCH between the report and the load sent");
        std::process::exit(1);
    }
}
