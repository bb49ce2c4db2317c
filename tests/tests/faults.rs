//! Faults around a running apiprof: the API server restarted under `apiprof record`;
//! the observed server's binary replaced by another build (another Go version, stripped) and restarted; a process the daemon cannot
//! serve; the daemon stopped (SIGSTOP) for 30 s under load; and a flood of events far
//! beyond what the daemon drains. Root only: loads real eBPF programs.

use std::{path::Path, time::Duration};

use apiprof::capture::unix_ms;
use apiprof_tests::{
    apiserver::ApiServer,
    attached::Attached,
    daemon::{capture_files, samples, Daemon},
    fixtures_dir,
    goserver::{self, GoServer},
    kube,
    load::{self, truth, Http, BY_CLIENT},
    recorder::{self, Recording},
};

/// The observed executable's name: the daemon finds it by this name.
const EXE: &str = "apiserver-under-test";

/// Installs fixture `build` at `path` as an upgrade does: a new file renamed over the
/// old one (a running process keeps the old inode).
fn install(build: &str, path: &Path) {
    let staged = path.with_extension("new");
    std::fs::copy(fixtures_dir().join(build), &staged).expect("copying the fixture");
    std::fs::rename(&staged, path).expect("renaming it into place");
}

fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .expect("capture file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// `apiprof record --pid` follows one process: when the API server restarts, the
/// capture keeps every request the old process served, ends where it exited (a time
/// between the restart's SIGTERM and the new process's readiness), and its report says
/// so and what to do (the daemon follows restarts).
#[tokio::test]
async fn an_apiserver_restarted_under_record_ends_the_capture_where_it_exited() {
    let mut server = ApiServer::start("apiserver-go1.27");
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    let ua = "record-restart/1.0";
    let sent = kube::drive(&server.url, &server.token, Http::Two, ua, "restart").await;
    let sigterm = unix_ms();
    server.restart();
    let ready = unix_ms();
    let capture = recording.finish();

    let json = recorder::report_json(&capture, &BY_CLIENT);
    let mut reported = load::reported(&json, &BY_CLIENT);
    reported.retain(|key, _| key[0] == ua);
    assert_eq!(reported, truth(&sent, load::by_client));
    let end = records(&capture).pop().expect("records");
    assert_eq!(
        (&end["type"], &end["reason"]),
        (&"end".into(), &"target exited".into()),
        "{end}"
    );
    let exited = end["unix_ms"].as_u64().expect("the exit's time");
    assert!(
        (sigterm..=ready).contains(&exited),
        "{sigterm} ≤ {exited} ≤ {ready}"
    );
    assert_eq!(json["target_exited_unix_ms"], exited);
    let table = recorder::report(&capture, "table", &[]);
    assert!(
        table.contains("the observed process exited at 20")
            && table.contains("`apiprof record` must be started again on the new process"),
        "{table}"
    );
}

#[tokio::test]
async fn a_binary_replaced_by_another_build_is_reattached_and_its_capture_marks_the_gap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (exe, captures) = (dir.path().join(EXE), dir.path().join("captures"));
    install("goserver-go1.27", &exe);
    let server = GoServer::start_path(&exe, &[]);
    let daemon = Daemon::start(&["--process", EXE, "--capture", captures.to_str().unwrap()]);
    daemon.wait_attached(server.pid()).await;
    let mut sent = load::drive(&server.url, Http::Two, "fault-before/1.0").await;

    drop(server);
    install("goserver-go1.19-stripped", &exe);
    let server = GoServer::start_path(&exe, &[]);
    daemon.wait_attached(server.pid()).await;
    sent.extend(load::drive(&server.url, Http::One, "fault-after/1.0").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut reported = load::reported(&daemon.report(&BY_CLIENT).await, &BY_CLIENT);
    reported.retain(|key, _| key[0].starts_with("fault-"));
    assert_eq!(reported, truth(&sent, load::by_client));

    // One file per process: the first ends where its process exited, naming the time;
    // the second begins with the new build's header.
    drop(daemon);
    let files = capture_files(&captures);
    assert_eq!(files.len(), 2, "{files:?}");
    let (first, second) = (records(&files[0]), records(&files[1]));
    let version = |header: &serde_json::Value| header["go_version"].as_str().unwrap().to_owned();
    assert!(version(&first[0]).starts_with("1.27."), "{}", first[0]);
    assert!(version(&second[0]).starts_with("1.19."), "{}", second[0]);
    assert_eq!(second[0]["symbols"], "gopclntab", "{}", second[0]);
    let end = first.last().expect("records");
    assert_eq!(
        (&end["type"], &end["reason"]),
        (&"end".into(), &"target exited".into()),
        "{end}"
    );
    let exited = end["unix_ms"].as_u64().expect("the exit's time");
    let restarted = second[0]["started_unix_ms"].as_u64().expect("start");
    assert!(exited <= restarted, "{exited} > {restarted}");
    let json = recorder::report(&files[0], "json", &[]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["target_exited_unix_ms"], exited);
    let table = recorder::report(&files[0], "table", &[]);
    assert!(
        table.contains("the observed process exited at 20"),
        "{table}"
    );
}

/// A process the daemon cannot serve (a stripped build whose Go function table cannot
/// be read) is counted in `apiprof_attach_errors_total` with nothing attached, and the
/// daemon goes on: the next process of that name, a good build, is served exactly.
#[tokio::test]
async fn a_process_the_daemon_cannot_serve_is_counted_and_left_unattached() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = goserver::edited(dir.path(), "goserver-go1.27-stripped", EXE, |elf| {
        goserver::cut_gopclntab(elf)
    });
    let before = Attached::now();
    let daemon = Daemon::start(&["--process", EXE, "--no-client-pods"]);
    let server = GoServer::start_path(&exe, &[]);
    let start = std::time::Instant::now();
    while total(&daemon, "apiprof_attach_errors_total").await < 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the refused process was never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    before.wait_back("a process the daemon refused");

    drop(server);
    install("goserver-go1.27", &exe);
    let server = GoServer::start_path(&exe, &[]);
    daemon.wait_attached(server.pid()).await;
    let sent = load::drive(&server.url, Http::Two, "after-refusal/1.0").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut reported = load::reported(&daemon.report(&BY_CLIENT).await, &BY_CLIENT);
    reported.retain(|key, _| key[0] == "after-refusal/1.0");
    assert_eq!(reported, truth(&sent, load::by_client));
    assert_eq!(total(&daemon, "apiprof_attach_errors_total").await, 1.0);
}

/// Requests of the load that runs through the daemon's stop: each allocates 256 objects
/// of 256 B, every one a heap sample at `-memprofilerate=1`, so the 16 MiB ring buffer
/// fills in about a hundred requests.
const HEAVY: &str = "/api/v1/namespaces/default/configmaps?alloc=256&size=256";

/// A metric's sum over its series.
async fn total(daemon: &Daemon, name: &str) -> f64 {
    samples(&daemon.get("/metrics").await, name)
        .iter()
        .map(|(_, v)| v)
        .sum()
}

/// The median of `latencies` (seconds), in microseconds.
fn median_us(latencies: &mut [f64]) -> f64 {
    latencies.sort_by(f64::total_cmp);
    latencies[latencies.len() / 2] * 1e6
}

/// Runs the heavy load on 4 connections until `stop` is set; returns each request's
/// (seconds since `t0`, latency in seconds).
async fn heavy_load(
    url: String,
    t0: std::time::Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(f64, f64)> {
    let mut lanes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (url, stop) = (format!("{url}{HEAVY}"), stop.clone());
        let (client, ..) = Http::One.client("flood/1.0");
        lanes.spawn(async move {
            let mut done = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let start = std::time::Instant::now();
                let response = client.get(&url).send().await.expect("heavy request");
                response.bytes().await.expect("body");
                done.push((
                    start.duration_since(t0).as_secs_f64(),
                    start.elapsed().as_secs_f64(),
                ));
            }
            done
        });
    }
    lanes.join_all().await.concat()
}

#[tokio::test]
async fn a_daemon_stopped_30_s_under_load_counts_its_drops_and_recovers_exactly() {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };
    let server = GoServer::start_with_args("goserver-go1.27", &["-memprofilerate=1"]);
    let daemon = Daemon::start(&["--pid", &server.pid().to_string()]);
    daemon.wait_attached(server.pid()).await;
    let rss = |pid: u32| apiprof_tests::process::rss_bytes(pid) as f64 / (1 << 20) as f64;
    let rss_before = rss(daemon.pid());

    let (t0, stop) = (std::time::Instant::now(), Arc::new(AtomicBool::new(false)));
    let load = tokio::spawn(heavy_load(server.url.clone(), t0, stop.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stopped_at = t0.elapsed().as_secs_f64();
    // SAFETY: kill(2) on the daemon, our child.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGSTOP) };
    tokio::time::sleep(Duration::from_secs(30)).await;
    // SAFETY: as above.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGCONT) };
    let resumed_at = t0.elapsed().as_secs_f64();
    let stop_dropped = {
        // The daemon reads the kernel's drop counter as it drains the full buffer.
        tokio::time::sleep(Duration::from_secs(2)).await;
        total(&daemon, "apiprof_dropped_events_total").await
    };

    // The flood goes on, the daemon held to a tenth of a CPU (a tight pod limit): it
    // drains at its full rate there while over 10 times as much is offered.
    let limit = apiprof_tests::process::CpuLimit::new(daemon.pid(), 100);
    let (events_0, dropped_0) = (
        total(&daemon, "apiprof_events_total").await,
        total(&daemon, "apiprof_dropped_events_total").await,
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (events_1, dropped_1) = (
        total(&daemon, "apiprof_events_total").await,
        total(&daemon, "apiprof_dropped_events_total").await,
    );
    drop(limit);
    stop.store(true, Ordering::Relaxed);
    let done = load.await.expect("load");
    let rss_after = rss(daemon.pid());

    let phase = |from: f64, to: f64| -> Vec<f64> {
        done.iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, l)| *l)
            .collect()
    };
    let (mut running, mut stopped) = (phase(1.0, stopped_at), phase(stopped_at + 2.0, resumed_at));
    println!(
        "server latency, median: {:.0} µs with the daemon draining ({} requests), {:.0} µs while it was stopped ({} requests)",
        median_us(&mut running), running.len(), median_us(&mut stopped), stopped.len()
    );
    let drained = (events_1 - events_0) / 5.0;
    let offered = drained + (dropped_1 - dropped_0) / 5.0;
    println!(
        "{stop_dropped} events dropped while stopped; then {offered:.0} events/s offered, {drained:.0} drained ({:.1}×); daemon RSS {rss_before:.1} MiB before, {rss_after:.1} MiB after",
        offered / drained
    );
    assert!(
        stop_dropped > 0.0,
        "the ring buffer never filled while the daemon was stopped"
    );
    assert!(
        offered >= 10.0 * drained,
        "not a flood of 10 times what the daemon drains"
    );
    let report = daemon.report_with_drops(&BY_CLIENT).await;
    let in_report = report["dropped_events"].as_f64().expect("dropped_events");
    assert!(in_report >= dropped_1, "{in_report} < {dropped_1}");

    // Once the flood is over, every request counts again, exactly.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = load::drive(&server.url, Http::Two, "after-stop/1.0").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut reported = load::reported(&daemon.report_with_drops(&BY_CLIENT).await, &BY_CLIENT);
    reported.retain(|key, _| key[0] == "after-stop/1.0");
    assert_eq!(reported, truth(&sent, load::by_client));
}
