//! Who observes the server during a run: nobody, `apiprof record`, or `apiprof daemon`
//! (running, or stopped with SIGSTOP, its ring buffer left to fill); and what they lost.

use std::path::Path;

use crate::{
    daemon::{samples, Daemon},
    recorder::Recording,
};

/// The observer of one run.
pub enum Observer {
    /// Not observed.
    None,
    /// `apiprof record --pid PID` into a capture file.
    Record(Recording),
    /// `apiprof daemon --pid PID`.
    Daemon(Daemon),
    /// `apiprof daemon --pid PID`, stopped (SIGSTOP) once attached: nothing drains its
    /// ring buffer, so its probes find it full and the kernel counts what they drop.
    Stopped(Daemon),
}

/// The daemon's event counters (`/metrics`), summed over targets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Events {
    /// Kernel events taken.
    pub taken: f64,
    /// Kernel events lost.
    pub dropped: f64,
}

impl Observer {
    /// `apiprof record --pid PID ARGS`, writing `DIR/capture.jsonl`; returns once attached.
    pub fn record(pid: u32, dir: &Path, args: &[&str]) -> Self {
        let capture = dir.join("capture.jsonl");
        Self::Record(Recording::start_with_args(pid, &capture, args))
    }

    /// `apiprof daemon --pid PID ARGS`, with `KUBECONFIG` set to `kubeconfig` when given
    /// (so it watches that cluster's Pods to name clients); returns once attached.
    pub async fn daemon(pid: u32, args: &[&str], kubeconfig: Option<&Path>) -> Self {
        let pid_arg = pid.to_string();
        let mut all = vec!["--pid", pid_arg.as_str()];
        all.extend_from_slice(args);
        let env: Vec<(&str, &Path)> = kubeconfig.map(|k| ("KUBECONFIG", k)).into_iter().collect();
        let daemon = Daemon::start_with_env(&all, &env);
        daemon.wait_attached(pid).await;
        Self::Daemon(daemon)
    }

    /// [`Observer::daemon`], then stopped with SIGSTOP.
    pub async fn stopped_daemon(pid: u32) -> Self {
        let Self::Daemon(daemon) = Self::daemon(pid, &["--no-client-pods"], None).await else {
            unreachable!("a daemon")
        };
        signal(&daemon, libc::SIGSTOP);
        Self::Stopped(daemon)
    }

    /// The observer's process id, if there is one.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Observer::None => None,
            Observer::Record(recording) => Some(recording.pid()),
            Observer::Daemon(daemon) | Observer::Stopped(daemon) => Some(daemon.pid()),
        }
    }

    /// The running daemon's event counters now (`None` for the others: a stopped daemon
    /// does not answer).
    pub async fn events(&self) -> Option<Events> {
        let Observer::Daemon(daemon) = self else {
            return None;
        };
        Some(daemon_events(daemon).await)
    }

    /// Stops observing; returns the events lost over the whole observation (`None` when
    /// not observed).
    pub async fn stop(self) -> Option<u64> {
        match self {
            Observer::None => None,
            Observer::Record(recording) => Some(capture_dropped(&recording.stop())),
            Observer::Stopped(daemon) => {
                signal(&daemon, libc::SIGCONT);
                // It reads the kernel's drop counter as it drains the full buffer.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                Box::pin(Observer::Daemon(daemon).stop()).await
            }
            Observer::Daemon(daemon) => {
                let dropped = daemon_events(&daemon).await.dropped as u64;
                let status = daemon.terminate();
                assert!(status.success(), "apiprof daemon exited with {status}");
                Some(dropped)
            }
        }
    }
}

fn signal(daemon: &Daemon, signal: i32) {
    // SAFETY: kill(2) on the daemon, our child.
    unsafe { libc::kill(daemon.pid() as i32, signal) };
}

/// `apiprof_events_total` and `apiprof_dropped_events_total` of `daemon`, over targets.
pub async fn daemon_events(daemon: &Daemon) -> Events {
    let metrics = daemon.get("/metrics").await;
    let sum = |name| samples(&metrics, name).iter().map(|(_, v)| v).sum();
    Events {
        taken: sum("apiprof_events_total"),
        dropped: sum("apiprof_dropped_events_total"),
    }
}

/// The `dropped_events` of a capture's end record.
fn capture_dropped(capture: &Path) -> u64 {
    let text = std::fs::read_to_string(capture)
        .unwrap_or_else(|e| panic!("reading {}: {e}", capture.display()));
    let end: serde_json::Value = text
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("{} has no last record", capture.display()));
    assert_eq!(
        end["type"],
        "end",
        "{} has no end record",
        capture.display()
    );
    end["dropped_events"].as_u64().expect("dropped_events")
}
