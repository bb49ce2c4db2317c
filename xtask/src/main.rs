//! apiprof's automation: `cargo xtask <command>`. Every command but `setup` runs the
//! setup checks first, so a fresh machine gets what it lacks.
mod apiserver;
mod apt;
mod cmd;
mod controller;
mod driver;
mod fixtures;
mod fuzz;
mod image;
mod manifests;
mod offsets;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "apiprof automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the toolchain and install what is missing (idempotent).
    Setup,
    /// Build the Go fixture servers (every Go version, stripped and unstripped).
    Fixtures,
    /// Regenerate the Go struct offsets table from every installed Go toolchain.
    Offsets,
    /// Run every test: unit tests, a short run of every fuzz target, then the root-only
    /// integration tests.
    Test,
    /// Fuzz the parsers of untrusted bytes (cargo-fuzz, nightly), one target after the
    /// other, each from its seeds in fuzz/corpus/TARGET; a crash's input is left in
    /// fuzz/artifacts/TARGET.
    Fuzz {
        /// Only this target (repeatable): request, user_agent, event, capture, elf,
        /// gopclntab, buildinfo, disasm; all if absent.
        #[arg(long)]
        target: Vec<String>,
        /// Executions of each target.
        #[arg(long, default_value_t = 1_000_000)]
        runs: u64,
    },
    /// Write the container image (a static apiprof on an empty base) as an OCI archive,
    /// target/image/apiprof.oci.tar, without a container engine.
    Image,
    /// Profile the apiserver fixture under a known load, print the attribution report, and
    /// write its capture, flame graph and pprof profile to target/demo/.
    Demo,
    /// Measure what observing costs the server per request, side by side with audit
    /// logging, and what the daemon itself costs (release builds).
    Bench {
        /// Run the 30-minute soak of the daemon instead (RSS flat, no drops).
        #[arg(long)]
        soak: bool,
        /// A tenth of the load and one round, to try the bench out (bench/results.md is
        /// left alone).
        #[arg(long)]
        quick: bool,
        /// Run only this section (repeatable): apiserver, features, goserver, daemon,
        /// simulation.
        #[arg(long)]
        section: Vec<String>,
    },
    /// Run the apiserver fixture with its etcd, print its URL, token and kubeconfig, and
    /// keep it up until Ctrl-C.
    Fixture,
    /// Run the reference controller's scenarios against the apiserver fixture under
    /// apiprof and compare apiprof's report with the controller's ledger.
    Validate {
        /// One scenario (resync-storm, throttled, restart-catchup, watch-burst, mixed, or
        /// the Go controller's go-resync-storm, go-throttled, go-restart-catchup,
        /// go-stripped-throttled); all if absent.
        scenario: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env = setup::run()?;
    match cli.command {
        Command::Setup => Ok(()),
        Command::Fixtures => fixtures::build(&env).map(drop),
        Command::Offsets => offsets::generate(&env),
        Command::Test => test::run(&env),
        Command::Fuzz { target, runs } => fuzz::run(&env, &target, fuzz::Length::Runs(runs)),
        Command::Image => image::build(&env).map(drop),
        Command::Demo => {
            let out = env.target.join("demo");
            driver::run(&env, "demo", &[out.display().to_string()])
        }
        Command::Bench {
            soak,
            quick,
            section,
        } => driver::bench(&env, soak, quick, &section),
        Command::Fixture => driver::run(&env, "apiserver-fixture", &[]),
        Command::Validate { scenario } => driver::run(&env, "validate", scenario.as_slice()),
    }
}

/// How apiprof is built for the tests crate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Debug,
    /// As deployed: the bench measures apiprof's own CPU.
    Release,
}

/// Runs `cargo` with `args` in the tests crate's environment: the fixtures, apiprof (in
/// `profile`) and the reference controller built, and their locations (and sid's etcd
/// and kubectl, its Prometheus server and promtool, and the manifests checker) passed
/// as the tests expect, with `extra` environment variables (the image's path for
/// `cargo xtask test`).
fn run_tests_crate(
    env: &setup::Env,
    args: &[&str],
    profile: Profile,
    extra: &[(&str, &std::path::Path)],
) -> anyhow::Result<()> {
    let fixtures = fixtures::build(env)?;
    let apiprof = build_apiprof(env, profile)?;
    let refctl = build_refctl(env)?;
    cmd::run(
        std::process::Command::new("cargo")
            .current_dir(&env.root)
            .args(args)
            .env("APIPROF_FIXTURES", &fixtures)
            .env("APIPROF_MANIFESTS_CHECK", fixtures.join(manifests::CHECKER))
            .env("APIPROF_BIN", &apiprof)
            .env("APIPROF_REFCTL", &refctl)
            .env("APIPROF_SID", &env.sid)
            .env("APIPROF_PROMETHEUS", &env.prometheus)
            .envs(extra.iter().copied()),
    )
}

/// Builds the reference controller (`refctl`) and returns its path.
fn build_refctl(env: &setup::Env) -> anyhow::Result<std::path::PathBuf> {
    cmd::run(
        std::process::Command::new("cargo")
            .current_dir(&env.root)
            .args([
                "build",
                "--package",
                "reference-controller",
                "--bin",
                "refctl",
            ]),
    )?;
    Ok(env.target.join("debug/refctl"))
}

/// Builds the `apiprof` binary (with its eBPF programs) and returns its path.
fn build_apiprof(env: &setup::Env, profile: Profile) -> anyhow::Result<std::path::PathBuf> {
    let mut cargo = std::process::Command::new("cargo");
    cargo
        .current_dir(&env.root)
        .args(["build", "--package", "profiler", "--bin", "apiprof"]);
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    cmd::run(&mut cargo)?;
    Ok(env.target.join(match profile {
        Profile::Debug => "debug/apiprof",
        Profile::Release => "release/apiprof",
    }))
}
