//! `apiprof record --pid PID --duration 10s --output FILE`.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::signal::unix::{signal, SignalKind};

use super::TrackingArgs;
use crate::{
    attach::Probes,
    capture::{CaptureError, Record, Writer},
    events::drain::{drain, Consumer, StopReason},
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
        let mut progress = Progress::new(&mut writer, args.duration);
        let (end, _detached_on_drop) = drain(probes, &target, &mut progress, stop).await?;
        progress.bar.finish_and_clear();
        anyhow::Ok((end, progress.requests, progress.events))
    })?;
    let (end, requests, events) = end;
    eprintln!(
        "apiprof: recording stopped ({}); {requests} requests, {events} events, {} dropped; wrote {}",
        end.reason,
        end.dropped_events,
        args.output.display()
    );
    Ok(())
}

/// The capture file, and a progress line on standard error while recording (drawn
/// only on a terminal): time gone and left, requests, events and drops so far.
struct Progress<'w> {
    writer: &'w mut Writer,
    bar: ProgressBar,
    started: Instant,
    requests: u64,
    events: u64,
}

impl<'w> Progress<'w> {
    fn new(writer: &'w mut Writer, duration: Duration) -> Self {
        let bar = ProgressBar::new(duration.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "recording {bar:24} {elapsed} of {prefix}, {eta} left; {msg}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(humantime::format_duration(duration).to_string());
        Self {
            writer,
            bar,
            started: Instant::now(),
            requests: 0,
            events: 0,
        }
    }
}

impl Consumer for Progress<'_> {
    fn consume(&mut self, record: Record) -> Result<(), CaptureError> {
        self.events += 1;
        self.requests += u64::from(matches!(record, Record::HttpRequest(_)));
        self.writer.consume(record)
    }

    fn tick(&mut self, dropped_events: u64) -> Result<(), CaptureError> {
        self.bar
            .set_position(self.started.elapsed().as_millis() as u64);
        self.bar.set_message(format!(
            "{} requests, {} events, {dropped_events} dropped",
            self.requests, self.events
        ));
        self.writer.tick(dropped_events)
    }
}
