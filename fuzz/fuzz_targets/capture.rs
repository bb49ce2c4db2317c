//! A capture file (JSON lines), as `apiprof report` reads it: its header, then every
//! record until the end or the first damaged line, each attributed and aggregated; then
//! the report.
#![no_main]

use std::{io::Cursor, path::Path};

use apiprof::{
    analyze::{aggregate::Analysis, filter::Filter, DEFAULT_BY},
    capture::Reader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Cursor::new(data.to_vec());
    let Ok(reader) = Reader::from_reader(Path::new("fuzz.jsonl"), input) else {
        return;
    };
    let (analysis, _damage) = Analysis::of_reader(reader, &DEFAULT_BY, Filter::default());
    let _ = analysis.report();
});
