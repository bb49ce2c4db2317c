//! `cargo xtask test`: unit tests of every crate, then the root-only integration tests
//! (one at a time: they load eBPF programs and start servers), with the container image
//! built first for the image test (`APIPROF_IMAGE`).
use std::process::Command;

use crate::{cmd, setup::Env};

pub fn run(env: &Env) -> anyhow::Result<()> {
    cmd::run(Command::new("cargo").current_dir(&env.root).args([
        "test",
        "--workspace",
        "--exclude",
        "apiprof-tests",
        "--exclude",
        "profiler-ebpf",
    ]))?;
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
