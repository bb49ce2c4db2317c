//! The ground-truth ledger: one JSON object per line, written as things happen, so a
//! controller killed mid-run still leaves every line it wrote.
//!
//! Every line has `type` and `time` (seconds since the Unix epoch). Types: `scenario`
//! (start, with the user agent), `request` (one per request sent, written when its
//! response body ends or is dropped), `throttle_wait`, `resync_tick`,
//! `reconcile_start`, `reconcile_end` and `restart`.
//!
//! The Go reference controller (tests/fixtures/controller) writes the same lines, but
//! for `throttle_wait`: one per request through client-go's rate limiter, zero waits
//! included (client-go's own measurement, its `RateLimiterLatency` metric), with two
//! optional fields refctl does not write: `verb` (the HTTP method) and `url` (client-go's
//! URL template, the namespace and name as `{namespace}` and `{name}`). It also writes
//! `queue_depth` (`depth`: items waiting for a worker, each time its workqueue takes a
//! new one, from client-go's own depth metric) and `queue_wait` (`wait_ms`: how long an
//! item its workqueue handed to a worker had waited, its queue latency metric).

use std::{
    fs::File,
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// One request as the controller sent it, with what the apiserver makes of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// When it was handed to the connection.
    pub time: f64,
    pub method: String,
    pub path: String,
    /// The raw query, as sent (without the `?`).
    pub query: String,
    pub verb: &'static str,
    pub resource: String,
    pub rv_class: Option<&'static str>,
    pub user_agent: String,
    /// `HTTP/1.1` or `HTTP/2.0`: the response's, or when no response came, the only
    /// one the client offers (ALPN).
    pub http_version: &'static str,
    /// Null when no response came (a transport error, or the request was abandoned).
    pub status: Option<u16>,
    /// Response body bytes received.
    pub bytes: u64,
    /// Whether the response body was read to its end (false for a WATCH the controller
    /// closed, or a body abandoned half-way).
    pub finished: bool,
}

/// A ledger line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A scenario begins; every request it sends carries `user_agent`.
    Scenario {
        time: f64,
        scenario: String,
        user_agent: String,
    },
    Request(Request),
    /// The token bucket held a request back for `wait_ms` before sending it (`time`:
    /// when the wait began). The Go controller adds `verb` and `url`.
    ThrottleWait {
        time: f64,
        wait_ms: f64,
    },
    /// A periodic resync: every cached object is queued for reconcile, no API call.
    ResyncTick {
        time: f64,
        tick: u32,
        objects: usize,
    },
    ReconcileStart {
        time: f64,
        object: String,
    },
    /// `outcome`: `ok`, `error`, or `cancelled` (the controller stopped mid-reconcile).
    ReconcileEnd {
        time: f64,
        object: String,
        outcome: &'static str,
        duration_ms: f64,
    },
    /// The controller was stopped and a fresh one (new connections, empty caches)
    /// started.
    Restart {
        time: f64,
    },
    /// Another client begins updating `objects` of the controller's objects at once.
    WriteRound {
        time: f64,
        round: u32,
        objects: usize,
    },
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Where the ledger lines go; cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Ledger {
    file: Arc<Mutex<File>>,
}

impl Ledger {
    /// Creates (or truncates) the ledger file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Arc::new(Mutex::new(File::create(path)?)),
        })
    }

    /// Appends `record` as one line, in a single write so lines never interleave.
    pub fn write(&self, record: &Record) {
        let mut line = serde_json::to_vec(record).expect("ledger records serialize");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&line) {
            tracing::error!(error = %e, "writing the ledger");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_lines() {
        let dir = std::env::temp_dir().join(format!("refctl-ledger-{}", std::process::id()));
        let ledger = Ledger::create(&dir).expect("ledger");
        ledger.write(&Record::ThrottleWait {
            time: 1.5,
            wait_ms: 50.0,
        });
        ledger.write(&Record::ReconcileEnd {
            time: 2.0,
            object: "a".into(),
            outcome: "ok",
            duration_ms: 3.0,
        });
        let text = std::fs::read_to_string(&dir).expect("read");
        std::fs::remove_file(&dir).expect("remove");
        assert_eq!(
            text,
            "{\"type\":\"throttle_wait\",\"time\":1.5,\"wait_ms\":50.0}\n\
             {\"type\":\"reconcile_end\",\"time\":2.0,\"object\":\"a\",\"outcome\":\"ok\",\"duration_ms\":3.0}\n"
        );
    }
}
