//! The JSON report: `{"requests": [...], "dropped_events": N, ...}`. Later versions add
//! fields; existing ones are never renamed.

use crate::analyze::aggregate::Report;

/// The report as pretty-printed JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a Report always serializes")
}
