//! What each of apiprof's features costs the apiserver fixture, separately: per load,
//! each program's hits per request and run time from the kernel's BPF statistics; and on
//! the GET loads (where per-request costs show) a ladder of runs adding one feature at a
//! time — attribution (the HTTP probes), goroutine lineage with CPU sampling, allocation
//! tracking, then the daemon without and with client identity (its Pods reflector).

use super::{
    apiserver::{loads, BUILD},
    drive::Shape,
    out::Out,
    probes::{self, Counters, HEADER},
    run::{measure, Load, Observation, Run},
    Settings,
};

/// The ladder: each step adds a feature to the one before.
const LADDER: [(&str, Observation); 6] = [
    ("off", Observation::Off),
    (
        "record: attribution (--no-alloc --no-cpu)",
        Observation::Record(&["--no-alloc", "--no-cpu"]),
    ),
    (
        "record: + lineage, CPU sampling (--no-alloc)",
        Observation::Record(&["--no-alloc"]),
    ),
    (
        "record: + allocation (everything)",
        Observation::Record(&[]),
    ),
    (
        "daemon --no-client-pods",
        Observation::Daemon { client_pods: false },
    ),
    (
        "daemon: + client identity (Pods reflector)",
        Observation::Daemon { client_pods: true },
    ),
];

/// The ladder's step that records everything.
const EVERYTHING_RECORDED: usize = 3;

const LADDER_HEADER: [&str; 9] = [
    "step",
    "apiserver µs/request",
    "normalised µs/request",
    "added µs",
    "observer µs/request",
    "attribution: hits, program µs",
    "lineage: hits, program µs",
    "allocation: hits, program µs",
    "CPU sampling: hits, program µs",
];

/// Features with programs, as [`probes::programs`] names them (and [`LADDER_HEADER`]).
const FEATURES: [&str; 4] = ["attribution", "lineage", "allocation", "CPU sampling"];

/// Per load: the programs' table of a fully recorded run; on GET loads, the ladder.
pub async fn section(out: &mut Out, settings: &Settings) {
    out.heading(&format!(
        "Per-probe hits and each feature's cost (apiserver fixture, {BUILD})"
    ));
    out.paragraph(
        "Kernel BPF statistics on for these runs (`BPF_ENABLE_STATS`: each program's runs and its own run time; \
         a hit's trap, ~1.3 µs emulated or ~20 µs single-stepped here, comes on top and shows only in the apiserver's CPU). \
         The ladder is one run per step, a fresh apiserver each: its CPU figures are single runs, noisier than the table above. \
         Client identity has no probe of its own (the request-start probe copies the remote address either way): \
         its cost is the daemon's Pods reflector.",
    );
    let _stats = probes::enable_stats();
    for load in loads() {
        let load = settings.scale(load);
        match load.shape {
            Shape::Get { .. } => ladder(out, &load).await,
            Shape::ListMix { .. } => {
                let run = measure(BUILD, &load, Observation::Record(&[]), true).await;
                programs_table(out, &load, &run);
            }
        }
    }
}

/// The ladder's runs on `load`, its table, then the programs of the full recording.
async fn ladder(out: &mut Out, load: &Load) {
    let mut runs = Vec::new();
    for (name, how) in LADDER {
        let stats = !matches!(how, Observation::Off);
        runs.push((name, measure(BUILD, load, how, stats).await));
    }
    let off = &runs[0].1;
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|(name, run)| ladder_row(name, run, off, load))
        .collect();
    out.paragraph(format!(
        "### {}: one feature at a time ({} requests a run)",
        load.name,
        load.requests()
    ));
    out.table(&LADDER_HEADER, &rows);
    let (_, everything) = &runs[EVERYTHING_RECORDED];
    programs_table(out, load, everything);
}

fn ladder_row(name: &str, run: &Run, off: &Run, load: &Load) -> Vec<String> {
    let by = load.normaliser;
    let normalised = off.server_us * run.ratio(by) / off.ratio(by);
    let mut row = vec![
        name.to_owned(),
        format!("{:.0}", run.server_us),
        format!("{normalised:.0}"),
        format!("{:+.1}", normalised - off.server_us),
        run.observer_us.map_or("—".into(), |us| format!("{us:.1}")),
    ];
    let counters = run.programs.clone().unwrap_or_default();
    row.extend(FEATURES.map(|feature| {
        let (hits, us) = counters.feature(feature, load.requests());
        format!("{hits:.2}, {us:.2}")
    }));
    row
}

/// Each program's hits and time in `run` (recorded with statistics).
fn programs_table(out: &mut Out, load: &Load, run: &Run) {
    let counters: &Counters = run.programs.as_ref().expect("a run with statistics");
    let total_us: f64 = counters
        .0
        .values()
        .map(|c| c.time.as_secs_f64())
        .sum::<f64>()
        * 1e6
        / load.requests() as f64;
    out.paragraph(format!(
        "{}, everything recorded: apiprof's programs ({total_us:.2} µs of program time a request; apiserver {:.0} µs/request in this run, p50 {:.2} ms)",
        load.name, run.server_us, run.p50_ms
    ));
    out.table(&HEADER, &counters.rows(load.requests()));
}
