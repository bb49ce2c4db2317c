//! `cargo xtask test`: unit tests of every crate, a short run of every fuzz target, then
//! the root-only integration tests (one at a time: they load eBPF programs and start
//! servers), with the container image built first for the image test (`APIPROF_IMAGE`).
use std::process::Command;

use crate::{cmd, fuzz, setup::Env};

/// Seconds each fuzz target runs in the tests: the eight take under two minutes.
const FUZZ_SECONDS: u64 = 10;

pub fn run(env: &Env) -> anyhow::Result<()> {
    cmd::run(Command::new("cargo").current_dir(&env.root).args([
        "test",
        "--workspace",
        "--exclude",
        "apiprof-tests",
        "--exclude",
        "profiler-ebpf",
    ]))?;
    fuzz::run(env, &[], fuzz::Length::Seconds(FUZZ_SECONDS))?;
    let image = crate::image::build(env)?;
    crate::run_tests_crate(
        env,
        &[
            "test",
            "--package",
            "apiprof-tests",
            "--",
            "--test-threads=1",
        ],
        crate::Profile::Debug,
        &[("APIPROF_IMAGE", &image)],
    )
}
