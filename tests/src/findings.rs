//! apiprof's findings checked against the reference controller's ledger, the
//! detectors' truth: resync periods within 2% and every tick found (none invented),
//! throttling with qps within 5% and burst within 10% for `throttled` and for no other
//! scenario, catch-up durations within 10%, burst triggers (resyncs, restarts, watch
//! events); what client-side probes measure, within microseconds of what client-go
//! measured itself ([`WAIT_ERROR_S`]).
//!
//! The inferred findings' tolerances are what the server cannot see, not noise to
//! absorb: it sees requests when they arrive, not when the client decided to send them
//! (the ledger's times). A token bucket lets through its burst plus what refills while
//! the burst is being sent (20 qps × the time 30 requests take to send: 10% of 30 is
//! 150 ms of it; 31 measured); a rate taken over a pinned stretch of seconds is off
//! by the arrival jitter of its two ends (milliseconds) over its length, far inside 5%
//! (20.00 for 20 measured); a resync period is the mean of intervals between ticks
//! seconds apart whose arrival jitter is milliseconds (2%; 3.001 for 3.001 measured), and
//! a tick is matched when the server saw it within a tenth of the period; a catch-up is
//! timed from its first request the server saw, which a new connection's handshakes
//! delay ([`CONNECTION_SETUP_S`]), and its end is its last request's arrival, so 10%
//! covers the requests' own serving jitter (−4% and −8% measured for refctl, whose
//! handshakes take 45 ms of that).

use std::fmt;

use serde_json::Value;

use crate::refctl::{Ledger, Scenario, Size};

/// One check of a finding against the truth.
pub struct Check {
    /// What was checked, with both figures.
    pub what: String,
    /// Whether it holds.
    pub ok: bool,
}

/// A scenario's checks.
pub struct Checks(pub Vec<Check>);

impl Checks {
    /// Every check holds.
    pub fn passed(&self) -> bool {
        self.0.iter().all(|c| c.ok)
    }
}

impl fmt::Display for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.0 {
            writeln!(f, "{} {}", if c.ok { "ok  " } else { "FAIL" }, c.what)?;
        }
        Ok(())
    }
}

fn findings<'r>(report: &'r Value, kind: &'r str, user_agent: &'r str) -> Vec<&'r Value> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["kind"] == kind && f["user_agent"] == user_agent)
                .collect()
        })
        .unwrap_or_default()
}

fn time(line: &Value) -> f64 {
    line["time"].as_f64().expect("a ledger time")
}

fn within(got: f64, want: f64, share: f64) -> bool {
    (got - want).abs() <= share * want
}

/// Checks `report`'s findings against what `scenario` (run at `size`) wrote in `ledger`.
pub fn check(scenario: &Scenario, size: Size, ledger: &Ledger, report: &Value) -> Checks {
    let mut checks = Vec::new();
    for (run, lines) in scenario.runs.iter().zip(ledger.runs()) {
        let ua = run.user_agent;
        let of = |kind: &str| {
            lines
                .iter()
                .copied()
                .filter(|l| l["type"] == kind)
                .collect::<Vec<_>>()
        };
        // The Go controller is followed with client-side probes: what they measure.
        let measured = run.controller.go_binary().is_some();
        evidence(&mut checks, ua, measured, report);
        match scenario.kind {
            "resync-storm" => {
                resync(&mut checks, ua, &of("resync_tick"), report);
                if measured {
                    measured_resync(&mut checks, ua, &lines, report);
                }
            }
            "throttled" => {
                let qps: f64 = run
                    .arg(size, "qps")
                    .and_then(|q| q.parse().ok())
                    .expect("--qps");
                let burst: f64 = run
                    .arg(size, "burst")
                    .and_then(|b| b.parse().ok())
                    .expect("--burst");
                match findings(report, "client_throttling", ua).first() {
                    None => checks.push(Check {
                        what: format!("{ua}: no client_throttling finding"),
                        ok: false,
                    }),
                    Some(f) => {
                        let rate = f["rate_per_s"].as_f64().unwrap_or_default();
                        let b = f["burst"].as_f64().unwrap_or_default();
                        checks.push(Check {
                            what: format!("{ua}: throttled at {rate:.2} req/s (truth {qps}, ±5%)"),
                            ok: within(rate, qps, 0.05),
                        });
                        checks.push(Check {
                            what: format!("{ua}: burst {b} (truth {burst}, ±10%)"),
                            ok: within(b, burst, 0.1),
                        });
                        if measured {
                            measured_throttling(&mut checks, ua, f, &lines);
                        }
                    }
                }
            }
            "restart-catchup" => catchup(&mut checks, ua, &lines, report),
            "watch-burst" => watch_bursts(&mut checks, ua, &of("write_round"), report),
            _ => {}
        }
        if scenario.kind != "throttled" {
            let n = findings(report, "client_throttling", ua).len();
            checks.push(Check {
                what: format!("{ua}: no throttling raised (found {n})"),
                ok: n == 0,
            });
        }
    }
    // Spikes have no ledger truth: shown, not checked.
    for spike in report["findings"].as_array().into_iter().flatten() {
        if spike["kind"] == "allocation_spike" {
            let top = &spike["contributors"][0];
            checks.push(Check {
                what: format!(
                    "(shown) allocation spike of {} MB over {} s, {:.0}% {}",
                    spike["alloc_bytes"].as_u64().unwrap_or_default() >> 20,
                    spike["duration_s"],
                    top["share"].as_f64().unwrap_or_default() * 100.0,
                    top["requests"].as_str().unwrap_or("")
                ),
                ok: true,
            });
        }
    }
    Checks(checks)
}

/// Every finding about the Go controller (followed with client-side probes) that the
/// probes measure is measured; refctl's (not followed) are all inferred.
fn evidence(checks: &mut Vec<Check>, ua: &str, measured: bool, report: &Value) {
    let kinds = |evidence: &str| {
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["user_agent"] == ua && f["evidence"] == evidence)
            .filter_map(|f| f["kind"].as_str())
            .collect::<Vec<_>>()
    };
    let (got, wrong) = (kinds("measured"), kinds("inferred"));
    let misplaced: Vec<&str> = if measured {
        wrong
            .into_iter()
            .filter(|k| ["resync_tick", "client_throttling"].contains(k))
            .collect()
    } else {
        got
    };
    checks.push(Check {
        what: format!(
            "{ua}: findings {} (misplaced: {misplaced:?})",
            if measured {
                "measured where client-side probes measure them"
            } else {
                "all inferred (no client-side probes)"
            }
        ),
        ok: misplaced.is_empty(),
    });
}

/// How far a wait apiprof measures may differ from client-go's own measurement of it,
/// seconds. At each end of a wait, apiprof's probe and client-go's clock read sit a few
/// instructions apart (for the rate limiter, `tryThrottleWithInfo`'s entry and its
/// `CALL time.Since` around client-go's `time.Now` and `time.Since`; for a workqueue
/// item, the map insert and delete under the queue's lock beside its metrics' clock
/// reads): the same wait but for those instructions and the probes' emulated hits (about
/// 1.3 µs each, ../shared/MEASURING.md, more on a busy machine). Measured: −2 µs a
/// rate-limiter wait, +3 to +15 µs a workqueue wait with the other core busy fuzzing.
/// 50 µs leaves room for an interrupt between a probe and the clock read.
pub const WAIT_ERROR_S: f64 = 50e-6;

/// The measured throttling of `ua` against the ledger's every `throttle_wait` (client-go's
/// own measurement, through its metrics hook): the requests that passed the limiter
/// exactly, their waits summed and the longest within [`WAIT_ERROR_S`] a wait; and every
/// request the ledger sent joined to the server request it became.
fn measured_throttling(checks: &mut Vec<Check>, ua: &str, f: &Value, lines: &[&Value]) {
    let waits: Vec<f64> = lines
        .iter()
        .filter(|l| l["type"] == "throttle_wait")
        .filter_map(|l| l["wait_ms"].as_f64())
        .collect();
    let requests = lines.iter().filter(|l| l["type"] == "request").count() as u64;
    let t = &f["throttle"];
    let limited = t["limited_requests"].as_u64().unwrap_or_default();
    checks.push(Check {
        what: format!(
            "{ua}: {limited} requests passed the rate limiter (ledger {})",
            waits.len()
        ),
        ok: limited == waits.len() as u64,
    });
    let total = waits.iter().sum::<f64>() / 1e3;
    let got = t["wait_s"].as_f64().unwrap_or_default();
    let error = waits.len() as f64 * WAIT_ERROR_S;
    checks.push(Check {
        what: format!(
            "{ua}: measured waits {got:.6} s in all (ledger {total:.6} s, ±{:.0} µs)",
            error * 1e6
        ),
        ok: (got - total).abs() <= error,
    });
    let longest = waits.iter().copied().fold(0.0, f64::max);
    let got = t["max_wait_ms"].as_f64().unwrap_or_default();
    checks.push(Check {
        what: format!(
            "{ua}: longest wait {got:.3} ms (ledger {longest:.3} ms, ±{:.0} µs)",
            WAIT_ERROR_S * 1e6
        ),
        ok: (got - longest).abs() <= WAIT_ERROR_S * 1e3,
    });
    let joined = t["joined_requests"].as_u64().unwrap_or_default();
    checks.push(Check {
        what: format!("{ua}: {joined} client requests joined to the server's (ledger {requests})"),
        ok: joined == requests,
    });
}

/// The measured resync of `ua`: each tick's objects exactly as the ledger counted them;
/// in each burst a tick set off, the deepest its workqueue grew exactly as client-go's
/// depth metric counted, and the longest an item waited in it within [`WAIT_ERROR_S`]
/// of client-go's queue latency metric: the ledger's `queue_depth` and `queue_wait`
/// lines from the tick to the burst's last request.
fn measured_resync(checks: &mut Vec<Check>, ua: &str, lines: &[&Value], report: &Value) {
    fn of<'l>(lines: &'l [&'l Value], kind: &'l str) -> impl Iterator<Item = &'l Value> + 'l {
        lines.iter().copied().filter(move |l| l["type"] == kind)
    }
    let truth: Vec<u64> = of(lines, "resync_tick")
        .filter_map(|t| t["objects"].as_u64())
        .collect();
    let found = findings(report, "resync_tick", ua);
    let objects: Vec<u64> = found
        .first()
        .and_then(|f| f["ticks"].as_array())
        .map(|t| t.iter().filter_map(|t| t["objects"].as_u64()).collect())
        .unwrap_or_default();
    checks.push(Check {
        what: format!(
            "{ua}: informer {} re-queued {objects:?} objects per tick (ledger {truth:?})",
            found
                .first()
                .map_or("?", |f| f["informer"].as_str().unwrap_or("?"))
        ),
        ok: objects == truth,
    });
    let bursts: Vec<&Value> = findings(report, "reconcile_burst", ua)
        .into_iter()
        .filter(|b| b["trigger"] == "resync")
        .collect();
    // The ledger's largest `field` of `kind` lines from the tick before each burst to
    // its end. The report's times come from event time through a Unix anchor of
    // millisecond resolution, and the burst's longest-waiting item is handed over just
    // before its last request: the end is taken 100 ms later (the next tick is a period,
    // at least a second, away).
    let ledger = |kind: &str, field: &str| -> Vec<Option<f64>> {
        bursts
            .iter()
            .map(|b| {
                let end = b["end_unix_s"].as_f64().unwrap_or_default() + 0.1;
                let tick = of(lines, "resync_tick")
                    .map(time)
                    .filter(|t| *t <= end)
                    .fold(f64::MIN, f64::max);
                of(lines, kind)
                    .filter(|l| (tick..=end).contains(&time(l)))
                    .filter_map(|l| l[field].as_f64())
                    .reduce(f64::max)
            })
            .collect()
    };
    let got: Vec<Option<f64>> = bursts.iter().map(|b| b["queue_depth"].as_f64()).collect();
    let want = ledger("queue_depth", "depth");
    checks.push(Check {
        what: format!("{ua}: workqueue depth {got:?} in the resync bursts (ledger {want:?})"),
        ok: !got.is_empty() && got == want,
    });
    let got: Vec<Option<f64>> = bursts.iter().map(|b| b["queue_wait_ms"].as_f64()).collect();
    let want = ledger("queue_wait", "wait_ms");
    let show = |v: &[Option<f64>]| {
        v.iter()
            .map(|w| w.map_or("-".into(), |w| format!("{w:.3}")))
            .collect::<Vec<String>>()
            .join(", ")
    };
    checks.push(Check {
        what: format!(
            "{ua}: longest workqueue waits [{}] ms in the resync bursts (ledger [{}] ms, ±{:.0} µs)",
            show(&got),
            show(&want),
            WAIT_ERROR_S * 1e6
        ),
        ok: !got.is_empty()
            && got.len() == want.len()
            && got.iter().zip(&want).all(|(g, w)| match (g, w) {
                (Some(g), Some(w)) => (g - w).abs() <= WAIT_ERROR_S * 1e3,
                _ => false,
            }),
    });
}

/// The resync finding of `ua`: its period against the ticks' mean interval, each tick
/// matched, the bursts' triggers.
fn resync(checks: &mut Vec<Check>, ua: &str, ticks: &[&Value], report: &Value) {
    let Some(f) = findings(report, "resync_tick", ua).first().copied() else {
        checks.push(Check {
            what: format!("{ua}: no resync_tick finding"),
            ok: false,
        });
        return;
    };
    let truth = (time(ticks[ticks.len() - 1]) - time(ticks[0])) / (ticks.len() - 1) as f64;
    let period = f["period_s"].as_f64().unwrap_or_default();
    checks.push(Check {
        what: format!("{ua}: resync period {period:.3} s (truth {truth:.3} s, ±2%)"),
        ok: within(period, truth, 0.02),
    });
    let found: Vec<f64> = f["ticks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["unix_s"].as_f64()).collect())
        .unwrap_or_default();
    let errors: Vec<String> = ticks
        .iter()
        .map(|t| {
            let nearest = found
                .iter()
                .map(|f| f - time(t))
                .min_by(|a, b| a.abs().total_cmp(&b.abs()));
            nearest.map_or("missing".into(), |e| format!("{:+.0}ms", e * 1e3))
        })
        .collect();
    let matched = found.len() == ticks.len()
        && ticks
            .iter()
            .all(|t| found.iter().any(|f| (f - time(t)).abs() <= 0.1 * truth));
    checks.push(Check {
        what: format!(
            "{ua}: {} ticks found for {} in the ledger (time errors {})",
            found.len(),
            ticks.len(),
            errors.join(", ")
        ),
        ok: matched,
    });
    let triggers: Vec<&str> = findings(report, "reconcile_burst", ua)
        .iter()
        .filter_map(|b| b["trigger"].as_str())
        .collect();
    let resyncs = triggers.iter().filter(|t| **t == "resync").count();
    checks.push(Check {
        what: format!("{ua}: burst triggers {triggers:?}: one per tick is a resync"),
        ok: resyncs == ticks.len() && triggers.first() == Some(&"restart"),
    });
}

/// The controller's bursts after the writer's rounds: each set off by watch events, and
/// none taken for a resync.
fn watch_bursts(checks: &mut Vec<Check>, ua: &str, rounds: &[&Value], report: &Value) {
    let triggers: Vec<&str> = findings(report, "reconcile_burst", ua)
        .iter()
        .filter_map(|b| b["trigger"].as_str())
        .collect();
    let mut want = vec!["restart"];
    want.extend(rounds.iter().map(|_| "watch_events"));
    checks.push(Check {
        what: format!("{ua}: burst triggers {triggers:?} (truth {want:?}: its start, then one per round of writes)"),
        ok: triggers == want,
    });
    let resyncs = findings(report, "resync_tick", ua).len();
    checks.push(Check {
        what: format!("{ua}: no resync taken from its watch-event bursts (found {resyncs})"),
        ok: resyncs == 0,
    });
}

/// What the server cannot see of a restarted client's first requests: each waits for a
/// fresh connection (TCP and TLS handshakes, 45–50 ms for refctl's debug-built rustls
/// client on this VM) before the server's handler begins; the ledger stamps it when
/// sent. A fixed cost, whatever the catch-up's length.
const CONNECTION_SETUP_S: f64 = 0.06;

/// The catch-up after the ledger's restart: from the first request after it to the
/// last, against the finding that begins there: within 10%, plus the connection setup
/// the server cannot see.
fn catchup(checks: &mut Vec<Check>, ua: &str, lines: &[&Value], report: &Value) {
    let Some(restart) = lines
        .iter()
        .find(|l| l["type"] == "restart")
        .map(|l| time(l))
    else {
        return;
    };
    let after: Vec<f64> = lines
        .iter()
        .filter(|l| l["type"] == "request" && time(l) >= restart)
        .map(|l| time(l))
        .collect();
    let truth = after.iter().copied().fold(f64::MIN, f64::max)
        - after.iter().copied().fold(f64::MAX, f64::min);
    let catchups = findings(report, "restart_catchup", ua);
    let Some(f) = catchups.iter().find(|f| {
        f["start_unix_s"]
            .as_f64()
            .is_some_and(|s| s >= restart - 0.05)
    }) else {
        checks.push(Check {
            what: format!(
                "{ua}: no restart_catchup after the restart ({} found)",
                catchups.len()
            ),
            ok: false,
        });
        return;
    };
    let duration = f["duration_s"].as_f64().unwrap_or_default();
    let first_send = after.iter().copied().fold(f64::MAX, f64::min);
    let seen_after = f["start_unix_s"].as_f64().unwrap_or_default() - first_send;
    checks.push(Check {
        what: format!(
            "{ua}: caught up in {duration:.3} s (truth {truth:.3} s, ±10% + {CONNECTION_SETUP_S} s of connection setup; its first request reached the server {:.0} ms after it was sent)",
            seen_after * 1e3
        ),
        ok: (duration - truth).abs() <= 0.1 * truth + CONNECTION_SETUP_S,
    });
}
