//! Folded stacks, the input of flame graph tools (`flamegraph.pl`, inferno, speedscope):
//! one line per distinct stack, `frame;frame;...;frame weight`, outermost frame first,
//! in the order of the stacks' text.

use std::collections::BTreeMap;

use super::profile::{Profile, Weight};

/// The samples of `profile` weighed by `weight`, one line per distinct stack; stacks of
/// weight 0 are left out.
pub fn folded(profile: &Profile, weight: Weight) -> String {
    let mut weights: BTreeMap<String, u64> = BTreeMap::new();
    for sample in &profile.samples {
        let w = weight.of(&sample.values);
        if w > 0 {
            let stack: Vec<String> = sample.frames.iter().map(|f| f.replace(';', ",")).collect();
            *weights.entry(stack.join(";")).or_default() += w;
        }
    }
    weights
        .into_iter()
        .map(|(stack, w)| format!("{stack} {w}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{aggregate::tests, Dimension};
    use crate::capture::{Alloc, Cpu, Record, Stack};

    #[test]
    fn stacks_are_folded_outermost_first_under_their_requests_dimensions() {
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
        let profile = Profile::of(&a.rows, &a.stacks, 1);
        assert_eq!(
            folded(&profile, Weight::Cpu),
            "(background);runtime.gcBgMarkWorker 1\n\
             kube-controller-manager/v1.36 (linux, amd64);list;any;main.serve;runtime.mallocgc 2\n"
        );
        assert_eq!(
            folded(&profile, Weight::Alloc),
            "kube-controller-manager/v1.36 (linux, amd64);list;any;main.serve 4096\n"
        );
        assert_eq!(
            folded(&profile, Weight::Requests),
            "kube-controller-manager/v1.36 (linux, amd64);list;any 1\n"
        );
    }
}
