//! A known client load on the apiserver fixture: every verb and every resourceVersion
//! semantics on ConfigMaps, from a Rust client (reqwest over rustls) on HTTP/1.1 or
//! HTTP/2, each request written down with what the apiserver makes of it.
//!
//! Each client works on its own objects (named and labelled after it), so its status
//! codes do not depend on the other clients.

use reqwest::{header::CONTENT_TYPE, Method, Version};
use serde_json::{json, Value};

use crate::load::{Asked, Http, Sent};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// A client of the fixture.
struct Client {
    http: reqwest::Client,
    version: Version,
    http_version: &'static str,
    base: String,
    token: String,
    user_agent: String,
    sent: Vec<Sent>,
}

/// How a request body is sent.
enum Body {
    None,
    Json(Value),
    MergePatch(Value),
    Apply(String),
}

impl Client {
    /// Sends one request and records it with the verb, resource and rv_class the
    /// apiserver gives it; returns the response body parsed as JSON (null if it is not).
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        query: &str,
        body: Body,
        verb: &'static str,
        rv_class: Option<&'static str>,
    ) -> Value {
        let url = match query {
            "" => format!("{}{path}", self.base),
            q => format!("{}{path}?{q}", self.base),
        };
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        request = match body {
            Body::None => request,
            Body::Json(v) => request
                .header(CONTENT_TYPE, "application/json")
                .body(v.to_string()),
            Body::MergePatch(v) => request
                .header(CONTENT_TYPE, "application/merge-patch+json")
                .body(v.to_string()),
            Body::Apply(yaml) => request
                .header(CONTENT_TYPE, "application/apply-patch+yaml")
                .body(yaml),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        assert_eq!(
            response.version(),
            self.version,
            "{url} answered on another HTTP version"
        );
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{url}: reading the body: {e}"));
        self.sent.push(Sent {
            asked: Asked {
                method: method.to_string(),
                path: path.to_owned(),
                query: query.to_owned(),
                verb,
                resource: "configmaps",
                rv_class,
            },
            http_version: self.http_version,
            user_agent: self.user_agent.clone(),
            status,
            bytes: bytes.len() as u64,
        });
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

/// Sends the mix to the fixture at `base_url` over `http` as `user_agent`, with the
/// bearer `token`; `slug` names the client's objects and label. Panics on a transport
/// error or an unexpected answer.
pub async fn drive(
    base_url: &str,
    token: &str,
    http: Http,
    user_agent: &str,
    slug: &str,
) -> Vec<Sent> {
    let (http, version, http_version) = http.client(user_agent);
    let mut c = Client {
        http,
        version,
        http_version,
        base: base_url.to_owned(),
        token: token.to_owned(),
        user_agent: user_agent.to_owned(),
        sent: Vec::new(),
    };
    let one = |i: u32| format!("{CONFIGMAPS}/{slug}-{i}");
    let mine = format!("labelSelector=client%3D{slug}");

    // create x3: the resourceVersion of the last one is "now" for the reads below; the
    // watch starts at the first, so it streams the other two.
    let mut rvs = Vec::new();
    for i in 0..3 {
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{slug}-{i}"), "labels": {"client": slug, "app": "web"}},
            "data": {"index": i.to_string(), "filler": "x".repeat(200)},
        });
        let created = c
            .send(
                Method::POST,
                CONFIGMAPS,
                "",
                Body::Json(object),
                "create",
                None,
            )
            .await;
        rvs.push(
            created["metadata"]["resourceVersion"]
                .as_str()
                .expect("a created object has a resourceVersion")
                .to_owned(),
        );
    }
    let (first_rv, rv) = (&rvs[0], &rvs[2]);
    // get x2 (most recent), and one that does not exist (404)
    for _ in 0..2 {
        c.send(
            Method::GET,
            &one(0),
            "",
            Body::None,
            "get",
            Some("most_recent"),
        )
        .await;
    }
    c.send(
        Method::GET,
        &format!("{CONFIGMAPS}/{slug}-missing"),
        "",
        Body::None,
        "get",
        Some("most_recent"),
    )
    .await;
    // list: quorum reads from etcd x2, watch-cache reads x3
    for _ in 0..2 {
        c.send(
            Method::GET,
            CONFIGMAPS,
            &mine,
            Body::None,
            "list",
            Some("most_recent"),
        )
        .await;
    }
    for _ in 0..3 {
        let query = format!("{mine}&resourceVersion=0");
        c.send(
            Method::GET,
            CONFIGMAPS,
            &query,
            Body::None,
            "list",
            Some("any"),
        )
        .await;
    }
    // not older than a version, implicitly and by name; exactly at it
    let query = format!("resourceVersion={rv}");
    c.send(
        Method::GET,
        CONFIGMAPS,
        &query,
        Body::None,
        "list",
        Some("not_older_than"),
    )
    .await;
    let query = format!("resourceVersion={rv}&resourceVersionMatch=NotOlderThan");
    c.send(
        Method::GET,
        CONFIGMAPS,
        &query,
        Body::None,
        "list",
        Some("not_older_than"),
    )
    .await;
    let query = format!("{mine}&resourceVersion={rv}&resourceVersionMatch=Exact");
    c.send(
        Method::GET,
        CONFIGMAPS,
        &query,
        Body::None,
        "list",
        Some("exact"),
    )
    .await;
    // paging: the first page is a quorum read, the next continues it
    let query = format!("{mine}&limit=2");
    let page = c
        .send(
            Method::GET,
            CONFIGMAPS,
            &query,
            Body::None,
            "list",
            Some("most_recent"),
        )
        .await;
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a first page of 2 of 3 objects has a continue token")
        .to_owned();
    let query = format!("{mine}&limit=2&continue={token}");
    c.send(
        Method::GET,
        CONFIGMAPS,
        &query,
        Body::None,
        "list",
        Some("continue"),
    )
    .await;
    // watch from the first version: two ADDED events, then the server ends it after 1 s
    let query = format!("{mine}&watch=true&resourceVersion={first_rv}&timeoutSeconds=1");
    c.send(
        Method::GET,
        CONFIGMAPS,
        &query,
        Body::None,
        "watch",
        Some("exact"),
    )
    .await;
    // writes: update, merge patch, server-side apply, delete, delete the rest
    let mut object = c
        .send(
            Method::GET,
            &one(1),
            "",
            Body::None,
            "get",
            Some("most_recent"),
        )
        .await;
    object["data"]["updated"] = json!("yes");
    c.send(Method::PUT, &one(1), "", Body::Json(object), "update", None)
        .await;
    let patch = json!({"data": {"patched": "yes"}});
    c.send(
        Method::PATCH,
        &one(1),
        "",
        Body::MergePatch(patch),
        "patch",
        None,
    )
    .await;
    let apply = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {slug}-1\ndata:\n  applied: \"yes\"\n"
    );
    c.send(
        Method::PATCH,
        &one(1),
        "fieldManager=apiprof-test&force=true",
        Body::Apply(apply),
        "patch",
        None,
    )
    .await;
    c.send(Method::DELETE, &one(2), "", Body::None, "delete", None)
        .await;
    c.send(
        Method::DELETE,
        CONFIGMAPS,
        &mine,
        Body::None,
        "deletecollection",
        None,
    )
    .await;
    c.sent
}
