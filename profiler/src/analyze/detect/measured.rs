//! Findings measured in the clients themselves, when client-side probes are on
//! (`--client`): what each client-go program's rate limiter held back and with what
//! settings, when each informer resynced and how many objects it re-queued, and how deep
//! its workqueues grew. A measured finding replaces the one the server side infers for
//! the same client; reports mark each finding's `evidence`.
//!
//! Each client request is joined to the server-side request it became: on one node both
//! ends share the event clock, so the server request with the same user agent and
//! request line that began first after the client sent it is the one (requests of one
//! client with one request line go out in order on their connection).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{resync::human, Burst, Clock, Finding, History, Tick};
use crate::{
    analyze::request::Request,
    capture::{ClientRequest, Record, ResyncTick},
    events::decode::Limiter,
};

/// Waits shorter than this are no holding back: client-go's own `Wait` on an available
/// token takes microseconds.
pub const WAITED_NS: u64 = 1_000_000;

/// Client processes followed at most.
const MAX_CLIENTS: usize = 1024;

/// Resync ticks remembered per informer.
const MAX_TICKS: usize = 256;

/// Informers followed per client.
const MAX_INFORMERS: usize = 256;

/// Workqueue adds and gets remembered per client (the depth they left, the waits).
const MAX_QUEUE: usize = 8192;

/// Requests waiting to be joined at most, per side; and for how long.
const MAX_UNJOINED: usize = 10_000;
const JOIN_WINDOW_NS: u64 = 10_000_000_000;

/// What the client-side probes measured in one client process.
#[derive(Debug, Default)]
struct ClientProcess {
    /// Requests by user agent (client-go programs may send several).
    user_agents: BTreeMap<String, Throttling>,
    /// Resync ticks by informer: its name and its FIFO (two informers of one type
    /// differ by their FIFO).
    informers: BTreeMap<(String, u64), VecDeque<(u64, u64)>>,
    /// Its workqueues' last adds and gets: (time, depth after, an item's wait at a get).
    queue: VecDeque<(u64, u64, Option<u64>)>,
}

impl ClientProcess {
    fn queued(&mut self, change: (u64, u64, Option<u64>)) {
        self.queue.push_back(change);
        if self.queue.len() > MAX_QUEUE {
            self.queue.pop_front();
        }
    }
}

/// One user agent's requests through client-go's rate limiter.
#[derive(Debug, Default)]
struct Throttling {
    /// Requests sent.
    requests: u64,
    /// Requests that passed a limiter.
    limited: u64,
    /// …of which waited at least [`WAITED_NS`].
    waited: u64,
    /// Their waits, nanoseconds: total and longest.
    wait_ns: u64,
    max_wait_ns: u64,
    /// When the first and last held-back request went.
    first_ns: u64,
    last_ns: u64,
    /// The limiter's settings, as last read.
    limiter: Option<Limiter>,
    /// Its requests joined to the server's.
    joined: u64,
}

/// The request line and user agent two ends of a request share.
type Line = (String, String, String, String);

/// Everything the client-side probes measured, bounded.
#[derive(Debug, Default)]
pub struct Measured {
    /// Whether a client was attached: only then are server requests kept for the join.
    on: bool,
    clients: HashMap<u32, ClientProcess>,
    /// Client requests not yet joined: by line, (time, pid).
    clients_unjoined: HashMap<Line, VecDeque<(u64, u32)>>,
    /// Server requests not yet joined (their client's record came later): by line, times.
    servers_unjoined: HashMap<Line, VecDeque<u64>>,
    /// Requests in the two maps above.
    unjoined: usize,
    /// When they were last pruned (event time).
    pruned_ns: u64,
}

impl Measured {
    /// Takes a client record.
    pub fn record(&mut self, record: &Record) {
        let pid = match record {
            // Written as a client is attached, before any request it sends.
            Record::Client(_) => {
                self.on = true;
                return;
            }
            Record::ClientRequest(r) => r.pid,
            Record::Resync(t) => t.pid,
            Record::QueueAdd(q) => q.pid,
            Record::QueueGet(q) => q.pid,
            _ => return,
        };
        if !self.clients.contains_key(&pid) && self.clients.len() >= MAX_CLIENTS {
            return;
        }
        let client = self.clients.entry(pid).or_default();
        match record {
            Record::ClientRequest(r) => {
                let joined = join_server(&mut self.servers_unjoined, r);
                self.unjoined -= usize::from(joined);
                let t = client.user_agents.entry(r.user_agent.clone()).or_default();
                t.requests += 1;
                t.joined += u64::from(joined);
                if let Some(throttle) = r.throttle {
                    t.limited += 1;
                    t.limiter = throttle.limiter.or(t.limiter);
                    t.wait_ns += throttle.wait_ns;
                    t.max_wait_ns = t.max_wait_ns.max(throttle.wait_ns);
                    if throttle.wait_ns >= WAITED_NS {
                        if t.waited == 0 {
                            t.first_ns = r.ktime_ns;
                        }
                        t.waited += 1;
                        t.last_ns = r.ktime_ns;
                    }
                }
                if !joined {
                    self.unjoined += 1;
                    self.clients_unjoined
                        .entry(line(&r.user_agent, &r.method, &r.path, &r.query))
                        .or_default()
                        .push_back((r.ktime_ns, pid));
                    self.prune(r.ktime_ns);
                }
            }
            Record::Resync(ResyncTick {
                ktime_ns,
                informer,
                fifo,
                objects,
                ..
            }) => {
                let key = (informer.clone(), *fifo);
                if !client.informers.contains_key(&key) && client.informers.len() >= MAX_INFORMERS {
                    return;
                }
                let ticks = client.informers.entry(key).or_default();
                ticks.push_back((*ktime_ns, *objects));
                if ticks.len() > MAX_TICKS {
                    ticks.pop_front();
                }
            }
            Record::QueueAdd(q) => client.queued((q.ktime_ns, q.depth, None)),
            Record::QueueGet(q) => client.queued((q.ktime_ns, q.depth, q.wait_ns)),
            _ => {}
        }
    }

    /// A server request began: joins it to the client request it was, if that was seen.
    pub fn server_request(&mut self, at_ns: u64, request: &Request) {
        if !self.on {
            return;
        }
        let h = &request.http;
        let key = line(&h.user_agent, &h.method, &h.path, &h.query);
        let sent = self.clients_unjoined.get_mut(&key).and_then(|q| {
            let i = q.iter().position(|(t, _)| *t <= at_ns)?;
            q.remove(i)
        });
        match sent {
            Some((_, pid)) => {
                self.unjoined -= 1;
                if let Some(t) = self
                    .clients
                    .get_mut(&pid)
                    .and_then(|c| c.user_agents.get_mut(&h.user_agent))
                {
                    t.joined += 1;
                }
            }
            None => {
                self.unjoined += 1;
                self.servers_unjoined
                    .entry(key)
                    .or_default()
                    .push_back(at_ns);
                self.prune(at_ns);
            }
        }
    }

    /// Forgets requests left unjoined past [`JOIN_WINDOW_NS`], once a second of event
    /// time, or all of them past [`MAX_UNJOINED`] per side (the join then starts
    /// afresh).
    fn prune(&mut self, now_ns: u64) {
        let full = self.unjoined > 2 * MAX_UNJOINED;
        if !full && now_ns < self.pruned_ns + 1_000_000_000 {
            return;
        }
        self.pruned_ns = now_ns;
        let old = |t: u64| t + JOIN_WINDOW_NS < now_ns;
        let mut left = 0;
        self.clients_unjoined.retain(|_, q| {
            q.retain(|(t, _)| !old(*t) && !full);
            left += q.len();
            !q.is_empty()
        });
        self.servers_unjoined.retain(|_, q| {
            q.retain(|t| !old(*t) && !full);
            left += q.len();
            !q.is_empty()
        });
        self.unjoined = left;
    }

    /// The measured findings, and the bursts of requests (user agent, start) measured
    /// resync ticks set off; `histories` are the server side's.
    pub fn findings(
        &self,
        clock: &Clock,
        histories: &HashMap<&str, &History>,
        now_ns: u64,
    ) -> (Vec<Finding>, Vec<(String, u64)>) {
        let mut triggered = Vec::new();
        let mut pids: Vec<&u32> = self.clients.keys().collect();
        pids.sort();
        let mut findings = Vec::new();
        for pid in pids {
            let client = &self.clients[pid];
            for (user_agent, t) in &client.user_agents {
                findings.extend(throttling(*pid, user_agent, t, clock));
            }
            // Resyncs and workqueues name no user agent: the client's busiest one.
            let Some((user_agent, _)) = client
                .user_agents
                .iter()
                .max_by_key(|(ua, t)| (t.requests, std::cmp::Reverse(*ua)))
            else {
                continue;
            };
            let history = histories.get(user_agent.as_str());
            let bursts: Vec<&Burst> = history.map_or(Vec::new(), |h| h.bursts(now_ns).collect());
            for ((informer, _), ticks) in &client.informers {
                let (finding, starts) = resync(*pid, user_agent, informer, ticks, &bursts, clock);
                findings.extend(finding);
                triggered.extend(starts.into_iter().map(|s| (user_agent.clone(), s)));
            }
        }
        (findings, triggered)
    }

    /// The deepest the workqueues of the client that sent as `user_agent` grew from
    /// `since_ns` to `until_ns`, and the longest an item they handed to a worker then
    /// had waited, nanoseconds.
    pub fn queue(
        &self,
        user_agent: &str,
        since_ns: u64,
        until_ns: u64,
    ) -> (Option<u64>, Option<u64>) {
        let changes = || {
            self.clients
                .values()
                .filter(|c| c.user_agents.contains_key(user_agent))
                .flat_map(|c| c.queue.iter())
                .filter(|(t, _, _)| (since_ns..=until_ns).contains(t))
        };
        (
            changes().map(|(_, depth, _)| *depth).max(),
            changes().filter_map(|(_, _, wait)| *wait).max(),
        )
    }
}

fn line(user_agent: &str, method: &str, path: &str, query: &str) -> Line {
    (
        user_agent.to_owned(),
        method.to_owned(),
        path.to_owned(),
        query.to_owned(),
    )
}

/// Joins client request `r` to a server request already seen (its record came first).
fn join_server(servers: &mut HashMap<Line, VecDeque<u64>>, r: &ClientRequest) -> bool {
    let key = line(&r.user_agent, &r.method, &r.path, &r.query);
    let Some(q) = servers.get_mut(&key) else {
        return false;
    };
    let Some(i) = q.iter().position(|t| *t >= r.ktime_ns) else {
        return false;
    };
    q.remove(i);
    if q.is_empty() {
        servers.remove(&key);
    }
    true
}

/// `client_throttling`, measured: the user agent's requests that client-go's limiter
/// held back.
fn throttling(pid: u32, user_agent: &str, t: &Throttling, clock: &Clock) -> Option<Finding> {
    if t.waited == 0 {
        return None;
    }
    Some(Finding {
        kind: super::throttling::KIND,
        evidence: MEASURED,
        user_agent: user_agent.to_owned(),
        pid: Some(pid),
        start_unix_s: clock.unix_s(t.first_ns),
        end_unix_s: clock.unix_s(t.last_ns),
        rate_per_s: t.limiter.map(|l| l.qps),
        burst: t.limiter.map(|l| l.burst),
        duration_s: Some((t.last_ns - t.first_ns) as f64 / 1e9),
        requests: Some(t.requests),
        throttle: Some(ThrottleWaits {
            limited_requests: t.limited,
            waited_requests: t.waited,
            wait_s: t.wait_ns as f64 / 1e9,
            mean_wait_ms: t.wait_ns as f64 / 1e6 / t.limited.max(1) as f64,
            max_wait_ms: t.max_wait_ns as f64 / 1e6,
            joined_requests: t.joined,
        }),
        ..Finding::default()
    })
}

/// What a client's rate limiter measured.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ThrottleWaits {
    /// Requests that passed the limiter.
    pub limited_requests: u64,
    /// …of which it held back (at least 1 ms).
    pub waited_requests: u64,
    /// Their waits, summed, seconds.
    pub wait_s: f64,
    /// Per request that passed it, milliseconds.
    pub mean_wait_ms: f64,
    /// The longest, milliseconds.
    pub max_wait_ms: f64,
    /// The client's requests joined to the server requests they became.
    pub joined_requests: u64,
}

/// `resync_tick`, measured: one informer's ticks, each with the objects it re-queued
/// and the burst of requests that followed (the first of the client's bursts to begin
/// within half a period of the tick), and those bursts' starts.
fn resync(
    pid: u32,
    user_agent: &str,
    informer: &str,
    ticks: &VecDeque<(u64, u64)>,
    bursts: &[&Burst],
    clock: &Clock,
) -> (Option<Finding>, Vec<u64>) {
    let (Some(&(first, _)), Some(&(last, _))) = (ticks.front(), ticks.back()) else {
        return (None, Vec::new());
    };
    let times: Vec<u64> = ticks.iter().map(|(at, _)| *at).collect();
    let period = super::resync::period(&times);
    let window = period.map_or(super::BURST_GAP_NS * 4, |(p, _)| p as u64 / 2);
    let mut starts = Vec::new();
    let measured: Vec<Tick> = ticks
        .iter()
        .map(|(at, objects)| {
            let burst = bursts
                .iter()
                .find(|b| b.start_ns >= *at && b.start_ns <= at + window);
            starts.extend(burst.map(|b| b.start_ns));
            let mut tick = burst.map_or_else(
                || Tick {
                    unix_s: clock.unix_s(*at),
                    ..Tick::default()
                },
                |b| Tick::of(b, clock),
            );
            tick.unix_s = clock.unix_s(*at);
            tick.objects = Some(*objects);
            tick
        })
        .collect();
    let finding = Finding {
        kind: super::resync::KIND,
        evidence: MEASURED,
        user_agent: user_agent.to_owned(),
        pid: Some(pid),
        informer: Some(informer.to_owned()),
        start_unix_s: clock.unix_s(first),
        end_unix_s: clock.unix_s(last),
        period_s: period.map(|(p, _)| p / 1e9),
        jitter_s: period.map(|(_, j)| j / 1e9),
        ticks: Some(measured),
        ..Finding::default()
    };
    (Some(finding), starts)
}

/// Findings measured in the client.
pub const MEASURED: &str = "measured";

/// "X (pid N) waited 4.2 s in client-go's rate limiter …".
pub fn throttling_sentence(f: &Finding) -> String {
    let w = f.throttle.clone().unwrap_or_default();
    format!(
        "{} (pid {}) was held back by client-go's rate limiter (qps {}, burst {}, read from its memory): {} of its {} requests waited, {} in all, {:.1} ms per request on average and up to {:.0} ms; {} of them reached the server as joined requests. Raise its QPS and burst (e.g. --kube-api-qps / --kube-api-burst).",
        f.who(),
        f.pid.unwrap_or_default(),
        f.rate_per_s.map_or("?".into(), |q| format!("{q:.0}")),
        f.burst.map_or("?".into(), |b| b.to_string()),
        w.waited_requests,
        f.requests.unwrap_or_default(),
        human(w.wait_s),
        w.mean_wait_ms,
        w.max_wait_ms,
        w.joined_requests,
    )
}

/// "X's informer RealFIFO *v1.ConfigMap resynced every 3.0 s …".
pub fn resync_sentence(f: &Finding) -> String {
    let ticks = f.ticks.as_deref().unwrap_or_default();
    let objects: u64 = ticks.iter().filter_map(|t| t.objects).sum();
    let requests: u64 = ticks.iter().map(|t| t.requests).sum();
    let n = ticks.len().max(1) as f64;
    format!(
        "{} (pid {}): its informer {} resynced {} times{}, re-queueing {:.0} objects each time; the reconciles that followed sent {:.0} requests per tick. Filter resync events in the controller (or lengthen its resync period).",
        f.who(),
        f.pid.unwrap_or_default(),
        f.informer.as_deref().unwrap_or("?"),
        ticks.len(),
        f.period_s
            .map_or(String::new(), |p| format!(" every {} ±{}", human(p), human(f.jitter_s.unwrap_or_default()))),
        objects as f64 / n,
        requests as f64 / n,
    )
}
