//! Drains one attached process's kernel events (a server's or a client's), as capture
//! records, into a [`Consumer`] (a capture file, the daemon's analysis) until told to
//! stop.

use std::{collections::HashMap, future::Future, time::Duration};

use aya::maps::{MapData, PerCpuArray};
use tokio::{
    io::{unix::AsyncFd, Interest},
    time::MissedTickBehavior,
};
use tracing::{debug, warn};

use crate::{
    attach::{Links, Probes},
    capture::{monotonic_ns, Alloc, CaptureError, Cpu, End, Record, Stack, Writer},
    events::client::ClientJoin,
    events::decode::{decode, Event},
    events::join::Join,
    events::mappings::Mappings,
    target::{symbols::GoBinary, Target},
};

/// How often the ring buffer is drained besides when the kernel wakes userspace (once per
/// `WAKEUP_EVERY` events of a CPU); reading the mapped ring buffer costs no system call.
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// Drains between two [`Consumer::tick`]s (100 ms).
const TICK_EVERY: u32 = 5;

/// Events taken from the ring buffer at most before the drain lets other work run: under
/// a flood (events arriving as fast as they are taken) an unbounded drain would starve
/// the daemon's API, its ticks (which read the drop counter) and its stop. About 50 ms
/// of work at the ~20,000 events/s a debug build takes under load.
const DRAIN_BATCH: usize = 1024;

/// Events taken at most once recording stops: more than a full ring buffer holds (every
/// record has at least its 8-byte ring-buffer header), so all that was there is taken,
/// and a flood still going on cannot keep the stop from finishing.
const FINAL_DRAIN: usize = profiler_common::event::RINGBUF_BYTES as usize / 8;

/// Why a recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The requested duration passed.
    Duration,
    /// SIGINT or SIGTERM.
    Signal,
    /// The observed process exited.
    TargetExited,
}

impl StopReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Duration => "duration",
            Self::Signal => "signal",
            Self::TargetExited => "target exited",
        }
    }
}

/// Recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Writing the capture failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Polling the ring buffer failed.
    #[error("waiting for kernel events: {source}")]
    Poll {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Where drained records go.
pub trait Consumer {
    /// Takes the next record.
    fn consume(&mut self, record: Record) -> Result<(), CaptureError>;
    /// Called every [`TICK_EVERY`] drains with the events lost so far (flush
    /// files, publish counters).
    fn tick(&mut self, dropped_events: u64) -> Result<(), CaptureError>;
}

impl Consumer for Writer {
    fn consume(&mut self, record: Record) -> Result<(), CaptureError> {
        self.write(&record)
    }

    fn tick(&mut self, _dropped_events: u64) -> Result<(), CaptureError> {
        self.flush()
    }
}

/// Hands every event of `probes` to `consumer` until `stop` resolves or `target`'s
/// process exits; drains what is left, hands over the end record and returns it, with
/// the links to drop to detach. Stacks are symbolized with the target's binary (its
/// load bias taken off) as they come, each handed over once before its first use.
pub async fn drain(
    probes: Probes,
    target: &Target,
    consumer: &mut impl Consumer,
    stop: impl Future<Output = StopReason>,
) -> Result<(End, Links), RecordError> {
    let pid = target.pid;
    let mut out = Output {
        consumer,
        stacks: Stacks {
            binary: &target.binary,
            load_bias: target.load_bias,
            mappings: Mappings::new(pid),
            ids: HashMap::new(),
        },
        join: Join::default(),
        client: ClientJoin::new(pid),
    };
    let Probes {
        events,
        dropped,
        links,
        ..
    } = probes;
    // SAFETY: the ring buffer owns its fd, which stays open and unchanged while the
    // AsyncFd owns the ring buffer.
    let mut events = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|e| RecordError::Poll {
            source: e.into_parts().1,
        })?;
    let mut undecodable = 0;
    let mut drains = tokio::time::interval(DRAIN_INTERVAL);
    drains.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut since_tick = 0;
    tokio::pin!(stop);
    let reason = loop {
        tokio::select! {
            reason = &mut stop => break reason,
            guard = events.readable_mut() => {
                let mut guard = guard.map_err(|source| RecordError::Poll { source })?;
                let (n, more) = drain_ready(guard.get_inner_mut(), &mut out, DRAIN_BATCH)?;
                undecodable += n;
                if more {
                    drop(guard);
                    tokio::task::yield_now().await;
                } else {
                    guard.clear_ready();
                }
            }
            _ = drains.tick() => {
                undecodable += drain_ready(events.get_mut(), &mut out, DRAIN_BATCH)?.0;
                since_tick += 1;
                if since_tick < TICK_EVERY {
                    continue;
                }
                since_tick = 0;
                if let Some(record) = out.client.settled(monotonic_ns()) {
                    out.consumer.consume(record)?;
                }
                out.consumer.tick(kernel_dropped(&dropped) + undecodable)?;
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break StopReason::TargetExited;
                }
            }
        }
    };
    undecodable += drain_ready(events.get_mut(), &mut out, FINAL_DRAIN)?.0;
    if let Some(record) = out.client.finish() {
        out.consumer.consume(record)?;
    }
    let end = End {
        dropped_events: kernel_dropped(&dropped) + undecodable,
        reason: reason.as_str().into(),
        unix_ms: Some(crate::capture::unix_ms()),
    };
    out.consumer.consume(Record::End(end.clone()))?;
    out.consumer.tick(end.dropped_events)?;
    debug!(?end, repeated_events = out.join.repeats, "recording ended");
    Ok((end, links))
}

/// Events the kernel could not hand over (ring buffer full, unreadable request).
fn kernel_dropped(dropped: &PerCpuArray<MapData, u64>) -> u64 {
    dropped
        .get(&0, 0)
        .map(|per_cpu| per_cpu.iter().sum())
        .unwrap_or(0)
}

/// Where drained events go, with the stacks handed over so far.
struct Output<'a, C> {
    consumer: &'a mut C,
    stacks: Stacks<'a>,
    join: Join,
    client: ClientJoin,
}

/// Distinct stacks followed at most; later new ones all share one overflow stack.
const MAX_STACKS: usize = 100_000;

/// Stacks already handed over, by their addresses.
struct Stacks<'a> {
    binary: &'a GoBinary,
    load_bias: u64,
    mappings: Mappings,
    ids: HashMap<Vec<u64>, u32>,
}

impl Stacks<'_> {
    /// The id of `stack`, handing its symbolized record over first if it is new.
    fn id(&mut self, stack: Vec<u64>, consumer: &mut impl Consumer) -> Result<u32, CaptureError> {
        // Past the bound, every new stack is the empty one (no frames).
        let stack = if self.ids.len() >= MAX_STACKS && !self.ids.contains_key(&stack) {
            Vec::new()
        } else {
            stack
        };
        if let Some(id) = self.ids.get(&stack) {
            return Ok(*id);
        }
        let id = self.ids.len() as u32;
        let frames = stack
            .iter()
            .map(
                |pc| match self.binary.function_at(pc.wrapping_sub(self.load_bias)) {
                    Some(f) => f.name.clone(),
                    None => match self.mappings.name(*pc) {
                        Some(name) => name.to_owned(),
                        None => format!("{pc:#x}"),
                    },
                },
            )
            .collect();
        consumer.consume(Record::Stack(Stack { id, frames }))?;
        self.ids.insert(stack, id);
        Ok(id)
    }
}

/// Takes up to `limit` events; returns how many could not be decoded, and whether the
/// limit stopped it (more may be waiting).
fn drain_ready(
    events: &mut aya::maps::RingBuf<MapData>,
    out: &mut Output<impl Consumer>,
    limit: usize,
) -> Result<(u64, bool), CaptureError> {
    let mut undecodable = 0;
    for _ in 0..limit {
        let Some(item) = events.next() else {
            return Ok((undecodable, false));
        };
        let event = match decode(&item) {
            Ok(event) => match out.join.join(event) {
                Some(event) => Ok(event),
                None => continue,
            },
            Err(error) => Err(error),
        };
        let record = match event {
            Ok(Event::HttpRequest(r)) => Record::HttpRequest(r),
            Ok(Event::HttpResponse(r)) => Record::HttpResponse(r),
            Ok(Event::Alloc(a)) => {
                let stack_id = out.stacks.id(a.stack, out.consumer)?;
                Record::Alloc(Alloc {
                    ktime_ns: a.ktime_ns,
                    goroutine: a.goroutine,
                    request: a.request,
                    size: a.size,
                    stack_id,
                })
            }
            Ok(Event::Cpu(c)) => {
                let stack_id = out.stacks.id(c.stack, out.consumer)?;
                Record::Cpu(Cpu {
                    ktime_ns: c.ktime_ns,
                    goroutine: c.goroutine,
                    request: c.request,
                    kernel: c.kernel,
                    stack_id,
                })
            }
            Ok(Event::Goroutine(_)) => continue,
            Ok(
                event @ (Event::ClientRequest(_)
                | Event::Throttle(_)
                | Event::Resync(_)
                | Event::Resynced { .. }
                | Event::Queue(_)),
            ) => match out.client.join(event) {
                Some(record) => record,
                None => continue,
            },
            Err(error) => {
                undecodable += 1;
                warn!(%error, "dropping an event");
                continue;
            }
        };
        out.consumer.consume(record)?;
    }
    Ok((undecodable, true))
}
