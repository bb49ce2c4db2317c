//! Folded stacks, the input of flame graph tools (`flamegraph.pl`, inferno, speedscope):
//! one line per distinct stack, `frame;frame;...;frame weight`, outermost frame first.
//! Each stack is prefixed with the grouped dimensions of the request it was sampled for
//! (one frame each, so the graph splits by client first), or `(background)`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::analyze::{rows::Rows, stacks::StackTable};

/// What a folded stack is weighed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Weight {
    /// On-CPU samples (each one sampling period of CPU time).
    Cpu,
    /// Estimated heap bytes allocated (samples scaled as pprof scales heap profiles).
    Alloc,
}

/// The samples of `rows` weighed by `weight`, as folded stacks under each row's grouped
/// dimensions, the background's under `(background)`.
pub fn folded(rows: &Rows, stacks: &StackTable, weight: Weight) -> String {
    let prefixed = rows
        .rows
        .values()
        .map(|stats| {
            let prefix = rows
                .by
                .iter()
                .map(|d| match stats.dimensions.get(d.index()) {
                    Some(Some(value)) => frame(value),
                    _ => crate::analyze::MIXED.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(";");
            (prefix, stats)
        })
        .chain(
            rows.background
                .values()
                .map(|stats| ("(background)".to_owned(), stats)),
        );
    let mut weights: BTreeMap<(String, u32), f64> = BTreeMap::new();
    for (prefix, stats) in prefixed {
        for (stack, (cpu, alloc)) in &stats.stacks {
            let w = match weight {
                Weight::Cpu => *cpu as f64,
                Weight::Alloc => *alloc,
            };
            if w > 0.0 {
                *weights.entry((prefix.clone(), *stack)).or_default() += w;
            }
        }
    }
    let mut out = String::new();
    for ((prefix, stack), weight) in weights {
        out.push_str(&prefix);
        for f in stacks.frames(stack).iter().rev() {
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

    #[test]
    fn stacks_are_folded_outermost_first_under_their_requests_dimensions() {
        use crate::analyze::{aggregate::tests, Dimension};
        use crate::capture::{Alloc, Cpu, Record, Stack};
        let mut header = tests::header();
        header.mem_profile_rate = 1;
        header.cpu_sample_period_ns = 1;
        let cpu = |request, stack_id| {
            Record::Cpu(Cpu {
                ktime_ns: 5,
                goroutine: 1,
                request,
                kernel: false,
                stack_id,
            })
        };
        let records = vec![
            Record::HttpRequest(tests::request(
                0,
                0xa,
                "kube-controller-manager/v1.36 (linux; amd64)",
                "GET",
                "/api/v1/pods",
                "resourceVersion=0",
            )),
            Record::Stack(Stack {
                id: 0,
                frames: vec!["runtime.mallocgc".into(), "main.serve".into()],
            }),
            Record::Stack(Stack {
                id: 1,
                frames: vec!["runtime.gcBgMarkWorker".into()],
            }),
            cpu(0xa, 0),
            cpu(0xa, 0),
            cpu(0, 1),
            Record::Alloc(Alloc {
                ktime_ns: 5,
                goroutine: 1,
                request: 0xa,
                size: 4096,
                stack_id: 0,
            }),
        ];
        let by = [Dimension::UserAgent, Dimension::Verb, Dimension::RvClass];
        let a = tests::analyze(&header, records, true, &by);
        assert_eq!(
            folded(&a.rows, &a.stacks, Weight::Cpu),
            "(background);runtime.gcBgMarkWorker 1\n\
             kube-controller-manager/v1.36 (linux, amd64);list;any;main.serve;runtime.mallocgc 2\n"
        );
        assert_eq!(
            folded(&a.rows, &a.stacks, Weight::Alloc),
            "kube-controller-manager/v1.36 (linux, amd64);list;any;main.serve;runtime.mallocgc 4096\n"
        );
    }
}
