//! Requests as served: each start joined with its end, and classified as the API server
//! sees it.

use std::collections::HashMap;

use crate::{
    capture::Capture,
    decode::{HttpRequest, HttpResponse},
    k8s::{Query, RequestInfo, RvClass, Selector},
};

/// One request: what was asked, what it meant, and how it ended (if it did).
#[derive(Debug)]
pub struct Served<'a> {
    /// The start event.
    pub request: &'a HttpRequest,
    /// The end event; `None` while it was still being served when recording stopped.
    pub response: Option<&'a HttpResponse>,
    /// The apiserver's reading of the path.
    pub info: RequestInfo,
    /// resourceVersion semantics of reads.
    pub rv_class: Option<RvClass>,
    /// The `limit` parameter.
    pub limit: Option<u64>,
    /// Selectors present.
    pub selector: Selector,
}

impl Served<'_> {
    /// Time from the handler's start to its return.
    pub fn latency_ns(&self) -> Option<u64> {
        self.response
            .map(|r| r.ktime_ns.saturating_sub(self.request.ktime_ns))
    }

    /// Whether it is a long-running WATCH (reported by duration and events, not latency).
    pub fn is_watch(&self) -> bool {
        self.info.verb == "watch"
    }
}

/// Joins every request start in `capture` with its end. An end pairs with the latest
/// unpaired start of the same `*http.Request` before it (addresses are reused only after
/// a request is done).
pub fn served(capture: &Capture) -> Vec<Served<'_>> {
    enum Step<'a> {
        Start(usize),
        End(&'a HttpResponse),
    }
    let mut steps: Vec<(u64, Step)> = capture
        .requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r.ktime_ns, Step::Start(i)))
        .chain(capture.responses.iter().map(|r| (r.ktime_ns, Step::End(r))))
        .collect();
    steps.sort_by_key(|(ktime, step)| (*ktime, matches!(step, Step::End(_))));
    let mut ends = vec![None; capture.requests.len()];
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (_, step) in steps {
        match step {
            Step::Start(i) => {
                open.insert(capture.requests[i].request, i);
            }
            Step::End(end) => {
                if let Some(i) = open.remove(&end.request) {
                    ends[i] = Some(end);
                }
            }
        }
    }
    capture
        .requests
        .iter()
        .zip(ends)
        .map(|(request, response)| classify(request, response))
        .collect()
}

fn classify<'a>(request: &'a HttpRequest, response: Option<&'a HttpResponse>) -> Served<'a> {
    let query = Query::parse(&request.query);
    let info = RequestInfo::new(&request.method, &request.path, &query);
    Served {
        rv_class: if info.is_resource_request {
            RvClass::of(&info.verb, &query)
        } else {
            None
        },
        limit: query.non_empty("limit").and_then(|l| l.parse().ok()),
        selector: Selector::of(&query),
        info,
        request,
        response,
    }
}
