//! `apiprof report FILE`: aggregate a capture and print it.

use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::{
    analyze::{aggregate::Analysis, Dimension, DEFAULT_BY},
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
    if args.weight.is_some() && !matches!(args.format, Format::Folded) {
        bail!("--weight applies to --format folded only; add --format folded");
    }
    let analysis = Analysis::of_capture(&args.file, &args.by).context("reading the capture")?;
    match args.format {
        Format::Folded => print!(
            "{}",
            report::folded(
                &analysis.rows,
                &analysis.stacks,
                args.weight.unwrap_or(Weight::Cpu)
            )
        ),
        Format::Table => print!("{}", report::table(&analysis.report())),
        Format::Json => println!("{}", report::json(&analysis.report())),
    }
    Ok(())
}
