//! The 10-hour incidents, in 72 simulated hours (500 clients, resyncs every 10 h ±10%
//! and every 12–24 h, a throttled client, restarts, noise) fed through the daemon's own
//! entry: every pattern found with the accuracy `cargo xtask validate` asks of the real
//! ones, nothing invented, and memory bounded. No root needed.

use apiprof::analyze::detect::{Finding, MAX_BURSTS, MAX_SEEN};
use apiprof_tests::simulation::{self, Truth, CLIENTS, CR, DURATION, KCM, RESTARTED, THROTTLED};

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
    let error = (period - period_ns).abs() / period_ns;
    println!(
        "{ua}: period {:.3} h (truth {:.3} h), jitter {:.3} h, {} ticks",
        period / 3.6e12,
        period_ns / 3.6e12,
        found[0].jitter_s.unwrap() / 3600.0,
        ticks.len()
    );
    assert!(error <= 0.02, "{ua}: period error {:.2}%", error * 100.0);
    let seen: Vec<f64> = found[0]
        .ticks
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.unix_s)
        .collect();
    assert_eq!(seen.len(), ticks.len(), "{ua}: every tick, none invented");
    for (got, want) in seen.iter().zip(ticks) {
        // Each tick's burst begins with its first reconcile, 10 ms after the tick.
        assert!(
            (got - unix(*want)).abs() < 0.05,
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
    assert!((rate - truth.qps).abs() <= 0.05 * truth.qps, "rate {rate}");
    assert!(
        burst.abs_diff(truth.burst) as f64 <= 0.1 * truth.burst as f64,
        "burst {burst}"
    );

    let catchups = of(findings, "restart_catchup", RESTARTED);
    assert_eq!(catchups.len(), truth.catchups.len(), "{catchups:#?}");
    for (found, (start, duration)) in catchups.iter().zip(&truth.catchups) {
        let d = found.duration_s.unwrap() * 1e9;
        println!(
            "{RESTARTED}: caught up in {:.2} s (truth {:.2} s)",
            d / 1e9,
            *duration as f64 / 1e9
        );
        assert!((d - *duration as f64).abs() <= 0.1 * *duration as f64);
        assert!((found.start_unix_s - unix(*start)).abs() < 0.01);
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
