//! Entry probes sit on the `JBE` of a function's stack check, where the kernel emulates
//! the jump instead of single-stepping. When the jump is taken, the function grows its
//! stack and starts over, passing the probe twice; the first pass must be ignored.
//! Each request here makes its handler write twice from D frames of ~100 bytes and K of
//! ~32 bytes further down a fresh goroutine's stack; sweeping D and K moves the point
//! where the stack runs out, 32 bytes at a time, through every function of the write
//! path, the probed `write` included (measured: 5 of the 484 requests grow the stack
//! exactly there, and count 4 writes instead of 3 when the first pass is not ignored).
//! Every request's bytes and writes must be counted exactly once. On every fixture
//! build. Root only: loads real eBPF programs.

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
const WRITES: u64 = 2;

async fn calls_that_grow_the_stack_at_a_probe_count_once(build: &str) {
    let server = GoServer::start(build);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    // HTTP/2: every request runs on a new goroutine, with a new small stack.
    let (client, ..) = Http::Two.client("stack-growth");
    let mut received = 0;
    for depth in 0..DEPTHS {
        for shift in 0..SHIFTS {
            let url = format!(
                "{}{PATH}?writes={WRITES}&depth={depth}&shift={shift}",
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
    // Each request's writes, from the capture: the chunks and the JSON.
    let capture = std::fs::read_to_string(&capture).expect("reading the capture");
    let writes: Vec<u64> = capture
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|r| r["type"] == "http_response")
        .map(|r| r["writes"].as_u64().expect("writes"))
        .collect();
    assert_eq!(writes, vec![WRITES + 1; requests as usize], "{build}");
}

apiprof_tests::goserver_tests!(calls_that_grow_the_stack_at_a_probe_count_once);
