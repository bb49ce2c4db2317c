//! What the fuzz targets share: a request line as the kernel hands it to userspace.

use std::sync::Arc;

use apiprof::{
    analyze::request::Request,
    events::decode::{HttpRequest, CUT},
};

/// The request of `method`, `path` (decoded), raw `query`, `user_agent` and
/// `remote_addr`, classified as the daemon classifies every request it sees.
pub fn request(
    method: &str,
    path: &str,
    query: &str,
    user_agent: &str,
    remote_addr: &str,
) -> Request {
    let http = HttpRequest {
        ktime_ns: 1,
        tid: 2,
        goroutine: 3,
        goid: 4,
        request: 5,
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        http_version: "HTTP/1.1".to_owned(),
        user_agent: user_agent.to_owned(),
        remote_addr: remote_addr.to_owned(),
        client_pod: None,
        client_owner: None,
        // A query ending in the cut mark is read as one the kernel cut.
        truncated: query.ends_with(CUT),
        query_cut: query.ends_with(CUT),
    };
    Request::classify(http, Arc::from("kube-apiserver"))
}
