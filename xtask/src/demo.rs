//! `cargo xtask demo`: builds everything, then runs the demo driver
//! (tests/src/bin/demo.rs) against the Go fixture.
use std::process::Command;

use crate::{cmd, fixtures, setup::Env};

pub fn run(env: &Env) -> anyhow::Result<()> {
    let fixtures = fixtures::build(env)?;
    let apiprof = crate::build_apiprof(env)?;
    cmd::run(
        Command::new("cargo")
            .current_dir(&env.root)
            .args([
                "run",
                "--quiet",
                "--package",
                "apiprof-tests",
                "--bin",
                "demo",
            ])
            .env("APIPROF_FIXTURES", &fixtures)
            .env("APIPROF_BIN", &apiprof),
    )
}
