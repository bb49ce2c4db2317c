//! `apiprof daemon` on the apiserver fixture: exact counts through `/metrics`,
//! `/report` and a real Prometheus; re-attachment after a restart with counts that
//! continue; two API servers kept apart; nothing left attached after SIGTERM, nor after
//! SIGKILL and restarts; findings
//! served live. What it keeps is tested in daemon_state.rs. Root only: loads real eBPF
//! programs.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use apiprof_tests::{
    apiserver::ApiServer,
    attached::Attached,
    daemon::{metric_tallies, samples, Daemon},
    goserver::GoServer,
    kube,
    load::{self, truth, Http, Sent, Tally, BY_CLIENT},
    prometheus::{check_metrics, Prometheus},
    recorder::row,
    refctl::{self, Size},
};

const BUILD: &str = "apiserver-go1.27";

/// The rows of `tallies` whose user agent is one of `clients`.
fn only(tallies: BTreeMap<Vec<String>, Tally>, clients: &[String]) -> BTreeMap<Vec<String>, Tally> {
    tallies
        .into_iter()
        .filter(|(key, _)| clients.contains(&key[0]))
        .collect()
}

/// Counts, statuses and response bytes exactly (the tests' clients ask for no
/// compression, so the bytes the apiserver writes are the bytes they read).
fn assert_matches(
    what: &str,
    got: &BTreeMap<Vec<String>, Tally>,
    want: &BTreeMap<Vec<String>, Tally>,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: rows"
    );
    for (key, want) in want {
        let got = &got[key];
        assert_eq!(
            (got.count, &got.status, got.bytes),
            (want.count, &want.status, want.bytes),
            "{what}: {key:?}"
        );
    }
}

/// What the daemon says through `/metrics`, keyed by `by` labels, for `clients`.
async fn from_metrics(
    daemon: &Daemon,
    by: &[&str],
    clients: &[String],
) -> BTreeMap<Vec<String>, Tally> {
    let text = daemon.get("/metrics").await;
    check_metrics(&text);
    only(
        metric_tallies(
            &samples(&text, "apiprof_requests_total"),
            &samples(&text, "apiprof_response_bytes_total"),
            by,
        ),
        clients,
    )
}

/// The same through Prometheus's query API.
async fn from_prometheus(
    prometheus: &Prometheus,
    by: &[&str],
    clients: &[String],
) -> BTreeMap<Vec<String>, Tally> {
    only(prometheus.request_tallies(by).await, clients)
}

fn user_agents(sent: &[Sent]) -> Vec<String> {
    let mut uas: Vec<String> = sent.iter().map(|s| s.user_agent.clone()).collect();
    uas.sort();
    uas.dedup();
    uas
}

#[tokio::test]
async fn counts_match_the_ledger_through_metrics_report_and_prometheus() {
    let server = ApiServer::start(BUILD);
    let daemon = Daemon::start(&["--pid", &server.pid().to_string()]);
    daemon.wait_attached(server.pid()).await;
    let prometheus = Prometheus::start(&[daemon.url.trim_start_matches("http://").to_owned()]);

    let mut sent = kube::drive(
        &server.url,
        &server.token,
        Http::Two,
        "apiprof-rust-h2/1.0",
        "h2",
    )
    .await;
    sent.extend(
        kube::drive(
            &server.url,
            &server.token,
            Http::One,
            "apiprof-rust-h1/1.0",
            "h1",
        )
        .await,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = refctl::scenario("mixed").expect("the mixed scenario");
    let ledger = refctl::run(&server, scenario, Size::Short, dir.path());
    // WATCHes end a second after their last event; then one drain interval.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scraped_after = SystemTime::now();

    let mut want = truth(&sent, load::by_client);
    want.extend(ledger.truth(&BY_CLIENT));
    let mut clients = user_agents(&sent);
    clients.extend(want.keys().map(|k| k[0].clone()));
    clients.sort();
    clients.dedup();

    let report = daemon.report(&BY_CLIENT).await;
    assert_matches(
        "/report",
        &only(load::reported(&report, &BY_CLIENT), &clients),
        &want,
    );
    assert_matches(
        "/metrics",
        &from_metrics(&daemon, &BY_CLIENT, &clients).await,
        &want,
    );
    prometheus.wait_for_scrape_after(scraped_after).await;
    assert_matches(
        "prometheus",
        &from_prometheus(&prometheus, &BY_CLIENT, &clients).await,
        &want,
    );

    // The live report is the capture-file report's code: the table renders too.
    let table = daemon.get("/report?format=table&window=1h").await;
    assert!(table.contains("refctl-mixed/h2"), "{table}");
}

#[tokio::test]
async fn a_restarted_apiserver_is_reattached_within_2_s_and_its_counts_continue() {
    let mut server = ApiServer::start(BUILD);
    let daemon = Daemon::start(&["--process", BUILD]);
    daemon.wait_attached(server.pid()).await;
    let before = server.pid();
    let mut sent = kube::drive(
        &server.url,
        &server.token,
        Http::Two,
        "apiprof-restart/1.0",
        "before",
    )
    .await;

    server.restart();
    assert_ne!(server.pid(), before);
    daemon.wait_attached(server.pid()).await;
    let metrics = daemon.get("/metrics").await;
    let latency = samples(&metrics, "apiprof_attach_latency_seconds");
    assert_eq!(latency.len(), 1, "{latency:?}");
    let (labels, seconds) = &latency[0];
    println!("re-attached {seconds:.3} s after the apiserver's process started");
    assert!(
        *seconds < 2.0,
        "re-attached {seconds} s after the restart ({labels:?})"
    );

    sent.extend(
        kube::drive(
            &server.url,
            &server.token,
            Http::Two,
            "apiprof-restart/1.0",
            "after",
        )
        .await,
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let want = truth(&sent, load::by_client);
    let clients = user_agents(&sent);
    let report = daemon.report(&BY_CLIENT).await;
    assert_matches(
        "/report",
        &only(load::reported(&report, &BY_CLIENT), &clients),
        &want,
    );
    let by_target = ["user_agent", "verb", "resource", "rv_class", "target"];
    let rows = from_metrics(&daemon, &by_target, &clients).await;
    let targets: Vec<&String> = rows.keys().map(|k| &k[4]).collect();
    assert!(
        targets.iter().all(|t| **t == targets[0].clone()),
        "one target across the restart: {targets:?}"
    );
    assert_matches(
        "/metrics",
        &from_metrics(&daemon, &BY_CLIENT, &clients).await,
        &want,
    );
}

#[tokio::test]
async fn two_apiservers_on_one_node_are_kept_apart() {
    let one = ApiServer::start(BUILD);
    let two = ApiServer::start(BUILD);
    let daemon = Daemon::start(&["--process", BUILD]);
    daemon.wait_attached(one.pid()).await;
    daemon.wait_attached(two.pid()).await;
    // The same client: once to the first, twice to the second.
    let ua = "apiprof-two/1.0";
    let sent_one = kube::drive(&one.url, &one.token, Http::Two, ua, "a").await;
    let mut sent_two = kube::drive(&two.url, &two.token, Http::Two, ua, "b").await;
    sent_two.extend(kube::drive(&two.url, &two.token, Http::One, ua, "c").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let port = |url: &str| url.rsplit(':').next().expect("a port").to_owned();
    let mut want = BTreeMap::new();
    for (server, sent) in [(&one, &sent_one), (&two, &sent_two)] {
        let target = format!("{BUILD}:{}", port(&server.url));
        want.extend(truth(sent, |s| {
            let mut key = load::by_client(s);
            key.push(target.clone());
            key
        }));
    }
    let by = ["user_agent", "verb", "resource", "rv_class", "target"];
    let clients = vec![ua.to_owned()];
    let report = daemon.report(&by).await;
    assert_matches(
        "/report",
        &only(load::reported(&report, &by), &clients),
        &want,
    );
    assert_matches(
        "/metrics",
        &from_metrics(&daemon, &by, &clients).await,
        &want,
    );
}

#[tokio::test]
async fn sigterm_detaches_every_probe() {
    let server = GoServer::start("goserver-go1.24-stripped");
    let before = Attached::now();
    let daemon = Daemon::start(&["--pid", &server.pid().to_string()]);
    daemon.wait_attached(server.pid()).await;
    assert!(
        Attached::now().programs.len() > before.programs.len(),
        "the daemon loaded its programs"
    );

    let status = daemon.terminate();
    assert!(
        status.success(),
        "apiprof daemon exited with {status} on SIGTERM"
    );
    before.wait_back("after SIGTERM");
    // The server still serves, unobserved.
    let (client, _, _) = Http::One.client("after-sigterm");
    let answer = client
        .get(format!("{}/api/v1/namespaces/default/pods", server.url))
        .send()
        .await
        .expect("the server still answers");
    assert!(answer.status().is_success());
}

/// A daemon killed with SIGKILL (no chance to detach) leaves no program, link or uprobe
/// behind once the kernel has closed its files, and three restarts in a row each count
/// their own requests exactly: nothing stale accumulates.
#[tokio::test]
async fn sigkill_and_restarts_leave_nothing_behind() {
    let server = GoServer::start("goserver-go1.27");
    let before = Attached::now();
    for round in 0..3 {
        let daemon = Daemon::start(&["--pid", &server.pid().to_string(), "--no-client-pods"]);
        daemon.wait_attached(server.pid()).await;
        assert!(Attached::now().programs.len() > before.programs.len());
        let user_agent = format!("after-sigkill-{round}");
        let (client, _, _) = Http::Two.client(&user_agent);
        for _ in 0..5 {
            let answer = client
                .get(format!("{}/api/v1/namespaces/default/pods", server.url))
                .send()
                .await
                .expect("the server answers");
            assert!(answer.status().is_success());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = daemon.report(&["user_agent"]).await;
        let row = row(&report, &user_agent);
        assert_eq!(row["count"], 5, "round {round}: {row}");
        // Drop sends SIGKILL and waits for the process.
        drop(daemon);
        before.wait_back(&format!("round {round}, after SIGKILL"));
    }
}

#[tokio::test]
async fn the_daemon_serves_findings_and_their_metrics() {
    let server = ApiServer::start(BUILD);
    let daemon = Daemon::start(&["--pid", &server.pid().to_string()]);
    daemon.wait_attached(server.pid()).await;
    daemon.run_checked(&server, "throttled").await;
    let metrics = daemon.get("/metrics").await;
    check_metrics(&metrics);
    let throttled = samples(&metrics, "apiprof_client_throttled");
    assert!(
        throttled
            .iter()
            .any(|(labels, v)| labels["user_agent"] == "refctl-throttled" && *v == 1.0),
        "{throttled:?}"
    );
    assert!(samples(&metrics, "apiprof_findings")
        .iter()
        .any(|(labels, _)| labels["kind"] == "client_throttling"));
}
