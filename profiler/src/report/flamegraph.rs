//! Interactive SVG flame graphs (search, click to zoom) drawn by inferno from the
//! folded stacks, and differential ones: what grew (red) or shrank (blue) between a
//! baseline and now, drawn at now's widths.

use inferno::{
    differential,
    flamegraph::{self, color::BasicPalette, Options, Palette},
};

use super::{
    folded::folded,
    profile::{Profile, Weight},
};
use crate::analyze::{filter::Filter, Dimension};

/// A flame graph of nothing: inferno draws none.
#[derive(Debug, thiserror::Error)]
#[error("nothing to draw: no stack has any {} weight here (was it tracked? `apiprof report --format table` shows what was measured); choose another --weight, window or filter", .weight.name())]
pub struct NothingToDraw {
    /// The weight asked for.
    pub weight: Weight,
}

/// What a flame graph says about itself.
#[derive(Clone, Debug, Default)]
pub struct Caption {
    /// Where the data comes from: a capture file, a daemon's window.
    pub source: String,
    /// Anything else worth a line under the title (filters, sampling rates).
    pub notes: Vec<String>,
}

impl Caption {
    /// The caption of data from `source`, noting `filter` when it keeps less than all.
    pub fn of(source: String, filter: &Filter) -> Self {
        Self {
            source,
            notes: (!filter.is_empty())
                .then(|| format!("filter: {filter}"))
                .into_iter()
                .collect(),
        }
    }
}

/// A flame graph of `profile` weighed by `weight`.
pub fn svg(profile: &Profile, weight: Weight, caption: &Caption) -> Result<Vec<u8>, NothingToDraw> {
    let lines = folded(profile, weight);
    let title = format!("apiprof: {} by {}", what(weight), path(&profile.by));
    render(lines.lines(), weight, title, caption)
}

/// The differential folded stacks of the folded stacks `before` and `after`: each
/// line `stack before after`, in the stacks' text order.
pub fn diff_folded(before: &str, after: &str) -> String {
    let mut out = Vec::new();
    differential::from_readers(
        differential::Options::default(),
        before.as_bytes(),
        after.as_bytes(),
        &mut out,
    )
    .expect("writing to memory cannot fail");
    let mut lines: Vec<&str> = std::str::from_utf8(&out)
        .expect("inferno writes the UTF-8 it was given")
        .lines()
        .collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A differential flame graph of the folded stacks `before` and `after` (weighed by
/// `weight`, rooted at `by`): `after`'s widths, red where a stack grew since `before`,
/// blue where it shrank.
pub fn diff_svg(
    before: &str,
    after: &str,
    weight: Weight,
    by: &[Dimension],
    caption: &Caption,
) -> Result<Vec<u8>, NothingToDraw> {
    let lines = diff_folded(before, after);
    let title = format!(
        "apiprof: what changed in {} by {} (red grew, blue shrank)",
        what(weight),
        path(by)
    );
    render(lines.lines(), weight, title, caption)
}

fn render<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    weight: Weight,
    title: String,
    caption: &Caption,
) -> Result<Vec<u8>, NothingToDraw> {
    let mut options = Options::default();
    options.title = title;
    let mut subtitle = vec![caption.source.clone()];
    subtitle.extend(caption.notes.iter().cloned());
    options.subtitle = Some(subtitle.join("; "));
    options.count_name = weight.unit().to_owned();
    options.name_type = "Frame:".to_owned();
    // The same name gets the same colour in every graph, so two graphs compare at a glance.
    options.hash = true;
    options.deterministic = true;
    options.colors = Palette::Basic(match weight {
        Weight::Alloc => BasicPalette::Mem,
        Weight::Cpu => BasicPalette::Hot,
        Weight::Requests | Weight::ResponseBytes | Weight::Latency => BasicPalette::Io,
    });
    let lines: Vec<&str> = lines.into_iter().collect();
    if lines.is_empty() {
        return Err(NothingToDraw { weight });
    }
    let mut out = Vec::new();
    flamegraph::from_lines(&mut options, lines, &mut out)
        .expect("inferno renders any folded stacks apiprof writes");
    Ok(out)
}

/// What widths measure, in a title.
fn what(weight: Weight) -> &'static str {
    match weight {
        Weight::Cpu => "CPU",
        Weight::Alloc => "heap allocated",
        Weight::Requests => "requests",
        Weight::ResponseBytes => "response bytes",
        Weight::Latency => "time serving",
    }
}

/// The root frames' dimensions, outermost first.
fn path(by: &[Dimension]) -> String {
    by.iter().map(|d| d.name()).collect::<Vec<_>>().join(" → ")
}
