//! What the client-side probes cost the client: the Go reference controller (client-go
//! 0.36) sending requests as fast as the apiserver fixture answers (its rate limiter set
//! high enough never to wait, so every request still passes it), while `apiprof record`
//! follows the server alone or the server and, with `--client`, the controller. The
//! controller's own CPU time (user and system, from `wait4`: the probes' traps run on
//! its threads) per request, side by side over interleaved rounds; then one run with
//! the kernel's BPF statistics for each client program's hits.

use std::{collections::BTreeMap, path::Path, process::Command};

use super::{
    interleaved,
    observe::Observer,
    out::{times, Out, Spread},
    probes::{self, HEADER},
    Settings,
};
use crate::{apiserver::ApiServer, fixtures_dir, refctl::GO_CONTROLLER, APISERVER_BUILDS};

/// `apiprof record` flags of each condition: the server's requests only (no allocation
/// or CPU tracking, which would cost the server and not the client), then the client
/// probes added.
const CONDITIONS: [(&str, &[&str]); 2] = [
    ("server only", &["--no-alloc", "--no-cpu"]),
    (
        "server + client probes",
        &["--no-alloc", "--no-cpu", "--client", GO_CONTROLLER],
    ),
];

/// Objects of a full run: the controller creates each, then its reconcile GETs it and
/// creates its status object, three requests per object.
const OBJECTS: usize = 400;

/// The controller's CPU, seconds, and its requests.
#[derive(Clone, Copy)]
struct Run {
    cpu_s: f64,
    requests: usize,
}

impl Run {
    fn us_per_request(&self) -> f64 {
        self.cpu_s * 1e6 / self.requests as f64
    }
}

pub async fn section(out: &mut Out, settings: &Settings) {
    let objects = settings.requests(OBJECTS);
    out.heading("Client-side probes: what they cost the client");
    out.paragraph(format!(
        "The Go reference controller (`{GO_CONTROLLER}`, client-go 0.36) `throttled --qps=100000 --burst=100000 --objects={objects}` against the apiserver fixture: {} requests as fast as they are answered, each through client-go's rate limiter (never waiting) and a workqueue. Conditions `server only` (`record --no-alloc --no-cpu`) and `server + client probes` (the same with `--client {GO_CONTROLLER}`), interleaved over {} rounds, a fresh server per run; the controller's CPU (user + system, `wait4`) per request, medians (min–max).",
        3 * objects,
        settings.rounds
    ));
    let names = CONDITIONS.map(|(c, _)| c);
    let runs: BTreeMap<&str, Vec<Run>> = interleaved(&names, settings.rounds, |i| {
        let (condition, flags) = CONDITIONS[i];
        measure(condition, flags, objects)
    })
    .await;
    let of = |c: &str| Spread::of(runs[c].iter().map(Run::us_per_request));
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|c| vec![c.to_string(), of(c).show(1)])
        .collect();
    out.table(&["condition", "controller CPU µs/request"], &rows);
    let (with, without) = (of(names[1]).median, of(names[0]).median);
    out.paragraph(format!(
        "Client probes: {} the controller's CPU, {:+.1} µs per request.",
        times(with, without),
        with - without
    ));
    program_hits(out, objects).await;
}

/// One run of the controller under `apiprof record FLAGS`.
async fn measure(condition: &str, flags: &[&str], objects: usize) -> Run {
    let server = ApiServer::start(APISERVER_BUILDS[0]);
    let dir = tempfile::tempdir().expect("temp dir");
    let observer = Observer::record(server.pid(), dir.path(), flags);
    let run = controller(&server, dir.path(), objects);
    observer.stop().await;
    eprintln!(
        "bench: clients {condition}: {} requests, controller {:.3} s CPU",
        run.requests, run.cpu_s
    );
    run
}

/// Runs the controller to its end; its CPU time and the requests its ledger lists.
fn controller(server: &ApiServer, dir: &Path, objects: usize) -> Run {
    let ledger = dir.join("controller.ledger.jsonl");
    #[expect(
        clippy::zombie_processes,
        reason = "reaped below by wait4, which also gives its CPU time"
    )]
    let child = Command::new(fixtures_dir().join(GO_CONTROLLER))
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .arg("--ledger")
        .arg(&ledger)
        .args(["--delay=2s", "throttled", "--qps=100000", "--burst=100000"])
        .arg(format!("--objects={objects}"))
        .spawn()
        .expect("starting the Go controller");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 writes it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing status and usage we own.
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(
        waited > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the Go controller failed (status {status:#x})"
    );
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let text = std::fs::read_to_string(&ledger).expect("reading the ledger");
    Run {
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        requests: text
            .lines()
            .filter(|l| l.contains(r#""type":"request""#))
            .count(),
    }
}

/// One more run with BPF statistics on: each client program's hits and time.
async fn program_hits(out: &mut Out, objects: usize) {
    let _stats = probes::enable_stats();
    let server = ApiServer::start(APISERVER_BUILDS[0]);
    let dir = tempfile::tempdir().expect("temp dir");
    let observer = Observer::record(server.pid(), dir.path(), CONDITIONS[1].1);
    let pid = observer.pid().expect("recording");
    let before = probes::counters(pid);
    let run = controller(&server, dir.path(), objects);
    let counters = probes::counters(pid) - before;
    observer.stop().await;
    out.paragraph(format!(
        "{} requests of the controller, client probes on: apiprof's programs (kernel BPF statistics; a hit's trap comes on top of its program time)",
        run.requests
    ));
    let rows: Vec<Vec<String>> = counters
        .rows(run.requests)
        .into_iter()
        .filter(|r| r[0] == probes::CLIENT_FEATURE)
        .collect();
    out.table(&HEADER, &rows);
}
