//! Following client-go programs (`--client NAME`) with the client-side probes: every
//! process whose executable has one of the names, now and as they start (a restarted
//! controller is attached again within [`SCAN_INTERVAL`] plus the time to read its
//! symbols), each drained into a consumer of its own until it exits or recording stops.

use std::collections::BTreeMap;

use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

use super::{
    processes::{Selector, SCAN_INTERVAL},
    Probes,
};
use crate::{
    capture::{CaptureError, Client, Record},
    events::drain::{drain, Consumer, StopReason},
    target::Target,
};

/// Where one client's records go; made per client process.
pub trait ClientSink: 'static {
    /// Takes one record of the client.
    fn record(&mut self, record: Record);
    /// The client could not be attached to.
    fn refused(&mut self) {}
}

/// Follows the clients named `names` until `stop` turns true, making each one's sink
/// with `sink`. Runs on a `LocalSet`.
pub async fn follow<S: ClientSink>(
    names: Vec<String>,
    sink: impl Fn() -> S,
    mut stop: watch::Receiver<bool>,
) {
    let selector = Selector {
        names,
        pids: Vec::new(),
    };
    let mut following: BTreeMap<u32, JoinHandle<()>> = BTreeMap::new();
    let mut scan = tokio::time::interval(SCAN_INTERVAL);
    loop {
        tokio::select! {
            _ = scan.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let found = selector.scan();
        // A process whose follower ended but which still runs is not tried again.
        following.retain(|pid, task| !task.is_finished() || found.contains(pid));
        for pid in found {
            following
                .entry(pid)
                .or_insert_with(|| tokio::task::spawn_local(client(pid, sink(), stop.clone())));
        }
    }
    for (_, task) in following {
        let _ = task.await;
    }
}

/// Attaches the client-side probes to process `pid` and hands its records to `sink`
/// (first a [`Record::Client`]) until it exits or `stop` turns true.
async fn client(pid: u32, mut sink: impl ClientSink, mut stop: watch::Receiver<bool>) {
    let attached = super::attach_to(pid, "client", move || {
        let target = Target::open(pid)?;
        let probes = Probes::attach_client(&target)?;
        Ok((target, probes))
    });
    let Some((target, probes)) = attached.await else {
        sink.refused();
        return;
    };
    info!(pid, exe = %target.exe.display(), probes = probes.functions.len(), "attached to a client");
    sink.record(Record::Client(Client {
        pid,
        binary: target.exe.clone(),
        go_version: target.binary.go_version().to_string(),
        probes: probes.functions.clone(),
    }));
    let mut consumer = Records(sink);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
        StopReason::Signal
    };
    match drain(probes, &target, &mut consumer, stopped).await {
        Ok((end, links)) => {
            let _ = tokio::task::spawn_blocking(move || drop(links)).await;
            info!(
                pid,
                reason = end.reason,
                dropped = end.dropped_events,
                "detached from a client"
            );
        }
        Err(error) => warn!(pid, %error, "following the client stopped; detached"),
    }
}

/// A client's records, without the end of its drain (the recording goes on).
struct Records<S>(S);

impl<S: ClientSink> Consumer for Records<S> {
    fn consume(&mut self, record: Record) -> Result<(), CaptureError> {
        if !matches!(record, Record::End(_)) {
            self.0.record(record);
        }
        Ok(())
    }

    fn tick(&mut self, _dropped_events: u64) -> Result<(), CaptureError> {
        Ok(())
    }
}
