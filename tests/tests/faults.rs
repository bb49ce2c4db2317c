//! Faults around a running apiprof: the observed server's binary replaced by another
//! build (another Go version, stripped) and restarted; the daemon stopped (SIGSTOP)
//! for 30 s under load; and a flood of events far beyond what the daemon drains. Root
//! only: loads real eBPF programs.

use std::{path::Path, time::Duration};

use apiprof_tests::{
    daemon::{samples, Daemon},
    fixtures_dir,
    goserver::GoServer,
    load::{self, truth, Http, BY_CLIENT},
    recorder,
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

fn capture_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("capture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .expect("capture file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
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
    assert_eq!((&end["type"], &end["reason"]), (&"end".into(), &"target exited".into()), "{end}");
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
