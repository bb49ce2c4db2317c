//! Aggregates a capture into report rows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::Capture;

/// Requests that share method, path, query and HTTP version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRow {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// "HTTP/1.1", "HTTP/2.0", ...
    pub http_version: String,
    /// Requests seen.
    pub count: u64,
}

/// Everything `apiprof report` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Rows, most requests first (ties in key order).
    pub requests: Vec<RequestRow>,
    /// Events the kernel could not hand over; counts above are low by up to this many.
    pub dropped_events: u64,
    /// Requests whose method, path or query was longer than the kernel copies.
    pub truncated_requests: u64,
    /// False when the capture has no end record (the recorder was killed): the counts
    /// cover only what was written before that.
    pub complete: bool,
}

/// Counts requests per (method, path, query, HTTP version).
pub fn aggregate(capture: &Capture) -> Report {
    let mut counts: BTreeMap<(&str, &str, &str, &str), u64> = BTreeMap::new();
    for r in &capture.requests {
        *counts
            .entry((&r.method, &r.path, &r.query, &r.http_version))
            .or_default() += 1;
    }
    let mut requests: Vec<RequestRow> = counts
        .into_iter()
        .map(|((method, path, query, http_version), count)| RequestRow {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            http_version: http_version.to_owned(),
            count,
        })
        .collect();
    requests.sort_by_key(|r| std::cmp::Reverse(r.count));
    Report {
        requests,
        dropped_events: capture.end.as_ref().map_or(0, |e| e.dropped_events),
        truncated_requests: capture.requests.iter().filter(|r| r.truncated).count() as u64,
        complete: capture.end.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        capture::{End, Header, FORMAT_VERSION},
        decode::HttpRequest,
        symbols::SymbolSource,
    };

    fn request(method: &str, path: &str, version: &str) -> HttpRequest {
        HttpRequest {
            ktime_ns: 0,
            tid: 1,
            goroutine: 2,
            request: 3,
            method: method.into(),
            path: path.into(),
            query: "limit=5".into(),
            http_version: version.into(),
            truncated: false,
        }
    }

    fn capture(requests: Vec<HttpRequest>, end: Option<End>) -> Capture {
        let header = Header {
            format_version: FORMAT_VERSION,
            pid: 1,
            binary: PathBuf::from("/x"),
            go_version: "1.24.4".into(),
            symbols: SymbolSource::Symtab,
            probes: vec![],
            started_unix_ms: 0,
        };
        Capture {
            header,
            requests,
            end,
        }
    }

    #[test]
    fn requests_are_counted_per_request_line_and_http_version_busiest_first() {
        let c = capture(
            vec![
                request("GET", "/a", "HTTP/1.1"),
                request("GET", "/b", "HTTP/2.0"),
                request("GET", "/b", "HTTP/2.0"),
                request("GET", "/b", "HTTP/1.1"),
            ],
            Some(End {
                dropped_events: 3,
                reason: "signal".into(),
            }),
        );
        let r = aggregate(&c);
        let rows: Vec<_> = r
            .requests
            .iter()
            .map(|r| (r.path.as_str(), r.http_version.as_str(), r.count))
            .collect();
        assert_eq!(
            rows,
            [
                ("/b", "HTTP/2.0", 2),
                ("/a", "HTTP/1.1", 1),
                ("/b", "HTTP/1.1", 1)
            ]
        );
        assert_eq!((r.dropped_events, r.complete), (3, true));
    }

    #[test]
    fn a_capture_without_end_record_is_reported_incomplete() {
        let r = aggregate(&capture(vec![request("GET", "/a", "HTTP/1.1")], None));
        assert_eq!((r.requests.len(), r.complete), (1, false));
    }
}
