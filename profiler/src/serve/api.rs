//! The daemon's HTTP API, on one listener: `/metrics` (Prometheus), `/report` (what
//! `apiprof report` prints for a capture file, over a recent window) and `/healthz`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;

use super::{
    metrics::Metrics,
    state::{lock, Live},
};
use crate::{
    analyze::{Dimension, DEFAULT_BY},
    capture::monotonic_ns,
    report::{self, Weight},
};

/// What the handlers share.
#[derive(Clone)]
struct Api {
    live: Arc<Mutex<Live>>,
    metrics: Arc<Metrics>,
}

/// The API's routes over `live`.
pub fn router(live: Arc<Mutex<Live>>) -> Router {
    let metrics = Arc::new(Metrics::new(live.clone()));
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/report", get(report_text))
        .route("/findings", get(findings))
        .route("/healthz", get(healthz))
        .with_state(Api { live, metrics })
}

async fn metrics_text(State(api): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        api.metrics.encode(),
    )
        .into_response()
}

async fn findings(State(api): State<Api>) -> Response {
    let findings = lock(&api.live).findings(monotonic_ns());
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&findings).expect("findings serialize") + "\n",
    )
        .into_response()
}

async fn healthz(State(api): State<Api>) -> String {
    let live = lock(&api.live);
    let targets: Vec<String> = live
        .targets()
        .map(|(pid, name)| format!("{name} (pid {pid})"))
        .collect();
    format!(
        "ok; attached to {} process(es): {}\n",
        targets.len(),
        targets.join(", ")
    )
}

/// `/report`'s query: `window=5m&by=user_agent,verb&format=json&weight=cpu`.
#[derive(Debug, Deserialize)]
struct ReportQuery {
    window: Option<String>,
    by: Option<String>,
    format: Option<String>,
    weight: Option<String>,
}

/// How far back `/report` looks unless told.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

async fn report_text(State(api): State<Api>, Query(q): Query<ReportQuery>) -> Response {
    match render(&api, q) {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    }
}

fn render(api: &Api, q: ReportQuery) -> Result<(&'static str, String), String> {
    let window = match &q.window {
        Some(w) => humantime::parse_duration(w)
            .map_err(|e| format!("window={w:?}: {e}; use e.g. 30s, 5m, 1h"))?,
        None => DEFAULT_WINDOW,
    };
    let by: Vec<Dimension> = match &q.by {
        Some(by) => by
            .split(',')
            .map(|d| {
                <Dimension as clap::ValueEnum>::from_str(d, false)
                    .map_err(|_| format!("by: no dimension {d:?}; see apiprof report --help"))
            })
            .collect::<Result<_, _>>()?,
        None => DEFAULT_BY.to_vec(),
    };
    let weight = match q.weight.as_deref() {
        None | Some("cpu") => Weight::Cpu,
        Some("alloc") => Weight::Alloc,
        Some(w) => return Err(format!("weight={w:?}: use cpu or alloc")),
    };
    let live = lock(&api.live);
    let (report, rows) = live
        .report(monotonic_ns(), window.as_nanos() as u64, &by)
        .map_err(|e| e.to_string())?;
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => ("application/json", report::json(&report) + "\n"),
        "table" => ("text/plain; charset=utf-8", report::table(&report)),
        "folded" => (
            "text/plain; charset=utf-8",
            report::folded(&rows, &live.window.stacks, weight),
        ),
        f => return Err(format!("format={f:?}: use json, table or folded")),
    })
}
