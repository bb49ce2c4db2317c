//! Client-side probes (`apiprof record --client controller-go1.27`) in the Go reference
//! controller (client-go 0.36), its scenarios in their short form against the apiserver
//! fixture: apiprof counts the server's requests exactly as for refctl, and the findings
//! it measures in the client match the controller's ledger — every request that passed
//! client-go's rate limiter, its waits within 5% (client-go's own measurement, through
//! its metrics hook, against the probes' clock: microseconds apart), the token bucket's
//! qps and burst exactly, each resync's objects and the workqueue depth exactly, and
//! every client request joined to the server request it became. Root only: loads real
//! eBPF programs.

use apiprof_tests::{
    apiserver::ApiServer,
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
