//! Renders a [`Report`](crate::analyze::aggregate::Report) for people (`table`) and programs
//! (`json`), and a capture's samples as folded stacks for flame graphs (`folded`).

mod folded;
mod json;
mod table;

pub use folded::{folded, Weight};
pub use json::json;
pub use table::table;
