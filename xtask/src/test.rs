//! `cargo xtask test`: unit tests of every crate, then the root-only integration tests
//! (one at a time: they load eBPF programs and start servers).
use std::process::Command;

use crate::{cmd, fixtures, setup::Env};

pub fn run(env: &Env) -> anyhow::Result<()> {
    let fixtures = fixtures::build(env)?;
    cmd::run(Command::new("cargo").current_dir(&env.root).args([
        "test",
        "--workspace",
        "--exclude",
        "apiprof-tests",
        "--exclude",
        "profiler-ebpf",
    ]))?;
    let apiprof = crate::build_apiprof(env)?;
    cmd::run(
        Command::new("cargo")
            .current_dir(&env.root)
            .args([
                "test",
                "--package",
                "apiprof-tests",
                "--",
                "--test-threads=1",
            ])
            .env("APIPROF_FIXTURES", &fixtures)
            .env("APIPROF_BIN", &apiprof),
    )
}
