//! `apiprof daemon` on the apiserver fixture: exact counts through `/metrics`,
//! `/report` and a real Prometheus; re-attachment after a restart with counts that
//! continue; two API servers kept apart; nothing left attached after SIGTERM; bounded
//! memory under 100,000 distinct user agents. Root only: loads real eBPF programs.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use apiprof_tests::{
    apiserver::ApiServer,
    daemon::{metric_tallies, samples, Daemon},
    goserver::GoServer,
    kube,
    load::{self, truth, Http, Sent, Tally, BY_CLIENT},
    prometheus::{check_metrics, Prometheus},
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

/// Counts and statuses exactly, response bytes within 1% (the apiserver compresses
/// some responses: the client counts decoded bytes, apiprof the bytes written).
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
            (got.count, &got.status),
            (want.count, &want.status),
            "{what}: {key:?}"
        );
        assert!(
            got.bytes.abs_diff(want.bytes) <= want.bytes / 100,
            "{what}: {key:?}: {} response bytes, the client received {}",
            got.bytes,
            want.bytes
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
    let labels = by.join(",");
    let requests = prometheus
        .query(&format!("sum by ({labels},code) (apiprof_requests_total)"))
        .await;
    let bytes = prometheus
        .query(&format!("sum by ({labels}) (apiprof_response_bytes_total)"))
        .await;
    only(metric_tallies(&requests, &bytes, by), clients)
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
    assert_eq!(report["dropped_events"], 0);
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

/// BPF programs and links loaded in the kernel, by id (`bpf(BPF_*_GET_NEXT_ID)`).
fn bpf_objects(command: i32) -> Vec<u32> {
    #[repr(C)]
    struct NextId {
        start_id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut ids = Vec::new();
    let mut attr = NextId {
        start_id: 0,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: the bpf syscall reads and writes the attr we pass, of the size we give.
    while unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            &mut attr as *mut NextId,
            std::mem::size_of::<NextId>(),
        )
    } == 0
    {
        ids.push(attr.next_id);
        attr.start_id = attr.next_id;
    }
    ids
}

const BPF_PROG_GET_NEXT_ID: i32 = 11;
const BPF_LINK_GET_NEXT_ID: i32 = 31;

#[tokio::test]
async fn sigterm_detaches_every_probe() {
    let server = GoServer::start("goserver-go1.24-stripped");
    let programs = bpf_objects(BPF_PROG_GET_NEXT_ID);
    let links = bpf_objects(BPF_LINK_GET_NEXT_ID);
    let uprobe_events =
        std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default();
    let daemon = Daemon::start(&["--pid", &server.pid().to_string()]);
    daemon.wait_attached(server.pid()).await;
    let attached = bpf_objects(BPF_PROG_GET_NEXT_ID);
    assert!(
        attached.len() > programs.len(),
        "the daemon loaded its programs"
    );

    let status = daemon.terminate();
    assert!(
        status.success(),
        "apiprof daemon exited with {status} on SIGTERM"
    );
    assert_eq!(
        bpf_objects(BPF_PROG_GET_NEXT_ID),
        programs,
        "programs left loaded"
    );
    assert_eq!(bpf_objects(BPF_LINK_GET_NEXT_ID), links, "links left");
    assert_eq!(
        std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default(),
        uprobe_events,
        "uprobe events left behind"
    );
    // The server still serves, unobserved.
    let (client, _, _) = Http::One.client("after-sigterm");
    let answer = client
        .get(format!("{}/api/v1/namespaces/default/pods", server.url))
        .send()
        .await
        .expect("the server still answers");
    assert!(answer.status().is_success());
}

/// The daemon's resident memory, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// CPU time process `pid` has used, user and kernel, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat has a command name")
        .1
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15, the 12th and 13th after the name.
    let ticks =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Sends `n` GETs to `server`, each with its own user agent `ua-{first + i}`, 8 at a
/// time.
async fn distinct_user_agents(server: &GoServer, first: u32, n: u32) {
    let (client, _, _) = Http::One.client("unused");
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for i in (lane..n).step_by(8) {
                let answer = client
                    .get(&url)
                    .header("user-agent", format!("ua-{}", first + i))
                    .send()
                    .await
                    .expect("GET");
                assert!(answer.status().is_success());
                answer.bytes().await.expect("body");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a lane");
    }
}

#[tokio::test]
async fn a_hundred_thousand_user_agents_leave_memory_bounded_and_an_other_row() {
    const TOP: usize = 50;
    let server = GoServer::start("goserver-go1.24-stripped");
    let daemon = Daemon::start(&[
        "--pid",
        &server.pid().to_string(),
        "--top-clients",
        &TOP.to_string(),
        "--no-cpu",
    ]);
    daemon.wait_attached(server.pid()).await;
    distinct_user_agents(&server, 0, 20_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = rss(daemon.pid());
    let cpu_before = cpu_seconds(daemon.pid());
    distinct_user_agents(&server, 20_000, 80_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = rss(daemon.pid());
    let cpu = cpu_seconds(daemon.pid()) - cpu_before;
    println!(
        "daemon RSS: {} MiB after 20,000 user agents, {} MiB after 100,000; daemon CPU {cpu:.2} s for 80,000 requests ({:.1} µs a request)",
        early >> 20,
        late >> 20,
        cpu / 80_000.0 * 1e6
    );

    let report = daemon.report(&["user_agent"]).await;
    let rows: Vec<&serde_json::Value> = report["requests"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["background"] != true)
        .collect();
    let total: u64 = rows
        .iter()
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        total, 100_000,
        "every request is counted, by name or as other"
    );
    assert!(rows.len() <= TOP + 1, "{} rows", rows.len());
    let other = rows
        .iter()
        .find(|r| r["user_agent"] == "other")
        .expect("an other row");
    assert!(other["count"].as_u64() >= Some(100_000 - TOP as u64));
    let metrics = daemon.get("/metrics").await;
    check_metrics(&metrics);
    assert!(samples(&metrics, "apiprof_requests_total").len() <= TOP + 1);
    // Unbounded state would keep 80,000 more rows (about 1 KiB each): 80 MB. Bounded,
    // the RSS moves by what the allocator keeps around, a few MiB.
    assert!(
        late < early + (16 << 20),
        "RSS grew from {early} to {late} bytes over 80,000 more user agents"
    );
}

/// `n` GETs of ConfigMaps from `local` (a loopback address of 127/8) as `user_agent`.
async fn from_address(server: &ApiServer, local: &str, user_agent: &str, n: usize) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(local.parse::<std::net::IpAddr>().expect("an IP"))
        .user_agent(user_agent)
        .build()
        .expect("an HTTP client");
    for _ in 0..n {
        let answer = client
            .get(format!(
                "{}/api/v1/namespaces/default/configmaps",
                server.url
            ))
            .bearer_auth(&server.token)
            .send()
            .await
            .expect("GET");
        assert!(answer.status().is_success(), "{}", answer.status());
    }
}

#[tokio::test]
async fn client_ips_map_to_their_pods_and_workloads() {
    let server = ApiServer::start(BUILD);
    server
        .create_pod(
            "team-a",
            "web-7d4b9c-x2bq5",
            ("ReplicaSet", "web-7d4b9c"),
            serde_json::json!({"pod-template-hash": "7d4b9c"}),
            "127.0.0.2",
        )
        .await;
    server
        .create_pod(
            "team-b",
            "db-0",
            ("StatefulSet", "db"),
            serde_json::json!({}),
            "127.0.0.3",
        )
        .await;
    let daemon = Daemon::start_with_env(
        &["--pid", &server.pid().to_string()],
        &[("KUBECONFIG", &server.kubeconfig)],
    );
    daemon.wait_attached(server.pid()).await;
    // The daemon's Pod reflector lists after it starts: wait until a probe request is
    // named (probes have their own user agent, left out below).
    let by = ["user_agent", "client_ip", "client_pod", "client_owner"];
    loop {
        from_address(&server, "127.0.0.2", "probe", 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let report = daemon.report(&by).await;
        if report["requests"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["user_agent"] == "probe" && r["client_pod"] == "team-a/web-7d4b9c-x2bq5")
        {
            break;
        }
    }
    from_address(&server, "127.0.0.2", "web", 3).await;
    from_address(&server, "127.0.0.3", "db", 2).await;
    from_address(&server, "127.0.0.1", "node", 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let report = daemon.report(&by).await;
    let mut rows: Vec<(String, String, String, String, u64)> = report["requests"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| ["web", "db", "node"].contains(&r["user_agent"].as_str().unwrap_or("")))
        .map(|r| {
            let text = |f: &str| r[f].as_str().unwrap_or("null").to_owned();
            (
                text("user_agent"),
                text("client_ip"),
                text("client_pod"),
                text("client_owner"),
                r["count"].as_u64().expect("count"),
            )
        })
        .collect();
    rows.sort();
    let row = |ua: &str, ip: &str, pod: &str, owner: &str, n| {
        (
            ua.to_owned(),
            ip.to_owned(),
            pod.to_owned(),
            owner.to_owned(),
            n,
        )
    };
    assert_eq!(
        rows,
        [
            row("db", "127.0.0.3", "team-b/db-0", "StatefulSet/team-b/db", 2),
            row("node", "127.0.0.1", "null", "null", 4),
            row(
                "web",
                "127.0.0.2",
                "team-a/web-7d4b9c-x2bq5",
                "Deployment/team-a/web",
                3
            ),
        ]
    );
    // Report dimensions, never metric labels.
    assert!(!daemon.get("/metrics").await.contains("client_pod"));
}

/// The files in the daemon's capture directory, by name (oldest first).
fn capture_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the capture directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn the_live_report_is_the_report_of_its_capture_file() {
    let server = ApiServer::start(BUILD);
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(&[
        "--pid",
        &server.pid().to_string(),
        "--capture",
        &dir.path().display().to_string(),
        // Samples taken after the live report is read would make the two differ.
        "--no-cpu",
        "--no-alloc",
    ]);
    daemon.wait_attached(server.pid()).await;
    kube::drive(
        &server.url,
        &server.token,
        Http::Two,
        "apiprof-capture/1.0",
        "cap",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let by = ["user_agent", "verb", "resource", "rv_class", "target"];
    let mut live = daemon.report(&by).await;
    // `apiprof report http://…` asks the daemon the same.
    let asked: serde_json::Value = serde_json::from_str(&apiprof_tests::recorder::report(
        std::path::Path::new(&daemon.url),
        "json",
        &["--by", &by.join(","), "--window", "1h"],
    ))
    .expect("JSON");
    assert_eq!(asked, live);
    assert!(daemon.terminate().success());

    let files = capture_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let mut file = apiprof_tests::recorder::report_json(&files[0], &by);
    assert_eq!(
        file["complete"], true,
        "the daemon ended the capture on SIGTERM"
    );
    // The apiserver's own requests (loopback client) may go on between the two reads.
    for report in [&mut live, &mut file] {
        for list in ["requests", "findings"] {
            report[list]
                .as_array_mut()
                .expect("a list")
                .retain(|r| r["user_agent"] == "apiprof-capture/1.0");
        }
    }
    assert!(!live["requests"].as_array().expect("rows").is_empty());
    assert_eq!(live, file);
}

#[tokio::test]
async fn rotated_capture_files_each_read_alone_and_lose_nothing() {
    let server = GoServer::start("goserver-go1.24-stripped");
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(&[
        "--pid",
        &server.pid().to_string(),
        "--capture",
        &dir.path().display().to_string(),
        "--capture-file-mib",
        "1",
        "--capture-files",
        "100",
    ]);
    daemon.wait_attached(server.pid()).await;
    // ~600 bytes of capture a request: 5,000 requests fill three files and part of a
    // fourth.
    distinct_user_agents(&server, 0, 5_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(daemon.terminate().success());

    let files = capture_files(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    let mut total = 0;
    for file in &files {
        let report = apiprof_tests::recorder::report_json(file, &["verb"]);
        assert_eq!(report["complete"], true, "{}", file.display());
        total += report["requests"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["background"] != true)
            .map(|r| r["count"].as_u64().expect("count"))
            .sum::<u64>();
    }
    assert_eq!(total, 5_000);
}

#[tokio::test]
async fn the_daemon_serves_findings_and_their_metrics() {
    let server = ApiServer::start(BUILD);
    let daemon = Daemon::start(&["--pid", &server.pid().to_string()]);
    daemon.wait_attached(server.pid()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = refctl::scenario("throttled").expect("the throttled scenario");
    let ledger = refctl::run(&server, scenario, Size::Short, dir.path());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let findings: serde_json::Value =
        serde_json::from_str(&daemon.get("/findings").await).expect("/findings is JSON");
    let checks = apiprof_tests::findings::check(
        scenario,
        Size::Short,
        &ledger,
        &serde_json::json!({ "findings": findings }),
    );
    print!("{checks}");
    assert!(checks.passed(), "{checks}");
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
