//! What each of apiprof's features costs the apiserver fixture, separately: per load,
//! each program's hits per request and run time from the kernel's BPF statistics; and on
//! the GET loads (where per-request costs show) a ladder of runs adding one feature at a
//! time — attribution (the HTTP probes), goroutine lineage with CPU sampling, allocation
//! tracking, then the daemon without and with client identity (its Pods reflector).

use std::collections::BTreeMap;

use super::{
    apiserver::{loads, normalised_us, BUILD},
    drive::Shape,
    interleaved,
    out::{Out, Spread},
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

/// Runs of each ladder step (fewer when the bench runs fewer rounds).
const LADDER_ROUNDS: usize = 3;

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
         The ladder's steps are interleaved as the conditions above, a fresh apiserver each run, with fewer runs: its CPU figures (medians) are noisier than the table above; \
         its hits and program time are over all of a step's runs. \
         Client identity has no probe of its own (the request-start probe copies the remote address either way): \
         its cost is the daemon's Pods reflector.",
    );
    let _stats = probes::enable_stats();
    for load in loads() {
        let load = settings.scale(load);
        match load.shape {
            Shape::Get { .. } => ladder(out, &load, settings.rounds.min(LADDER_ROUNDS)).await,
            Shape::ListMix { .. } => {
                let run = measure(BUILD, &load, Observation::Record(&[]), true).await;
                programs_table(out, &load, &[run]);
            }
        }
    }
}

/// The ladder's runs on `load`, interleaved over `rounds`, its table, then the programs
/// of the full recordings.
async fn ladder(out: &mut Out, load: &Load, rounds: usize) {
    let names = LADDER.map(|(name, _)| name);
    let runs = interleaved(&names, rounds, |i| {
        let how = LADDER[i].1;
        measure(BUILD, load, how, !matches!(how, Observation::Off))
    })
    .await;
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| ladder_row(name, &runs, load))
        .collect();
    out.paragraph(format!(
        "### {}: one feature at a time ({} requests a run, {rounds} run(s) a step)",
        load.name,
        load.requests()
    ));
    out.table(&LADDER_HEADER, &rows);
    programs_table(out, load, &runs[names[EVERYTHING_RECORDED]]);
}

fn ladder_row(name: &str, runs: &BTreeMap<&str, Vec<Run>>, load: &Load) -> Vec<String> {
    let normalised = normalised_us(load, runs, name);
    let observer: Vec<f64> = runs[name].iter().filter_map(|r| r.observer_us).collect();
    let mut row = vec![
        name.to_owned(),
        format!(
            "{:.0}",
            Spread::of(runs[name].iter().map(|r| r.server_us)).median
        ),
        format!("{normalised:.0}"),
        format!("{:+.1}", normalised - normalised_us(load, runs, "off")),
        if observer.is_empty() {
            "—".into()
        } else {
            format!("{:.1}", Spread::of(observer).median)
        },
    ];
    let (counters, requests) = summed(&runs[name], load);
    row.extend(FEATURES.map(|feature| {
        let (hits, us) = counters.feature(feature, requests);
        format!("{hits:.2}, {us:.2}")
    }));
    row
}

/// The programs' counters of `runs` added up, and the requests they served.
fn summed(runs: &[Run], load: &Load) -> (Counters, usize) {
    let counters = runs
        .iter()
        .filter_map(|r| r.programs.clone())
        .fold(Counters::default(), |sum, c| sum + c);
    (counters, runs.len() * load.requests())
}

/// Each program's hits and time over `runs` (recorded with statistics).
fn programs_table(out: &mut Out, load: &Load, runs: &[Run]) {
    let (counters, requests) = summed(runs, load);
    let total_us: f64 = counters
        .0
        .values()
        .map(|c| c.time.as_secs_f64())
        .sum::<f64>()
        * 1e6
        / requests as f64;
    out.paragraph(format!(
        "{}, everything recorded: apiprof's programs over {} run(s) ({total_us:.2} µs of program time a request; apiserver {:.0} µs/request, p50 {:.2} ms: medians)",
        load.name,
        runs.len(),
        Spread::of(runs.iter().map(|r| r.server_us)).median,
        Spread::of(runs.iter().map(|r| r.p50_ms)).median,
    ));
    out.table(&HEADER, &counters.rows(requests));
}
