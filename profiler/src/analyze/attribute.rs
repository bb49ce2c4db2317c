//! Attribution, one record at a time: each request start joined with its end, and each
//! heap or CPU sample with the request its goroutine worked for. A capture file and the
//! daemon's live stream go through this same code, in event order, so a file and a
//! daemon can never disagree.

use std::{collections::HashMap, sync::Arc};

use tracing::warn;

use super::{request::Request, stacks::StackId};
use crate::{
    capture::{Header, Record},
    events::decode::HttpResponse,
};

/// How long after its handler returned a request still owns the samples taken for it
/// (goroutines a handler starts may outlive it); later ones count as background.
pub const LINGER_NS: u64 = 30_000_000_000;

/// Requests followed at once at most (in flight, or ended less than [`LINGER_NS`] ago);
/// beyond it a request is counted but its end and samples are not joined.
const MAX_TRACKED: usize = 1_000_000;

/// Where attributed requests and samples go: a report's rows, the daemon's window.
pub trait Sink {
    /// Bounds a new request's dimensions before it is followed (the daemon keeps the
    /// top user agents by name and folds the rest into `other`); by default, nothing.
    fn admit(&mut self, _at_ns: u64, _dimensions: &mut [serde_json::Value]) {}
    /// Interns a symbolized stack, innermost frame first.
    fn stack(&mut self, frames: &[String]) -> StackId;
    /// `request` began serving at `at_ns`.
    fn start(&mut self, at_ns: u64, request: &Request);
    /// It ended at `at_ns`.
    fn end(&mut self, at_ns: u64, request: &Request, response: &HttpResponse);
    /// A heap or CPU sample taken at `at_ns` in `target` for `owner`, or outside any
    /// request.
    fn sample(&mut self, at_ns: u64, target: &str, owner: Option<&Request>, sample: Sample);
    /// A client-side record (a client's request, resync or workqueue add).
    fn client(&mut self, record: &Record);
}

/// What one sample stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Its cost.
    pub cost: Cost,
    /// The stack it was taken on.
    pub stack: StackId,
}

/// The cost a sample stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cost {
    /// A heap allocation sample: estimated bytes allocated.
    Alloc {
        /// Bytes it stands for, scaled as pprof scales heap profiles.
        bytes: f64,
    },
    /// An on-CPU sample: one sampling period.
    Cpu {
        /// CPU time it stands for.
        ns: u64,
    },
}

/// Estimated bytes one sampled allocation of `size` bytes stands for at `rate`
/// (`runtime.MemProfileRate`): `size / (1 - e^(-size/rate))`, as pprof's
/// scaleHeapSample.
pub fn scaled_alloc(size: u64, rate: u64) -> f64 {
    let size = size as f64;
    if rate > 1 {
        size / (1.0 - (-size / rate as f64).exp())
    } else {
        size
    }
}

/// A request followed: in flight, or ended and still owning late samples.
struct Tracked {
    request: Arc<Request>,
    ended_ns: Option<u64>,
}

/// Attribution state of one source: a capture file, or one attached process.
pub struct Attributor {
    target: Arc<str>,
    mem_profile_rate: u64,
    cpu_period_ns: u64,
    /// By `*http.Request` address: its latest start.
    tracked: HashMap<u64, Tracked>,
    /// The source's stack ids, interned in the sink.
    stacks: HashMap<u32, StackId>,
    last_prune_ns: u64,
    /// Requests counted but not followed because [`MAX_TRACKED`] were.
    pub untracked: u64,
}

impl Attributor {
    /// Attribution of the source `header` describes, its requests served by `target`.
    pub fn new(header: &Header, target: Arc<str>) -> Self {
        Self {
            target,
            mem_profile_rate: header.mem_profile_rate,
            cpu_period_ns: header.cpu_sample_period_ns,
            tracked: HashMap::new(),
            stacks: HashMap::new(),
            last_prune_ns: 0,
            untracked: 0,
        }
    }

    /// Takes the source's next record.
    pub fn record(&mut self, record: Record, sink: &mut impl Sink) {
        match record {
            Record::HttpRequest(http) => {
                let at = http.ktime_ns;
                self.prune(at);
                let mut request = Request::classify(http, self.target.clone());
                sink.admit(at, &mut request.dimensions);
                sink.start(at, &request);
                if self.tracked.len() >= MAX_TRACKED {
                    if self.untracked == 0 {
                        warn!(
                            MAX_TRACKED,
                            "too many requests in flight to follow; further ones are counted without their ends and samples"
                        );
                    }
                    self.untracked += 1;
                    return;
                }
                let address = request.http.request;
                self.tracked.insert(
                    address,
                    Tracked {
                        request: Arc::new(request),
                        ended_ns: None,
                    },
                );
            }
            Record::HttpResponse(response) => {
                if let Some(t) = self.tracked.get_mut(&response.request) {
                    if t.ended_ns.is_none() {
                        t.ended_ns = Some(response.ktime_ns);
                        sink.end(response.ktime_ns, &t.request, &response);
                    }
                }
            }
            Record::Stack(stack) => {
                let id = sink.stack(&stack.frames);
                self.stacks.insert(stack.id, id);
            }
            Record::Alloc(a) => {
                let cost = Cost::Alloc {
                    bytes: scaled_alloc(a.size, self.mem_profile_rate),
                };
                self.sample(a.ktime_ns, a.request, a.stack_id, cost, sink);
            }
            Record::Cpu(c) => {
                let cost = Cost::Cpu {
                    ns: self.cpu_period_ns,
                };
                self.sample(c.ktime_ns, c.request, c.stack_id, cost, sink);
            }
            Record::Client(_)
            | Record::ClientRequest(_)
            | Record::Resync(_)
            | Record::QueueAdd(_)
            | Record::QueueGet(_) => sink.client(&record),
            Record::Header(_) | Record::End(_) => {}
        }
    }

    /// Requests still being served.
    pub fn in_flight(&self) -> impl Iterator<Item = &Request> {
        self.tracked
            .values()
            .filter(|t| t.ended_ns.is_none())
            .map(|t| t.request.as_ref())
    }

    fn sample(&mut self, at: u64, request: u64, stack: u32, cost: Cost, sink: &mut impl Sink) {
        let owner = (request != 0)
            .then(|| self.tracked.get(&request))
            .flatten()
            .filter(|t| t.request.http.ktime_ns <= at)
            .map(|t| t.request.clone());
        let stack = match self.stacks.get(&stack) {
            Some(id) => *id,
            None => sink.stack(&[format!("[unknown stack {stack}]")]),
        };
        sink.sample(at, &self.target, owner.as_deref(), Sample { cost, stack });
    }

    /// Forgets requests that ended more than [`LINGER_NS`] before `now_ns`, once a second
    /// of event time.
    fn prune(&mut self, now_ns: u64) {
        if now_ns < self.last_prune_ns + 1_000_000_000 {
            return;
        }
        self.last_prune_ns = now_ns;
        self.tracked
            .retain(|_, t| t.ended_ns.is_none_or(|end| end + LINGER_NS >= now_ns));
    }
}
