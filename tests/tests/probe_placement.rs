//! Entry probes sit on the `JBE` of a function's stack check, where the kernel emulates
//! the jump instead of single-stepping. When the jump is taken, the function grows its
//! stack and starts over, passing the probe twice; the first pass must be ignored.
//! Only two entry probes remain (`ServeHTTP`, which starts every handler at the same
//! depth, and `runtime.profilealloc`), and request ends sit on CALLs, which a stack
//! growth never repeats. With every allocation sampled (`MemProfileRate` 1), each
//! request here allocates M objects of 3072 bytes and writes twice from D frames of
//! ~100 bytes and K of ~32 bytes further down a fresh goroutine's stack; sweeping D and
//! K moves the point where the stack runs out, 32 bytes at a time, through every
//! function of the allocation and write paths. Every request must show exactly M samples
//! of 3072 bytes and its bytes once. (Measured: on these builds no growth lands on
//! `profilealloc`'s own check, which the callers' larger frames reach first, so this no
//! longer proves the skip; it did while `write` was probed.) On every fixture build.
//! Root only: loads real eBPF programs.

use std::collections::BTreeMap;

use apiprof_tests::{
    goserver::GoServer,
    load::Http,
    recorder::{report_json, row, Recording},
};

const PATH: &str = "/api/v1/namespaces/default/configmaps";
/// D: up to ~12 KiB of frames, past a new goroutine's 8 KiB stack.
const DEPTHS: u32 = 121;
/// K: enough ~32-byte steps to span one ~100-byte step of D.
const SHIFTS: u32 = 4;
const OBJECTS: usize = 3;
const OBJECT_BYTES: u64 = 3072;

async fn calls_that_grow_the_stack_at_a_probe_count_once(build: &str) {
    let server = GoServer::start_with_args(build, &["-memprofilerate=1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    // HTTP/2: every request runs on a new goroutine, with a new small stack.
    let (client, ..) = Http::Two.client("stack-growth");
    let mut received = 0;
    for depth in 0..DEPTHS {
        for shift in 0..SHIFTS {
            let url = format!(
                "{}{PATH}?objects={OBJECTS}&writes=2&depth={depth}&shift={shift}",
                server.url
            );
            let response = client.get(&url).send().await.expect(&url);
            assert_eq!(response.status(), 200, "{url}");
            received += response.bytes().await.expect("reading the body").len() as u64;
        }
    }
    let capture = recording.stop();
    let requests = u64::from(DEPTHS * SHIFTS);
    let report = report_json(&capture, &["user_agent"]);
    let row = row(&report, "stack-growth");
    assert_eq!(
        (row["count"].as_u64(), row["status"]["200"].as_u64()),
        (Some(requests), Some(requests)),
        "{build}: {row}"
    );
    assert_eq!(
        row["response_bytes"].as_u64(),
        Some(received),
        "{build}: bytes written twice or missed: {row}"
    );
    // Each request's samples of the fixture's objects, from the capture.
    let capture = std::fs::read_to_string(&capture).expect("reading the capture");
    let records: Vec<serde_json::Value> = capture
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // A request's address may be reused by a later one: samples belong to the latest.
    let (mut objects, mut latest) = (Vec::new(), BTreeMap::new());
    for r in &records {
        let request = r["request"].as_u64().unwrap_or(0);
        if r["type"] == "http_request" {
            latest.insert(request, objects.len());
            objects.push(0);
        } else if r["type"] == "alloc" && r["size"] == OBJECT_BYTES {
            objects[latest[&request]] += 1;
        }
    }
    let counts: BTreeMap<usize, usize> = objects.iter().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(*n).or_default() += 1;
        m
    });
    assert_eq!(
        counts,
        BTreeMap::from([(OBJECTS, requests as usize)]),
        "{build}: requests by samples of {OBJECT_BYTES}-byte objects"
    );
}

apiprof_tests::goserver_tests!(calls_that_grow_the_stack_at_a_probe_count_once);
