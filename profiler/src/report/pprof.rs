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

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;
    use libdd_profiling_protobuf::prost_impls::Message as _;

    use super::*;
    use crate::{analyze::Dimension, report::profile::Sample as ProfileSample};

    #[test]
    fn frames_labels_and_every_measure_survive_the_round_trip() {
        let sample = |frames: &[&str], labels: &[(&'static str, &str)], values| ProfileSample {
            frames: frames.iter().map(|f| f.to_string()).collect(),
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            values,
        };
        let profile = Profile {
            by: vec![Dimension::UserAgent, Dimension::Verb],
            samples: vec![
                sample(
                    &["kubectl", "list"],
                    &[("user_agent", "kubectl"), ("verb", "list")],
                    Values {
                        requests: 3,
                        response_bytes: 300,
                        latency_ns: 9,
                        ..Values::default()
                    },
                ),
                sample(
                    &["kubectl", "list", "main.serve", "runtime.mallocgc"],
                    &[("user_agent", "kubectl"), ("verb", "list")],
                    Values {
                        samples: 2,
                        cpu_ns: 20,
                        alloc_bytes: 4096,
                        ..Values::default()
                    },
                ),
            ],
            cpu_sample_period_ns: 10,
        };
        let mut gz = Vec::new();
        GzDecoder::new(&pprof(&profile, Weight::Alloc, &["a comment".into()])[..])
            .read_to_end(&mut gz)
            .unwrap();
        let p = Pprof::decode(&gz[..]).unwrap();
        let s = |i: i64| p.string_table[i as usize].as_str();
        let types: Vec<(&str, &str)> = p
            .sample_types
            .iter()
            .map(|t| (s(t.r#type), s(t.unit)))
            .collect();
        assert_eq!(types, SAMPLE_TYPES);
        assert_eq!(s(p.default_sample_type), "alloc_space");
        assert_eq!((p.period, s(p.comment[0])), (10, "a comment"));
        let frames = |sample: &Sample| -> Vec<&str> {
            sample
                .location_ids
                .iter()
                .map(|id| s(p.functions[*id as usize - 1].name))
                .collect()
        };
        assert_eq!(frames(&p.samples[0]), ["list", "kubectl"]);
        assert_eq!(
            frames(&p.samples[1]),
            ["runtime.mallocgc", "main.serve", "list", "kubectl"]
        );
        assert_eq!(p.samples[0].values, [0, 0, 0, 3, 300, 9]);
        assert_eq!(p.samples[1].values, [2, 20, 4096, 0, 0, 0]);
        let labels: Vec<(&str, &str)> = p.samples[1]
            .labels
            .iter()
            .map(|l| (s(l.key), s(l.str)))
            .collect();
        assert_eq!(labels, [("user_agent", "kubectl"), ("verb", "list")]);
    }
}
