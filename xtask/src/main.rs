//! apiprof's automation: `cargo xtask <command>`. Every command but `setup` runs the
//! setup checks first, so a fresh machine gets what it lacks.
mod apiserver;
mod apt;
mod cmd;
mod driver;
mod fixtures;
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
    /// Run every test: unit tests, then the root-only integration tests.
    Test,
    /// Profile the Go fixture under a known load and print the attribution report.
    Demo,
    /// Measure what recording costs the observed server per request, side by side.
    Bench,
    /// Run the apiserver fixture with its etcd, print its URL, token and kubeconfig, and
    /// keep it up until Ctrl-C.
    Fixture,
    /// Run the reference controller's scenarios against the apiserver fixture under
    /// apiprof and compare apiprof's report with the controller's ledger.
    Validate {
        /// One scenario (resync-storm, throttled, restart-catchup, mixed); all if absent.
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
        Command::Demo => driver::run(&env, "demo", &[]),
        Command::Bench => driver::run(&env, "bench", &[]),
        Command::Fixture => driver::run(&env, "apiserver-fixture", &[]),
        Command::Validate { scenario } => driver::run(&env, "validate", scenario.as_slice()),
    }
}

/// Runs `cargo` with `args` in the tests crate's environment: the fixtures, apiprof and
/// the reference controller built, and their locations (and sid's etcd and kubectl, and
/// its Prometheus server and promtool) passed as the tests expect.
fn run_tests_crate(env: &setup::Env, args: &[&str]) -> anyhow::Result<()> {
    let fixtures = fixtures::build(env)?;
    let apiprof = build_apiprof(env)?;
    let refctl = build_refctl(env)?;
    cmd::run(
        std::process::Command::new("cargo")
            .current_dir(&env.root)
            .args(args)
            .env("APIPROF_FIXTURES", &fixtures)
            .env("APIPROF_BIN", &apiprof)
            .env("APIPROF_REFCTL", &refctl)
            .env("APIPROF_SID", &env.sid)
            .env("APIPROF_PROMETHEUS", &env.prometheus),
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
fn build_apiprof(env: &setup::Env) -> anyhow::Result<std::path::PathBuf> {
    cmd::run(
        std::process::Command::new("cargo")
            .current_dir(&env.root)
            .args(["build", "--package", "profiler", "--bin", "apiprof"]),
    )?;
    Ok(env.target.join("debug/apiprof"))
}
