//! `apiprof record --pid PID --duration 10s --output FILE`.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    attach::{Probes, Tracking},
    capture::{Header, Writer, FORMAT_VERSION},
    events::drain::{record, StopReason},
    target::Target,
};

/// Arguments of `apiprof record`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Process id of the Go server to observe.
    #[arg(long)]
    pid: u32,
    /// How long to record, e.g. `10s`, `2m`, `500ms`; SIGINT or SIGTERM stop earlier.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Capture file to write (replaced if it exists).
    #[arg(long, short)]
    output: PathBuf,
    /// Do not attribute heap allocations (saves a probe per allocation sample; with
    /// --no-cpu also the probes on every goroutine creation).
    #[arg(long)]
    no_alloc: bool,
    /// Do not sample on-CPU time.
    #[arg(long)]
    no_cpu: bool,
    /// On-CPU samples per second of CPU time, on every CPU (1 to 1000; 99 keeps clear of
    /// running in step with 100 Hz timers).
    #[arg(long, default_value_t = 99, value_parser = clap::value_parser!(u64).range(1..=1000))]
    cpu_hz: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::open(args.pid)?;
    let tracking = Tracking {
        allocs: !args.no_alloc,
        cpu_period_ns: (!args.no_cpu).then(|| 1_000_000_000 / args.cpu_hz),
    };
    let probes = Probes::attach(&target, tracking)?;
    let (mem_profile_rate, rate_source) = if args.no_alloc {
        (0, "not tracked")
    } else {
        target.mem_profile_rate()
    };
    let header = Header {
        format_version: FORMAT_VERSION,
        pid: target.pid,
        binary: target.exe.clone(),
        target: target.name(),
        go_version: target.binary.go_version().to_string(),
        symbols: probes.symbols,
        probes: probes.functions.clone(),
        mem_profile_rate,
        mem_profile_rate_source: rate_source.to_owned(),
        cpu_sample_period_ns: tracking.cpu_period_ns.unwrap_or(0),
        started_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let mut writer = Writer::create(&args.output, header)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let end = runtime.block_on(async {
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        // Attached and handlers installed: from here on every request is recorded.
        println!(
            "recording pid={} probes={} symbols={:?} output={}",
            target.pid,
            probes.functions.len(),
            probes.symbols,
            args.output.display()
        );
        let stop = async {
            tokio::select! {
                _ = tokio::time::sleep(args.duration) => StopReason::Duration,
                _ = interrupt.recv() => StopReason::Signal,
                _ = terminate.recv() => StopReason::Signal,
            }
        };
        anyhow::Ok(record(probes, target.pid, &target.binary, &mut writer, stop).await?)
    })?;
    eprintln!(
        "apiprof: recording stopped ({}); {} events dropped; wrote {}",
        end.reason,
        end.dropped_events,
        args.output.display()
    );
    Ok(())
}

/// Parses `500ms`, `10s`, `2m`, `1h` (a bare number means seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 500ms, 10s, 2m, 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10 parsecs")
            .unwrap_err()
            .contains("use ms, s, m or h"));
        assert!(parse_duration("soon").unwrap_err().contains("use e.g."));
    }
}
