//! Every request the apiserver fixture serves — real k8s.io/apiserver code, both HTTP/2
//! servers — is attributed to its client, verb, resource and resourceVersion semantics
//! with exact counts and status codes, and response bytes exactly what the client
//! received, and each to its client's address. Clients: a Rust client on HTTP/1.1 and on
//! HTTP/2, curl on both, kubectl. Root only: loads real eBPF programs.

use std::{collections::BTreeMap, process::Command};

use apiprof_tests::{
    apiserver::ApiServer,
    kube,
    load::{self, truth, Asked, Http, Sent, Tally},
    recorder::{client_ports, report, report_json, Recording},
};

const CURL_UA: &str = "apiprof-curl/1.0";

/// curl's requests: (HTTP/1.1?, query, rv_class), all LISTs of ConfigMaps, and a GET
/// of an object that does not exist.
const CURL: [(bool, &str, &str, &str); 4] = [
    (false, "", "list", "most_recent"),
    (true, "resourceVersion=0", "list", "any"),
    (false, "resourceVersion=0&limit=1", "list", "any"),
    (true, "", "get", "most_recent"),
];

fn curl(server: &ApiServer) -> Vec<Sent> {
    CURL.iter()
        .map(|&(http1, query, verb, rv_class)| {
            let path = match verb {
                "get" => "/api/v1/namespaces/default/configmaps/curl-missing",
                _ => "/api/v1/namespaces/default/configmaps",
            };
            let url = match query {
                "" => format!("{}{path}", server.url),
                q => format!("{}{path}?{q}", server.url),
            };
            let out = Command::new("curl")
                .args([
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{size_download} %{http_version}",
                ])
                .args(["-A", CURL_UA, "-H"])
                .arg(format!("Authorization: Bearer {}", server.token))
                .arg(if http1 { "--http1.1" } else { "--http2" })
                .arg(&url)
                .output()
                .expect("running curl");
            let out = String::from_utf8(out.stdout).expect("curl output");
            let fields: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(fields[2], if http1 { "1.1" } else { "2" }, "curl {url}");
            Sent {
                asked: Asked {
                    method: "GET".into(),
                    path: path.into(),
                    query: query.into(),
                    verb,
                    resource: "configmaps",
                    rv_class: Some(rv_class),
                },
                http_version: if http1 { "HTTP/1.1" } else { "HTTP/2.0" },
                user_agent: CURL_UA.into(),
                status: fields[0].parse().expect("status"),
                bytes: fields[1].parse().expect("size"),
            }
        })
        .collect()
}

/// kubectl's commands, and the (verb, rv_class, status) of the ConfigMap request each
/// makes (beside discovery).
const KUBECTL: [(&[&str], &str, &str, u16); 3] = [
    (
        &["create", "configmap", "kubectl-1", "--from-literal=a=b"],
        "create",
        "null",
        201,
    ),
    (
        &["get", "configmap", "kubectl-1", "-o", "name"],
        "get",
        "most_recent",
        200,
    ),
    (
        &["get", "configmaps", "-o", "name"],
        "list",
        "most_recent",
        200,
    ),
];

fn kubectl(server: &ApiServer) -> String {
    let mut user_agent = String::new();
    for (args, ..) in KUBECTL {
        let out = server
            .kubectl()
            .args(args)
            .output()
            .expect("running kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = server
        .kubectl()
        .args(["version", "--client", "-o", "json"])
        .output()
        .expect("kubectl version");
    let version: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("kubectl version JSON");
    // client-go's default: "kubectl/<version> (<os>/<arch>) kubernetes/<commit prefix>"
    let info = &version["clientVersion"];
    let commit = info["gitCommit"].as_str().unwrap_or_default();
    user_agent.push_str(&format!(
        "kubectl/{} ({}) kubernetes/{}",
        info["gitVersion"].as_str().expect("gitVersion"),
        info["platform"].as_str().expect("platform"),
        &commit[..commit.len().min(7)]
    ));
    user_agent
}

async fn attributes_every_request(build: &str) {
    let server = ApiServer::start(build);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));

    let mut sent = kube::drive(
        &server.url,
        &server.token,
        Http::One,
        "apiprof-rust-h1/1.0",
        "rust-h1",
    )
    .await;
    sent.extend(
        kube::drive(
            &server.url,
            &server.token,
            Http::Two,
            "apiprof-rust-h2/1.0",
            "rust-h2",
        )
        .await,
    );
    sent.extend(curl(&server));
    let kubectl_ua = kubectl(&server);
    let capture = recording.stop();
    println!("{build}:\n{}", report(&capture, "table", &[]));

    // The clients saw what the mix expects: 3 creates each, one 404 each, the rest 200.
    let statuses = truth(&sent, |s| vec![s.user_agent.clone(), s.status.to_string()]);
    for ua in ["apiprof-rust-h1/1.0", "apiprof-rust-h2/1.0"] {
        let count = |status: &str| {
            statuses
                .get(&vec![ua.to_owned(), status.to_owned()])
                .map_or(0, |t| t.count)
        };
        assert_eq!(
            (count("201"), count("404"), count("200")),
            (3, 1, 19),
            "{build}: {ua} saw {statuses:?}"
        );
    }

    let by = load::BY_CLIENT;
    let report = report_json(&capture, &by);
    assert_eq!(report["complete"], true, "{build}");
    let mut reported = load::reported(&report, &by);
    let kubectl_rows: BTreeMap<Vec<String>, Tally> = reported
        .iter()
        .filter(|(key, _)| key[0] == kubectl_ua)
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    reported.retain(|key, _| key[0] != kubectl_ua);
    let expected = truth(&sent, load::by_client);
    assert_eq!(
        reported.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{build}: rows (user agent, verb, resource, rv_class); kubectl rows: {kubectl_rows:?}"
    );
    for (key, want) in &expected {
        let got = &reported[key];
        assert_eq!(
            (got.count, &got.status),
            (want.count, &want.status),
            "{build}: {key:?}"
        );
        // Exact: every body was read to its end, and one write counted twice in a LIST
        // of many writes must fail.
        assert_eq!(
            got.bytes, want.bytes,
            "{build}: {key:?}: reported response bytes vs what the client received"
        );
    }
    // Each client's WATCH streamed two events and was closed by the server after 1 s
    // (timeoutSeconds=1): it is reported by duration and bytes, not as a latency. The
    // server's timer starts inside the handler apiprof times, on the same monotonic
    // clock, so the duration is at least 1 s; it ends when the handler returns, a few
    // milliseconds after the timer fires. Half a second more would be a watch timed
    // past its end (to the next request, or the capture's end).
    for row in report["requests"].as_array().expect("rows") {
        if row["verb"] == "watch" {
            let seconds = row["watch_seconds"].as_f64().expect("watch_seconds");
            assert!((1.0..1.5).contains(&seconds), "{build}: {row}");
            assert_eq!(
                row["latency_ms_p50"],
                serde_json::Value::Null,
                "{build}: {row}"
            );
        }
    }
    for (_, verb, rv_class, status) in KUBECTL {
        let key = vec![
            kubectl_ua.clone(),
            verb.into(),
            "configmaps".into(),
            rv_class.into(),
        ];
        let row = kubectl_rows
            .get(&key)
            .unwrap_or_else(|| panic!("{build}: no row {key:?} in {kubectl_rows:?}"));
        assert_eq!(
            (row.count, &row.status),
            (1, &BTreeMap::from([(status, 1)])),
            "{build}: {key:?}"
        );
    }
    // Every request names its client's socket (curl: one process, so one connection,
    // per request); the Rust HTTP/2 client sent all of its requests on one connection.
    let ports = client_ports(&capture, &server.url);
    assert_eq!(ports[CURL_UA].len(), CURL.len(), "{build}: {ports:?}");
    assert_eq!(ports["apiprof-rust-h2/1.0"].len(), 1, "{build}: {ports:?}");
}

#[tokio::test]
async fn attributes_every_request_on_go_1_27_http2() {
    attributes_every_request("apiserver-go1.27").await;
}

#[tokio::test]
async fn attributes_every_request_on_x_net_http2() {
    attributes_every_request("apiserver-go1.27-http2legacy").await;
}
