//! Requests as served: each start joined with its end, and classified as the API server
//! sees it.

use std::collections::HashMap;

use crate::{
    analyze::k8s::{Query, RequestInfo, RvClass, Selector},
    capture::Capture,
    events::decode::{HttpRequest, HttpResponse},
};

/// One request: what was asked, what it meant, and how it ended (if it did).
#[derive(Debug)]
pub struct Served<'a> {
    /// The start event.
    pub request: &'a HttpRequest,
    /// The end event; `None` while it was still being served when recording stopped.
    pub response: Option<&'a HttpResponse>,
    /// The apiserver's reading of the path.
    pub info: RequestInfo,
    /// resourceVersion semantics of reads.
    pub rv_class: Option<RvClass>,
    /// The `limit` parameter.
    pub limit: Option<u64>,
    /// Selectors present.
    pub selector: Selector,
    /// Heap allocated while serving it, on its goroutine and those it started.
    pub alloc: AllocCost,
    /// On-CPU samples taken while its goroutine, or one it started, was on CPU.
    pub cpu_samples: u64,
}

/// Sampled heap allocation, scaled to estimated bytes as pprof scales heap profiles.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AllocCost {
    /// Estimated bytes allocated.
    pub bytes: f64,
    /// Samples behind the estimate (its uncertainty is roughly 1/sqrt(samples)).
    pub samples: u64,
}

impl AllocCost {
    /// Adds one sample of `size` bytes taken at `rate` (`runtime.MemProfileRate`): it
    /// stands for `size / (1 - e^(-size/rate))` bytes, as in pprof's scaleHeapSample.
    pub fn add(&mut self, size: u64, rate: u64) {
        let size = size as f64;
        self.bytes += if rate > 1 {
            size / (1.0 - (-size / rate as f64).exp())
        } else {
            size
        };
        self.samples += 1;
    }
}

/// A capture's requests, and what happened outside any of them.
#[derive(Debug)]
pub struct Attribution<'a> {
    /// Every request, in capture order.
    pub served: Vec<Served<'a>>,
    /// Allocations made outside any request.
    pub background: AllocCost,
    /// On-CPU samples outside any request.
    pub background_cpu_samples: u64,
    /// The request (index into `served`) of each of the capture's allocation samples, in
    /// order; `None` outside any request.
    pub alloc_owners: Vec<Option<usize>>,
    /// The same for each on-CPU sample.
    pub cpu_owners: Vec<Option<usize>>,
}

impl Served<'_> {
    /// Time from the handler's start to its return.
    pub fn latency_ns(&self) -> Option<u64> {
        self.response
            .map(|r| r.ktime_ns.saturating_sub(self.request.ktime_ns))
    }

    /// Whether it is a long-running WATCH (reported by duration and events, not latency).
    pub fn is_watch(&self) -> bool {
        self.info.verb == "watch"
    }
}

/// Joins every request start in `capture` with its end, its allocations and its CPU
/// samples. An end pairs with the latest unpaired start of the same `*http.Request`
/// before it (addresses are reused only after a request is done); a sample goes to the
/// latest start of its request before it, even after the end (a goroutine the handler
/// started may outlive it).
pub fn attribute(capture: &Capture) -> Attribution<'_> {
    enum Step<'a> {
        Start(usize),
        End(&'a HttpResponse),
    }
    let mut steps: Vec<(u64, Step)> = capture
        .requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r.ktime_ns, Step::Start(i)))
        .chain(capture.responses.iter().map(|r| (r.ktime_ns, Step::End(r))))
        .collect();
    steps.sort_by_key(|(ktime, step)| (*ktime, matches!(step, Step::End(_))));
    let mut ends = vec![None; capture.requests.len()];
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (_, step) in steps {
        match step {
            Step::Start(i) => {
                open.insert(capture.requests[i].request, i);
            }
            Step::End(end) => {
                if let Some(i) = open.remove(&end.request) {
                    ends[i] = Some(end);
                }
            }
        }
    }
    let mut served: Vec<Served> = capture
        .requests
        .iter()
        .zip(ends)
        .map(|(request, response)| classify(request, response))
        .collect();
    let owners = Owners::new(&served);
    let alloc_owners: Vec<_> = capture
        .allocs
        .iter()
        .map(|a| owners.of(a.request, a.ktime_ns))
        .collect();
    let cpu_owners: Vec<_> = capture
        .cpu
        .iter()
        .map(|c| owners.of(c.request, c.ktime_ns))
        .collect();
    let rate = capture.header.mem_profile_rate;
    let mut background = AllocCost::default();
    for (a, owner) in capture.allocs.iter().zip(&alloc_owners) {
        match owner {
            Some(i) => served[*i].alloc.add(a.size, rate),
            None => background.add(a.size, rate),
        }
    }
    let mut background_cpu_samples = 0;
    for owner in &cpu_owners {
        match owner {
            Some(i) => served[*i].cpu_samples += 1,
            None => background_cpu_samples += 1,
        }
    }
    Attribution {
        served,
        background,
        background_cpu_samples,
        alloc_owners,
        cpu_owners,
    }
}

/// The starts of each `*http.Request` address, to find which served request a sample
/// taken for that address at some time belongs to.
struct Owners(HashMap<u64, Vec<(u64, usize)>>);

impl Owners {
    fn new(served: &[Served]) -> Self {
        let mut starts: HashMap<u64, Vec<(u64, usize)>> = HashMap::new();
        for (i, s) in served.iter().enumerate() {
            starts
                .entry(s.request.request)
                .or_default()
                .push((s.request.ktime_ns, i));
        }
        for list in starts.values_mut() {
            list.sort_unstable();
        }
        Self(starts)
    }

    /// The index of the latest start of `request` at or before `ktime_ns`; `None` for
    /// request 0 (outside any request) or one whose start was not recorded.
    fn of(&self, request: u64, ktime_ns: u64) -> Option<usize> {
        if request == 0 {
            return None;
        }
        let list = self.0.get(&request)?;
        let n = list.partition_point(|(start, _)| *start <= ktime_ns);
        n.checked_sub(1).map(|i| list[i].1)
    }
}

fn classify<'a>(request: &'a HttpRequest, response: Option<&'a HttpResponse>) -> Served<'a> {
    let query = Query::parse(&request.query);
    let info = RequestInfo::new(&request.method, &request.path, &query);
    Served {
        rv_class: if info.is_resource_request {
            RvClass::of(&info.verb, &query)
        } else {
            None
        },
        limit: query.non_empty("limit").and_then(|l| l.parse().ok()),
        selector: Selector::of(&query),
        alloc: AllocCost::default(),
        cpu_samples: 0,
        info,
        request,
        response,
    }
}
