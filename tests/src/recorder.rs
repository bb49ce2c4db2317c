//! `apiprof record` and `apiprof report` run as an operator would run them.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::apiprof_bin;

/// A running `apiprof record`; killed on drop if not stopped.
pub struct Recording {
    child: Option<Child>,
    /// The capture file it writes.
    pub output: PathBuf,
}

impl Recording {
    /// Starts recording process `pid` into `output` and waits until the probes are
    /// attached (apiprof prints its "recording ..." line then).
    pub fn start(pid: u32, output: &Path) -> Self {
        Self::start_with_args(pid, output, &[])
    }

    /// [`Recording::start`] with more `apiprof record` flags (e.g. `--no-alloc`).
    pub fn start_with_args(pid: u32, output: &Path, args: &[&str]) -> Self {
        Self::start_command(Command::new(apiprof_bin()), pid, output, args)
    }

    /// [`Recording::start_with_args`] of a prepared apiprof command (in a sandbox).
    pub fn start_command(mut command: Command, pid: u32, output: &Path, args: &[&str]) -> Self {
        let mut child = command
            .args([
                "record",
                "--pid",
                &pid.to_string(),
                "--duration",
                "10m",
                "--output",
            ])
            .arg(output)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting apiprof record");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading apiprof's first line");
        if !line.starts_with("recording ") {
            let status = child.wait().expect("waiting for apiprof");
            panic!("apiprof record did not start recording ({status}); it printed {line:?}, see its stderr above");
        }
        Self {
            child: Some(child),
            output: output.to_owned(),
        }
    }

    /// apiprof's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops recording with SIGINT, as Ctrl-C would, and waits for apiprof to finish the
    /// capture; panics unless it exits 0.
    pub fn stop(mut self) -> PathBuf {
        let mut child = self.child.take().expect("not yet stopped");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let status = child.wait().expect("waiting for apiprof record");
        assert!(status.success(), "apiprof record exited with {status}");
        self.output.clone()
    }
}

impl Recording {
    /// Waits for apiprof to end the capture by itself (the observed process exited);
    /// panics unless it exits 0.
    pub fn finish(mut self) -> PathBuf {
        let mut child = self.child.take().expect("not yet stopped");
        let status = child.wait().expect("waiting for apiprof record");
        assert!(status.success(), "apiprof record exited with {status}");
        self.output.clone()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `apiprof report SOURCE --format FORMAT [ARGS]`'s output; panics unless it exits 0.
/// SOURCE is a capture file or a daemon's URL.
pub fn report(source: impl AsRef<std::ffi::OsStr>, format: &str, args: &[&str]) -> String {
    let out = Command::new(apiprof_bin())
        .arg("report")
        .arg(source)
        .args(["--format", format])
        .args(args)
        .output()
        .expect("running apiprof report");
    assert!(
        out.status.success(),
        "apiprof report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 report")
}

/// `apiprof report --format json --by BY`, parsed; panics if the kernel dropped events
/// (the exact figures tests compare cannot hold then, and the cause is not apiprof's
/// attribution).
pub fn report_json(capture: &Path, by: &[&str]) -> serde_json::Value {
    let by = by.join(",");
    let report: serde_json::Value = serde_json::from_str(&report(capture, "json", &["--by", &by]))
        .expect("apiprof report printed invalid JSON");
    assert_eq!(
        report["dropped_events"],
        0,
        "the kernel dropped events while recording {}: a loaded machine?",
        capture.display()
    );
    report
}

/// The row of `report` (grouped by user agent, among other dimensions) whose user agent
/// is `user_agent`; panics, showing the report, when it has none.
pub fn row<'r>(report: &'r serde_json::Value, user_agent: &str) -> &'r serde_json::Value {
    find_row(report, |r| r["user_agent"] == user_agent)
        .unwrap_or_else(|| panic!("no row for {user_agent:?} in {report:#}"))
}

/// The background row of `report`; panics, showing the report, when it has none.
pub fn background_row(report: &serde_json::Value) -> &serde_json::Value {
    find_row(report, |r| r["background"] == true)
        .unwrap_or_else(|| panic!("no background row in {report:#}"))
}

fn find_row(
    report: &serde_json::Value,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> Option<&serde_json::Value> {
    report["requests"]
        .as_array()
        .expect("a report has rows")
        .iter()
        .find(|r| matches(r))
}

/// The `http_request` records of a capture file, in the order they were written.
pub fn captured_requests(capture: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(capture)
        .unwrap_or_else(|e| panic!("reading {}: {e}", capture.display()));
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|record| record["type"] == "http_request")
        .collect()
}

/// Checks that every request in `capture` came from a loopback client: its `remote_addr`
/// is `127.0.0.1:PORT` with PORT in the kernel's ephemeral range
/// (`ip_local_port_range`, where connecting sockets get their port) and not the port of
/// `server_url`. Returns the client ports seen, by user agent.
pub fn client_ports(capture: &Path, server_url: &str) -> BTreeMap<String, BTreeSet<u16>> {
    let server_port: u16 = server_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {server_url}"));
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("reading ip_local_port_range");
    let range: Vec<u16> = range
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect();
    let mut ports: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for request in captured_requests(capture) {
        let addr = request["remote_addr"].as_str().unwrap_or_default();
        let port = addr
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("remote_addr {addr:?} is not 127.0.0.1:PORT: {request}"));
        assert!(
            (range[0]..=range[1]).contains(&port) && port != server_port,
            "remote_addr {addr:?} is no client port (ephemeral range {range:?}, server port {server_port}): {request}"
        );
        let user_agent = request["user_agent"].as_str().unwrap_or_default();
        ports.entry(user_agent.to_owned()).or_default().insert(port);
    }
    ports
}
