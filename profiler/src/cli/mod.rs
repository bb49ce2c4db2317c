//! The command line: one module per verb.

mod record;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Exit code for bad input (arguments, files, unsupported targets), as distinct from
/// failures while running.
const EXIT_USAGE: u8 = 2;

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
    /// Aggregate a capture file into a report.
    Report(report::Args),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("apiprof: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
