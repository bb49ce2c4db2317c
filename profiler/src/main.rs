//! The `apiprof` command: parses arguments and hands over to [`apiprof::cli`].
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    apiprof::cli::main(apiprof::cli::Cli::parse())
}
