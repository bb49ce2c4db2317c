//! `cargo xtask bench --soak`: the daemon followed for 30 minutes at a steady rate; its
//! RSS printed every minute must stay within ±5% of the first minute after warm-up, with
//! no event dropped. PASS/FAIL lines, not panics: a benchmark, not a test.

use std::time::Duration;

use super::{daemon_cost::Setup, out::Out, Settings};

/// Requests per second of the soak.
const RATE: f64 = 1000.0;
/// Minutes of the soak, and of its warm-up.
const MINUTES: u32 = 30;
const WARM_UP_MINUTES: u32 = 5;
/// RSS tolerance after warm-up.
const TOLERANCE: f64 = 0.05;
/// The daemon's window: short enough to be full after the warm-up, so the RSS it
/// settles to is what it keeps for good (the default hour would still be filling).
const RETENTION: &str = "5m";

/// Runs the soak and prints each minute and the verdicts.
pub async fn section(out: &mut Out, settings: &Settings) {
    let (minutes, warm_up, minute) = if settings.quick {
        (3, 1, Duration::from_secs(20))
    } else {
        (MINUTES, WARM_UP_MINUTES, Duration::from_secs(60))
    };
    out.heading("Soak: the daemon at a steady rate");
    out.paragraph(format!(
        "{RATE:.0} small GETs per second for {minutes} × {} s on the Go fixture, `apiprof daemon --pid --retention {RETENTION}`; \
         RSS after each minute; minutes 1 to {warm_up} are the warm-up.",
        minute.as_secs()
    ));
    out.line("| minute | achieved req/s | daemon CPU (cores) | ns/event | RSS MiB | dropped |");
    out.line("| ------ | -------------- | ------------------ | -------- | ------- | ------- |");
    let setup = Setup::start(&["--retention", RETENTION]).await;
    let mut rss = Vec::new();
    let mut dropped = 0.0;
    for m in 1..=minutes {
        let step = setup.step(Some(RATE), minute).await;
        out.line(format!(
            "| {m:>6} | {:>14.0} | {:>18.3} | {:>8.0} | {:>7.1} | {:>7.0} |",
            step.rate,
            step.cores,
            step.ns_per_event(),
            step.rss_mib,
            step.dropped
        ));
        if m > warm_up {
            rss.push(step.rss_mib);
        }
        dropped += step.dropped;
    }
    verdicts(out, &rss, dropped);
}

fn verdicts(out: &mut Out, rss: &[f64], dropped: f64) {
    let reference = rss[0];
    let (low, high) = rss
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    let within = low >= reference * (1.0 - TOLERANCE) && high <= reference * (1.0 + TOLERANCE);
    out.line("");
    out.line(format!(
        "{}: RSS after warm-up {low:.1}–{high:.1} MiB; allowed ±{:.0}% of the first minute after it, {reference:.1} MiB",
        verdict(within),
        TOLERANCE * 100.0
    ));
    out.line(format!(
        "{}: {dropped:.0} events dropped",
        verdict(dropped == 0.0)
    ));
    out.line(format!(
        "RSS trend after warm-up: {:+.3} MiB a minute (least squares; a verdict needs none, a longer soak tells whether it levels off)",
        slope(rss)
    ));
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The least-squares slope of `values` over their index.
fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (x, y) in values.iter().enumerate() {
        let dx = x as f64 - mean_x;
        covariance += dx * (y - mean_y);
        variance += dx * dx;
    }
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_of_a_line_and_of_one_point() {
        assert_eq!(slope(&[1.0, 3.0, 5.0, 7.0]), 2.0);
        assert_eq!(slope(&[4.0]), 0.0);
    }
}
