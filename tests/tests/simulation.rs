//! The 10-hour incidents, in 72 simulated hours (500 clients, resyncs every 10 h ±10%
//! and every 12–24 h, a throttled client, restarts, noise) fed through the daemon's own
//! entry: every pattern found, nothing invented, and memory bounded. No root needed.
//!
//! The simulated requests arrive exactly when the simulation says, with none of the
//! real ones' network and scheduling jitter, so what the detectors find is exact but
//! for the resolution of the report's times: a Unix anchor of [`TIME_RESOLUTION_S`].
//! (`cargo xtask validate` checks the real scenarios with the tolerances their jitter
//! needs: tests/src/findings.rs.)

use apiprof::analyze::detect::{Finding, MAX_BURSTS, MAX_SEEN};
use apiprof_tests::simulation::{self, Truth, CLIENTS, CR, DURATION, KCM, RESTARTED, THROTTLED};

/// The report turns event time into Unix time through an anchor of millisecond
/// resolution.
const TIME_RESOLUTION_S: f64 = 0.001;

/// Unix time of simulated event time `ns` (the simulation's clock starts there).
fn unix(ns: u64) -> f64 {
    1_790_000_000.0 + ns as f64 / 1e9
}

fn of<'f>(findings: &'f [Finding], kind: &str, ua: &str) -> Vec<&'f Finding> {
    findings
        .iter()
        .filter(|f| f.kind == kind && f.user_agent == ua)
        .collect()
}

fn assert_resync(findings: &[Finding], ua: &str, ticks: &[u64], period_ns: f64) {
    let found = of(findings, "resync_tick", ua);
    assert_eq!(found.len(), 1, "{ua}: {found:#?}");
    let period = found[0].period_s.unwrap() * 1e9;
    println!(
        "{ua}: period {:.3} h (truth {:.3} h), jitter {:.3} h, {} ticks",
        period / 3.6e12,
        period_ns / 3.6e12,
        found[0].jitter_s.unwrap() / 3600.0,
        ticks.len()
    );
    // The mean interval from the informer's first sync to its last tick: the first
    // burst begins with the sync's LIST at the tick, the others with a reconcile 10 ms
    // after theirs, so the span is 10 ms longer than the truth's, shared by its
    // intervals.
    let intervals = ticks.len() as f64;
    assert!(
        (period - period_ns).abs() <= 10e6 / intervals + 1.0,
        "{ua}: period error {:.3} ms",
        (period - period_ns) / 1e6
    );
    let seen: Vec<f64> = found[0]
        .ticks
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.unix_s)
        .collect();
    assert_eq!(seen.len(), ticks.len(), "{ua}: every tick, none invented");
    let errors: Vec<String> = seen
        .iter()
        .zip(ticks)
        .map(|(got, want)| format!("{:+.4}", got - unix(*want)))
        .collect();
    println!("{ua}: tick errors (s) {}", errors.join(" "));
    for (got, want) in seen.iter().zip(ticks) {
        // Each tick's burst begins with its first reconcile, 10 ms after the tick.
        assert!(
            (got - unix(*want) - 0.010).abs() <= TIME_RESOLUTION_S,
            "{ua}: tick at {got} for {}",
            unix(*want)
        );
    }
}

fn check(findings: &[Finding], truth: &Truth) {
    assert_resync(findings, CR, &truth.cr_ticks, truth.cr_period);
    assert_resync(findings, KCM, &truth.kcm_ticks, truth.kcm_period);

    let throttled = of(findings, "client_throttling", THROTTLED);
    assert_eq!(throttled.len(), 1, "{throttled:#?}");
    let (rate, burst) = (
        throttled[0].rate_per_s.unwrap(),
        throttled[0].burst.unwrap(),
    );
    println!("{THROTTLED}: {rate:.2} req/s, burst {burst}");
    // A simulated bucket's writes are spaced exactly 1/qps apart once its burst is
    // spent (at once: no token refills while it goes out).
    assert!((rate - truth.qps).abs() <= 1e-6 * truth.qps, "rate {rate}");
    assert_eq!(burst, truth.burst);

    let catchups = of(findings, "restart_catchup", RESTARTED);
    assert_eq!(catchups.len(), truth.catchups.len(), "{catchups:#?}");
    for (found, (start, duration)) in catchups.iter().zip(&truth.catchups) {
        let d = found.duration_s.unwrap() * 1e9;
        println!(
            "{RESTARTED}: caught up in {:.2} s (truth {:.2} s)",
            d / 1e9,
            *duration as f64 / 1e9
        );
        println!(
            "{RESTARTED}: start error {:+.4} s",
            found.start_unix_s - unix(*start)
        );
        assert!(
            (d - *duration as f64).abs() <= TIME_RESOLUTION_S * 1e9,
            "{d}"
        );
        assert!((found.start_unix_s - unix(*start)).abs() <= TIME_RESOLUTION_S);
    }

    // Nothing else: no resync or throttling for anyone else, nothing at all of the noise.
    for f in findings {
        match f.kind {
            "resync_tick" => assert!([CR, KCM].contains(&f.user_agent.as_str()), "{f:#?}"),
            "client_throttling" => assert_eq!(f.user_agent, THROTTLED, "{f:#?}"),
            _ => assert!(!f.user_agent.starts_with("sim-noise"), "{f:#?}"),
        }
    }
    let triggers: Vec<&str> = of(findings, "reconcile_burst", CR)
        .iter()
        .map(|f| f.trigger.unwrap())
        .collect();
    assert_eq!(triggers[0], "restart", "{triggers:?}");
    assert!(triggers[1..].iter().all(|t| *t == "resync"), "{triggers:?}");
}

#[test]
fn seventy_two_simulated_hours_show_every_pattern_and_nothing_else() {
    for seed in [1, 2, 3] {
        let (live, truth) = simulation::run(seed);
        println!("seed {seed}: {} requests", truth.requests);
        check(&live.findings(DURATION), &truth);
        let (clients, requests, bursts) = live.window.detectors.remembered();
        assert_eq!(clients, CLIENTS);
        assert!(requests <= CLIENTS * MAX_SEEN && bursts <= CLIENTS * MAX_BURSTS);
        let (buckets, rows) = live.window.footprint();
        // One hour of 10 s buckets, the last one open.
        assert!(buckets <= 361, "{buckets} buckets");
        println!("remembered: {requests} requests, {bursts} bursts of {clients} clients; {buckets} buckets, {rows} rows");
    }
}
