//! Client-side probes (`apiprof record --client controller-go1.27`) in the Go reference
//! controller (client-go 0.36), its scenarios in their short form against the apiserver
//! fixture: apiprof counts the server's requests exactly as for refctl, and the findings
//! it measures in the client match the controller's ledger — every request that passed
//! client-go's rate limiter, its waits within 5% (client-go's own measurement, through
//! its metrics hook, against the probes' clock: microseconds apart), the token bucket's
//! qps and burst exactly, each resync's objects and the workqueue depth exactly, and
//! every client request joined to the server request it became; and the daemon does the
//! same live. Root only: loads real eBPF programs.

use std::time::Duration;

use apiprof_tests::{
    apiserver::ApiServer,
    daemon::{samples, Daemon},
    refctl::{self, Size},
    APISERVER_BUILDS,
};

/// Runs Go scenario `name` (short) with client-side probes and asserts the report
/// matches the ledger; returns the table.
fn validated(name: &str) -> String {
    let server = ApiServer::start(APISERVER_BUILDS[0]);
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = refctl::scenario(name).expect("a scenario");
    let outcome = refctl::validate(&server, scenario, Size::Short, dir.path());
    let c = &outcome.comparison;
    assert_eq!((c.precision, c.recall), (1.0, 1.0), "{name}:\n{c}");
    assert!(c.passed(), "{name}: bytes outside tolerance:\n{c}");
    eprintln!("{name}: findings:\n{}", outcome.findings);
    assert!(
        outcome.findings.passed(),
        "{name}: findings:\n{}",
        outcome.findings
    );
    outcome.table
}

#[test]
fn throttling_is_measured_in_the_client() {
    let table = validated("go-throttled");
    assert!(
        table.contains("- [measured] gorefctl-throttled (pid ")
            && table.contains("was held back by client-go's rate limiter (qps 20, burst 30, read from its memory)"),
        "{table}"
    );
}

#[test]
fn resyncs_are_measured_in_the_client() {
    let table = validated("go-resync-storm");
    for ua in [
        "gorefctl-resync-storm/rv-unset",
        "gorefctl-resync-storm/rv-0",
    ] {
        assert!(
            table.contains(&format!("- [measured] {ua} (pid "))
                && table
                    .contains("its informer RealFIFO *v1.ConfigMap resynced 3 times every 1.0s"),
            "{table}"
        );
    }
}

#[test]
fn a_restarted_client_is_followed_and_not_taken_for_throttled() {
    validated("go-restart-catchup");
}

/// The daemon follows the client as it starts (`--client`) and measures it live:
/// `/findings` and `/metrics` carry the measured throttling while the client runs on.
#[tokio::test]
async fn the_daemon_measures_a_client_live() {
    let server = ApiServer::start(APISERVER_BUILDS[0]);
    let pid = server.pid().to_string();
    let daemon = Daemon::start(&["--pid", &pid, "--client", refctl::GO_CONTROLLER]);
    daemon.wait_attached(server.pid()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = refctl::scenario("go-throttled").expect("the go-throttled scenario");
    let ledger = refctl::run(&server, scenario, Size::Short, dir.path());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let findings: serde_json::Value =
        serde_json::from_str(&daemon.get("/findings").await).expect("/findings is JSON");
    let checks = apiprof_tests::findings::check(
        scenario,
        Size::Short,
        &ledger,
        &serde_json::json!({ "findings": findings }),
    );
    print!("{checks}");
    assert!(checks.passed(), "{checks}");
    let metrics = daemon.get("/metrics").await;
    let waited = samples(&metrics, "apiprof_client_throttle_wait_seconds_total");
    let truth: f64 = ledger
        .of_type("throttle_wait")
        .filter_map(|w| w["wait_ms"].as_f64())
        .sum::<f64>()
        / 1e3;
    assert!(
        waited.iter().any(
            |(labels, seconds)| labels["user_agent"] == "gorefctl-throttled"
                && (seconds - truth).abs() <= 0.05 * truth
        ),
        "{waited:?}, ledger {truth:.3} s"
    );
    assert!(daemon.terminate().success());
}
