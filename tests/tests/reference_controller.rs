//! The reference controller's scenarios, in their short form, against the apiserver
//! fixture under `apiprof record`: apiprof counts exactly the requests the controller's
//! ledger says it sent, per (user_agent, verb, resource, rv_class) — precision and
//! recall 1.0, response bytes within 1% — and the ledger shows each incident's
//! mechanism exactly. Root only: loads real eBPF programs.

use std::collections::BTreeMap;

use apiprof_tests::refctl::validated;
use serde_json::Value;

fn of<'l>(run: &[&'l Value], kind: &str) -> Vec<&'l Value> {
    run.iter().copied().filter(|l| l["type"] == kind).collect()
}

/// Requests of `run` counted by (verb, rv_class, status); a WATCH's status is "-": it is
/// null when the controller closed the WATCH before its response headers came (as a
/// restart may).
fn requests(run: &[&Value]) -> BTreeMap<(String, String, String), usize> {
    let mut counts = BTreeMap::new();
    for r in of(run, "request") {
        let verb = r["verb"].as_str().expect("verb");
        let status = match verb {
            "watch" => "-".to_owned(),
            _ => r["status"].to_string(),
        };
        let key = (
            verb.to_owned(),
            r["rv_class"].to_string().replace('"', ""),
            status,
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn key(verb: &str, rv_class: &str, status: u16) -> (String, String, String) {
    (verb.into(), rv_class.into(), status.to_string())
}

fn watches(rv_class: &str) -> (String, String, String) {
    ("watch".into(), rv_class.into(), "-".into())
}

#[test]
fn resync_storm_lists_once_per_object_per_tick() {
    let outcome = validated("resync-storm");
    let runs = outcome.ledger.runs();
    assert_eq!(runs.len(), 2);
    // 10 objects, 3 ticks: 10 × (3 + 1) reconciles, each one LIST; the watcher adds its
    // initial LIST (resourceVersion unset) and its WATCH from that list's version.
    for (run, reconcile_class) in runs.iter().zip(["most_recent", "any"]) {
        let mut expected = BTreeMap::from([
            (key("create", "null", 201), 10),
            (key("list", "most_recent", 200), 1),
            (watches("exact"), 1),
        ]);
        *expected
            .entry(key("list", reconcile_class, 200))
            .or_default() += 40;
        assert_eq!(requests(run), expected, "{reconcile_class}");
        let ticks = of(run, "resync_tick");
        assert_eq!(ticks.len(), 3);
        assert!(ticks.iter().all(|t| t["objects"] == 10), "{ticks:?}");
        let ends = of(run, "reconcile_end");
        assert_eq!(ends.len(), 40);
        assert!(ends.iter().all(|e| e["outcome"] == "ok"));
    }
    // The table says it as a sentence.
    let table = &outcome.table;
    for ua in ["refctl-resync-storm/rv-unset", "refctl-resync-storm/rv-0"] {
        let sentence = format!("- [inferred] {ua} sends 10 LISTs in a burst every 1.0s");
        assert!(table.contains(&sentence), "no {sentence:?} in:\n{table}");
    }
    assert!(
        table.contains(
            "It is an informer resync re-reconciling every object, with resourceVersion unset"
        ),
        "{table}"
    );
}

#[test]
fn throttled_rate_pins_at_qps_after_the_burst() {
    let outcome = validated("throttled");
    let runs = outcome.ledger.runs();
    let run = &runs[0];
    // 30 objects created, then per object a GET and a status CREATE; the watcher's LIST
    // and WATCH.
    let expected = BTreeMap::from([
        (key("create", "null", 201), 60),
        (key("get", "most_recent", 200), 30),
        (key("list", "most_recent", 200), 1),
        (watches("exact"), 1),
    ]);
    assert_eq!(requests(run), expected);
    let mut times: Vec<f64> = of(run, "request")
        .iter()
        .map(|r| r["time"].as_f64().expect("time"))
        .collect();
    times.sort_by(f64::total_cmp);
    let (burst, qps) = (30, 20.0);
    // The tokens that came in while the burst was being sent.
    let refilled = ((times[burst - 1] - times[0]) * qps).ceil() as usize;
    // After the burst the bucket pins the rate at qps, but for those refilled tokens,
    // which go out at once: each shortens the span by one interval. One interval more
    // covers the timers at the span's two ends (milliseconds, of 50 ms intervals).
    let after = &times[burst..];
    let intervals = (after.len() - 1) as f64;
    let rate = intervals / (after[after.len() - 1] - after[0]);
    let slack = (refilled + 1) as f64 / intervals;
    eprintln!("sustained rate {rate:.3}/s after the burst of {burst} ({refilled} refilled), at qps {qps} ± {:.1}%", slack * 100.0);
    assert!(
        (rate - qps).abs() <= qps * slack,
        "sustained rate {rate:.2}/s after the burst, expected {qps} ± {:.1}%",
        slack * 100.0
    );
    // Every request beyond the burst waited, but for the refilled tokens.
    let waits = of(run, "throttle_wait").len();
    assert!(
        (times.len() - burst - refilled..=times.len() - burst).contains(&waits),
        "{waits} throttle waits for {} requests ({refilled} tokens refilled during the burst)",
        times.len()
    );
}

#[test]
fn restart_catchup_reconciles_every_parent_after_the_restart() {
    let outcome = validated("restart-catchup");
    for run in outcome.ledger.runs() {
        let restarts: Vec<usize> = run
            .iter()
            .enumerate()
            .filter(|(_, l)| l["type"] == "restart")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(restarts.len(), 1, "one restart per run");
        let (before, after) = run.split_at(restarts[0]);
        // 6 parents: 3 reconciles (half) before the restart, then all 6 again.
        assert_eq!(of(before, "reconcile_end").len(), 3);
        assert_eq!(of(after, "reconcile_end").len(), 6);
        assert_eq!(of(before, "reconcile_start").len(), 3);
        assert!(of(&run, "reconcile_end")
            .iter()
            .all(|e| e["outcome"] == "ok"));
        // 6 parents and 60 children; each lifetime LISTs and WATCHes parents and
        // children; each reconcile applies a status object (created the first time).
        let expected = BTreeMap::from([
            (key("create", "null", 201), 66),
            (key("list", "most_recent", 200), 4),
            (watches("exact"), 4),
            (key("patch", "null", 201), 6),
            (key("patch", "null", 200), 3),
        ]);
        assert_eq!(requests(&run), expected);
    }
}

#[test]
fn mixed_sends_every_verb_and_class_on_h2_and_h1() {
    let outcome = validated("mixed");
    let expected = BTreeMap::from([
        (key("create", "null", 201), 3),
        (key("get", "most_recent", 200), 3),
        (key("get", "most_recent", 404), 1),
        (key("get", "any", 200), 1),
        (key("get", "not_older_than", 200), 1),
        (key("list", "most_recent", 200), 3),
        (key("list", "any", 200), 2),
        (key("list", "not_older_than", 200), 2),
        (key("list", "exact", 200), 1),
        (key("list", "continue", 200), 1),
        (watches("exact"), 1),
        (watches("any"), 1),
        (watches("most_recent"), 1),
        (key("update", "null", 200), 1),
    ]);
    for run in outcome.ledger.runs() {
        assert_eq!(requests(&run), expected);
    }
    // On the wire: each client's HTTP version, as the controller received its answers
    // (and, compared in validated(), as apiprof saw the requests).
    let by_version: Vec<(Vec<String>, u64)> = outcome
        .http_versions
        .rows
        .iter()
        .map(|r| (r.key.clone(), r.truth.count))
        .collect();
    let row = |ua: &str, v: &str| (vec![ua.to_owned(), v.to_owned()], 22);
    assert_eq!(
        by_version,
        [
            row("refctl-mixed/h1", "HTTP/1.1"),
            row("refctl-mixed/h2", "HTTP/2.0")
        ]
    );
}

#[test]
fn watch_events_set_off_the_controllers_bursts() {
    let outcome = validated("watch-burst");
    let runs = outcome.ledger.runs();
    let rounds = of(&runs[0], "write_round");
    assert_eq!(rounds.len(), 3);
    // 10 objects: reconciled once at the start and once per round of writes.
    let ends = of(&runs[0], "reconcile_end");
    assert_eq!(ends.len(), 40);
    assert!(ends.iter().all(|e| e["outcome"] == "ok"));
}
