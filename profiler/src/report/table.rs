//! The human-readable report: one aligned row per group, busiest first; the grouped
//! dimensions, then what the requests cost.

use std::fmt::Write as _;

use serde_json::Value;

use crate::analyze::aggregate::{Report, Row};

/// The report as an aligned text table followed by notes on data loss.
pub fn table(report: &Report) -> String {
    let mut header: Vec<String> = report.by.iter().map(|d| d.to_uppercase()).collect();
    header.extend(
        [
            "COUNT",
            "STATUS",
            "BYTES",
            "P50_MS",
            "P99_MS",
            "IN_FLIGHT",
            "ALLOC_BYTES",
            "ALLOC_SAMPLES",
            "CPU_S",
            "CPU_SAMPLES",
        ]
        .map(String::from),
    );
    let rows: Vec<Vec<String>> = report
        .requests
        .iter()
        .map(|row| cells(report, row))
        .collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            // Dimensions read left-aligned, figures right-aligned.
            if i < report.by.len() {
                let _ = write!(line, "{sep}{cell:<w$}");
            } else {
                let _ = write!(line, "{sep}{cell:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
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
        out.push_str("heap allocations were not tracked\n");
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
    if !report.complete {
        out.push_str("capture is incomplete (no end record: the recorder was killed); counts cover what was written before\n");
    }
    if !report.findings.is_empty() {
        out.push_str("\nfindings:\n");
        for finding in &report.findings {
            let _ = writeln!(out, "- {}", finding.sentence());
        }
    }
    out
}

fn cells(report: &Report, row: &Row) -> Vec<String> {
    let mut cells: Vec<String> = report
        .by
        .iter()
        .enumerate()
        .map(|(i, d)| match &row.dimensions[*d] {
            _ if row.background => if i == 0 { "(background)" } else { "-" }.to_owned(),
            Value::String(s) if s.is_empty() => "\"\"".to_owned(),
            Value::String(s) => s.clone(),
            Value::Null => "-".to_owned(),
            other => other.to_string(),
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

    use serde_json::Map;

    use super::*;

    #[test]
    fn table_aligns_dimensions_left_and_figures_right_and_states_losses() {
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
            in_flight: 0,
            watch_seconds: 0.0,
        };
        let report = Report {
            by: vec!["user_agent", "verb"],
            mem_profile_rate: 512 * 1024,
            cpu_sample_period_ns: 10_101_010,
            requests: vec![
                row(
                    "kubectl/v1.36",
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
            findings: Vec::new(),
        };
        assert_eq!(
            table(&report),
            "USER_AGENT     VERB   COUNT        STATUS  BYTES  P50_MS  P99_MS  IN_FLIGHT  ALLOC_BYTES  ALLOC_SAMPLES  CPU_S  CPU_SAMPLES\n\
             kubectl/v1.36  list      12  200x11,404x1    120    1.50    1.50          0        12000             12  0.121           12\n\
             \"\"             watch      3             -     30       -       -          0         3000              3  0.030            3\n\
             \n15 requests, 2 dropped events\n\
             heap allocations sampled about once per 524288 bytes (runtime.MemProfileRate); ALLOC_BYTES scales the samples as pprof does\n\
             CPU sampled every 10.1 ms of CPU time (99 Hz per CPU); CPU_S is samples × that period\n\
             capture is incomplete (no end record: the recorder was killed); counts cover what was written before\n"
        );
    }
}
