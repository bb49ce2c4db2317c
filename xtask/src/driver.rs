//! `cargo xtask demo` and `cargo xtask bench`: build everything, then run a driver from
//! the tests crate (tests/src/bin/demo.rs, tests/src/bin/bench.rs) against the fixtures.
use std::process::Command;

use crate::{cmd, fixtures, setup::Env};

/// Runs the tests crate's binary `bin` with the fixtures and apiprof it needs.
pub fn run(env: &Env, bin: &str) -> anyhow::Result<()> {
    let fixtures = fixtures::build(env)?;
    let apiprof = crate::build_apiprof(env)?;
    cmd::run(
        Command::new("cargo")
            .current_dir(&env.root)
            .args(["run", "--quiet", "--package", "apiprof-tests", "--bin", bin])
            .env("APIPROF_FIXTURES", &fixtures)
            .env("APIPROF_BIN", &apiprof),
    )
}
