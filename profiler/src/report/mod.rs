//! Renders a [`Report`](crate::aggregate::Report) for people (`table`) and programs (`json`).

mod json;
mod table;

pub use json::json;
pub use table::table;
