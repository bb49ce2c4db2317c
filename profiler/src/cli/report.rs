//! `apiprof report SOURCE`: aggregate a capture file, or ask a running daemon for the
//! same report over its recent window, and print it.

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
    /// A capture file written by `apiprof record` (or `apiprof daemon --capture`), or a
    /// running daemon: `http://HOST:PORT`.
    source: String,
    /// With a daemon: how far back to look, e.g. `30s`, `10m`, `1h` (default 5m; whole
    /// time buckets).
    #[arg(long)]
    window: Option<String>,
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
    if args.source.starts_with("http://") || args.source.starts_with("https://") {
        print!("{}", from_daemon(&args)?);
        return Ok(());
    }
    if args.window.is_some() {
        bail!("--window applies to a daemon (http://HOST:PORT) only; a capture file is reported whole");
    }
    let file = PathBuf::from(&args.source);
    let analysis = Analysis::of_capture(&file, &args.by).context("reading the capture")?;
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

/// The daemon's `/report` for the same arguments: exactly what a capture file of the
/// window would give.
fn from_daemon(args: &Args) -> anyhow::Result<String> {
    let mut query = vec![
        ("format", value_name(&args.format)),
        (
            "by",
            args.by
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    if let Some(window) = &args.window {
        query.push(("window", window.clone()));
    }
    if let Some(weight) = &args.weight {
        query.push(("weight", value_name(weight)));
    }
    let url = format!("{}/report", args.source.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("asking {url}; is `apiprof daemon` listening there?"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .context("reading the daemon's answer")?;
        if !status.is_success() {
            bail!("the daemon refused the report ({status}): {}", body.trim());
        }
        Ok(body)
    })
}

/// A value's name on the command line (`json`, `cpu`).
fn value_name(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}
