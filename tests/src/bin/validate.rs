//! `cargo xtask validate [SCENARIO]`: runs the reference controller's scenarios (all, or
//! the one named) against the apiserver fixture under `apiprof record`, and prints per
//! scenario apiprof's request counts and response bytes beside the ledger's truth, with
//! precision and recall, then the requests per (user_agent, http_version). Exits 1 unless
//! every scenario has precision and recall 1.0 and bytes within tolerance.

use apiprof_tests::{
    apiserver::ApiServer,
    refctl::{self, Size, SCENARIOS},
    APISERVER_BUILDS,
};

fn main() {
    let selected: Vec<_> = match std::env::args().nth(1) {
        None => SCENARIOS.iter().collect(),
        Some(name) => match refctl::scenario(&name) {
            Some(s) => vec![s],
            None => {
                let names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
                eprintln!(
                    "validate: no scenario {name:?}; the scenarios: {}",
                    names.join(", ")
                );
                std::process::exit(2);
            }
        },
    };
    let build = APISERVER_BUILDS[0];
    let server = ApiServer::start(build);
    println!(
        "validate: {build} (pid {}) serving {}",
        server.pid(),
        server.url
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failed = Vec::new();
    for scenario in selected {
        let outcome = refctl::validate(&server, scenario, Size::Full, dir.path());
        let passed = outcome.passed();
        println!(
            "\n== {} ({}): {}",
            scenario.name,
            scenario
                .runs
                .iter()
                .map(|r| r.user_agent)
                .collect::<Vec<_>>()
                .join(", "),
            if passed { "PASS" } else { "FAIL" }
        );
        println!("{}\n{}", outcome.comparison, outcome.http_versions);
        print!("findings:\n{}", outcome.findings);
        println!(
            "{}; apiprof dropped_events {}",
            outcome.ledger, outcome.report["dropped_events"]
        );
        if !passed {
            failed.push(scenario.name);
        }
    }
    if failed.is_empty() {
        println!("\nvalidate: every scenario passed");
    } else {
        let kept = dir.keep();
        println!(
            "\nvalidate: FAILED: {}; captures and ledgers kept in {}",
            failed.join(", "),
            kept.display()
        );
        std::process::exit(1);
    }
}
