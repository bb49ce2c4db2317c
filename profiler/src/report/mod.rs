//! Renders what was measured: a [`Report`](crate::analyze::aggregate::Report) for people
//! (`table`) and programs (`json`), and a [`Profile`] of its rows' stacks as folded
//! stacks, SVG flame graphs (plain and differential) and pprof files.

mod flamegraph;
mod folded;
mod json;
mod pprof;
mod profile;
mod render;
mod table;

pub use flamegraph::{diff_folded, diff_svg, Caption, NothingToDraw};
pub use pprof::SAMPLE_TYPES;
pub use profile::{Profile, Weight, BACKGROUND};
pub use render::{render, Format, Options};
