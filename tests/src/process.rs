//! What a process has used, read from `/proc`: CPU time and resident memory.

/// CPU time (user and kernel) process `pid` has used, seconds, to the nanosecond: the
/// sum of its threads' run time (`/proc/PID/task/*/schedstat`). `/proc/PID/stat` counts in
/// 10 ms ticks, too coarse for a few µs per request. Threads that exited are not counted
/// (Go servers keep theirs).
pub fn cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("reading /proc/PID/task");
    let ns: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// Resident memory of process `pid`, bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Process `pid` held to `millicores` of CPU, as a Kubernetes CPU limit holds a pod (a
/// CFS quota in a cgroup of the v1 `cpu` controller, or of cgroup v2); released on drop.
pub struct CpuLimit {
    group: std::path::PathBuf,
    root: std::path::PathBuf,
    pid: u32,
}

impl CpuLimit {
    /// Moves `pid` into a new cgroup allowed `millicores` per 100 ms period.
    pub fn new(pid: u32, millicores: u64) -> Self {
        let quota_us = millicores * 100;
        let v1 = std::path::Path::new("/sys/fs/cgroup/cpu");
        let (root, limit) = if v1.join("cpu.cfs_quota_us").exists() {
            (v1.to_path_buf(), ("cpu.cfs_quota_us", quota_us.to_string()))
        } else {
            let v2 = std::path::PathBuf::from("/sys/fs/cgroup");
            (v2, ("cpu.max", format!("{quota_us} 100000")))
        };
        let group = root.join(format!("apiprof-test-{pid}"));
        let write = |path: std::path::PathBuf, value: &str| {
            std::fs::write(&path, value)
                .unwrap_or_else(|e| panic!("writing {value} to {}: {e}", path.display()))
        };
        std::fs::create_dir_all(&group).expect("creating a cgroup");
        write(group.join(limit.0), &limit.1);
        write(group.join("cgroup.procs"), &pid.to_string());
        Self { group, root, pid }
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        let _ = std::fs::write(self.root.join("cgroup.procs"), self.pid.to_string());
        let _ = std::fs::remove_dir(&self.group);
    }
}
