//! The apiserver fixture under GET-heavy and LIST-heavy loads, on HTTP/2 and HTTP/1.1,
//! not observed, recorded, watched by the daemon and audit-logged, interleaved; then the
//! ratios that say what apiprof costs next to audit logging.
//!
//! Apiserver CPU per request is quoted raw and normalised (../shared/MEASURING.md): each
//! run's apiserver CPU ÷ etcd's, its median per condition turned back into µs by the
//! `off` medians (`off`'s raw median × the condition's ratio ÷ `off`'s ratio).
//! Observation does not change etcd's work, and the two drift together. LISTs are served
//! from the watch cache (k8s.io/apiserver 0.36 reads consistently from it too), which
//! leaves etcd nearly idle: LIST loads are normalised by the load generator's CPU instead
//! ([`Normaliser`]).

use std::collections::BTreeMap;

use super::{
    drive::Shape,
    interleaved,
    out::{times, Out, Spread},
    run::{measure, Load, Normaliser, Observation, Run, CONCURRENCY, CONFIGMAP, CONFIGMAPS},
    Settings,
};
use crate::{load::Http, APISERVER_BUILDS};

/// golang.org/x/net's HTTP/2 server, as in every kube-apiserver built with Go ≤ 1.26.
pub const BUILD: &str = APISERVER_BUILDS[1];

/// ConfigMaps the LIST-heavy load lists.
pub const LIST_OBJECTS: usize = 300;

/// GETs a run (~4 s here): enough that the CPU clock's 10 ms ticks are within 1% of
/// etcd's share.
const GET_REQUESTS: usize = 15_000;

/// LIST cycles a run (5 requests each, ~2.5 s here).
const LIST_CYCLES: usize = 300;

/// GET-heavy and LIST-heavy, each on both HTTP versions; `cycles` as in a full run.
pub fn loads() -> [Load; 4] {
    let get = Shape::Get {
        path: CONFIGMAP,
        query: "",
    };
    let list = Shape::ListMix {
        path: CONFIGMAPS,
        page: 100,
        objects: LIST_OBJECTS,
    };
    let (etcd, client) = (Normaliser::Etcd, Normaliser::Client);
    [
        ("GET, HTTP/2", Http::Two, get, 1, GET_REQUESTS, etcd),
        ("GET, HTTP/1.1", Http::One, get, 1, GET_REQUESTS, etcd),
        (
            "LIST, HTTP/2",
            Http::Two,
            list,
            LIST_OBJECTS,
            LIST_CYCLES,
            client,
        ),
        (
            "LIST, HTTP/1.1",
            Http::One,
            list,
            LIST_OBJECTS,
            LIST_CYCLES,
            client,
        ),
    ]
    .map(|(name, http, shape, objects, cycles, normaliser)| Load {
        name,
        http,
        shape,
        objects,
        cycles,
        normaliser,
    })
}

/// The conditions compared, in the order of the first round.
pub const CONDITIONS: [(&str, Observation); 5] = [
    ("off", Observation::Off),
    ("record", Observation::Record(&[])),
    ("daemon", Observation::Daemon { client_pods: true }),
    ("stopped", Observation::StoppedDaemon),
    ("audit", Observation::Audit),
];

/// Runs every load in every condition, interleaved, and prints the tables and ratios.
pub async fn section(out: &mut Out, settings: &Settings) {
    out.heading(&format!("apiserver fixture ({BUILD})"));
    out.paragraph(format!(
        "k8s.io/apiserver 0.36 with a real etcd; {CONCURRENCY} concurrent HTTP/2 streams on one connection, or {CONCURRENCY} HTTP/1.1 connections. \
         GET: one ~1 KiB ConfigMap. LIST: {LIST_OBJECTS} ~1 KiB ConfigMaps walked in pages of 100 (resourceVersion unset, then `continue`), \
         then listed whole with resourceVersion unset and with resourceVersion=0: 5 requests a cycle. \
         Normalised: apiserver CPU ÷ etcd CPU per run (GETs) or ÷ the load generator's CPU (LISTs, which the watch cache serves without etcd), \
         medians turned back into µs by the `off` medians. Observer CPU: the `apiprof` process's own. \
         Conditions: `off`; `record` (`apiprof record --pid`, everything on); `daemon` (`apiprof daemon --pid`, everything on, Pods watched for client identity); \
         `stopped` (the daemon stopped with SIGSTOP once attached: its 16 MiB ring buffer fills and the kernel drops what no longer fits, as when the daemon hangs; \
         its dropped count is read after SIGCONT); \
         `audit` (Metadata-level policy, JSON log to a file, blocking mode as kube-apiserver's default). \
         Each run: a fresh etcd and apiserver, the observer attached, a warm-up of a tenth of the load, then the load; \
         conditions interleaved in a Latin square over {} rounds; medians (min–max).",
        settings.rounds
    ));
    let mut summary = Vec::new();
    for load in loads() {
        let load = settings.scale(load);
        let names = CONDITIONS.map(|(name, _)| name);
        let runs = interleaved(&names, settings.rounds, |i| {
            measure(BUILD, &load, CONDITIONS[i].1, false)
        })
        .await;
        print_load(out, &load, &runs);
        summary.push(ratios_row(&load, &runs));
    }
    out.paragraph("Ratios, from the normalised medians (added: µs per request over `off`):");
    out.table(
        &[
            "load",
            "off µs",
            "record ÷ off",
            "daemon ÷ off",
            "stopped ÷ off",
            "audit ÷ off",
            "record added ÷ audit added",
            "daemon added ÷ audit added",
        ],
        &summary,
    );
}

/// A condition's normalised apiserver CPU per request, µs: its median ratio of apiserver
/// CPU to the load's normaliser's, turned into µs by `off`'s medians.
pub fn normalised_us(load: &Load, runs: &BTreeMap<&str, Vec<Run>>, condition: &str) -> f64 {
    let ratio = |c: &str| Spread::of(runs[c].iter().map(|r| r.ratio(load.normaliser))).median;
    let off_us = Spread::of(runs["off"].iter().map(|r| r.server_us)).median;
    off_us * ratio(condition) / ratio("off")
}

fn print_load(out: &mut Out, load: &Load, runs: &BTreeMap<&str, Vec<Run>>) {
    out.paragraph(format!(
        "### {} ({} requests a run)",
        load.name,
        load.requests()
    ));
    let mut rows = Vec::new();
    for (name, _) in CONDITIONS {
        let of = |field: fn(&Run) -> f64| Spread::of(runs[name].iter().map(field));
        let optional = |field: fn(&Run) -> Option<f64>, decimals: usize| {
            let values: Vec<f64> = runs[name].iter().filter_map(field).collect();
            if values.is_empty() {
                "—".to_owned()
            } else {
                Spread::of(values).show(decimals)
            }
        };
        let dropped: Option<u64> = runs[name].iter().filter_map(|r| r.dropped).max();
        rows.push(vec![
            name.to_owned(),
            of(|r| r.server_us).show(0),
            format!("{:.0}", normalised_us(load, runs, name)),
            Spread::of(runs[name].iter().map(|r| r.ratio(load.normaliser))).show(3),
            optional(|r| r.observer_us, 1),
            optional(|r| r.events_per_request, 1),
            of(|r| r.p50_ms).show(2),
            of(|r| r.p99_ms).show(2),
            dropped.map_or("—".to_owned(), |d| d.to_string()),
        ]);
    }
    out.table(
        &[
            "condition",
            "apiserver µs/request",
            "normalised µs/request",
            normaliser_header(load.normaliser),
            "observer µs/request",
            "daemon events/request",
            "p50 ms",
            "p99 ms",
            "dropped (max)",
        ],
        &rows,
    );
}

fn ratios_row(load: &Load, runs: &BTreeMap<&str, Vec<Run>>) -> Vec<String> {
    let us = |c: &str| normalised_us(load, runs, c);
    let off = us("off");
    let added = |c: &str| us(c) - off;
    let versus_audit = |c: &str| {
        format!(
            "{:+.1} ÷ {:+.1} = {:.2}",
            added(c),
            added("audit"),
            added(c) / added("audit")
        )
    };
    let raw = |c: &str| Spread::of(runs[c].iter().map(|r| r.server_us)).median;
    let versus_off = |c: &str| format!("{} (raw {})", times(us(c), off), times(raw(c), raw("off")));
    vec![
        load.name.to_owned(),
        format!("{off:.0}"),
        versus_off("record"),
        versus_off("daemon"),
        versus_off("stopped"),
        versus_off("audit"),
        versus_audit("record"),
        versus_audit("daemon"),
    ]
}

fn normaliser_header(by: Normaliser) -> &'static str {
    match by {
        Normaliser::Etcd => "apiserver ÷ etcd CPU",
        Normaliser::Client => "apiserver ÷ client CPU",
    }
}
