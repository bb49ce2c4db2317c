//! `apiprof record --pid PID --duration 10s --output FILE [--client NAME]`.

use std::{
    cell::RefCell,
    path::PathBuf,
    rc::Rc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::watch,
};
use tracing::error;

use super::TrackingArgs;
use crate::{
    attach::{
        clients::{self, ClientSink},
        Probes,
    },
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
    /// Also attach the client-side probes to every client-go program whose executable
    /// has this file name (repeatable; e.g. kube-controller-manager), now and as they
    /// start: their rate-limiter waits, informer resyncs and workqueue depth, each
    /// request joined to the one the server served.
    #[arg(long = "client", value_name = "NAME")]
    clients: Vec<String>,
    #[command(flatten)]
    tracking: TrackingArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::open(args.pid)?;
    let probes = Probes::attach(&target, args.tracking.tracking())?;
    let header = probes.header(&target);
    let writer = Shared(Rc::new(RefCell::new(Writer::create(&args.output, header)?)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let end = tokio::task::LocalSet::new().block_on(&runtime, async {
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
        let (stop_clients, clients_stop) = watch::channel(false);
        let clients = (!args.clients.is_empty()).then(|| {
            let writer = writer.clone();
            tokio::task::spawn_local(clients::follow(
                args.clients.clone(),
                move || writer.clone(),
                clients_stop,
            ))
        });
        // The clients' last records go in before the server's end.
        let stop = async {
            let reason = tokio::select! {
                _ = tokio::time::sleep(args.duration) => StopReason::Duration,
                _ = interrupt.recv() => StopReason::Signal,
                _ = terminate.recv() => StopReason::Signal,
            };
            let _ = stop_clients.send(true);
            if let Some(clients) = clients {
                let _ = clients.await;
            }
            reason
        };
        let mut progress = Progress::new(writer.clone(), args.duration);
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

/// The capture file, written by the server's drain and every client's.
#[derive(Clone)]
struct Shared(Rc<RefCell<Writer>>);

impl ClientSink for Shared {
    fn record(&mut self, record: Record) {
        if let Err(error) = self.0.borrow_mut().write(&record) {
            error!(%error, "writing a client's record");
        }
    }
}

/// The capture file, and a progress line on standard error while recording (drawn
/// only on a terminal): time gone and left, requests, events and drops so far.
struct Progress {
    writer: Shared,
    bar: ProgressBar,
    started: Instant,
    requests: u64,
    events: u64,
}

impl Progress {
    fn new(writer: Shared, duration: Duration) -> Self {
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

impl Consumer for Progress {
    fn consume(&mut self, record: Record) -> Result<(), CaptureError> {
        self.events += 1;
        self.requests += u64::from(matches!(record, Record::HttpRequest(_)));
        self.writer.0.borrow_mut().consume(record)
    }

    fn tick(&mut self, dropped_events: u64) -> Result<(), CaptureError> {
        self.bar
            .set_position(self.started.elapsed().as_millis() as u64);
        self.bar.set_message(format!(
            "{} requests, {} events, {dropped_events} dropped",
            self.requests, self.events
        ));
        self.writer.0.borrow_mut().tick(dropped_events)
    }
}
