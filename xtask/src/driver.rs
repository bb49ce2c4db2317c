//! `cargo xtask demo`, `cargo xtask bench` and `cargo xtask fixture`: build everything,
//! then run a driver from the tests crate (tests/src/bin/) against the fixtures.
use crate::setup::Env;

/// Runs the tests crate's binary `bin` with the fixtures and apiprof it needs.
pub fn run(env: &Env, bin: &str) -> anyhow::Result<()> {
    crate::run_tests_crate(
        env,
        &["run", "--quiet", "--package", "apiprof-tests", "--bin", bin],
    )
}
