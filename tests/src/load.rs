//! The known client load: Kubernetes-shaped requests in fixed counts, sent by a Rust
//! client (reqwest over rustls) on HTTP/1.1 or HTTP/2, recorded as sent and answered.

use std::collections::BTreeMap;

use reqwest::{Method, Version};

/// One kind of request in the mix, with what the API server makes of it, written out by
/// hand so that tests check apiprof's classification against an independent truth.
#[derive(Debug)]
pub struct Call {
    /// HTTP method.
    pub method: &'static str,
    /// URL path.
    pub path: &'static str,
    /// Raw query.
    pub query: &'static str,
    /// Times sent per client.
    pub count: u64,
    /// The apiserver's verb.
    pub verb: &'static str,
    /// The resource.
    pub resource: &'static str,
    /// resourceVersion semantics (`None` for writes).
    pub rv_class: Option<&'static str>,
}

const fn call(
    method: &'static str,
    path: &'static str,
    query: &'static str,
    count: u64,
    verb: &'static str,
    resource: &'static str,
    rv_class: Option<&'static str>,
) -> Call {
    Call {
        method,
        path,
        query,
        count,
        verb,
        resource,
        rv_class,
    }
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const CM1: &str = "/api/v1/namespaces/default/configmaps/cm-1";

/// The mix: every verb, every rv_class, selectors and paging, each kind in its own
/// count so that a miscounted row cannot hide behind another.
pub const MIX: &[Call] = &[
    call(
        "GET",
        PODS,
        "resourceVersion=0&limit=500&labelSelector=app%3Dweb",
        7,
        "list",
        "pods",
        Some("any"),
    ),
    call("GET", PODS, "", 5, "list", "pods", Some("most_recent")),
    call(
        "GET",
        CONFIGMAPS,
        "resourceVersion=42",
        2,
        "list",
        "configmaps",
        Some("not_older_than"),
    ),
    call(
        "GET",
        CONFIGMAPS,
        "resourceVersion=42&resourceVersionMatch=Exact",
        1,
        "list",
        "configmaps",
        Some("exact"),
    ),
    call(
        "GET",
        "/apis/apps/v1/statefulsets",
        "limit=100&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ",
        3,
        "list",
        "statefulsets",
        Some("continue"),
    ),
    call("GET", CM1, "", 4, "get", "configmaps", Some("most_recent")),
    call(
        "GET",
        "/api/v1/namespaces/default/configmaps/missing",
        "",
        2,
        "get",
        "configmaps",
        Some("most_recent"),
    ),
    call(
        "GET",
        PODS,
        "watch=true&resourceVersion=123&allowWatchBookmarks=true",
        2,
        "watch",
        "pods",
        Some("exact"),
    ),
    call("POST", CONFIGMAPS, "", 6, "create", "configmaps", None),
    call("PUT", CM1, "", 1, "update", "configmaps", None),
    call(
        "PATCH",
        CM1,
        "fieldManager=apiprof-test",
        2,
        "patch",
        "configmaps",
        None,
    ),
    call(
        "DELETE",
        "/api/v1/namespaces/default/pods/web-0",
        "",
        3,
        "delete",
        "pods",
        None,
    ),
    call(
        "DELETE",
        CONFIGMAPS,
        "labelSelector=app%3Dold",
        1,
        "deletecollection",
        "configmaps",
        None,
    ),
];

/// Which HTTP version the client speaks.
#[derive(Clone, Copy, Debug)]
pub enum Http {
    /// HTTP/1.1 over TLS.
    One,
    /// HTTP/2 over TLS (ALPN h2).
    Two,
}

/// What a request asked for, written out by hand by the code that sends it.
#[derive(Clone, Debug)]
pub struct Asked {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query.
    pub query: String,
    /// The apiserver's verb.
    pub verb: &'static str,
    /// The resource.
    pub resource: &'static str,
    /// resourceVersion semantics (`None` for writes).
    pub rv_class: Option<&'static str>,
}

impl From<&Call> for Asked {
    fn from(call: &Call) -> Self {
        Self {
            method: call.method.into(),
            path: call.path.into(),
            query: call.query.into(),
            verb: call.verb,
            resource: call.resource,
            rv_class: call.rv_class,
        }
    }
}

impl Http {
    /// A client speaking this version as `user_agent` (the fixtures' self-signed
    /// certificates accepted), the version responses must come in, and Go's name for it.
    pub fn client(self, user_agent: &str) -> (reqwest::Client, Version, &'static str) {
        self.client_presenting(user_agent, None)
    }

    /// [`Http::client`] presenting a client certificate if given (the Go fixture asks
    /// for one, as kube-apiserver does).
    pub fn client_presenting(
        self,
        user_agent: &str,
        identity: Option<reqwest::Identity>,
    ) -> (reqwest::Client, Version, &'static str) {
        let mut builder = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .user_agent(user_agent);
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        let (client, version, name) = match self {
            Http::One => (builder.http1_only().build(), Version::HTTP_11, "HTTP/1.1"),
            Http::Two => (
                builder.http2_prior_knowledge().build(),
                Version::HTTP_2,
                "HTTP/2.0",
            ),
        };
        (client.expect("building the HTTP client"), version, name)
    }
}

/// One request as the client sent it and saw it answered.
#[derive(Clone, Debug)]
pub struct Sent {
    /// What it asked for.
    pub asked: Asked,
    /// "HTTP/1.1" or "HTTP/2.0", as Go names them.
    pub http_version: &'static str,
    /// The User-Agent it sent.
    pub user_agent: String,
    /// Status received.
    pub status: u16,
    /// Body bytes received.
    pub bytes: u64,
}

/// Sends [`MIX`] to `base_url` over `http` as `user_agent`. Panics on a transport error
/// or a response on another HTTP version.
pub async fn drive(base_url: &str, http: Http, user_agent: &str) -> Vec<Sent> {
    let (client, expect_version, http_version) = http.client(user_agent);
    let mut sent = Vec::new();
    for call in MIX {
        let url = match call.query {
            "" => format!("{base_url}{}", call.path),
            query => format!("{base_url}{}?{query}", call.path),
        };
        for _ in 0..call.count {
            let method = Method::from_bytes(call.method.as_bytes()).expect("valid method");
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
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{url}: reading the body: {e}"));
            sent.push(Sent {
                asked: call.into(),
                http_version,
                user_agent: user_agent.to_owned(),
                status,
                bytes: body.len() as u64,
            });
        }
    }
    sent
}

/// Counts, statuses and bytes of a group of requests, as sent or as reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests.
    pub count: u64,
    /// Requests by status code.
    pub status: BTreeMap<u16, u64>,
    /// Body bytes.
    pub bytes: u64,
}

/// The report fields that name a client's requests as the API server sees them.
pub const BY_CLIENT: [&str; 4] = ["user_agent", "verb", "resource", "rv_class"];

/// A sent request's truth for [`BY_CLIENT`], as its sender wrote it down (a write's
/// rv_class is "null", as the JSON report has it).
pub fn by_client(s: &Sent) -> Vec<String> {
    let rv_class = s.asked.rv_class.map_or("null".to_owned(), String::from);
    vec![
        s.user_agent.clone(),
        s.asked.verb.into(),
        s.asked.resource.into(),
        rv_class,
    ]
}

/// Tallies of what was sent, keyed by the values `key` picks.
pub fn truth(sent: &[Sent], key: impl Fn(&Sent) -> Vec<String>) -> BTreeMap<Vec<String>, Tally> {
    let mut tallies: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    for s in sent {
        let t = tallies.entry(key(s)).or_default();
        t.count += 1;
        *t.status.entry(s.status).or_default() += 1;
        t.bytes += s.bytes;
    }
    tallies
}

/// The request counts of an `apiprof report --format json`, keyed as [`reported`] keys
/// them.
pub fn counts(report: &serde_json::Value, by: &[&str]) -> BTreeMap<Vec<String>, u64> {
    reported(report, by)
        .into_iter()
        .map(|(key, tally)| (key, tally.count))
        .collect()
}

/// Tallies of an `apiprof report --format json`, keyed by the row fields named in `by`
/// (null fields as "null").
pub fn reported(report: &serde_json::Value, by: &[&str]) -> BTreeMap<Vec<String>, Tally> {
    let rows = report["requests"]
        .as_array()
        .expect("report has a requests array");
    let mut tallies = BTreeMap::new();
    // The background row (allocations outside any request) serves no request.
    for row in rows.iter().filter(|r| r["background"] != true) {
        let key = by
            .iter()
            .map(|field| match &row[*field] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let status = row["status"]
            .as_object()
            .expect("row status map")
            .iter()
            .map(|(code, n)| {
                (
                    code.parse().expect("status code"),
                    n.as_u64().expect("status count"),
                )
            })
            .collect();
        let tally = Tally {
            count: row["count"].as_u64().expect("row count"),
            status,
            bytes: row["response_bytes"].as_u64().expect("row response_bytes"),
        };
        assert!(
            tallies.insert(key, tally).is_none(),
            "two rows with the same key in {row}"
        );
    }
    tallies
}

/// Sends `n` GETs of ConfigMaps to the Go fixture at `base_url` over HTTP/1.1, each with
/// its own user agent `ua-{first + i}`, 8 at a time.
pub async fn distinct_user_agents(base_url: &str, first: u32, n: u32) {
    let (client, _, _) = Http::One.client("unused");
    let url = format!("{base_url}/api/v1/namespaces/default/configmaps");
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for i in (lane..n).step_by(8) {
                let answer = client
                    .get(&url)
                    .header("user-agent", format!("ua-{}", first + i))
                    .send()
                    .await
                    .expect("GET");
                assert!(answer.status().is_success());
                answer.bytes().await.expect("body");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a lane");
    }
}
