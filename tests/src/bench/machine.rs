//! Where and when the bench ran, from /proc; and the files in `bench/` a full run writes
//! (`results.md`; `soak.md` for `--soak`).

use std::path::PathBuf;

/// `date: …; machine: Linux …, CPU model, N cores, M GiB`.
pub fn describe() -> String {
    let date = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC");
    let kernel = read("/proc/sys/kernel/osrelease");
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "date: {date}; machine: Linux {}, {model}, {cores} cores, {:.0} GiB",
        kernel.trim(),
        memory_kib as f64 / (1 << 20) as f64
    )
}

/// Writes `text` under a title to `bench/NAME` in the repository; `command` is what
/// writes it again.
pub fn write_results(name: &str, command: &str, text: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(name);
    let document = format!(
        "# `{command}` results\n\nWritten by the bench itself (tests/src/bench/); run `{command}` to measure again.\n{text}"
    );
    std::fs::write(&path, document).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("bench: wrote {}", path.display());
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}
