//! The reference controllers — refctl (tests/reference-controller, kube-rs) and the Go
//! fixture `controller-go1.27` (tests/fixtures/controller, client-go) — run against the
//! apiserver fixture as a separate process, their ledger read back, and apiprof's report
//! of the same run compared with it — what `cargo xtask validate` and
//! tests/reference_controller.rs do.

use std::{collections::BTreeMap, fmt, path::Path, process::Command, time::Duration};

use serde_json::Value;

use crate::{
    apiserver::ApiServer,
    findings::{self, Checks},
    fixtures_dir,
    load::{reported, Tally, BY_CLIENT},
    recorder::{report as report_text, report_json, Recording},
    refctl_bin,
    validation::{compare, Comparison},
};

/// The Go controller fixture's executable name.
pub const GO_CONTROLLER: &str = "controller-go1.27";

/// A reference controller binary: both write the same ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// refctl, the kube-rs controller.
    Refctl,
    /// The client-go controller fixture, `controller-go1.27`.
    Go,
    /// The same stripped (`-ldflags=-s -w`, as release builds of
    /// kube-controller-manager are): `controller-go1.27-stripped`.
    GoStripped,
}

impl Controller {
    /// The Go controller's executable name, which `apiprof --client` follows; `None`
    /// for refctl (not followed).
    pub fn go_binary(self) -> Option<&'static str> {
        match self {
            Self::Refctl => None,
            Self::Go => Some(GO_CONTROLLER),
            Self::GoStripped => Some("controller-go1.27-stripped"),
        }
    }

    /// The binary and the flags it gets before the scenario's: the Go controller waits
    /// 2 s before its first request, so a profiler attaching to it by name has time to.
    fn command(self) -> Command {
        match self {
            Self::Refctl => {
                let mut refctl = Command::new(refctl_bin());
                if std::env::var_os("REFCTL_LOG").is_none() {
                    refctl.env("REFCTL_LOG", "warn,kube_client::client::tls=error");
                }
                refctl
            }
            Self::Go | Self::GoStripped => {
                let binary = self.go_binary().expect("a Go controller");
                let mut go = Command::new(fixtures_dir().join(binary));
                go.arg("--delay=2s");
                // Its own namespace: validate runs both builds against one apiserver.
                if self == Self::GoStripped {
                    go.arg("--namespace=stripped");
                }
                go
            }
        }
    }
}

/// One controller invocation: the controller, the user agent it sends, its arguments in
/// each size.
pub struct Run {
    pub controller: Controller,
    pub user_agent: &'static str,
    full: &'static [&'static str],
    short: &'static [&'static str],
}

/// A scenario: one or more controller invocations (its variants), one after the other.
pub struct Scenario {
    pub name: &'static str,
    /// The incident it reproduces, which decides its finding checks: its name, or for
    /// the Go controller's the Rust counterpart's (`go-throttled` is `throttled`).
    pub kind: &'static str,
    pub runs: &'static [Run],
}

/// How long a scenario runs: `Full` for `cargo xtask validate` (each well under a
/// minute), `Short` (a few seconds) for the integration test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Full,
    Short,
}

/// A scenario's arguments in its full and short sizes (the same for both controllers).
type Args = (&'static [&'static str], &'static [&'static str]);

const RESYNC_UNSET: Args = (
    &[
        "resync-storm",
        "--objects=50",
        "--interval=3",
        "--ticks=3",
        "--rv=unset",
    ],
    &[
        "resync-storm",
        "--objects=10",
        "--interval=1",
        "--ticks=3",
        "--rv=unset",
    ],
);
const RESYNC_ZERO: Args = (
    &[
        "resync-storm",
        "--objects=50",
        "--interval=3",
        "--ticks=3",
        "--rv=0",
    ],
    &[
        "resync-storm",
        "--objects=10",
        "--interval=1",
        "--ticks=3",
        "--rv=0",
    ],
);
const THROTTLED: Args = (
    &["throttled", "--qps=20", "--burst=30", "--objects=100"],
    &["throttled", "--qps=20", "--burst=30", "--objects=30"],
);
const RESTART: Args = (
    &["restart-catchup", "--parents=100", "--children=100"],
    &["restart-catchup", "--parents=6", "--children=10"],
);
const RESTART_FIXED: Args = (
    &[
        "restart-catchup",
        "--parents=100",
        "--children=100",
        "--fixed",
    ],
    &["restart-catchup", "--parents=6", "--children=10", "--fixed"],
);

/// A run of `controller` sending as `user_agent`.
const fn of(controller: Controller, user_agent: &'static str, (full, short): Args) -> Run {
    Run {
        controller,
        user_agent,
        full,
        short,
    }
}

use Controller::{Go, GoStripped, Refctl};

/// Every scenario, in the order `cargo xtask validate` runs them.
pub const SCENARIOS: [Scenario; 9] = [
    Scenario {
        name: "resync-storm",
        kind: "resync-storm",
        runs: &[
            of(Refctl, "refctl-resync-storm/rv-unset", RESYNC_UNSET),
            of(Refctl, "refctl-resync-storm/rv-0", RESYNC_ZERO),
        ],
    },
    Scenario {
        name: "throttled",
        kind: "throttled",
        runs: &[of(Refctl, "refctl-throttled", THROTTLED)],
    },
    Scenario {
        name: "restart-catchup",
        kind: "restart-catchup",
        runs: &[
            of(Refctl, "refctl-restart-catchup", RESTART),
            of(Refctl, "refctl-restart-catchup/fixed", RESTART_FIXED),
        ],
    },
    Scenario {
        name: "watch-burst",
        kind: "watch-burst",
        runs: &[of(
            Refctl,
            "refctl-watch-burst",
            (
                &["watch-burst", "--objects=50", "--rounds=4"],
                &["watch-burst", "--objects=10", "--rounds=3"],
            ),
        )],
    },
    Scenario {
        name: "mixed",
        kind: "mixed",
        runs: &[
            of(
                Refctl,
                "refctl-mixed/h2",
                (&["mixed", "--http=h2"], &["mixed", "--http=h2"]),
            ),
            of(
                Refctl,
                "refctl-mixed/h1",
                (&["mixed", "--http=h1"], &["mixed", "--http=h1"]),
            ),
        ],
    },
    Scenario {
        name: "go-resync-storm",
        kind: "resync-storm",
        runs: &[
            of(Go, "gorefctl-resync-storm/rv-unset", RESYNC_UNSET),
            of(Go, "gorefctl-resync-storm/rv-0", RESYNC_ZERO),
        ],
    },
    Scenario {
        name: "go-throttled",
        kind: "throttled",
        runs: &[of(Go, "gorefctl-throttled", THROTTLED)],
    },
    Scenario {
        name: "go-restart-catchup",
        kind: "restart-catchup",
        runs: &[
            of(Go, "gorefctl-restart-catchup", RESTART),
            of(Go, "gorefctl-restart-catchup/fixed", RESTART_FIXED),
        ],
    },
    // The client probes in a binary without symbols: names from gopclntab, the rate
    // limiter's field from the machine code.
    Scenario {
        name: "go-stripped-throttled",
        kind: "throttled",
        runs: &[of(GoStripped, "gorefctl-throttled", THROTTLED)],
    },
];

impl Run {
    /// The value of `--NAME=VALUE` among the run's arguments in `size`.
    pub fn arg(&self, size: Size, name: &str) -> Option<&'static str> {
        let args = match size {
            Size::Full => self.full,
            Size::Short => self.short,
        };
        let prefix = format!("--{name}=");
        args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
    }
}

/// The scenario named `name`.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// A scenario's ledger lines, every run's in order.
pub struct Ledger {
    pub lines: Vec<Value>,
}

impl Ledger {
    /// The lines of `type`.
    pub fn of_type<'l>(&'l self, kind: &'l str) -> impl Iterator<Item = &'l Value> + 'l {
        self.lines.iter().filter(move |l| l["type"] == kind)
    }

    /// The lines of each run (controller invocation), split at their `scenario` lines.
    pub fn runs(&self) -> Vec<Vec<&Value>> {
        let mut runs: Vec<Vec<&Value>> = Vec::new();
        for line in &self.lines {
            if line["type"] == "scenario" {
                runs.push(Vec::new());
            }
            runs.last_mut()
                .expect("the ledger starts with a scenario line")
                .push(line);
        }
        runs
    }

    /// Requests sent, keyed by the report dimensions `by` (null values as "null", as
    /// in the JSON report: a write's rv_class).
    pub fn truth(&self, by: &[&str]) -> BTreeMap<Vec<String>, Tally> {
        let mut tallies: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
        for r in self.of_type("request") {
            let key = by
                .iter()
                .map(|field| match &r[*field] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let t = tallies.entry(key).or_default();
            t.count += 1;
            if let Some(status) = r["status"].as_u64() {
                *t.status.entry(status as u16).or_default() += 1;
            }
            t.bytes += r["bytes"].as_u64().expect("request bytes");
        }
        tallies
    }
}

impl fmt::Display for Ledger {
    /// What the controller did beside requests: the detectors' truth.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |kind| self.of_type(kind).count();
        let longest = self
            .of_type("throttle_wait")
            .filter_map(|w| w["wait_ms"].as_f64())
            .fold(0.0, f64::max);
        write!(
            f,
            "ledger: {} requests, {} resync ticks, {} reconciles ({} ok), {} throttle waits (longest {:.2} s), {} restarts",
            n("request"),
            n("resync_tick"),
            n("reconcile_end"),
            self.of_type("reconcile_end").filter(|e| e["outcome"] == "ok").count(),
            n("throttle_wait"),
            longest / 1e3,
            n("restart"),
        )
    }
}

/// Runs every invocation of `scenario` against `server`, ledgers in `dir`; panics if
/// a controller fails.
pub fn run(server: &ApiServer, scenario: &Scenario, size: Size, dir: &Path) -> Ledger {
    let mut lines = Vec::new();
    for (i, run) in scenario.runs.iter().enumerate() {
        let path = dir.join(format!("{}-{i}.ledger.jsonl", scenario.name));
        let args = match size {
            Size::Full => run.full,
            Size::Short => run.short,
        };
        let status = run
            .controller
            .command()
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .arg("--ledger")
            .arg(&path)
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("starting the {:?} controller: {e}", run.controller));
        assert!(
            status.success(),
            "the {:?} controller {args:?} exited with {status}",
            run.controller
        );
        let text = std::fs::read_to_string(&path).expect("reading the ledger");
        lines.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a ledger line is JSON")),
        );
    }
    Ledger { lines }
}

/// The dimensions that show each client's HTTP version on the wire.
pub const BY_HTTP_VERSION: [&str; 2] = ["user_agent", "http_version"];

/// A scenario run under `apiprof record`, and the comparisons of its report with the
/// ledger.
pub struct Outcome {
    pub ledger: Ledger,
    /// Keyed by [`BY_CLIENT`]: counts and bytes.
    pub comparison: Comparison,
    /// Keyed by [`BY_HTTP_VERSION`]: counts.
    pub http_versions: Comparison,
    /// `apiprof report --format json --by` [`BY_CLIENT`].
    pub report: Value,
    /// The report's findings against the ledger.
    pub findings: Checks,
    /// `apiprof report --format table` of the capture.
    pub table: String,
}

impl Outcome {
    /// Both comparisons and every finding check passed.
    pub fn passed(&self) -> bool {
        self.comparison.passed() && self.http_versions.passed() && self.findings.passed()
    }
}

/// Runs scenario `name` (short) under `apiprof record` against a fresh apiserver
/// fixture and asserts the report matches the ledger: precision and recall 1.0 per
/// client key and per HTTP version, bytes within tolerance, every finding check.
pub fn validated(name: &str) -> Outcome {
    let server = ApiServer::start(crate::APISERVER_BUILDS[0]);
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = self::scenario(name).expect("a scenario");
    let outcome = validate(&server, scenario, Size::Short, dir.path());
    let c = &outcome.comparison;
    assert_eq!((c.precision, c.recall), (1.0, 1.0), "{name}:\n{c}");
    assert!(c.passed(), "{name}: bytes outside tolerance:\n{c}");
    let h = &outcome.http_versions;
    assert_eq!((h.precision, h.recall), (1.0, 1.0), "{name}:\n{h}");
    eprint!("{name}: findings:\n{}", outcome.findings);
    assert!(
        outcome.findings.passed(),
        "{name}: findings:\n{}",
        outcome.findings
    );
    outcome
}

/// Records the apiserver fixture while `scenario` runs, then compares.
pub fn validate(server: &ApiServer, scenario: &Scenario, size: Size, dir: &Path) -> Outcome {
    let capture = dir.join(format!("{}.capture.jsonl", scenario.name));
    // The Go controller is followed with the client-side probes, as
    // kube-controller-manager would be.
    let clients: Vec<&str> = scenario
        .runs
        .iter()
        .filter_map(|r| r.controller.go_binary())
        .flat_map(|binary| ["--client", binary])
        .collect();
    let recording = Recording::start_with_args(server.pid(), &capture, &clients);
    let ledger = run(server, scenario, size, dir);
    // Let the server finish the WATCHes the controller closed as it exited.
    std::thread::sleep(Duration::from_secs(1));
    let capture = recording.stop();
    let report = report_json(&capture, &BY_CLIENT);
    let comparison = compare(
        &BY_CLIENT,
        &ledger.truth(&BY_CLIENT),
        &reported(&report, &BY_CLIENT),
    );
    let http_versions = compare(
        &BY_HTTP_VERSION,
        &ledger.truth(&BY_HTTP_VERSION),
        &reported(&report_json(&capture, &BY_HTTP_VERSION), &BY_HTTP_VERSION),
    );
    Outcome {
        findings: findings::check(scenario, size, &ledger, &report),
        ledger,
        comparison,
        http_versions,
        report,
        table: report_text(&capture, "table", &[]),
    }
}
