//! Client-side probes (`apiprof record --client controller-go1.27`) in the Go reference
//! controller (client-go 0.36), its scenarios in their short form against the apiserver
//! fixture: apiprof counts the server's requests exactly as for refctl, and the findings
//! it measures in the client match the controller's ledger — every request that passed
//! client-go's rate limiter, its waits within 5% (client-go's own measurement, through
//! its metrics hook, against the probes' clock: microseconds apart), the token bucket's
//! qps and burst exactly, each resync's objects and the workqueue depth exactly, and
//! every client request joined to the server request it became; and the daemon does the
//! same live. Root only: loads real eBPF programs.

use apiprof_tests::{
    apiserver::ApiServer,
    daemon::{samples, Daemon},
    findings,
    refctl::{self, validated},
    APISERVER_BUILDS,
};

#[test]
fn throttling_is_measured_in_the_client() {
    let table = validated("go-throttled").table;
    assert!(
        table.contains("- [measured] gorefctl-throttled (pid ")
            && table.contains("was held back by client-go's rate limiter (qps 20, burst 30, read from its memory)"),
        "{table}"
    );
}

#[test]
fn a_stripped_client_is_measured_alike() {
    validated("go-stripped-throttled");
}

#[test]
fn resyncs_are_measured_in_the_client() {
    let table = validated("go-resync-storm").table;
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
    let ledger = daemon.run_checked(&server, "go-throttled").await;
    let metrics = daemon.get("/metrics").await;
    let waited = samples(&metrics, "apiprof_client_throttle_wait_seconds_total");
    let truth: f64 = ledger
        .of_type("throttle_wait")
        .filter_map(|w| w["wait_ms"].as_f64())
        .sum::<f64>()
        / 1e3;
    let error = ledger.of_type("throttle_wait").count() as f64 * findings::WAIT_ERROR_S;
    assert!(
        waited.iter().any(
            |(labels, seconds)| labels["user_agent"] == "gorefctl-throttled"
                && (seconds - truth).abs() <= error
        ),
        "{waited:?}, ledger {truth:.6} s ± {error:.6}"
    );
    assert!(daemon.terminate().success());
}
