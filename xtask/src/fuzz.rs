//! `cargo xtask fuzz`: runs the fuzz targets of `fuzz/` (cargo-fuzz, nightly), one after
//! the other on one core, each from the seeds kept in `fuzz/corpus/TARGET`. What a run
//! finds worth keeping goes to a scratch corpus in the target directory, so the repository
//! keeps its small seeds; a crash stops the run and leaves its input in
//! `fuzz/artifacts/TARGET`. `cargo xtask test` runs each target briefly.
use std::process::Command;

use anyhow::bail;

use crate::{cmd, setup::Env};

/// Every target: its name in `fuzz/Cargo.toml`, and its corpus folder.
pub const TARGETS: [&str; 8] = [
    "request",
    "user_agent",
    "event",
    "capture",
    "elf",
    "gopclntab",
    "buildinfo",
    "disasm",
];

/// How long each target runs.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    /// This many executions (the long run: `cargo xtask fuzz`).
    Runs(u64),
    /// This many seconds (the short run in `cargo xtask test`).
    Seconds(u64),
}

/// Runs `targets` (every target if empty) for `length` each.
pub fn run(env: &Env, targets: &[String], length: Length) -> anyhow::Result<()> {
    if let Some(unknown) = targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        bail!(
            "no fuzz target {unknown:?}; the targets are {}",
            TARGETS.join(", ")
        );
    }
    let limit = match length {
        Length::Runs(n) => format!("-runs={n}"),
        Length::Seconds(s) => format!("-max_total_time={s}"),
    };
    let chosen = |t: &&&str| targets.is_empty() || targets.iter().any(|x| x == **t);
    for target in TARGETS.iter().filter(chosen) {
        let scratch = env.target.join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)?;
        cmd::run(
            Command::new("cargo")
                .current_dir(&env.root)
                .args([
                    "+nightly",
                    "fuzz",
                    "run",
                    "--fuzz-dir",
                    "fuzz",
                    "--target-dir",
                ])
                .arg(&env.target)
                .arg(target)
                .arg(&scratch)
                .arg(env.root.join("fuzz/corpus").join(target))
                .args(["--", &limit, "-print_final_stats=1"])
                // The targets load no eBPF program: skip building it.
                .env("AYA_BUILD_SKIP", "1"),
        )?;
    }
    Ok(())
}
