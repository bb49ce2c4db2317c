//! `apiprof report FILE`: aggregate a capture and print it.

use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::{
    analyze::aggregate::{aggregate, Dimension, DEFAULT_BY},
    capture::Capture,
    report::{self, Weight},
};

/// Output formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
    /// Folded stacks for flame graph tools, weighed by `--weight`.
    Folded,
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
    /// With `--format folded`: weigh stacks by on-CPU samples (`cpu`, the default) or
    /// estimated heap bytes allocated (`alloc`).
    #[arg(long, value_enum)]
    weight: Option<Weight>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let capture = Capture::read(&args.file).context("reading the capture")?;
    match (args.format, args.weight) {
        (Format::Folded, weight) => print!(
            "{}",
            report::folded(&capture, &args.by, weight.unwrap_or(Weight::Cpu))
        ),
        (_, Some(_)) => bail!("--weight applies to --format folded only; add --format folded"),
        (Format::Table, None) => print!("{}", report::table(&aggregate(&capture, &args.by))),
        (Format::Json, None) => println!("{}", report::json(&aggregate(&capture, &args.by))),
    }
    Ok(())
}
