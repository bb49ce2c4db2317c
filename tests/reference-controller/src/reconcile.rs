//! Reconcile bookkeeping shared by the controllers: every reconcile's start and end in
//! the ledger, the end written even when the controller drops the reconcile mid-way.

use std::time::Instant;

use kube::runtime::controller::Action;

use crate::ledger::{self, Ledger, Record};

/// A reconcile in progress; writes `reconcile_end` (outcome `cancelled` unless
/// [`Span::finish`] was called) when dropped.
pub struct Span {
    ledger: Ledger,
    object: String,
    started: Instant,
    outcome: &'static str,
}

impl Span {
    /// Writes `reconcile_start` for `object`.
    pub fn start(ledger: &Ledger, object: &str) -> Self {
        ledger.write(&Record::ReconcileStart {
            time: ledger::now(),
            object: object.to_owned(),
        });
        Self {
            ledger: ledger.clone(),
            object: object.to_owned(),
            started: Instant::now(),
            outcome: "cancelled",
        }
    }

    /// Ends the reconcile with the outcome of its last API call: done until the next
    /// change (the controllers here never requeue), or the call's error.
    pub fn finish<T>(mut self, result: kube::Result<T>) -> Result<Action, ReconcileError> {
        self.outcome = if result.is_ok() { "ok" } else { "error" };
        result
            .map(|_| Action::await_change())
            .map_err(|source| ReconcileError {
                object: self.object.clone(),
                source,
            })
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.ledger.write(&Record::ReconcileEnd {
            time: ledger::now(),
            object: std::mem::take(&mut self.object),
            outcome: self.outcome,
            duration_ms: self.started.elapsed().as_secs_f64() * 1e3,
        });
    }
}

/// The error every reconcile returns: the API call that failed.
#[derive(Debug, thiserror::Error)]
#[error("reconciling {object}: {source}")]
pub struct ReconcileError {
    pub object: String,
    #[source]
    pub source: kube::Error,
}
