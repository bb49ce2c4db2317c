//! Drains kernel events into a capture file until told to stop.

use std::{future::Future, time::Duration};

use tokio::io::{unix::AsyncFd, Interest};
use tracing::{debug, warn};

use crate::{
    capture::{CaptureError, End, Record, Writer},
    decode::{decode, Event},
    loader::Probes,
};

/// How often the ring buffer is drained even without a kernel wake-up (the kernel wakes
/// userspace only when much is waiting; see `RINGBUF_WAKEUP_BYTES`).
const DRAIN_INTERVAL: Duration = Duration::from_millis(100);

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

/// Writes every event of `probes` to `writer` until `stop` resolves or process `pid`
/// exits; drains what is left, writes the end record and returns it.
pub async fn record(
    probes: Probes,
    pid: u32,
    writer: &mut Writer,
    stop: impl Future<Output = StopReason>,
) -> Result<End, RecordError> {
    let Probes {
        events, dropped, ..
    } = probes;
    // SAFETY: the ring buffer owns its fd, which stays open and unchanged while the
    // AsyncFd owns the ring buffer.
    let mut events = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|e| RecordError::Poll {
            source: e.into_parts().1,
        })?;
    let mut undecodable = 0;
    let mut tick = tokio::time::interval(DRAIN_INTERVAL);
    tokio::pin!(stop);
    let reason = loop {
        tokio::select! {
            reason = &mut stop => break reason,
            guard = events.readable_mut() => {
                let mut guard = guard.map_err(|source| RecordError::Poll { source })?;
                undecodable += drain(guard.get_inner_mut(), writer)?;
                guard.clear_ready();
            }
            _ = tick.tick() => {
                undecodable += drain(events.get_mut(), writer)?;
                writer.flush()?;
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break StopReason::TargetExited;
                }
            }
        }
    };
    undecodable += drain(events.get_mut(), writer)?;
    let kernel_dropped: u64 = dropped
        .get(&0, 0)
        .map(|per_cpu| per_cpu.iter().sum())
        .unwrap_or(0);
    let end = End {
        dropped_events: kernel_dropped + undecodable,
        reason: reason.as_str().into(),
    };
    writer.write(&Record::End(end.clone()))?;
    writer.flush()?;
    debug!(?end, "recording ended");
    Ok(end)
}

/// Writes every waiting event; returns how many could not be decoded.
fn drain(
    events: &mut aya::maps::RingBuf<aya::maps::MapData>,
    writer: &mut Writer,
) -> Result<u64, CaptureError> {
    let mut undecodable = 0;
    while let Some(item) = events.next() {
        match decode(&item) {
            Ok(Event::HttpRequest(r)) => writer.write(&Record::HttpRequest(r))?,
            Ok(Event::HttpResponse(r)) => writer.write(&Record::HttpResponse(r))?,
            Err(error) => {
                undecodable += 1;
                warn!(%error, "dropping an event");
            }
        }
    }
    Ok(undecodable)
}
