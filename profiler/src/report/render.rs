//! One report in any format, for `apiprof report FILE` and the daemon's `/report` alike.

use super::{
    flamegraph::{svg, Caption, NothingToDraw},
    folded::folded,
    json::json,
    pprof::pprof,
    profile::{Profile, Weight},
    table::table,
};
use crate::analyze::{aggregate::Report, rows::Rows, stacks::StackTable};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people, heaviest rows first.
    Table,
    /// JSON for programs.
    Json,
    /// Folded stacks for flame graph tools (flamegraph.pl, speedscope).
    Folded,
    /// An interactive flame graph (click to zoom, Ctrl-F to search).
    Svg,
    /// A gzipped pprof profile (`go tool pprof`, Pyroscope, Parca).
    Pprof,
}

impl Format {
    /// Its name on the command line and in `/report?format=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Json => "json",
            Self::Folded => "folded",
            Self::Svg => "svg",
            Self::Pprof => "pprof",
        }
    }

    /// Its HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Table | Self::Folded => "text/plain; charset=utf-8",
            Self::Json => "application/json",
            Self::Svg => "image/svg+xml",
            Self::Pprof => "application/octet-stream",
        }
    }

    /// Whether people read it on a terminal (else it belongs in a file).
    pub fn for_terminals(self) -> bool {
        matches!(self, Self::Table | Self::Json | Self::Folded)
    }

    /// The weight used unless one is asked for: requests in tables (who sends the most),
    /// CPU in stacks (what it costs the server).
    pub fn default_weight(self) -> Weight {
        match self {
            Self::Table | Self::Json => Weight::Requests,
            Self::Folded | Self::Svg | Self::Pprof => Weight::Cpu,
        }
    }
}

/// How to render.
#[derive(Clone, Debug)]
pub struct Options {
    /// The format.
    pub format: Format,
    /// What widths mean and rows are sorted by; the format's default if `None`.
    pub weight: Option<Weight>,
    /// A table fits this many columns (a terminal's width).
    pub width: Option<usize>,
    /// What the data is (titles of flame graphs, comments of pprof files).
    pub caption: Caption,
}

/// `report` (whose rows are `rows`, on stacks `stacks`) rendered as `options` say.
pub fn render(
    mut report: Report,
    rows: &Rows,
    stacks: &StackTable,
    options: &Options,
) -> Result<Vec<u8>, NothingToDraw> {
    let weight = options.weight.unwrap_or(options.format.default_weight());
    let profile = || Profile::of(rows, stacks, report.cpu_sample_period_ns);
    Ok(match options.format {
        Format::Table => {
            sort(&mut report, weight);
            table(&report, options.width, column(weight)).into_bytes()
        }
        Format::Json => {
            sort(&mut report, weight);
            (json(&report) + "\n").into_bytes()
        }
        Format::Folded => folded(&profile(), weight).into_bytes(),
        Format::Svg => svg(&profile(), weight, &options.caption)?,
        Format::Pprof => {
            let mut comments = vec![options.caption.source.clone()];
            comments.extend(options.caption.notes.iter().cloned());
            pprof(&profile(), weight, &comments)
        }
    })
}

/// Heaviest rows first (stable: ties keep the report's order); the background last.
fn sort(report: &mut Report, weight: Weight) {
    report.requests.sort_by(|a, b| {
        a.background
            .cmp(&b.background)
            .then_with(|| weight.of_row(b).total_cmp(&weight.of_row(a)))
    });
}

/// The table column of `weight`.
fn column(weight: Weight) -> &'static str {
    match weight {
        Weight::Cpu => "CPU_S",
        Weight::Alloc => "ALLOC_BYTES",
        Weight::Requests => "COUNT",
        Weight::ResponseBytes => "BYTES",
        Weight::Latency => "LATENCY_S",
    }
}
