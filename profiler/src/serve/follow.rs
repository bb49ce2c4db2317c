//! Following one attached process: attach (reusing a binary already read), feed its
//! records to the daemon's state (and capture files), detach when it exits or the
//! daemon stops; and the sink that feeds a client's records (client-side probes) to the
//! daemon's state.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tracing::{error, info};

use super::state::{lock, Live};
use crate::{
    analyze::clients::Clients,
    attach::{attach_to, clients::ClientSink, processes::age, Probes, Tracking},
    capture::{CaptureError, Record, Rotating, Rotation},
    events::drain::{drain, Consumer, StopReason},
    target::{Binaries, Target},
};

/// Attaches to process `pid` and feeds its records to `live` (and the capture) until it
/// exits or `stop` fires; detaches on return.
pub async fn follow(
    pid: u32,
    live: Arc<Mutex<Live>>,
    tracking: Tracking,
    capture: Option<Rotation>,
    clients: Clients,
    binaries: Arc<Mutex<Binaries>>,
    stop: oneshot::Receiver<()>,
) {
    let started = std::time::Instant::now();
    let attached = attach_to(pid, "process", move || {
        let target =
            Target::open_cached(pid, &mut binaries.lock().unwrap_or_else(|e| e.into_inner()))?;
        let probes = Probes::attach(&target, tracking)?;
        Ok((target, probes))
    });
    let Some((target, probes)) = attached.await else {
        lock(&live).health.attach_errors += 1;
        return;
    };
    let header = probes.header(&target);
    let latency = age(pid).unwrap_or_default();
    let name = {
        let mut live = lock(&live);
        let name = live.attached(&header);
        live.health
            .attach_latency_seconds
            .insert(name.to_string(), latency.as_secs_f64());
        name
    };
    info!(pid, target = %name, attach_ms = started.elapsed().as_millis() as u64, since_start_ms = latency.as_millis() as u64, probes = probes.functions.len(), "attached");
    let capture = capture.and_then(
        |rotation| match Rotating::create(rotation, header.clone()) {
            Ok(capture) => Some(capture),
            Err(error) => {
                error!(%error, "cannot write captures; going on without");
                lock(&live).health.capture_errors += 1;
                None
            }
        },
    );
    let mut consumer = LiveConsumer {
        live: live.clone(),
        pid,
        capture,
        clients,
    };
    let stopped = async {
        let _ = stop.await;
        StopReason::Signal
    };
    match drain(probes, &target, &mut consumer, stopped).await {
        Ok((end, links)) => {
            // Off this thread: other processes' events keep flowing meanwhile.
            let _ = tokio::task::spawn_blocking(move || drop(links)).await;
            info!(pid, target = %name, reason = end.reason, dropped = end.dropped_events, "detached");
        }
        Err(error) => error!(pid, target = %name, %error, "following stopped; detached"),
    }
    lock(&live).detached(pid);
}

/// Feeds one process's records to the daemon's state and, when asked, to capture files,
/// naming each request's client Pod on the way.
struct LiveConsumer {
    live: Arc<Mutex<Live>>,
    pid: u32,
    capture: Option<Rotating>,
    clients: Clients,
}

impl LiveConsumer {
    /// Runs `write` on the capture; a failing capture is closed, never the analysis.
    fn capture(&mut self, write: impl FnOnce(&mut Rotating) -> Result<(), CaptureError>) {
        if let Some(capture) = &mut self.capture {
            if let Err(error) = write(capture) {
                error!(%error, "writing the capture failed; captures stop, metrics and reports go on");
                lock(&self.live).health.capture_errors += 1;
                self.capture = None;
            }
        }
    }
}

impl Consumer for LiveConsumer {
    fn consume(&mut self, mut record: Record) -> Result<(), CaptureError> {
        if let Record::HttpRequest(request) = &mut record {
            let identity = self.clients.identify(&request.remote_addr);
            request.client_pod = identity.pod;
            request.client_owner = identity.owner;
        }
        if self.capture.is_some() {
            let copy = record.clone();
            self.capture(|c| c.consume(copy));
        }
        lock(&self.live).record(self.pid, record);
        Ok(())
    }

    fn tick(&mut self, dropped_events: u64) -> Result<(), CaptureError> {
        lock(&self.live).dropped(self.pid, dropped_events);
        self.capture(|c| c.tick(dropped_events));
        Ok(())
    }
}

/// A client's records (client-side probes), for the daemon's state.
pub struct LiveClient(pub Arc<Mutex<Live>>);

impl ClientSink for LiveClient {
    fn record(&mut self, record: Record) {
        lock(&self.0).client(record);
    }

    fn refused(&mut self) {
        lock(&self.0).health.attach_errors += 1;
    }
}
