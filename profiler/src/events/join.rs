//! Joins each kernel event to the request it belongs to. The kernel programs keep no
//! state: a request's end names only the goroutine that served it, and a sample only its
//! goroutine's id and its parent's (`g.parentGoid`). Here, in event order (the ring
//! buffer's one order across CPUs):
//! - a request's end is the end of the request its goroutine started last;
//! - a sample belongs to the request its goroutine serves, else to the request of the
//!   goroutine that started it (in flight, or ended less than [`LINGER_NS`] ago), which
//!   the goroutine then keeps, so that the goroutines it starts find it in turn;
//! - with deep lineage, each goroutine started inherits its creator's request.
//!
//! It also drops the events a uprobe reported twice: when a signal arrives while the
//! kernel single-steps a probed instruction, the instruction is restarted and the probe
//! runs again (Go's preemption signal, SIGURG, makes this common on busy goroutines). The
//! probes sit where the kernel emulates instead (a stack check's jump, a CALL), but an
//! entry probe on a function without a stack check is single-stepped. A repeat is
//! recognisable: the same goroutine reports the same request start, or the same
//! allocated object, twice in a row.

use std::collections::HashMap;

use crate::{analyze::attribute::LINGER_NS, events::decode::Event};

/// Goroutines remembered at most per map; past it, new lineage is not followed (their
/// samples count as background) until old entries expire.
const MAX_GOROUTINES: usize = 1_000_000;

/// What one process's goroutines work for.
#[derive(Debug, Default)]
pub struct Join {
    /// By goroutine (`runtime.g` address): the request it serves now, and its id.
    serving: HashMap<u64, (u64, u64)>,
    /// By goroutine id: the request it serves now.
    serving_goids: HashMap<u64, u64>,
    /// By goroutine id: the request it served last, and when that ended.
    served: HashMap<u64, (u64, u64)>,
    /// By goroutine id: the request it works for through its lineage, and when that was
    /// learnt.
    inherited: HashMap<u64, (u64, u64)>,
    /// The object address of each goroutine's last allocation sample.
    allocated: HashMap<u64, u64>,
    last_prune_ns: u64,
    /// Repeated events dropped so far.
    pub repeats: u64,
}

impl Join {
    /// `event` with its request filled in, or `None` when it is dropped: a repeat, a
    /// connection's end with no request in flight, or a goroutine's start (learnt here).
    pub fn join(&mut self, mut event: Event) -> Option<Event> {
        match &mut event {
            Event::HttpRequest(r) => {
                self.prune(r.ktime_ns);
                if self.serving.get(&r.goroutine).map(|s| s.0) == Some(r.request) {
                    self.repeats += 1;
                    return None;
                }
                // A request whose end was lost no longer owns this goroutine.
                if let Some((_, goid)) = self.serving.remove(&r.goroutine) {
                    self.serving_goids.remove(&goid);
                }
                // Past the bound (ends lost wholesale), starts are still reported; their
                // ends and samples are not joined.
                if self.serving.len() < MAX_GOROUTINES {
                    self.serving.insert(r.goroutine, (r.request, r.goid));
                    self.serving_goids.insert(r.goid, r.request);
                }
            }
            Event::HttpResponse(r) => {
                let (request, goid) = self.serving.remove(&r.goroutine)?;
                self.serving_goids.remove(&goid);
                if self.served.len() < MAX_GOROUTINES {
                    self.served.insert(goid, (request, r.ktime_ns));
                }
                r.request = request;
            }
            Event::Alloc(a) => {
                if self.allocated.insert(a.goroutine, a.address) == Some(a.address) {
                    self.repeats += 1;
                    return None;
                }
                a.request = self.request_of(a.lineage.goid, a.lineage.parent_goid, a.ktime_ns);
            }
            Event::Cpu(c) => {
                c.request = self.request_of(c.lineage.goid, c.lineage.parent_goid, c.ktime_ns);
            }
            Event::Goroutine(g) => {
                let request = self.request_of(g.creator_goid, 0, g.ktime_ns);
                if request != 0 {
                    self.inherit(g.child_goid, request, g.ktime_ns);
                }
                return None;
            }
            // A client's events: joined by [`crate::events::client`].
            Event::ClientRequest(_)
            | Event::Throttle(_)
            | Event::Resync(_)
            | Event::Resynced { .. }
            | Event::Queue(_) => {}
        }
        Some(event)
    }

    /// The request the goroutine `goid` (started by `parent`; 0: unknown) works for at
    /// `now`, or 0.
    fn request_of(&mut self, goid: u64, parent: u64, now: u64) -> u64 {
        if let Some(request) = self.serving_goids.get(&goid) {
            return *request;
        }
        if let Some((request, _)) = self.inherited.get(&goid) {
            return *request;
        }
        if parent == 0 {
            return 0;
        }
        let request = self
            .serving_goids
            .get(&parent)
            .copied()
            .or_else(|| self.inherited.get(&parent).map(|i| i.0))
            .or_else(|| self.served.get(&parent).map(|s| s.0));
        match request {
            Some(request) => {
                self.inherit(goid, request, now);
                request
            }
            None => 0,
        }
    }

    fn inherit(&mut self, goid: u64, request: u64, now: u64) {
        if self.inherited.len() < MAX_GOROUTINES {
            self.inherited.insert(goid, (request, now));
        }
    }

    /// Forgets lineage learnt, and requests ended, more than [`LINGER_NS`] before
    /// `now_ns`, once a second of event time.
    fn prune(&mut self, now_ns: u64) {
        if now_ns < self.last_prune_ns + 1_000_000_000 {
            return;
        }
        self.last_prune_ns = now_ns;
        let fresh = |(_, at): &mut (u64, u64)| *at + LINGER_NS >= now_ns;
        self.served.retain(|_, s| fresh(s));
        self.inherited.retain(|_, i| fresh(i));
        // A repeat follows its original at once.
        self.allocated.clear();
    }
}

#[cfg(test)]
mod tests;
