//! refctl: the reference controller. Each subcommand reproduces one incident's load
//! (../shared/seeds) against a Kubernetes API server with kube-rs — the apiserver
//! fixture, in apiprof's tests — and writes the ground truth to a ledger (JSON lines,
//! see [`ledger`]): every request as sent, every resync tick, reconcile, throttle wait
//! and restart. `cargo xtask validate` checks apiprof's report against that ledger.
//!
//! Every scenario is bounded in objects, ticks and time, and sends only to the
//! kubeconfig's server.

#![forbid(unsafe_code)]

mod children;
mod classify;
mod client;
mod error;
mod ledger;
mod mixed;
mod objects;
mod reconcile;
mod restart_catchup;
mod resync_storm;
mod throttle;
mod throttled;
mod traced;
mod watch_burst;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    error::Error,
    ledger::{Ledger, Record},
};

#[derive(Parser)]
#[command(about = "Reference controller: reproduces apiprof's incidents and records the truth")]
struct Cli {
    /// Kubeconfig of the server to load (its current context).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Where to write the ledger (JSON lines; truncated first).
    #[arg(long)]
    ledger: PathBuf,
    #[command(subcommand)]
    scenario: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Incident 001: periodic resync, every reconcile a labelled LIST.
    ResyncStorm(resync_storm::Args),
    /// Incident 002: every request through a client-side token bucket, work > burst.
    Throttled(throttled::Args),
    /// Incident 000: scan-every-child reconciles on one worker, restarted mid-run.
    RestartCatchup(restart_catchup::Args),
    /// Every verb and resourceVersion class, on HTTP/1.1 or HTTP/2.
    Mixed(mixed::Args),
    WatchBurst(watch_burst::Args),
}

/// What every scenario gets: where the server is, where the truth goes.
pub struct Scenario {
    kubeconfig: PathBuf,
    ledger: Ledger,
    name: &'static str,
}

impl Scenario {
    /// Writes the ledger's `scenario` line: the scenario begins as `user_agent`.
    fn started(&self, user_agent: &str) {
        tracing::info!(scenario = self.name, user_agent, "starting");
        self.ledger.write(&Record::Scenario {
            time: ledger::now(),
            scenario: self.name.to_owned(),
            user_agent: user_agent.to_owned(),
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REFCTL_LOG")
                .unwrap_or_else(|_| "info,kube_client::client::tls=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let ledger = Ledger::create(&cli.ledger).map_err(|source| Error::Ledger {
        path: cli.ledger.display().to_string(),
        source,
    })?;
    let name = match &cli.scenario {
        Command::ResyncStorm(_) => "resync-storm",
        Command::Throttled(_) => "throttled",
        Command::RestartCatchup(_) => "restart-catchup",
        Command::Mixed(_) => "mixed",
        Command::WatchBurst(_) => "watch-burst",
    };
    let s = Scenario {
        kubeconfig: cli.kubeconfig,
        ledger,
        name,
    };
    match &cli.scenario {
        Command::ResyncStorm(args) => resync_storm::run(&s, args).await?,
        Command::Throttled(args) => throttled::run(&s, args).await?,
        Command::RestartCatchup(args) => restart_catchup::run(&s, args).await?,
        Command::Mixed(args) => mixed::run(&s, args).await?,
        Command::WatchBurst(args) => watch_burst::run(&s, args).await?,
    }
    tracing::info!(scenario = name, "done");
    Ok(())
}
