//! The human-readable report: one aligned row per group, heaviest first; the grouped
//! dimensions, then what the requests cost. On a terminal it fits the width: long
//! values are cut (`…`) and the least telling columns dropped, each said below.

use std::fmt::Write as _;

use crate::analyze::{
    aggregate::{AllocTracking, Report, Row},
    dimension::shown,
};

/// Figures, in column order.
const FIGURES: [&str; 11] = [
    "COUNT",
    "STATUS",
    "BYTES",
    "P50_MS",
    "P99_MS",
    "LATENCY_S",
    "IN_FLIGHT",
    "ALLOC_BYTES",
    "ALLOC_SAMPLES",
    "CPU_S",
    "CPU_SAMPLES",
];

/// Figures dropped to fit a terminal, first dropped first; COUNT and the column the
/// rows are sorted by always stay.
const DROP_ORDER: [&str; 10] = [
    "CPU_SAMPLES",
    "ALLOC_SAMPLES",
    "IN_FLIGHT",
    "P50_MS",
    "LATENCY_S",
    "BYTES",
    "STATUS",
    "P99_MS",
    "ALLOC_BYTES",
    "CPU_S",
];

/// Dimension columns are cut no narrower than this to fit.
const MIN_DIMENSION_WIDTH: usize = 16;

/// The report as an aligned text table followed by notes on data loss; `width` fits it
/// to a terminal that wide, keeping the figure `sorted_by` (a column name).
pub fn table(report: &Report, width: Option<usize>, sorted_by: &str) -> String {
    let mut header: Vec<String> = report.by.iter().map(|d| d.to_uppercase()).collect();
    header.extend(FIGURES.map(String::from));
    let mut rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(report.requests.iter().map(|row| cells(report, row)))
        .collect();
    let dimensions = report.by.len();
    let mut widths: Vec<usize> = vec![0; dimensions + FIGURES.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut hidden: Vec<&str> = Vec::new();
    let mut cut = false;
    if let Some(limit) = width {
        let now = total(&widths);
        cut = shrink_dimensions(&mut widths[..dimensions], limit, now);
        for name in DROP_ORDER {
            if total(&widths) <= limit {
                break;
            }
            if name != sorted_by {
                let i = dimensions + FIGURES.iter().position(|f| *f == name).unwrap_or(0);
                widths[i] = 0;
                hidden.push(name);
            }
        }
    }
    let mut out = String::new();
    for row in &mut rows {
        let mut line = String::new();
        let visible = row.iter_mut().zip(&widths).filter(|(_, w)| **w > 0);
        for (i, (cell, w)) in visible.enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            if cell.chars().count() > *w {
                *cell = cell.chars().take(w - 1).chain(['…']).collect();
            }
            // Dimensions read left-aligned, figures right-aligned.
            if i < dimensions {
                let _ = write!(line, "{sep}{cell:<w$}");
            } else {
                let _ = write!(line, "{sep}{cell:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if cut || !hidden.is_empty() {
        let mut fitted = vec![];
        if cut {
            fitted.push("long values cut (…)".to_owned());
        }
        if !hidden.is_empty() {
            fitted.push(format!("columns {} left out", hidden.join(", ")));
        }
        let _ = writeln!(
            out,
            "(to fit {} columns: {}; --format json has everything)",
            width.unwrap_or_default(),
            fitted.join(", ")
        );
    }
    notes(report, &mut out);
    out
}

/// The width of a table whose columns are `widths` wide (0: left out).
fn total(widths: &[usize]) -> usize {
    let shown: Vec<&usize> = widths.iter().filter(|w| **w > 0).collect();
    shown.iter().copied().sum::<usize>() + 2 * shown.len().saturating_sub(1)
}

/// Narrows the widest dimension columns, down to [`MIN_DIMENSION_WIDTH`], until a table
/// `now` wide fits `limit`; whether any was narrowed.
fn shrink_dimensions(widths: &mut [usize], limit: usize, mut now: usize) -> bool {
    let mut cut = false;
    while now > limit {
        let Some(widest) = widths
            .iter_mut()
            .filter(|w| **w > MIN_DIMENSION_WIDTH)
            .max_by_key(|w| **w)
        else {
            break;
        };
        *widest -= 1;
        now -= 1;
        cut = true;
    }
    cut
}

/// What the table's figures stand for and what was lost, under it.
fn notes(report: &Report, out: &mut String) {
    let total: u64 = report.requests.iter().map(|r| r.count).sum();
    let _ = writeln!(
        out,
        "\n{total} requests, {} dropped events",
        report.dropped_events
    );
    if report.mem_profile_rate > 0 {
        let _ = writeln!(
            out,
            "heap allocations sampled about once per {} bytes (runtime.MemProfileRate); ALLOC_BYTES scales the samples as pprof does",
            report.mem_profile_rate
        );
    } else {
        out.push_str(match report.alloc_tracking {
            AllocTracking::Off => "heap allocations were not tracked (--no-alloc); requests and CPU are attributed as usual\n",
            AllocTracking::DisabledInProcess | AllocTracking::Sampled => "heap allocations were not tracked: the process's runtime.MemProfileRate is 0, so its runtime samples none (Go sets it so in a binary that never links heap profiling: no runtime/pprof or net/http/pprof); requests and CPU are attributed as usual\n",
        });
    }
    if report.cpu_sample_period_ns > 0 {
        let _ = writeln!(
            out,
            "CPU sampled every {:.1} ms of CPU time ({:.0} Hz per CPU); CPU_S is samples × that period",
            report.cpu_sample_period_ns as f64 / 1e6,
            1e9 / report.cpu_sample_period_ns as f64
        );
    } else {
        out.push_str("CPU was not sampled\n");
    }
    if report.truncated_requests > 0 {
        let _ = writeln!(
            out,
            "{} requests had a method, path, query, user agent or remote address cut to the kernel's copy size",
            report.truncated_requests
        );
    }
    if let Some(ms) = report.target_exited_unix_ms {
        let when = match ms {
            0 => String::new(),
            ms => {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                format!(" at {}", humantime::format_rfc3339_seconds(at))
            }
        };
        let _ = writeln!(
            out,
            "the observed process exited{when} and the capture ends there: the daemon (--capture) goes on in a new file once the process is back; `apiprof record` must be started again on the new process"
        );
    }
    for caution in &report.cautions {
        let _ = writeln!(out, "caution: {caution}");
    }
    if !report.complete {
        out.push_str("capture is incomplete (no end record: the recorder was killed, or the file was cut short); counts cover what was written before\n");
    }
    if !report.findings.is_empty() {
        out.push_str("\nfindings:\n");
        for finding in &report.findings {
            let _ = writeln!(out, "- [{}] {}", finding.evidence, finding.sentence());
        }
    }
}

fn cells(report: &Report, row: &Row) -> Vec<String> {
    let mut cells: Vec<String> = report
        .by
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if row.background {
                if i == 0 { "(background)" } else { "-" }.to_owned()
            } else {
                shown(&row.dimensions[*d])
            }
        })
        .collect();
    let status: Vec<String> = row
        .status
        .iter()
        .map(|(code, n)| format!("{code}x{n}"))
        .collect();
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |ms| format!("{ms:.2}"));
    cells.extend([
        row.count.to_string(),
        if status.is_empty() {
            "-".to_owned()
        } else {
            status.join(",")
        },
        row.response_bytes.to_string(),
        ms(row.latency_ms_p50),
        ms(row.latency_ms_p99),
        format!("{:.3}", row.latency_seconds),
        row.in_flight.to_string(),
        row.alloc_bytes.to_string(),
        row.alloc_samples.to_string(),
        format!("{:.3}", row.cpu_seconds),
        row.cpu_samples.to_string(),
    ]);
    cells
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Map, Value};

    use super::*;

    fn report() -> Report {
        let dims = |ua: &str, verb: &str| {
            Map::from_iter([
                ("user_agent".to_owned(), Value::from(ua)),
                ("verb".to_owned(), Value::from(verb)),
            ])
        };
        let row = |ua: &str, verb: &str, count, status: BTreeMap<u16, u64>, p50| Row {
            dimensions: dims(ua, verb),
            background: false,
            alloc_bytes: 1000 * count,
            alloc_samples: count,
            cpu_seconds: 0.0101 * count as f64,
            cpu_samples: count,
            count,
            status,
            response_bytes: 10 * count,
            latency_ms_p50: p50,
            latency_ms_p99: p50,
            latency_seconds: 0.0015 * count as f64,
            in_flight: 0,
            watch_seconds: 0.0,
        };
        Report {
            by: vec!["user_agent", "verb"],
            mem_profile_rate: 512 * 1024,
            alloc_tracking: AllocTracking::Sampled,
            cpu_sample_period_ns: 10_101_010,
            requests: vec![
                row(
                    "kubectl/v1.36.0 (linux/amd64) kubernetes/abcdef0",
                    "list",
                    12,
                    BTreeMap::from([(200, 11), (404, 1)]),
                    Some(1.5),
                ),
                row("", "watch", 3, BTreeMap::new(), None),
            ],
            dropped_events: 2,
            truncated_requests: 0,
            complete: false,
            target_exited_unix_ms: None,
            cautions: Vec::new(),
            findings: Vec::new(),
        }
    }

    const NOTES: &str = "\n15 requests, 2 dropped events\n\
        heap allocations sampled about once per 524288 bytes (runtime.MemProfileRate); ALLOC_BYTES scales the samples as pprof does\n\
        CPU sampled every 10.1 ms of CPU time (99 Hz per CPU); CPU_S is samples × that period\n\
        capture is incomplete (no end record: the recorder was killed, or the file was cut short); counts cover what was written before\n";

    #[test]
    fn table_aligns_dimensions_left_and_figures_right_and_states_losses() {
        assert_eq!(
            table(&report(), None, "COUNT"),
            "USER_AGENT                                        VERB   COUNT        STATUS  BYTES  P50_MS  P99_MS  LATENCY_S  IN_FLIGHT  ALLOC_BYTES  ALLOC_SAMPLES  CPU_S  CPU_SAMPLES\n\
             kubectl/v1.36.0 (linux/amd64) kubernetes/abcdef0  list      12  200x11,404x1    120    1.50    1.50      0.018          0        12000             12  0.121           12\n\
             \"\"                                                watch      3             -     30       -       -      0.005          0         3000              3  0.030            3\n"
                .to_owned()
                + NOTES
        );
    }

    #[test]
    fn untracked_allocations_say_why_and_that_the_rest_still_works() {
        let mut r = report();
        r.mem_profile_rate = 0;
        r.alloc_tracking = AllocTracking::Off;
        assert!(table(&r, None, "COUNT")
            .contains("heap allocations were not tracked (--no-alloc); requests and CPU are attributed as usual"));
        r.alloc_tracking = AllocTracking::DisabledInProcess;
        let t = table(&r, None, "COUNT");
        assert!(
            t.contains("runtime.MemProfileRate is 0")
                && t.contains("never links heap profiling")
                && t.contains("requests and CPU are attributed as usual"),
            "{t}"
        );
    }

    #[test]
    fn on_a_narrow_terminal_long_values_are_cut_then_columns_left_out() {
        let fitted = table(&report(), Some(80), "CPU_S");
        assert_eq!(
            fitted,
            "USER_AGENT        VERB   COUNT        STATUS  BYTES  P99_MS  ALLOC_BYTES  CPU_S\n\
             kubectl/v1.36.0…  list      12  200x11,404x1    120    1.50        12000  0.121\n\
             \"\"                watch      3             -     30       -         3000  0.030\n\
             (to fit 80 columns: long values cut (…), columns CPU_SAMPLES, ALLOC_SAMPLES, IN_FLIGHT, P50_MS, LATENCY_S left out; --format json has everything)\n"
                .to_owned()
                + NOTES
        );
        assert!(fitted.lines().take(3).all(|l| l.chars().count() <= 80));
    }
}
