//! The daemon's HTTP API, on one listener: `/metrics` (Prometheus), `/report` (what
//! `apiprof report` prints for a capture file, over a recent window) and `/healthz`.
//! With a bearer token, every route but `/healthz` requires it (probes carry none).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{
    auth::{self, Bearer},
    metrics::Metrics,
    state::{lock, Live},
};
use crate::{
    analyze::{filter::Filter, Dimension, DEFAULT_BY},
    capture::monotonic_ns,
    report::{self, Format},
};
use axum::{
    extract::{RawQuery, State},
    http::{header, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

/// What the handlers share.
#[derive(Clone)]
struct Api {
    live: Arc<Mutex<Live>>,
    metrics: Arc<Metrics>,
}

/// The API's routes over `live`, all but `/healthz` behind `bearer` if given.
pub fn router(live: Arc<Mutex<Live>>, bearer: Option<Bearer>) -> Router {
    let metrics = Arc::new(Metrics::new(live.clone()));
    let mut guarded = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/report", get(report_text))
        .route("/findings", get(findings));
    if let Some(bearer) = bearer {
        guarded = guarded.route_layer(middleware::from_fn_with_state(bearer, auth::require));
    }
    guarded
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

/// How far back `/report` looks unless told.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// `/report?window=5m&ago=1h&by=user_agent,verb&format=svg&weight=cpu&filter=verb=list`
/// (`filter` repeatable): what `apiprof report` prints for a capture file, over a
/// window of the daemon's.
async fn report_text(State(api): State<Api>, RawQuery(query): RawQuery) -> Response {
    match render(&api, query.as_deref().unwrap_or_default()) {
        Ok((format, body)) => {
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
        Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    }
}

fn render(api: &Api, query: &str) -> Result<(Format, Vec<u8>), String> {
    let (mut window, mut ago) = (DEFAULT_WINDOW, Duration::ZERO);
    let (mut by, mut format, mut weight) = (DEFAULT_BY.to_vec(), Format::Json, None);
    let (mut filter, mut width) = (Filter::default(), None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "window" => window = duration(&key, &value)?,
            "ago" => ago = duration(&key, &value)?,
            "by" => {
                by = value
                    .split(',')
                    .map(|d| named::<Dimension>("by", d))
                    .collect::<Result<_, _>>()?
            }
            "format" => format = named("format", &value)?,
            "weight" => weight = Some(named("weight", &value)?),
            "filter" => filter.add(&value).map_err(|e| e.to_string())?,
            "width" => {
                width =
                    Some(value.parse().map_err(|_| {
                        format!("width={value:?}: the columns a table fits, e.g. 120")
                    })?)
            }
            _ => {
                return Err(format!(
                    "no parameter {key:?}; use window, ago, by, format, weight, filter or width"
                ))
            }
        }
    }
    let live = lock(&api.live);
    let (report, rows) = live
        .report(
            monotonic_ns(),
            (window.as_nanos() as u64, ago.as_nanos() as u64),
            &by,
            &filter,
        )
        .map_err(|e| e.to_string())?;
    let mut source = format!("apiprof daemon: the {}", humantime::format_duration(window));
    if ago.is_zero() {
        source.push_str(" up to now");
    } else {
        source.push_str(&format!(" up to {} ago", humantime::format_duration(ago)));
    }
    let options = report::Options {
        format,
        weight,
        width,
        caption: report::Caption::of(source, &filter),
    };
    let body =
        report::render(report, &rows, &live.window.stacks, &options).map_err(|e| e.to_string())?;
    Ok((format, body))
}

/// A duration parameter: `30s`, `5m`, `1h`.
fn duration(key: &str, value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("{key}={value:?}: {e}; use e.g. 30s, 5m, 1h"))
}

/// A parameter naming one of `T`'s values.
fn named<T: clap::ValueEnum>(key: &str, value: &str) -> Result<T, String> {
    T::from_str(value, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("{key}={value:?}: use one of {}", names.join(", "))
    })
}
