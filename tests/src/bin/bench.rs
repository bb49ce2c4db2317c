//! `cargo xtask bench`: what recording costs the observed server, in its own CPU time per
//! request, measured side by side in one run.
//!
//! Conditions: not recorded (`off`), requests only (`http`, `apiprof record --no-alloc
//! --no-cpu`), with allocation tracking (`http+alloc`, `--no-cpu`), and with CPU
//! sampling at 99 Hz as well (`http+alloc+cpu`, the default).
//! Loads: small GETs (where per-request probe costs show) and requests that allocate
//! 256 KiB each (where allocation samples are taken). The fixture runs at Go's default
//! `MemProfileRate` (one sample per 512 KiB), as kube-apiserver does.
//!
//! Method (../shared/MEASURING.md): every run starts a fresh server, warms it up, and
//! reads its utime+stime from /proc/PID/stat just before and after the measured load;
//! conditions are interleaved in a Latin square over the rounds; figures are medians with
//! min–max. Raw CPU per request drifts 10–15% between runs on shared VMs, so each run also
//! reports server CPU ÷ load-generator CPU (this process), which cancels most of the drift.

use std::{collections::BTreeMap, time::Instant};

use apiprof_tests::{goserver::GoServer, load::Http, process::cpu_seconds, recorder::Recording};

const BUILD: &str = "goserver-go1.24-stripped";
const ROUNDS: usize = 3;
const CONCURRENCY: usize = 8;
const CONDITIONS: [&str; 4] = ["off", "http", "http+alloc", "http+alloc+cpu"];

struct Load {
    name: &'static str,
    query: &'static str,
    requests: usize,
}

const LOADS: [Load; 2] = [
    Load {
        name: "GET",
        query: "",
        requests: 4000,
    },
    Load {
        name: "GET ?alloc=256KiB",
        query: "alloc=262144",
        requests: 1000,
    },
];

/// One measured run.
#[derive(Clone, Copy)]
struct Run {
    /// Server CPU per request, microseconds.
    server_us: f64,
    /// Server CPU ÷ load-generator CPU.
    ratio: f64,
}

#[tokio::main]
async fn main() {
    simulated_hours();
    println!(
        "bench: {BUILD}, {ROUNDS} rounds per condition, {CONCURRENCY} concurrent HTTP/2 streams"
    );
    for load in &LOADS {
        let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
        for round in 0..ROUNDS {
            for i in 0..CONDITIONS.len() {
                let condition = CONDITIONS[(i + round) % CONDITIONS.len()];
                runs.entry(condition)
                    .or_default()
                    .push(measure(load, condition).await);
            }
        }
        print_load(load, &runs);
        probe_hits(load).await;
    }
}

/// apiprof's kernel programs, by their function names in profiler-ebpf (the kernel keeps
/// the first 15 characters).
const PROGRAMS: [&str; 8] = [
    "http_serve",
    "http1_handler_returned",
    "http1_connection_ended",
    "http2_handler_returned",
    "http2_handler_panicked",
    "go_newproc",
    "go_alloc",
    "cpu_sample",
];

/// Hits per request and run time of each of apiprof's programs under `load`, fully
/// recorded, from the kernel's own counters (BPF_ENABLE_STATS, on only for this run: it
/// costs every program a clock read). The run time is the program's alone; a hit's trap
/// (~1.3 µs emulated, ~20 µs single-stepped here) comes on top.
async fn probe_hits(load: &Load) {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .expect("enabling BPF run-time statistics (needs root)");
    let server = GoServer::start(BUILD);
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?{}",
        server.url, load.query
    );
    send(&url, load.requests / 10).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    send(&url, load.requests).await;
    let mut hits: BTreeMap<&str, (u64, std::time::Duration)> = BTreeMap::new();
    for program in aya::programs::loaded_programs().flatten() {
        let Some(name) = program.name_as_str() else {
            continue;
        };
        if let Some(ours) = PROGRAMS.iter().find(|p| p.get(..15).unwrap_or(p) == name) {
            let entry = hits.entry(ours).or_default();
            entry.0 += program.run_count();
            entry.1 += program.run_time();
        }
    }
    recording.stop();
    println!(
        "{} fully recorded: apiprof's programs (kernel BPF statistics)",
        load.name
    );
    println!("program                       hits/request   ns/hit   µs of program/request");
    for (name, (count, time)) in hits {
        let per_request = count as f64 / load.requests as f64;
        let ns = if count == 0 {
            0.0
        } else {
            time.as_nanos() as f64 / count as f64
        };
        println!(
            "{name:<28}  {per_request:>12.2}  {ns:>7.0}  {:>10.2}",
            time.as_nanos() as f64 / load.requests as f64 / 1e3
        );
    }
}

/// How long the daemon's pipeline (attribution, window, detectors) takes over 72
/// simulated hours of a 500-client API server (tests/src/simulation.rs).
fn simulated_hours() {
    let started = std::time::Instant::now();
    let (live, truth) = apiprof_tests::simulation::run(1);
    let seconds = started.elapsed().as_secs_f64();
    let findings = live.findings(apiprof_tests::simulation::DURATION).len();
    println!(
        "bench: 72 simulated hours, {} requests of 500 clients, through the daemon's pipeline in {seconds:.1} s ({:.1} µs a request, this build's profile), {findings} findings",
        truth.requests,
        seconds / truth.requests as f64 * 1e6
    );
}

async fn measure(load: &Load, condition: &str) -> Run {
    let server = GoServer::start(BUILD);
    let url = match load.query {
        "" => format!("{}/api/v1/namespaces/default/configmaps", server.url),
        query => format!(
            "{}/api/v1/namespaces/default/configmaps?{query}",
            server.url
        ),
    };
    send(&url, load.requests / 10).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("capture.jsonl");
    let flags: &[&str] = match condition {
        "http" => &["--no-alloc", "--no-cpu"],
        "http+alloc" => &["--no-cpu"],
        _ => &[],
    };
    let recording =
        (condition != "off").then(|| Recording::start_with_args(server.pid(), &capture, flags));
    let (server_before, client_before) = (cpu_seconds(server.pid()), own_cpu_seconds());
    let started = Instant::now();
    send(&url, load.requests).await;
    let elapsed = started.elapsed();
    let (server_cpu, client_cpu) = (
        cpu_seconds(server.pid()) - server_before,
        own_cpu_seconds() - client_before,
    );
    if let Some(recording) = recording {
        recording.stop();
    }
    eprintln!(
        "bench: {} {condition}: {} requests in {:.2} s, server {server_cpu:.3} s CPU, client {client_cpu:.3} s",
        load.name,
        load.requests,
        elapsed.as_secs_f64()
    );
    Run {
        server_us: server_cpu * 1e6 / load.requests as f64,
        ratio: server_cpu / client_cpu,
    }
}

/// Sends `n` GETs of `url` over one HTTP/2 connection, [`CONCURRENCY`] at a time.
async fn send(url: &str, n: usize) {
    let (client, ..) = Http::Two.client("apiprof-bench/1.0");
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (client, url) = (client.clone(), url.to_owned());
        let share = n / CONCURRENCY + usize::from(worker < n % CONCURRENCY);
        tasks.spawn(async move {
            for _ in 0..share {
                let response = client.get(&url).send().await.expect(&url);
                assert_eq!(response.status(), 200, "{url}");
                response.bytes().await.expect("reading the body");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a load task panicked");
    }
}

/// CPU time this process (the load generator) used so far, seconds.
fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

fn print_load(load: &Load, runs: &BTreeMap<&str, Vec<Run>>) {
    println!("\n{} ({} requests per run)", load.name, load.requests);
    println!(
        "{:<16} {:>26} {:>30}",
        "condition", "server CPU µs/request", "server CPU ÷ client CPU"
    );
    let summary = |condition: &str, field: fn(&Run) -> f64| {
        let mut values: Vec<f64> = runs[condition].iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        (
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        )
    };
    for condition in CONDITIONS {
        let (us, us_min, us_max) = summary(condition, |r| r.server_us);
        let (ratio, r_min, r_max) = summary(condition, |r| r.ratio);
        println!(
            "{condition:<16} {us:>10.1} ({us_min:>6.1}–{us_max:<6.1}) {ratio:>14.3} ({r_min:.3}–{r_max:.3})"
        );
    }
    let median = |condition: &str| summary(condition, |r| r.ratio).0;
    let us = |condition: &str| summary(condition, |r| r.server_us).0;
    for (what, with, without) in [
        ("CPU sampling", "http+alloc+cpu", "http+alloc"),
        ("allocation tracking", "http+alloc", "http"),
        ("request attribution", "http", "off"),
    ] {
        println!(
            "{what}: {with} ÷ {without} = {:.3} (normalised), {:.3} (raw); {:+.1} µs CPU per request",
            median(with) / median(without),
            us(with) / us(without),
            us(with) - us(without)
        );
    }
}
