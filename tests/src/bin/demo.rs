//! `cargo xtask demo`: profiles the apiserver fixture (k8s.io/apiserver with etcd and
//! the watch cache) under a known load from two clients — every verb and every
//! resourceVersion semantics, over HTTP/1.1 and HTTP/2 — and prints apiprof's report
//! beside a check against what was sent. It ends by writing the capture, a flame graph
//! (SVG, checked in headless Chromium, with a screenshot) and a pprof profile into the
//! folder given as its argument.

use std::{path::PathBuf, process::Command};

use apiprof_tests::{
    apiprof_bin,
    apiserver::ApiServer,
    browser, kube,
    load::{self, truth, Http},
    recorder::{report, Recording},
    APISERVER_BUILDS,
};

/// Rounds of every verb each client sends.
const ROUNDS: usize = 25;

/// The clients: HTTP version, user agent, and the name their objects and label take.
const CLIENTS: [(Http, &str, &str); 2] = [
    (Http::One, "demo-operator-h1/1.0", "operator"),
    (Http::Two, "demo-controller-h2/1.0", "controller"),
];

#[tokio::main]
async fn main() {
    let build = APISERVER_BUILDS[0];
    let server = ApiServer::start(build);
    println!(
        "demo: {build} (pid {}) serving {}",
        server.pid(),
        server.url
    );
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: demo OUTPUT_DIR"));
    std::fs::create_dir_all(&out).expect("creating the demo's output folder");
    let recording = Recording::start(server.pid(), &out.join("capture.jsonl"));

    // Enough rounds that the flame graph has CPU samples of both clients to show.
    let mut sent = Vec::new();
    for _ in 0..ROUNDS {
        for (http, user_agent, slug) in CLIENTS {
            sent.extend(kube::drive(&server.url, &server.token, http, user_agent, slug).await);
        }
    }
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

    let svg = out.join("flamegraph.svg");
    let pprof = out.join("profile.pb.gz");
    // The flame graph shows the requests' work only (the background matches no filter);
    // the pprof profile has everything.
    for (format, file, filter) in [("svg", &svg, "user_agent=*"), ("pprof", &pprof, "")] {
        let status = Command::new(apiprof_bin())
            .arg("report")
            .arg(&capture)
            .args(["--format", format, "--output"])
            .arg(file)
            .args(if filter.is_empty() {
                vec![]
            } else {
                vec!["--filter", filter]
            })
            .status()
            .expect("running apiprof report");
        assert!(status.success(), "apiprof report --format {format} failed");
    }
    let png = out.join("flamegraph.png");
    browser::check_flamegraph(&svg, &CLIENTS.map(|(_, user_agent, _)| user_agent), &png);
    println!(
        "\ndemo: wrote the run's\n\
         - capture:     {}  (apiprof report {0} --format table|json|folded|svg|pprof)\n\
         - flame graph: {}  (CPU of the requests, --filter 'user_agent=*'; open it in a browser: the root frames are the two clients, then verb, resource, rv_class, then the apiserver's Go stacks; click to zoom, Ctrl-F to search)\n\
         - pprof:       {}  (everything, background included: go tool pprof -top {2}; -tagfocus=user_agent=demo-operator selects a client)\n\
         - screenshot:  {}  (headless Chromium drew the clients' frames and zoomed into one when clicked)",
        capture.display(),
        svg.display(),
        pprof.display(),
        png.display()
    );
}
