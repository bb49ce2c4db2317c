//! Which processes to observe: those whose executable's file name is one of the names
//! asked for, and the pids asked for. The daemon scans `/proc` every
//! [`SCAN_INTERVAL`]; an API server that starts (or restarts, or is upgraded) is
//! attached within that interval plus the time to read its symbols.

use std::{collections::BTreeSet, path::Path, time::Duration};

/// How often `/proc` is scanned for processes to attach to (a node has a few hundred
/// processes: a scan reads as many symlinks).
pub const SCAN_INTERVAL: Duration = Duration::from_millis(250);

/// What to observe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// Executable file names (`kube-apiserver`).
    pub names: Vec<String>,
    /// Process ids.
    pub pids: Vec<u32>,
}

impl Selector {
    /// The running processes it selects.
    pub fn scan(&self) -> BTreeSet<u32> {
        let mut found: BTreeSet<u32> = self
            .pids
            .iter()
            .copied()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        if self.names.is_empty() {
            return found;
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            if let Some(name) = exe_name(pid) {
                if self.names.contains(&name) {
                    found.insert(pid);
                }
            }
        }
        found
    }
}

/// How long process `pid` has been running (10 ms resolution: the kernel counts its
/// start in clock ticks since boot).
pub fn age(pid: u32) -> Option<Duration> {
    let ticks = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?
        .starttime;
    let hz = procfs::ticks_per_second().max(1);
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
    now.checked_sub(Duration::from_millis(ticks * 1000 / hz))
}

/// The file name of process `pid`'s executable; a binary replaced on disk while it runs
/// (an upgrade) still counts by its name.
pub fn exe_name(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    Some(name.strip_suffix(" (deleted)").unwrap_or(&name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_finds_this_test_by_pid_and_not_by_a_name_it_lacks() {
        let me = std::process::id();
        let by_pid = Selector {
            names: vec![],
            pids: vec![me, u32::MAX],
        };
        assert_eq!(by_pid.scan(), BTreeSet::from([me]));
        let by_name = Selector {
            names: vec!["no-such-apiserver".into()],
            pids: vec![],
        };
        assert!(by_name.scan().is_empty());
        assert!(exe_name(me).is_some());
        assert!(age(me).is_some_and(|a| a < Duration::from_secs(3600)));
    }
}
