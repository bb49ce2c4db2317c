//! `apiprof record --pid PID --duration 10s --output FILE`.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use super::TrackingArgs;
use crate::{
    attach::Probes,
    capture::Writer,
    events::drain::{drain, StopReason},
    target::Target,
};

/// Arguments of `apiprof record`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Process id of the Go server to observe.
    #[arg(long)]
    pid: u32,
    /// How long to record, e.g. `10s`, `2m`, `500ms`; SIGINT or SIGTERM stop earlier.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Capture file to write (replaced if it exists).
    #[arg(long, short)]
    output: PathBuf,
    #[command(flatten)]
    tracking: TrackingArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::open(args.pid)?;
    let probes = Probes::attach(&target, args.tracking.tracking())?;
    let header = probes.header(&target);
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
        let (end, _detached_on_drop) =
            drain(probes, target.pid, &target.binary, &mut writer, stop).await?;
        anyhow::Ok(end)
    })?;
    eprintln!(
        "apiprof: recording stopped ({}); {} events dropped; wrote {}",
        end.reason,
        end.dropped_events,
        args.output.display()
    );
    Ok(())
}
