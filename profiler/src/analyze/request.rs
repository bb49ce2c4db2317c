//! A request as the API server reads it: its request line classified once, when it
//! starts, with every report dimension worked out.

use std::sync::Arc;

use serde_json::Value;

use super::{
    dimension::Dimension,
    k8s::{Query, RequestInfo, RvClass, Selector},
};
use crate::events::decode::HttpRequest;

/// One request: what was asked and what it means to the API server.
#[derive(Debug)]
pub struct Request {
    /// The start event.
    pub http: HttpRequest,
    /// The observed server (see [`Dimension::Target`]).
    pub target: Arc<str>,
    /// The apiserver's reading of the path.
    pub info: RequestInfo,
    /// resourceVersion semantics of reads.
    pub rv_class: Option<RvClass>,
    /// The `limit` parameter.
    pub limit: Option<u64>,
    /// Selectors present.
    pub selector: Selector,
    /// Every dimension's value, in [`Dimension::ALL`] order.
    pub dimensions: Vec<Value>,
}

impl Request {
    /// Classifies `http`, served by `target`.
    ///
    /// A query longer than the kernel copies is read up to its last complete parameter:
    /// what was cut is never guessed (see [`RvClass::of`]).
    pub fn classify(http: HttpRequest, target: Arc<str>) -> Self {
        let (raw, cut) = http.query_prefix();
        let complete = if cut {
            raw.rsplit_once('&').map_or("", |(done, _)| done)
        } else {
            raw
        };
        let query = Query::parse(complete);
        let info = RequestInfo::new(&http.method, &http.path, &query, cut);
        let mut request = Self {
            rv_class: if info.is_resource_request {
                RvClass::of(&info.verb, &query, cut)
            } else {
                None
            },
            limit: query.non_empty("limit").and_then(|l| l.parse().ok()),
            selector: Selector::of(&query),
            info,
            target,
            http,
            dimensions: Vec::new(),
        };
        request.dimensions = Dimension::ALL.iter().map(|d| d.of(&request)).collect();
        request
    }

    /// Its value of `dimension`.
    pub fn dimension(&self, dimension: Dimension) -> &Value {
        &self.dimensions[dimension.index()]
    }

    /// Whether it is a long-running WATCH (reported by duration and events, not latency).
    pub fn is_watch(&self) -> bool {
        self.info.verb == "watch"
    }
}
