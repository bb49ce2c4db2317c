//! `cargo xtask bench [--soak]`: what observing a server costs it, and what the daemon
//! itself costs (see [`apiprof_tests::bench`]). `--quick` (a tenth of the load) and
//! `--section NAME` (repeatable) make a partial run, which leaves `bench/` alone.

use apiprof_tests::bench::{
    apiserver, clients, daemon_cost, features, goserver, machine, out::Out, simulated_hours, soak,
    Settings,
};

#[tokio::main]
async fn main() {
    let settings = Settings::parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2)
    });
    let mut out = Out::default();
    out.line("");
    out.line(machine::describe());
    if settings.soak {
        soak::section(&mut out, &settings).await;
    }
    if settings.runs("apiserver") {
        apiserver::section(&mut out, &settings).await;
    }
    if settings.runs("features") {
        features::section(&mut out, &settings).await;
    }
    if settings.runs("goserver") {
        goserver::section(&mut out, &settings).await;
    }
    if settings.runs("clients") {
        clients::section(&mut out, &settings).await;
    }
    if settings.runs("daemon") {
        daemon_cost::section(&mut out, &settings).await;
    }
    if settings.runs("simulation") {
        simulated_hours(&mut out);
    }
    if settings.is_full() {
        machine::write_results("results.md", "cargo xtask bench", out.text());
    } else if settings.soak && !settings.quick {
        machine::write_results("soak.md", "cargo xtask bench --soak", out.text());
    } else {
        eprintln!("bench: a partial run ({settings:?}): bench/ left as it was");
    }
}
