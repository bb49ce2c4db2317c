//! Hostile requests to the observed server, sent while ordinary clients run the
//! every-verb load beside them: URLs of 8 and 60 KiB, thousands of query parameters,
//! non-UTF-8 and control bytes in paths and user agents, empty and 64 KiB user agents
//! (over HTTP/2 too, where a 64 KiB header needs CONTINUATION frames), malformed
//! percent-encoding, 300 concurrent HTTP/2 streams, requests cancelled mid-response and
//! hijacked connections. apiprof cuts long values with a mark, never guesses what it
//! cut, and attributes the ordinary traffic exactly. Root only: loads real eBPF programs.

use std::collections::BTreeMap;

use apiprof_tests::{
    goserver::GoServer,
    hostile,
    load::{self, Http, Sent},
    recorder::{self, report_json, Recording},
};
use profiler_common::http::{PATH_CAP, USER_AGENT_CAP};
use reqwest::header::HeaderValue;

const BUILD: &str = "goserver-go1.27";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const CUT: char = '…';

fn key(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

/// GETs `path` as `user_agent` (raw bytes: any a header may hold) over `http`, `times`
/// times one after another; returns the statuses.
async fn get(base: &str, http: Http, user_agent: &[u8], path: &str, times: u32) -> Vec<u16> {
    let (client, ..) = http.client("unused");
    let mut statuses = Vec::new();
    for _ in 0..times {
        let response = client
            .get(format!("{base}{path}"))
            .header(
                "user-agent",
                HeaderValue::from_bytes(user_agent).expect("header value"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} B path: {}", path.len(), e.without_url()));
        statuses.push(response.status().as_u16());
        response.bytes().await.expect("body");
    }
    statuses
}

/// Everything hostile, in turn; returns how many requests reached a handler.
async fn hostile_traffic(base: &str) -> u64 {
    let long_name = "n".repeat(8 << 10);
    // The longest URI the http crate sends is 64 KiB.
    let longer_name = "n".repeat(60 << 10);
    let ua = b"hostile-long-path";
    get(base, Http::One, ua, &format!("{CONFIGMAPS}/{long_name}"), 2).await;
    get(
        base,
        Http::Two,
        ua,
        &format!("{CONFIGMAPS}/{longer_name}"),
        1,
    )
    .await;

    // 3,000 parameters (~30 KB): a list's resourceVersion after the cut; a get's
    // before it (a get's class depends on nothing else).
    let params: Vec<String> = (0..3000).map(|i| format!("p{i}={i}")).collect();
    let params = params.join("&");
    let after = format!("{CONFIGMAPS}?{params}&resourceVersion=0");
    let before = format!("{CONFIGMAPS}/one?resourceVersion=0&{params}");
    get(base, Http::Two, b"hostile-params-after", &after, 2).await;
    get(base, Http::One, b"hostile-params-before", &before, 1).await;

    // Bytes a header may hold that are not UTF-8, and a C1 control (U+009B, CSI).
    get(base, Http::One, b"hostile-\xff\xfe", CONFIGMAPS, 2).await;
    get(base, Http::Two, b"hostile-\xc2\x9b2J", CONFIGMAPS, 1).await;

    // 64 KiB user agents; over HTTP/2 also in a header block of CONTINUATION frames.
    let big = [b"hostile-big-".as_slice(), &[b'u'; 64 << 10]].concat();
    get(base, Http::One, &big, CONFIGMAPS, 1).await;
    get(base, Http::Two, &big, CONFIGMAPS, 1).await;
    assert_eq!(hostile::http2_continued(base, CONFIGMAPS, &big).await, 200);

    // Raw HTTP/1.1: what client libraries refuse to send, and the status Go answers;
    // it refuses the 400s before any handler runs: there is nothing to attribute.
    let raw: [(&[u8], u16); 9] = [
        (b"GET /api/v1/namespaces/d\xff/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-binary-path", 200),
        (b"GET /api/v1/namespaces/d\xff/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-binary-path", 200),
        (b"GET /api/v1/namespaces/default/configmaps?resourceVersion=%zz&labelSelector=%&fieldSelector=%C3%28 HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-percent", 200),
        (b"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent:", 200),
        (b"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x", 200),
        (b"GET /api/v1/\x01/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-refused", 400),
        (b"GET /api/v1/namespaces/%zz/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-refused", 400),
        (b"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-\x01refused", 400),
        (b"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nUser-Agent: hostile-\x1b[2Jrefused", 400),
    ];
    for (head, status) in raw {
        let answer = hostile::http1(base, head).await;
        assert_eq!(answer, status, "{}", String::from_utf8_lossy(head));
    }
    let served = raw.iter().filter(|(_, status)| *status == 200).count() as u64;

    // 300 streams at once on one HTTP/2 connection (Go allows 250 concurrently).
    let (client, ..) = Http::Two.client("hostile-streams");
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (client, url) = (client.clone(), format!("{base}{CONFIGMAPS}"));
        streams.spawn(async move {
            let response = client.get(url).send().await.expect("stream");
            response.bytes().await.expect("body");
        });
    }
    streams.join_all().await;

    // Cancelled after the first chunk of a 1.28 MB answer.
    for http in [Http::One, Http::Two] {
        let (client, ..) = http.client("hostile-cancel");
        for _ in 0..3 {
            let url = format!("{base}{CONFIGMAPS}?writes=20000");
            let mut response = client.get(url).send().await.expect("cancel");
            response.chunk().await.expect("first chunk");
        }
    }

    // Connections taken over by the handler, as exec and port-forward do.
    let (client, ..) = Http::One.client("hostile-hijack");
    for _ in 0..2 {
        let url = format!("{base}{CONFIGMAPS}?end=hijack");
        let _ = client.get(url).send().await.expect("hijack").bytes().await;
    }

    3 + 3 + 3 + 3 + served + 300 + 6 + 2
}

#[tokio::test]
async fn hostile_requests_are_cut_with_a_mark_and_the_rest_is_exact() {
    let server = GoServer::start(BUILD);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));

    let (h1, h2, hostile) = tokio::join!(
        load::drive(&server.url, Http::One, "ordinary-h1/1.0"),
        load::drive(&server.url, Http::Two, "ordinary-h2/1.0"),
        hostile_traffic(&server.url),
    );
    let capture = recording.stop();
    let ordinary: Vec<Sent> = h1.into_iter().chain(h2).collect();

    // The ordinary clients: exact, status and bytes included.
    let report = report_json(&capture, &load::BY_CLIENT);
    let mut reported = load::reported(&report, &load::BY_CLIENT);
    reported.retain(|key, _| key[0].starts_with("ordinary-"));
    assert_eq!(reported, load::truth(&ordinary, load::by_client));

    // Every request counted once: none of the refused ones, nothing invented.
    let all = load::counts(&report, &load::BY_CLIENT);
    assert_eq!(
        all.values().sum::<u64>(),
        ordinary.len() as u64 + hostile,
        "{all:#?}"
    );
    let big_ua = format!("hostile-big-{}{CUT}", "u".repeat(USER_AGENT_CAP - 12));
    let want: BTreeMap<Vec<String>, u64> = [
        (
            key(&["hostile-long-path", "get", "configmaps", "most_recent"]),
            3,
        ),
        // A collection GET whose query was cut may be a list or a watch; its
        // resourceVersion=0 after the cut is not guessed; before it, a get's is read.
        (
            key(&["hostile-params-after", "unknown", "configmaps", "unknown"]),
            2,
        ),
        (
            key(&["hostile-params-before", "get", "configmaps", "any"]),
            1,
        ),
        (
            key(&[
                "hostile-\u{fffd}\u{fffd}",
                "list",
                "configmaps",
                "most_recent",
            ]),
            2,
        ),
        (
            key(&["hostile-\u{9b}2J", "list", "configmaps", "most_recent"]),
            1,
        ),
        (key(&[&big_ua, "list", "configmaps", "most_recent"]), 3),
        (
            key(&["hostile-binary-path", "list", "configmaps", "most_recent"]),
            2,
        ),
        // As Go's url.ParseQuery: a parameter with a malformed escape is dropped.
        (
            key(&["hostile-percent", "list", "configmaps", "most_recent"]),
            1,
        ),
        (key(&["", "list", "configmaps", "most_recent"]), 2),
        (
            key(&["hostile-streams", "list", "configmaps", "most_recent"]),
            300,
        ),
        (
            key(&["hostile-cancel", "list", "configmaps", "most_recent"]),
            6,
        ),
        (
            key(&["hostile-hijack", "list", "configmaps", "most_recent"]),
            2,
        ),
    ]
    .into_iter()
    .collect();
    let mut got = all;
    got.retain(|key, _| !key[0].starts_with("ordinary-"));
    assert_eq!(got, want);

    // Exactly the requests with a value longer than the kernel copies are cut.
    assert_eq!(report["truncated_requests"], 3 + 3 + 3, "{report:#}");
    let by_path = report_json(&capture, &["user_agent", "path", "namespace"]);
    let paths = load::counts(&by_path, &["user_agent", "path", "namespace"]);
    let cut_path = format!(
        "{CONFIGMAPS}/{}{CUT}",
        "n".repeat(PATH_CAP - CONFIGMAPS.len() - 1)
    );
    assert_eq!(
        paths[&key(&["hostile-long-path", &cut_path, "default"])],
        3,
        "{paths:#?}"
    );
    assert_eq!(
        paths[&key(&[
            "hostile-binary-path",
            "/api/v1/namespaces/d\u{fffd}/configmaps",
            "d\u{fffd}"
        ])],
        2
    );

    // A table on a terminal shows control characters escaped, never raw.
    let table = recorder::report(&capture, "table", &["--by", "user_agent"]);
    assert!(!table.contains('\u{9b}'), "{table}");
    assert!(table.contains("hostile-\\u{9b}2J"), "{table}");
}
