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
