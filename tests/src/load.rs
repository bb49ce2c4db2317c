//! The known client load: Kubernetes-shaped requests in fixed counts, sent by a Rust
//! client (reqwest over rustls) on HTTP/1.1 or HTTP/2, counted as sent.

use std::collections::BTreeMap;

use reqwest::{Method, Version};

/// (method, path, query, HTTP version as Go names it) → requests.
pub type Counts = BTreeMap<(String, String, String, String), u64>;

/// The mix: every verb and the query shapes the API server sees, each sent `count`
/// times, so that a miscounted row cannot hide behind another.
pub const MIX: &[(&str, &str, &str, u64)] = &[
    (
        "GET",
        "/api/v1/namespaces/default/pods",
        "resourceVersion=0&limit=500&labelSelector=app%3Dweb",
        7,
    ),
    ("GET", "/api/v1/namespaces/default/pods", "", 5),
    (
        "GET",
        "/api/v1/namespaces/kube-system/configmaps/cm-1",
        "",
        4,
    ),
    (
        "GET",
        "/apis/apps/v1/statefulsets",
        "limit=100&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ",
        3,
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods",
        "watch=true&resourceVersion=123&allowWatchBookmarks=true",
        2,
    ),
    ("POST", "/api/v1/namespaces/default/configmaps", "", 6),
    ("PUT", "/api/v1/namespaces/default/configmaps/cm-1", "", 1),
    (
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cm-1",
        "fieldManager=apiprof-test",
        2,
    ),
    ("DELETE", "/api/v1/namespaces/default/pods/web-0", "", 3),
];

/// Which HTTP version the client speaks.
#[derive(Clone, Copy, Debug)]
pub enum Http {
    /// HTTP/1.1 over TLS.
    One,
    /// HTTP/2 over TLS (ALPN h2).
    Two,
}

/// Sends [`MIX`] to `base_url` over `http`; returns what was sent, keyed as apiprof
/// reports it. Panics on any failed request or a response on another HTTP version.
pub async fn drive(base_url: &str, http: Http) -> Counts {
    let builder = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .user_agent("apiprof-load/1.0");
    let (client, expect_version, go_name) = match http {
        Http::One => (builder.http1_only().build(), Version::HTTP_11, "HTTP/1.1"),
        Http::Two => (
            builder.http2_prior_knowledge().build(),
            Version::HTTP_2,
            "HTTP/2.0",
        ),
    };
    let client = client.expect("building the HTTP client");
    let mut sent = Counts::new();
    for &(method, path, query, count) in MIX {
        let url = if query.is_empty() {
            format!("{base_url}{path}")
        } else {
            format!("{base_url}{path}?{query}")
        };
        for _ in 0..count {
            let method = Method::from_bytes(method.as_bytes()).expect("valid method");
            let response = client
                .request(method, &url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                response.version(),
                expect_version,
                "{url} answered on another HTTP version"
            );
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{url}: reading the body: {e}"));
        }
        *sent
            .entry((method.into(), path.into(), query.into(), go_name.into()))
            .or_default() += count;
    }
    sent
}

/// Adds `more` into `total`.
pub fn merge(total: &mut Counts, more: Counts) {
    for (key, n) in more {
        *total.entry(key).or_default() += n;
    }
}

/// The request rows of an `apiprof report --format json`, keyed as [`Counts`].
pub fn reported(report: &serde_json::Value) -> Counts {
    let rows = report["requests"]
        .as_array()
        .expect("report has a requests array");
    let text = |row: &serde_json::Value, field: &str| {
        row[field]
            .as_str()
            .unwrap_or_else(|| panic!("row without {field}: {row}"))
            .to_owned()
    };
    let mut counts = Counts::new();
    for row in rows {
        let key = (
            text(row, "method"),
            text(row, "path"),
            text(row, "query"),
            text(row, "http_version"),
        );
        *counts.entry(key).or_default() += row["count"].as_u64().expect("row count");
    }
    counts
}
