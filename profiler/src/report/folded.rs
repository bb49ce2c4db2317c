//! Folded stacks, the input of flame graph tools (`flamegraph.pl`, inferno, speedscope):
//! one line per distinct stack, `frame;frame;...;frame weight`, outermost frame first.
//! Each stack is prefixed with the grouped dimensions of the request it was sampled for
//! (one frame each, so the graph splits by client first), or `(background)`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{
    analyze::aggregate::Dimension,
    analyze::attribute::{attribute, AllocCost},
    capture::Capture,
};

/// What a folded stack is weighed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Weight {
    /// On-CPU samples (each one sampling period of CPU time).
    Cpu,
    /// Estimated heap bytes allocated (samples scaled as pprof scales heap profiles).
    Alloc,
}

/// The capture's samples of `weight` as folded stacks, grouped by `by`.
pub fn folded(capture: &Capture, by: &[Dimension], weight: Weight) -> String {
    let attribution = attribute(capture);
    let stacks: BTreeMap<u32, &[String]> = capture
        .stacks
        .iter()
        .map(|s| (s.id, s.frames.as_slice()))
        .collect();
    let prefix = |owner: Option<usize>| match owner {
        Some(i) => by
            .iter()
            .map(|d| frame(&d.of(&attribution.served[i])))
            .collect::<Vec<_>>()
            .join(";"),
        None => "(background)".to_owned(),
    };
    // Summed per (request, stack) first: a prefix is built once per pair, not per sample.
    let mut per_request: BTreeMap<(Option<usize>, u32), f64> = BTreeMap::new();
    match weight {
        Weight::Cpu => {
            for (c, owner) in capture.cpu.iter().zip(&attribution.cpu_owners) {
                *per_request.entry((*owner, c.stack_id)).or_default() += 1.0;
            }
        }
        Weight::Alloc => {
            for (a, owner) in capture.allocs.iter().zip(&attribution.alloc_owners) {
                let mut cost = AllocCost::default();
                cost.add(a.size, capture.header.mem_profile_rate);
                *per_request.entry((*owner, a.stack_id)).or_default() += cost.bytes;
            }
        }
    }
    // Requests that share the grouped dimensions share a prefix: their weights add up.
    let mut weights: BTreeMap<(String, u32), f64> = BTreeMap::new();
    for ((owner, stack_id), weight) in per_request {
        *weights.entry((prefix(owner), stack_id)).or_default() += weight;
    }
    let mut out = String::new();
    for ((prefix, stack_id), weight) in weights {
        let frames = stacks.get(&stack_id).copied().unwrap_or_default();
        out.push_str(&prefix);
        for f in frames.iter().rev() {
            out.push(';');
            out.push_str(&f.replace(';', ","));
        }
        out.push_str(&format!(" {}\n", weight.round() as u64));
    }
    out
}

/// A dimension's value as a frame name: no `;` (the separator), `""` for empty, `-` for
/// null.
fn frame(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => s.replace(';', ","),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Alloc, Cpu, Stack};

    #[test]
    fn stacks_are_folded_outermost_first_under_their_requests_dimensions() {
        let mut c = crate::analyze::aggregate::tests::capture(
            vec![crate::analyze::aggregate::tests::request(
                0,
                0xa,
                "kube-controller-manager/v1.36 (linux; amd64)",
                "GET",
                "/api/v1/pods",
                "resourceVersion=0",
            )],
            vec![],
            true,
        );
        c.header.mem_profile_rate = 1;
        c.stacks = vec![
            Stack {
                id: 0,
                frames: vec!["runtime.mallocgc".into(), "main.serve".into()],
            },
            Stack {
                id: 1,
                frames: vec!["runtime.gcBgMarkWorker".into()],
            },
        ];
        let cpu = |request, stack_id| Cpu {
            ktime_ns: 5,
            goroutine: 1,
            request,
            kernel: false,
            stack_id,
        };
        c.cpu = vec![cpu(0xa, 0), cpu(0xa, 0), cpu(0, 1)];
        c.allocs = vec![Alloc {
            ktime_ns: 5,
            goroutine: 1,
            request: 0xa,
            size: 4096,
            stack_id: 0,
        }];
        let by = [Dimension::UserAgent, Dimension::Verb, Dimension::RvClass];
        assert_eq!(
            folded(&c, &by, Weight::Cpu),
            "(background);runtime.gcBgMarkWorker 1\n\
             kube-controller-manager/v1.36 (linux, amd64);list;any;main.serve;runtime.mallocgc 2\n"
        );
        assert_eq!(
            folded(&c, &by, Weight::Alloc),
            "kube-controller-manager/v1.36 (linux, amd64);list;any;main.serve;runtime.mallocgc 4096\n"
        );
    }
}
