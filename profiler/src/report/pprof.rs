//! pprof profiles (gzipped protobuf), as `go tool pprof`, Pyroscope, Parca and
//! speedscope read them: the same frames as the flame graphs, every sample's grouped
//! dimensions as labels (so `-tagfocus=verb=list` works), and every measure as a sample
//! type; `--weight` picks the one shown first.

use std::{collections::HashMap, io::Write as _};

use flate2::{write::GzEncoder, Compression};
use libdd_profiling_protobuf::prost_impls::{
    Function, Label, Line, Location, Mapping, Message as _, Profile as Pprof, Sample, ValueType,
};

use super::profile::{Profile, Values, Weight};

/// Sample types in the order of each sample's values.
pub const SAMPLE_TYPES: [(&str, &str); 6] = [
    ("samples", "count"),
    ("cpu", "nanoseconds"),
    ("alloc_space", "bytes"),
    ("requests", "count"),
    ("response_bytes", "bytes"),
    ("latency", "nanoseconds"),
];

/// `profile` as a gzipped pprof protobuf whose default sample type is `weight`'s, with
/// `comments` (what it is of) attached.
pub fn pprof(profile: &Profile, weight: Weight, comments: &[String]) -> Vec<u8> {
    let mut strings = Strings::default();
    let mut p = Pprof {
        sample_types: SAMPLE_TYPES
            .iter()
            .map(|(t, unit)| ValueType {
                r#type: strings.index(t),
                unit: strings.index(unit),
            })
            .collect(),
        period_type: Some(ValueType {
            r#type: strings.index("cpu"),
            unit: strings.index("nanoseconds"),
        }),
        period: profile.cpu_sample_period_ns as i64,
        default_sample_type: strings.index(match weight {
            Weight::Cpu => "cpu",
            Weight::Alloc => "alloc_space",
            Weight::Requests => "requests",
            Weight::ResponseBytes => "response_bytes",
            Weight::Latency => "latency",
        }),
        // Frames come named: nothing for pprof to symbolize.
        mappings: vec![Mapping {
            id: 1,
            filename: strings.index("apiprof"),
            has_functions: true,
            ..Mapping::default()
        }],
        ..Pprof::default()
    };
    p.comment = comments.iter().map(|c| strings.index(c)).collect();
    let mut locations: HashMap<&str, u64> = HashMap::new();
    for sample in &profile.samples {
        let location_ids = sample
            .frames
            .iter()
            .rev()
            .map(|frame| {
                *locations.entry(frame).or_insert_with(|| {
                    let id = p.locations.len() as u64 + 1;
                    let name = strings.index(frame);
                    p.functions.push(Function {
                        id,
                        name,
                        system_name: name,
                        filename: 0,
                    });
                    p.locations.push(Location {
                        id,
                        mapping_id: 1,
                        lines: vec![Line {
                            function_id: id,
                            line: 0,
                        }],
                        ..Location::default()
                    });
                    id
                })
            })
            .collect();
        let labels = sample
            .labels
            .iter()
            .map(|(key, value)| Label {
                key: strings.index(key),
                str: strings.index(value),
                ..Label::default()
            })
            .collect();
        p.samples.push(Sample {
            location_ids,
            values: values(&sample.values).to_vec(),
            labels,
        });
    }
    p.string_table = strings.table;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&p.encode_to_vec())
        .and_then(|()| gz.finish())
        .expect("compressing into memory cannot fail")
}

/// A sample's values in [`SAMPLE_TYPES`] order.
fn values(v: &Values) -> [i64; 6] {
    [
        v.samples,
        v.cpu_ns,
        v.alloc_bytes,
        v.requests,
        v.response_bytes,
        v.latency_ns,
    ]
    .map(|n| n as i64)
}

/// pprof's string table: index 0 is the empty string.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Default for Strings {
    fn default() -> Self {
        Self {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl Strings {
    fn index(&mut self, s: &str) -> i64 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}
