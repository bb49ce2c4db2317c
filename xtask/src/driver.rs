//! `cargo xtask demo`, `bench`, `fixture` and `validate`: build everything, then run a
//! driver from the tests crate (tests/src/bin/) against the fixtures.
use crate::{setup::Env, Profile};

/// Runs the tests crate's binary `bin` with `args` and the fixtures, apiprof and the
/// reference controller it needs.
pub fn run(env: &Env, bin: &str, args: &[String]) -> anyhow::Result<()> {
    crate::run_tests_crate(env, &cargo_run(bin, &[], args), Profile::Debug, &[])
}

/// `cargo xtask bench`: the bench and apiprof in release builds, as apiprof is deployed
/// (a debug build's daemon spends several times the CPU per event, and a debug load
/// generator cannot drive the rates the daemon's cost is measured at).
pub fn bench(env: &Env, soak: bool, quick: bool, sections: &[String]) -> anyhow::Result<()> {
    let mut args: Vec<String> = Vec::new();
    for (flag, on) in [("--soak", soak), ("--quick", quick)] {
        if on {
            args.push(flag.into());
        }
    }
    for section in sections {
        args.extend(["--section".into(), section.clone()]);
    }
    crate::run_tests_crate(
        env,
        &cargo_run("bench", &["--release"], &args),
        Profile::Release,
        &[],
    )
}

/// `cargo run` of the tests crate's binary `bin` with cargo flags `flags`, passing `args`.
fn cargo_run<'a>(bin: &'a str, flags: &[&'a str], args: &'a [String]) -> Vec<&'a str> {
    let mut cargo = vec!["run", "--quiet"];
    cargo.extend_from_slice(flags);
    cargo.extend(["--package", "apiprof-tests", "--bin", bin, "--"]);
    cargo.extend(args.iter().map(String::as_str));
    cargo
}
