//! What `apiprof daemon` keeps, and that it stays bounded: 100,000 distinct user agents
//! in bounded memory with an `other` row; client IPs named as their Pods and
//! workloads; capture files equal to its live report, rotated without loss. Root only:
//! loads real eBPF programs.

use std::time::Duration;

use apiprof_tests::{
    apiserver::ApiServer,
    daemon::{capture_files, samples, Daemon},
    goserver::GoServer,
    kube,
    load::{distinct_user_agents, Http},
    process::{cpu_seconds, rss_bytes},
    prometheus::check_metrics,
};

const BUILD: &str = "apiserver-go1.27";

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
    distinct_user_agents(&server.url, 0, 20_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = rss_bytes(daemon.pid());
    let cpu_before = cpu_seconds(daemon.pid());
    distinct_user_agents(&server.url, 20_000, 80_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = rss_bytes(daemon.pid());
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
    distinct_user_agents(&server.url, 0, 5_000).await;
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
