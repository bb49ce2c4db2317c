//! The machine apiprof runs on: without BTF, tracefs or debugfs it still attributes every
//! request (its programs read Go structures at offsets taken from the binary, and uprobes
//! attach through the perf uprobe PMU); on a kernel that refuses to load its programs (as
//! one built without a program type does) it names the cause and what the kernel needs,
//! and exits 1. (Missing
//! capabilities: errors.rs and image.rs.) Root only: loads real eBPF programs.

use std::process::Command;

use apiprof_tests::{
    apiprof_bin,
    goserver::GoServer,
    load::{self, truth, Http, BY_CLIENT},
    recorder::{report_json, Recording},
    sandbox,
};

#[tokio::test]
async fn without_btf_or_tracefs_every_request_is_attributed() {
    let server = GoServer::start("goserver-go1.27");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(apiprof_bin());
    sandbox::without_btf_or_tracefs(&mut command);
    let capture = dir.path().join("capture.jsonl");
    let recording = Recording::start_command(command, server.pid(), &capture, &[]);
    let sent = load::drive(&server.url, Http::Two, "no-btf/1.0").await;
    let capture = recording.stop();
    let report = report_json(&capture, &BY_CLIENT);
    assert_eq!(
        load::reported(&report, &BY_CLIENT),
        truth(&sent, load::by_client)
    );
}

#[test]
fn a_kernel_refusing_its_programs_is_named_with_what_it_needs() {
    let server = GoServer::start("goserver-go1.27");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(apiprof_bin());
    sandbox::refusing_program_loads(&mut command);
    let out = command
        .args(["record", "--pid", &server.pid().to_string(), "--output"])
        .arg(dir.path().join("capture.jsonl"))
        .output()
        .expect("running apiprof record");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Linux 5.8 or later built with eBPF uprobe and perf-event programs"),
        "{stderr}"
    );
}
