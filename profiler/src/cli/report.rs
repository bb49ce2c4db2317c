//! `apiprof report FILE`: aggregate a capture and print it.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{
    aggregate::{aggregate, Dimension, DEFAULT_BY},
    capture::Capture,
    report,
};

/// Output formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
}

/// Arguments of `apiprof report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture file written by `apiprof record`.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Dimensions to group requests by, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = DEFAULT_BY)]
    by: Vec<Dimension>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let capture = Capture::read(&args.file).context("reading the capture")?;
    let report = aggregate(&capture, &args.by);
    match args.format {
        Format::Table => print!("{}", report::table(&report)),
        Format::Json => println!("{}", report::json(&report)),
    }
    Ok(())
}
