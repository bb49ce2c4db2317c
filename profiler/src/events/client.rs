//! Joins a client's kernel events into capture records, in event order:
//! - a rate-limiter wait is its goroutine's start and end of `tryThrottleWithInfo`, and
//!   belongs to the next request that goroutine sends (client-go sends it right after,
//!   on the same goroutine);
//! - a resync tick counts the objects its informers hand to their handlers as resyncs
//!   from when it fired until the next tick of the process. Informers of one process
//!   that resync at the same instant (one factory, one period) are counted together,
//!   under the last to fire. A tick is handed over once no resync was seen for
//!   [`RESYNC_SETTLE_NS`], or at the next tick or the end;
//! - an item a workqueue hands to a worker waited since the queue took it (the same
//!   item, by its first bytes and length, in the same queue).

use std::collections::HashMap;

use crate::{
    capture::{ClientRequest, QueueAdd, QueueGet, Record, ResyncTick, Throttled},
    events::decode::{Event, Limiter},
};

/// Quiet time after which a resync tick's count is final: a resync hands every object
/// over at once (microseconds apart, or a few milliseconds for large caches).
pub const RESYNC_SETTLE_NS: u64 = 1_000_000_000;

/// Goroutines with a wait in progress or unclaimed, at most; past it the oldest are
/// forgotten (their requests then show no wait).
const MAX_WAITING: usize = 100_000;

/// One client process's joins.
#[derive(Debug)]
pub struct ClientJoin {
    pid: u32,
    /// By goroutine: a wait begun (its start and limiter).
    waiting: HashMap<u64, (u64, Option<Limiter>)>,
    /// By goroutine: a wait over, for the next request.
    waited: HashMap<u64, Throttled>,
    /// The tick being counted, and when it last grew.
    tick: Option<(ResyncTick, u64)>,
    /// By queue and item: when the queue took it.
    queued: HashMap<(u64, (Vec<u8>, u64)), u64>,
}

impl ClientJoin {
    /// No state yet, for the client `pid`.
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            waiting: HashMap::new(),
            waited: HashMap::new(),
            tick: None,
            queued: HashMap::new(),
        }
    }

    /// The record `event` completes, if any (none for a server event).
    pub fn join(&mut self, event: Event) -> Option<Record> {
        match event {
            Event::Throttle(t) if t.start => {
                bound(&mut self.waiting);
                self.waiting.insert(t.goroutine, (t.ktime_ns, t.limiter));
                None
            }
            Event::Throttle(t) => {
                if let Some((start, limiter)) = self.waiting.remove(&t.goroutine) {
                    bound(&mut self.waited);
                    self.waited.insert(
                        t.goroutine,
                        Throttled {
                            wait_ns: t.ktime_ns.saturating_sub(start),
                            limiter,
                        },
                    );
                }
                None
            }
            Event::ClientRequest(r) => Some(Record::ClientRequest(ClientRequest {
                pid: self.pid,
                ktime_ns: r.ktime_ns,
                throttle: self.waited.remove(&r.goroutine),
                method: r.method,
                path: r.path,
                query: r.query,
                user_agent: r.user_agent,
                truncated: r.truncated,
            })),
            Event::Resync(r) => {
                let done = self.finish();
                self.tick = Some((
                    ResyncTick {
                        pid: self.pid,
                        ktime_ns: r.ktime_ns,
                        informer: r.informer,
                        fifo: r.fifo,
                        objects: 0,
                    },
                    r.ktime_ns,
                ));
                done
            }
            Event::Resynced { ktime_ns } => {
                if let Some((tick, last)) = &mut self.tick {
                    tick.objects += 1;
                    *last = ktime_ns;
                }
                None
            }
            Event::Queue(q) if q.added => {
                bound(&mut self.queued);
                self.queued.insert((q.queue, q.item), q.ktime_ns);
                Some(Record::QueueAdd(QueueAdd {
                    pid: self.pid,
                    ktime_ns: q.ktime_ns,
                    queue: q.queue,
                    depth: q.depth,
                }))
            }
            Event::Queue(q) => {
                let added = self.queued.remove(&(q.queue, q.item));
                Some(Record::QueueGet(QueueGet {
                    pid: self.pid,
                    ktime_ns: q.ktime_ns,
                    queue: q.queue,
                    depth: q.depth,
                    wait_ns: added.map(|t| q.ktime_ns.saturating_sub(t)),
                }))
            }
            Event::HttpRequest(_)
            | Event::HttpResponse(_)
            | Event::Alloc(_)
            | Event::Cpu(_)
            | Event::Goroutine(_) => None,
        }
    }

    /// The tick being counted, if it has settled by `now_ns`.
    pub fn settled(&mut self, now_ns: u64) -> Option<Record> {
        match &self.tick {
            Some((_, last)) if now_ns >= last + RESYNC_SETTLE_NS => self.finish(),
            _ => None,
        }
    }

    /// The tick being counted, as it stands (the recording ends).
    pub fn finish(&mut self) -> Option<Record> {
        self.tick.take().map(|(tick, _)| Record::Resync(tick))
    }
}

/// Makes room for one more entry, forgetting an arbitrary one when full.
fn bound<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.len() >= MAX_WAITING {
        if let Some(k) = map.keys().next().cloned() {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decode::{HttpRequest, QueueChange, Resync, Throttle};

    fn request(goroutine: u64, ktime_ns: u64) -> Event {
        Event::ClientRequest(HttpRequest {
            ktime_ns,
            tid: 1,
            goroutine,
            goid: 5,
            request: 0,
            method: "GET".into(),
            path: "/api/v1/namespaces/default/configmaps/a".into(),
            query: String::new(),
            http_version: "HTTP/1.1".into(),
            user_agent: "gorefctl-throttled".into(),
            remote_addr: String::new(),
            client_pod: None,
            client_owner: None,
            truncated: false,
            query_cut: false,
        })
    }

    fn throttle(goroutine: u64, ktime_ns: u64, start: bool) -> Event {
        Event::Throttle(Throttle {
            ktime_ns,
            goroutine,
            limiter: start.then_some(Limiter {
                qps: 20.0,
                burst: 30,
            }),
            start,
        })
    }

    #[test]
    fn a_wait_belongs_to_the_next_request_of_its_goroutine() {
        let mut join = ClientJoin::new(9);
        assert!(join.join(throttle(1, 100, true)).is_none());
        assert!(join.join(throttle(2, 120, true)).is_none());
        assert!(join.join(throttle(1, 50_100, false)).is_none());
        // Goroutine 2 sends nothing yet; goroutine 3 never waited.
        let records = [request(3, 50_200), request(1, 50_300)]
            .into_iter()
            .flat_map(|e| join.join(e))
            .collect::<Vec<_>>();
        let waits: Vec<_> = records
            .iter()
            .map(|r| match r {
                Record::ClientRequest(c) => (c.pid, c.throttle.map(|t| t.wait_ns)),
                _ => panic!("{r:?}"),
            })
            .collect();
        assert_eq!(waits, [(9, None), (9, Some(50_000))]);
        let Record::ClientRequest(c) = &records[1] else {
            unreachable!()
        };
        assert_eq!(
            c.throttle.and_then(|t| t.limiter),
            Some(Limiter {
                qps: 20.0,
                burst: 30
            })
        );
    }

    #[test]
    fn an_item_waited_from_its_add_to_its_get_in_its_queue() {
        let mut join = ClientJoin::new(9);
        let change = |ktime_ns, queue, added, item: &str| {
            Event::Queue(QueueChange {
                ktime_ns,
                queue,
                added,
                depth: 1,
                item: (item.as_bytes().to_vec(), item.len() as u64),
            })
        };
        join.join(change(100, 1, true, "a"));
        join.join(change(150, 2, true, "a"));
        let waits: Vec<Option<u64>> = [change(400, 1, false, "a"), change(500, 1, false, "b")]
            .into_iter()
            .flat_map(|e| join.join(e))
            .map(|r| match r {
                Record::QueueGet(g) => g.wait_ns,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, [Some(300), None]);
    }

    #[test]
    fn a_resync_counts_the_objects_handed_over_until_it_settles() {
        let mut join = ClientJoin::new(9);
        let resync = |ktime_ns| {
            Event::Resync(Resync {
                ktime_ns,
                fifo: 0xf1f0,
                informer: "RealFIFO *v1.ConfigMap".into(),
            })
        };
        assert!(join.join(resync(1_000)).is_none());
        for t in 0..3 {
            assert!(join
                .join(Event::Resynced {
                    ktime_ns: 2_000 + t
                })
                .is_none());
        }
        assert!(join.settled(2_002 + RESYNC_SETTLE_NS - 1).is_none());
        let settled = join.settled(2_002 + RESYNC_SETTLE_NS);
        assert_eq!(
            settled,
            Some(Record::Resync(ResyncTick {
                pid: 9,
                ktime_ns: 1_000,
                informer: "RealFIFO *v1.ConfigMap".into(),
                fifo: 0xf1f0,
                objects: 3
            }))
        );
        // The next tick hands the one before over at once.
        assert!(join.join(resync(5_000_000_000)).is_none());
        assert!(join.join(resync(8_000_000_000)).is_some());
        assert!(join.finish().is_some());
        assert!(join.finish().is_none());
    }
}
