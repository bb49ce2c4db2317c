//! apiprof's kernel programs, by the feature each serves, and their run counts and run
//! time from the kernel's own statistics (`BPF_ENABLE_STATS`).
//!
//! The programs come from the profiler's probe tables (`profiler::target::probes`), so a
//! probe renamed, added or removed there is counted here without a change. Only the
//! programs the observer process holds are counted (their ids from
//! `/proc/PID/fdinfo`), so another apiprof running on the machine changes nothing.

use std::{
    collections::BTreeMap,
    ops::{Add, Sub},
    os::fd::OwnedFd,
    time::Duration,
};

use apiprof::target::probes::{Probe, ALLOC, CLIENT, HTTP, LINEAGE};

/// The feature of the client-side probes (`--client`).
pub const CLIENT_FEATURE: &str = "client probes";

/// The CPU sampler's program (attached to perf events, not in a probe table).
const CPU_SAMPLE: &str = "cpu_sample";

/// The kernel keeps the first 15 bytes of a program's name.
const KERNEL_NAME_LEN: usize = 15;

/// One of apiprof's programs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Program {
    /// The feature it serves (`attribution`, `lineage`, `allocation`, `CPU sampling`).
    pub feature: &'static str,
    /// Its name in profiler-ebpf.
    pub name: String,
    /// Where it runs, as its probe table says (`Entry`, `CallTo`), or `perf event`.
    pub at: String,
}

/// Every program apiprof can attach, in feature order.
pub fn programs() -> Vec<Program> {
    let mut all = Vec::new();
    for (feature, table) in [
        ("attribution", HTTP),
        ("lineage", LINEAGE),
        ("allocation", ALLOC),
    ] {
        for probe in table {
            add(&mut all, feature, probe);
        }
    }
    all.push(Program {
        feature: "CPU sampling",
        name: CPU_SAMPLE.into(),
        at: "perf event".into(),
    });
    for probe in CLIENT {
        add(&mut all, CLIENT_FEATURE, probe);
    }
    all
}

/// Adds `probe`'s program, or where else it runs to the program already listed.
fn add(all: &mut Vec<Program>, feature: &'static str, probe: &Probe) {
    // The kind of place as the table names it (`Entry`, `CallTo`), whatever kinds it
    // grows; the functions called are many and long.
    let at = format!("{:?}", probe.at);
    let at = at.split('(').next().unwrap_or(&at).to_owned();
    match all.iter_mut().find(|p| p.name == probe.program) {
        Some(known) if !known.at.split(", ").any(|a| a == at) => {
            known.at = format!("{}, {at}", known.at)
        }
        Some(_) => {}
        None => all.push(Program {
            feature,
            name: probe.program.into(),
            at,
        }),
    }
}

/// Turns on the kernel's BPF run-time statistics while the guard lives (it costs every
/// program a clock read). Needs root.
pub fn enable_stats() -> OwnedFd {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .expect("enabling BPF run-time statistics (needs root)")
}

/// Runs and run time of a program.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count {
    /// Times it ran.
    pub runs: u64,
    /// Its own time (the probe's trap comes on top).
    pub time: Duration,
}

/// Each program's counts, by its name (a kernel name when it is in no probe table).
#[derive(Clone, Debug, Default)]
pub struct Counters(pub BTreeMap<String, Count>);

/// The counts so far of the apiprof programs process `pid` holds.
pub fn counters(pid: u32) -> Counters {
    let ids = program_ids(pid);
    let known = programs();
    let mut counts: BTreeMap<String, Count> = BTreeMap::new();
    for info in aya::programs::loaded_programs().flatten() {
        if !ids.contains(&info.id()) {
            continue;
        }
        let kernel_name = info.name_as_str().unwrap_or("?");
        let name = known
            .iter()
            .find(|p| p.name.get(..KERNEL_NAME_LEN).unwrap_or(&p.name) == kernel_name)
            .map_or(kernel_name, |p| &p.name);
        let count = counts.entry(name.to_owned()).or_default();
        count.runs += info.run_count();
        count.time += info.run_time();
    }
    Counters(counts)
}

impl Add for Counters {
    type Output = Counters;

    /// Two runs' counts together.
    fn add(self, other: Counters) -> Counters {
        let mut counts = self.0;
        for (name, count) in other.0 {
            let sum = counts.entry(name).or_default();
            sum.runs += count.runs;
            sum.time += count.time;
        }
        Counters(counts)
    }
}

impl Sub for Counters {
    type Output = Counters;

    /// What ran between two readings.
    fn sub(self, before: Counters) -> Counters {
        let mut counts = self.0;
        for (name, count) in &mut counts {
            let earlier = before.0.get(name).copied().unwrap_or_default();
            count.runs -= earlier.runs;
            count.time -= earlier.time;
        }
        Counters(counts)
    }
}

impl Counters {
    /// Hits and program time per request of the programs serving `feature`.
    pub fn feature(&self, feature: &str, requests: usize) -> (f64, f64) {
        programs()
            .iter()
            .filter(|p| p.feature == feature)
            .filter_map(|p| self.0.get(&p.name))
            .fold((0.0, 0.0), |(hits, us), c| {
                (
                    hits + c.runs as f64 / requests as f64,
                    us + c.time.as_secs_f64() * 1e6 / requests as f64,
                )
            })
    }

    /// One table row per program that ran (or could): feature, program, where, hits per
    /// request, ns per hit, µs of program time per request.
    pub fn rows(&self, requests: usize) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut known = programs();
        for name in self.0.keys() {
            if !known.iter().any(|p| p.name == *name) {
                known.push(Program {
                    feature: "(not in the probe tables)",
                    name: name.clone(),
                    at: "?".into(),
                });
            }
        }
        for program in known {
            let count = self.0.get(&program.name).copied().unwrap_or_default();
            let ns = match count.runs {
                0 => "—".to_owned(),
                runs => format!("{:.0}", count.time.as_nanos() as f64 / runs as f64),
            };
            rows.push(vec![
                program.feature.to_owned(),
                program.name,
                program.at,
                format!("{:.2}", count.runs as f64 / requests as f64),
                ns,
                format!("{:.2}", count.time.as_secs_f64() * 1e6 / requests as f64),
            ]);
        }
        rows
    }
}

/// The header of [`Counters::rows`].
pub const HEADER: [&str; 6] = [
    "feature",
    "program",
    "at",
    "hits/request",
    "ns/hit",
    "program µs/request",
];

/// Ids of the BPF programs process `pid` holds file descriptors of.
fn program_ids(pid: u32) -> Vec<u32> {
    let dir = format!("/proc/{pid}/fdinfo");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {dir}: {e}"));
    let mut ids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|id| id.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_table_program_is_listed_once_under_its_feature() {
        let all = programs();
        for (feature, table) in [
            ("attribution", HTTP),
            ("lineage", LINEAGE),
            ("allocation", ALLOC),
        ] {
            for probe in table {
                let listed: Vec<&Program> =
                    all.iter().filter(|p| p.name == probe.program).collect();
                assert_eq!(
                    listed.len(),
                    1,
                    "{} listed {} times",
                    probe.program,
                    listed.len()
                );
                assert_eq!(listed[0].feature, feature, "{}", probe.program);
            }
        }
        assert!(all.iter().any(|p| p.name == CPU_SAMPLE));
        assert!(CLIENT.iter().all(|c| all
            .iter()
            .any(|p| p.name == c.program && p.feature == CLIENT_FEATURE)));
    }

    #[test]
    fn programs_differ_in_the_bytes_of_their_name_the_kernel_keeps() {
        let all = programs();
        let kept: std::collections::BTreeSet<&str> = all
            .iter()
            .map(|p| p.name.get(..KERNEL_NAME_LEN).unwrap_or(&p.name))
            .collect();
        assert_eq!(kept.len(), all.len(), "{all:?}");
    }

    #[test]
    fn a_difference_of_readings_is_what_ran_between_them() {
        let reading = |runs, ms| {
            let count = Count {
                runs,
                time: Duration::from_millis(ms),
            };
            Counters(BTreeMap::from([(HTTP[0].program.to_owned(), count)]))
        };
        let between = reading(30, 9) - reading(10, 4);
        assert_eq!(between.0[HTTP[0].program].runs, 20);
        assert_eq!(between.0[HTTP[0].program].time, Duration::from_millis(5));
        assert_eq!(between.feature("attribution", 10), (2.0, 500.0));
    }
}
