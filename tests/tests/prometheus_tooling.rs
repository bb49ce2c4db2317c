//! The Prometheus tooling the daemon's `/metrics` tests stand on: promtool accepts a clean
//! exposition and rejects a bad one, and a real Prometheus scrapes a target and answers
//! queries with its exact values.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpListener,
    time::SystemTime,
};

use apiprof_tests::prometheus::{check_metrics, Prometheus, JOB};

/// A clean exposition: a counter with labels and a gauge with a fraction.
const EXPOSITION: &str = "\
# HELP apiprof_selftest_requests_total Requests served, by verb.
# TYPE apiprof_selftest_requests_total counter
apiprof_selftest_requests_total{verb=\"get\"} 42
apiprof_selftest_requests_total{verb=\"list\"} 7
# HELP apiprof_selftest_ratio A fraction.
# TYPE apiprof_selftest_ratio gauge
apiprof_selftest_ratio 0.25
";

/// Serves `text` as `/metrics` (any path, in fact) on a loopback port from a thread that
/// answers HTTP/1.0 until the test ends; returns "127.0.0.1:PORT".
fn serve(text: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let address = listener.local_addr().expect("local address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.expect("accepting a scrape");
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).expect("reading a scrape request");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let response = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\n\r\n{text}",
                text.len()
            );
            stream
                .write_all(response.as_bytes())
                .expect("answering a scrape");
        }
    });
    address
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn promtool_accepts_a_clean_exposition() {
    check_metrics(EXPOSITION);
}

#[test]
fn promtool_rejects_a_counter_without_total_and_says_why() {
    let bad = "\
# HELP apiprof_selftest_requests Requests served.
# TYPE apiprof_selftest_requests counter
apiprof_selftest_requests 3
";
    let panic = std::panic::catch_unwind(|| check_metrics(bad))
        .expect_err("check_metrics accepted a counter not named *_total");
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message
            .contains(r#"apiprof_selftest_requests counter metrics should have "_total" suffix"#),
        "{message}"
    );
}

#[tokio::test]
async fn prometheus_scrapes_a_target_and_queries_give_its_exact_values() {
    let target = serve(EXPOSITION);
    let prometheus = Prometheus::start(std::slice::from_ref(&target));
    prometheus.wait_for_scrape_after(SystemTime::now()).await;

    let requests = prometheus.query("apiprof_selftest_requests_total").await;
    let series = |verb| {
        labels(&[
            ("__name__", "apiprof_selftest_requests_total"),
            ("instance", &target),
            ("job", JOB),
            ("verb", verb),
        ])
    };
    assert_eq!(requests, [(series("get"), 42.0), (series("list"), 7.0)]);

    let ratio = prometheus.query("apiprof_selftest_ratio").await;
    let gauge = labels(&[
        ("__name__", "apiprof_selftest_ratio"),
        ("instance", &target),
        ("job", JOB),
    ]);
    assert_eq!(ratio, [(gauge, 0.25)]);

    let total = prometheus
        .query("sum(apiprof_selftest_requests_total)")
        .await;
    assert_eq!(total, [(BTreeMap::new(), 49.0)]);
}
