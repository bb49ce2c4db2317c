//! The Go fixture (a plain net/http server, no etcd) under small GETs and GETs that
//! allocate 256 KiB, with each of apiprof's tracking features added in turn: what
//! request attribution, allocation tracking and CPU sampling each cost, and the kernel's
//! count of each program's hits.
//!
//! Server CPU per request is quoted raw and ÷ the load generator's CPU (this process),
//! which cancels most of the VM's run-to-run drift.

use std::{collections::BTreeMap, time::Instant};

use super::{
    drive::{closed_loop, Sender, Shape},
    interleaved,
    observe::Observer,
    out::{times, Out, Spread},
    probes::{self, HEADER},
    run::CONCURRENCY,
    Settings,
};
use crate::{goserver::GoServer, load::Http, process::cpu_seconds};

const BUILD: &str = "goserver-go1.24-stripped";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// Conditions: nothing, then each tracking feature added (`apiprof record` flags).
const CONDITIONS: [(&str, &[&str]); 4] = [
    ("off", &[]),
    ("http", &["--no-alloc", "--no-cpu"]),
    ("http+alloc", &["--no-cpu"]),
    ("http+alloc+cpu", &[]),
];

/// The loads: name, query, requests per run (as in a full run).
const LOADS: [(&str, &str, usize); 2] = [
    ("GET", "", 4000),
    ("GET ?alloc=256KiB", "alloc=262144", 1000),
];

/// One measured run.
#[derive(Clone, Copy)]
struct Run {
    /// Server CPU per request, µs.
    server_us: f64,
    /// Server CPU ÷ load-generator CPU.
    per_client: f64,
}

/// Both loads in every condition, interleaved; then one fully recorded run of each with
/// the kernel's BPF statistics.
pub async fn section(out: &mut Out, settings: &Settings) {
    out.heading(&format!("Go fixture ({BUILD})"));
    out.paragraph(format!(
        "Go's default MemProfileRate; {CONCURRENCY} concurrent HTTP/2 streams; conditions `off`, `http` (`record --no-alloc --no-cpu`), \
         `http+alloc` (`--no-cpu`), `http+alloc+cpu` (everything), interleaved over {} rounds, a fresh server per run; medians (min–max).",
        settings.rounds
    ));
    for (name, query, requests) in LOADS {
        let requests = settings.requests(requests);
        let shape = Shape::Get {
            path: CONFIGMAPS,
            query,
        };
        let names = CONDITIONS.map(|(condition, _)| condition);
        let runs = interleaved(&names, settings.rounds, |i| {
            let (condition, flags) = CONDITIONS[i];
            measure(name, shape, requests, condition, flags)
        })
        .await;
        print_load(out, name, requests, &runs);
        program_hits(out, name, shape, requests).await;
    }
}

async fn measure(
    name: &str,
    shape: Shape,
    requests: usize,
    condition: &str,
    flags: &[&str],
) -> Run {
    let server = GoServer::start(BUILD);
    let sender = Sender::new(Http::Two, &server.url, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let observer = match condition {
        "off" => Observer::None,
        _ => Observer::record(server.pid(), dir.path(), flags),
    };
    closed_loop(&sender, shape, requests / 10, CONCURRENCY).await;
    let own = std::process::id();
    let (server_before, client_before) = (cpu_seconds(server.pid()), cpu_seconds(own));
    let started = Instant::now();
    closed_loop(&sender, shape, requests, CONCURRENCY).await;
    let elapsed = started.elapsed();
    let server_cpu = cpu_seconds(server.pid()) - server_before;
    let client_cpu = cpu_seconds(own) - client_before;
    observer.stop().await;
    eprintln!(
        "bench: Go fixture {name} {condition}: {requests} requests in {:.2} s, server {server_cpu:.3} s CPU, client {client_cpu:.3} s",
        elapsed.as_secs_f64()
    );
    Run {
        server_us: server_cpu * 1e6 / requests as f64,
        per_client: server_cpu / client_cpu,
    }
}

fn print_load(out: &mut Out, name: &str, requests: usize, runs: &BTreeMap<&str, Vec<Run>>) {
    out.paragraph(format!("### {name} ({requests} requests a run)"));
    let of = |c: &str, field: fn(&Run) -> f64| Spread::of(runs[c].iter().map(field));
    let rows: Vec<Vec<String>> = CONDITIONS
        .iter()
        .map(|(c, _)| {
            vec![
                c.to_string(),
                of(c, |r| r.server_us).show(1),
                of(c, |r| r.per_client).show(3),
            ]
        })
        .collect();
    out.table(
        &["condition", "server µs/request", "server ÷ client CPU"],
        &rows,
    );
    let median = |c: &str, field: fn(&Run) -> f64| of(c, field).median;
    let mut steps = Vec::new();
    for (what, with, without) in [
        ("request attribution", "http", "off"),
        ("allocation tracking (and lineage)", "http+alloc", "http"),
        ("CPU sampling", "http+alloc+cpu", "http+alloc"),
    ] {
        steps.push(vec![
            what.to_owned(),
            format!("{with} ÷ {without}"),
            times(
                median(with, |r| r.per_client),
                median(without, |r| r.per_client),
            ),
            times(
                median(with, |r| r.server_us),
                median(without, |r| r.server_us),
            ),
            format!(
                "{:+.1}",
                median(with, |r| r.server_us) - median(without, |r| r.server_us)
            ),
        ]);
    }
    out.table(
        &[
            "feature",
            "ratio",
            "normalised",
            "raw",
            "µs/request added (raw)",
        ],
        &steps,
    );
}

/// One more run, fully recorded with BPF statistics on: each program's hits.
async fn program_hits(out: &mut Out, name: &str, shape: Shape, requests: usize) {
    let _stats = probes::enable_stats();
    let server = GoServer::start(BUILD);
    let sender = Sender::new(Http::Two, &server.url, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let observer = Observer::record(server.pid(), dir.path(), &[]);
    closed_loop(&sender, shape, requests / 10, CONCURRENCY).await;
    let pid = observer.pid().expect("recording");
    let before = probes::counters(pid);
    closed_loop(&sender, shape, requests, CONCURRENCY).await;
    let counters = probes::counters(pid) - before;
    observer.stop().await;
    out.paragraph(format!(
        "{name}, everything recorded: apiprof's programs (kernel BPF statistics; a hit's trap comes on top of its program time)"
    ));
    out.table(&HEADER, &counters.rows(requests));
}
