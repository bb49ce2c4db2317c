//! `cargo xtask bench`: what observing a server costs it, measured side by side in one
//! run (ratios, never timed assertions), and what the daemon itself costs.
//!
//! Sections, in order: the apiserver fixture not observed, recorded, followed by the
//! daemon and audit-logged ([`apiserver`]); each feature's cost and each program's hits
//! from the kernel's counters ([`features`]); the Go fixture with each tracking feature
//! added ([`goserver`]); what the client-side probes cost a client-go controller
//! ([`clients`]); the daemon's CPU, memory and drops up to the highest rate this
//! machine drives ([`daemon_cost`]); the daemon's pipeline over 72 simulated hours.
//! `--soak` runs the 30-minute soak instead ([`soak`]).
//!
//! Method (../shared/MEASURING.md): every run starts a fresh server, warms it up, and
//! reads CPU time from /proc (`process::cpu_seconds`) just before and after the measured load;
//! conditions are interleaved in a Latin square over the rounds; figures are medians with
//! min–max. A full run writes everything it printed to `bench/results.md`.

pub mod apiserver;
pub mod clients;
pub mod daemon_cost;
pub mod drive;
pub mod features;
pub mod goserver;
pub mod machine;
pub mod observe;
pub mod out;
pub mod probes;
pub mod run;
pub mod soak;

use std::{collections::BTreeMap, future::Future, time::Duration};

/// The sections a run can be limited to (`--section NAME`), in the order they run.
pub const SECTIONS: [&str; 6] = [
    "apiserver",
    "features",
    "goserver",
    "clients",
    "daemon",
    "simulation",
];

/// What to run, and how long.
#[derive(Debug)]
pub struct Settings {
    /// Rounds of interleaved conditions.
    pub rounds: usize,
    /// A tenth of the requests, one round, short daemon steps: for trying the bench out.
    pub quick: bool,
    /// Only the 30-minute soak.
    pub soak: bool,
    /// The sections to run (all of [`SECTIONS`] unless narrowed).
    pub sections: Vec<String>,
}

impl Settings {
    /// Parses `--quick`, `--soak` and `--section NAME` (repeatable).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut settings = Settings {
            rounds: 4,
            quick: false,
            soak: false,
            sections: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => settings.quick = true,
                "--soak" => settings.soak = true,
                "--section" => match args.next() {
                    Some(name) if SECTIONS.contains(&name.as_str()) => settings.sections.push(name),
                    other => {
                        return Err(format!(
                            "--section takes one of {SECTIONS:?}, got {other:?}"
                        ))
                    }
                },
                other => {
                    return Err(format!(
                    "unknown argument {other:?}; usage: bench [--quick] [--soak] [--section {}]…",
                    SECTIONS.join("|")
                ))
                }
            }
        }
        if settings.quick {
            settings.rounds = 1;
        }
        Ok(settings)
    }

    /// Whether section `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        !self.soak && (self.sections.is_empty() || self.sections.iter().any(|s| s == name))
    }

    /// Whether this is the full bench, whose output goes to `bench/results.md`.
    pub fn is_full(&self) -> bool {
        !self.quick && !self.soak && self.sections.is_empty()
    }

    /// `requests` of a full run, a tenth when quick.
    pub fn requests(&self, requests: usize) -> usize {
        if self.quick {
            requests.div_ceil(10)
        } else {
            requests
        }
    }

    /// `load` with its cycles scaled as [`Settings::requests`] scales requests.
    pub fn scale(&self, mut load: run::Load) -> run::Load {
        load.cycles = self.requests(load.cycles);
        load
    }

    /// `duration` of a full run, a fifth when quick.
    pub fn duration(&self, duration: Duration) -> Duration {
        if self.quick {
            duration / 5
        } else {
            duration
        }
    }
}

/// Runs every one of `conditions` `rounds` times, round r starting at condition r (a
/// Latin square: each condition runs as often in each place of a round); `run(i)`
/// measures condition `i` once. Returns the runs by condition name.
pub async fn interleaved<R, F: Future<Output = R>>(
    conditions: &[&'static str],
    rounds: usize,
    mut run: impl FnMut(usize) -> F,
) -> BTreeMap<&'static str, Vec<R>> {
    let mut runs: BTreeMap<&str, Vec<R>> = BTreeMap::new();
    for round in 0..rounds {
        for i in 0..conditions.len() {
            let condition = (i + round) % conditions.len();
            let result = run(condition).await;
            runs.entry(conditions[condition]).or_default().push(result);
        }
    }
    runs
}

/// How long the daemon's pipeline (attribution, window, detectors) takes over 72
/// simulated hours of a 500-client API server (tests/src/simulation.rs).
pub fn simulated_hours(out: &mut out::Out) {
    out.heading("The daemon's pipeline over 72 simulated hours");
    let started = std::time::Instant::now();
    let (live, truth) = crate::simulation::run(1);
    let seconds = started.elapsed().as_secs_f64();
    let findings = live.findings(crate::simulation::DURATION).len();
    out.paragraph(format!(
        "{} requests of 500 clients through the daemon's pipeline in {seconds:.1} s ({:.1} µs a request, release build), {findings} findings.",
        truth.requests,
        seconds / truth.requests as f64 * 1e6
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        Settings::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn no_arguments_run_every_section_but_the_soak_and_write_the_results() {
        let settings = parse(&[]).unwrap();
        assert!(SECTIONS.iter().all(|s| settings.runs(s)));
        assert!(settings.is_full() && !settings.soak && settings.rounds == 4);
    }

    #[test]
    fn sections_and_quick_make_a_partial_run() {
        let settings = parse(&["--quick", "--section", "daemon"]).unwrap();
        assert!(settings.runs("daemon") && !settings.runs("apiserver"));
        assert!(!settings.is_full());
        assert_eq!((settings.rounds, settings.requests(15_000)), (1, 1_500));
    }

    #[test]
    fn the_soak_runs_alone() {
        let settings = parse(&["--soak"]).unwrap();
        assert!(SECTIONS.iter().all(|s| !settings.runs(s)) && !settings.is_full());
    }

    #[test]
    fn unknown_arguments_and_sections_are_refused() {
        assert!(parse(&["--fast"]).is_err());
        assert!(parse(&["--section", "everything"]).is_err());
        assert!(parse(&["--section"]).is_err());
    }
}
