//! The command line: one module per verb.

mod daemon;
mod record;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{
    attach::{LoadError, Tracking},
    capture::CaptureError,
    events::drain::RecordError,
};

/// Exit code for bad input (arguments, files, unsupported targets), as distinct from
/// failures while running.
const EXIT_USAGE: u8 = 2;

/// Exit code for failures while running: what the machine refused (privileges, the
/// kernel, the network, the disk), not what the user asked for.
const EXIT_FAILURE: u8 = 1;

/// apiprof: which client loads the API server, with what requests, and why now.
#[derive(Debug, Parser)]
#[command(name = "apiprof", version)]
pub struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `apiprof=debug`; also
    /// read from APIPROF_LOG.
    #[arg(long, global = true, env = "APIPROF_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Attach to a running Go server and record every request it serves into a file.
    Record(record::Args),
    /// Aggregate a capture file, or a running daemon's recent window, into a report.
    Report(report::Args),
    /// Stay attached to every matching process on the node (and those that start
    /// later); serve Prometheus metrics and live reports over HTTP.
    Daemon(daemon::Args),
}

/// What to track besides requests (`record` and `daemon`).
#[derive(Debug, Default, clap::Args, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct TrackingArgs {
    /// Do not attribute heap allocations (saves a probe per allocation sample).
    #[arg(long)]
    no_alloc: bool,
    /// Do not sample on-CPU time.
    #[arg(long)]
    no_cpu: bool,
    /// On-CPU samples per second of CPU time, on every CPU (1 to 1000, default 99: clear
    /// of running in step with 100 Hz timers).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    cpu_hz: Option<u64>,
    /// Attribute the heap and CPU of goroutines at any depth below a handler (started
    /// by goroutines it started) to its request, with a probe on every goroutine
    /// creation (~2 µs each). Without it (Go 1.21+), goroutines the handler started
    /// count, and theirs once a sample has been taken on them; Go before 1.21 always
    /// uses the probe.
    #[arg(long)]
    deep_lineage: bool,
}

impl TrackingArgs {
    /// The tracking these flags ask for.
    fn tracking(&self) -> Tracking {
        let hz = self.cpu_hz.unwrap_or(99).clamp(1, 1000);
        Tracking {
            allocs: !self.no_alloc,
            cpu_period_ns: (!self.no_cpu).then(|| 1_000_000_000 / hz),
            deep_lineage: self.deep_lineage,
        }
    }
}

/// Runs the parsed command line; errors are printed with their causes.
pub fn main(cli: Cli) -> ExitCode {
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Record(args) => record::run(args),
        Command::Report(args) => report::run(args),
        Command::Daemon(args) => daemon::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("apiprof: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

/// [`EXIT_FAILURE`] when anything in `error`'s chain is the machine's refusal,
/// [`EXIT_USAGE`] otherwise (the arguments, the file, the target).
fn exit_code(error: &anyhow::Error) -> u8 {
    use std::io::ErrorKind;
    let refused = |e: &(dyn std::error::Error + 'static)| {
        if let Some(load) = e.downcast_ref::<LoadError>() {
            return matches!(
                load,
                LoadError::Load { .. }
                    | LoadError::ProgramLoad { .. }
                    | LoadError::Attach { .. }
                    | LoadError::Sampler { .. }
            );
        }
        let io = match e.downcast_ref::<CaptureError>() {
            // Said in the capture error's message, so not its source.
            Some(CaptureError::Io { error, .. }) => Some(error),
            _ => e.downcast_ref::<std::io::Error>(),
        };
        if let Some(io) = io {
            return matches!(
                io.kind(),
                ErrorKind::PermissionDenied
                    | ErrorKind::AddrInUse
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::TimedOut
                    | ErrorKind::StorageFull
                    | ErrorKind::WriteZero
                    | ErrorKind::BrokenPipe
                    | ErrorKind::OutOfMemory
            );
        }
        e.is::<RecordError>() || e.is::<reqwest::Error>()
    };
    if error.chain().any(refused) {
        EXIT_FAILURE
    } else {
        EXIT_USAGE
    }
}
