//! `cargo xtask demo`, `bench`, `fixture` and `validate`: build everything, then run a
//! driver from the tests crate (tests/src/bin/) against the fixtures.
use crate::setup::Env;

/// Runs the tests crate's binary `bin` with `args` and the fixtures, apiprof and the
/// reference controller it needs.
pub fn run(env: &Env, bin: &str, args: &[String]) -> anyhow::Result<()> {
    let mut cargo = vec![
        "run",
        "--quiet",
        "--package",
        "apiprof-tests",
        "--bin",
        bin,
        "--",
    ];
    cargo.extend(args.iter().map(String::as_str));
    crate::run_tests_crate(env, &cargo)
}
