//! The human-readable report: one aligned row per request kind, busiest first.

use std::fmt::Write as _;

use crate::aggregate::Report;

/// The report as an aligned text table followed by notes on data loss.
pub fn table(report: &Report) -> String {
    let header = ["COUNT", "METHOD", "HTTP", "PATH", "QUERY"];
    let rows: Vec<[String; 5]> = report
        .requests
        .iter()
        .map(|r| {
            [
                r.count.to_string(),
                r.method.clone(),
                r.http_version.clone(),
                r.path.clone(),
                r.query.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut s = format!("{:>w$}", cells[0], w = widths[0]);
        for (cell, w) in cells[1..].iter().zip(&widths[1..]) {
            let _ = write!(s, "  {cell:<w$}");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    let total: u64 = report.requests.iter().map(|r| r.count).sum();
    let _ = writeln!(
        out,
        "\n{total} requests, {} dropped events",
        report.dropped_events
    );
    if report.truncated_requests > 0 {
        let _ = writeln!(
            out,
            "{} requests had a method, path or query cut to the kernel's copy size",
            report.truncated_requests
        );
    }
    if !report.complete {
        out.push_str("capture is incomplete (no end record: the recorder was killed); counts cover what was written before\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::RequestRow;

    #[test]
    fn table_aligns_columns_and_states_losses() {
        let report = Report {
            requests: vec![
                RequestRow {
                    method: "GET".into(),
                    path: "/api/v1/pods".into(),
                    query: "limit=5".into(),
                    http_version: "HTTP/2.0".into(),
                    count: 12,
                },
                RequestRow {
                    method: "DELETE".into(),
                    path: "/x".into(),
                    query: String::new(),
                    http_version: "HTTP/1.1".into(),
                    count: 3,
                },
            ],
            dropped_events: 2,
            truncated_requests: 0,
            complete: true,
        };
        assert_eq!(
            table(&report),
            "COUNT  METHOD  HTTP      PATH          QUERY\n\
             \x20  12  GET     HTTP/2.0  /api/v1/pods  limit=5\n\
             \x20   3  DELETE  HTTP/1.1  /x\n\
             \n15 requests, 2 dropped events\n"
        );
    }
}
