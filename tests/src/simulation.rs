//! 72 simulated hours of API server traffic, fed in event-time order through the
//! daemon's own entry (`Live::record`, as a drained ring buffer feeds it), with the truth
//! of every pattern in it: 500 clients, among them a controller-runtime-style resync (10 h
//! ±10% per resync), a kube-controller-manager-style one (a period drawn once in 12–24 h),
//! a client throttled by a token bucket (qps 20, burst 30), a controller restarted twice
//! with a catch-up after each, and the rest background noise (a GET every 1–20 minutes).

use std::{path::PathBuf, sync::Arc};

use apiprof::{
    analyze::window::Settings,
    capture::{Header, Record, FORMAT_VERSION},
    events::decode::{HttpRequest, HttpResponse},
    serve::state::Live,
    target::symbols::SymbolSource,
};

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;

/// How long the simulation runs.
pub const DURATION: u64 = 72 * HOUR;

/// Clients in all.
pub const CLIENTS: usize = 500;

/// The controller-runtime-style resyncing client.
pub const CR: &str = "sim-cr-controller";
/// The kube-controller-manager-style one.
pub const KCM: &str = "sim-kcm-informer";
/// The throttled one.
pub const THROTTLED: &str = "sim-endpoint-controller";
/// The restarted one.
pub const RESTARTED: &str = "sim-restarted-controller";

/// The truth the simulation was built from.
#[derive(Debug, Default)]
pub struct Truth {
    /// Tick times (ns) of [`CR`] and [`KCM`].
    pub cr_ticks: Vec<u64>,
    /// The same for [`KCM`].
    pub kcm_ticks: Vec<u64>,
    /// Mean interval of each, counting the initial sync (ns).
    pub cr_period: f64,
    /// The same for [`KCM`].
    pub kcm_period: f64,
    /// [`THROTTLED`]'s bucket.
    pub qps: f64,
    /// Its burst.
    pub burst: u64,
    /// [`RESTARTED`]'s catch-ups: (start, duration), ns.
    pub catchups: Vec<(u64, u64)>,
    /// Requests sent in all.
    pub requests: usize,
}

/// One simulated request.
struct Sent {
    start: u64,
    latency: u64,
    client: u32,
    method: &'static str,
    query: &'static str,
}

/// A small deterministic generator (SplitMix64).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn name(client: u32) -> String {
    match client {
        0 => CR.into(),
        1 => KCM.into(),
        2 => THROTTLED.into(),
        3 => RESTARTED.into(),
        n => format!("sim-noise-{n}"),
    }
}

const SELECTOR: &str = "labelSelector=app%3Dweb";
const WATCH: &str = "watch=true&resourceVersion=1&labelSelector=app%3Dweb";

/// An informer's start: its LIST and WATCH, then a reconcile LIST per object, 2 ms apart.
fn sync(sent: &mut Vec<Sent>, client: u32, at: u64, objects: u64, with_watch: bool) {
    if with_watch {
        sent.push(Sent {
            start: at,
            latency: 3_000_000,
            client,
            method: "GET",
            query: "",
        });
        sent.push(Sent {
            start: at + 4_000_000,
            latency: 0,
            client,
            method: "GET",
            query: WATCH,
        });
    }
    for i in 0..objects {
        let start = at + 10_000_000 + i * 2_000_000;
        sent.push(Sent {
            start,
            latency: 1_500_000,
            client,
            method: "GET",
            query: SELECTOR,
        });
    }
}

/// Every request of the 72 hours, in no order, and the truth.
fn generate(seed: u64) -> (Vec<Sent>, Truth) {
    let mut random = Random(seed);
    let mut sent = Vec::new();
    let mut truth = Truth::default();
    // controller-runtime: 10 h, each resync jittered by ±10%.
    let t0 = HOUR / 2;
    sync(&mut sent, 0, t0, 300, true);
    let mut at = t0;
    loop {
        at += (10.0 * HOUR as f64 * (0.9 + 0.2 * random.unit())) as u64;
        if at > DURATION - HOUR {
            break;
        }
        truth.cr_ticks.push(at);
        sync(&mut sent, 0, at, 300, false);
    }
    truth.cr_period =
        (truth.cr_ticks[truth.cr_ticks.len() - 1] - t0) as f64 / truth.cr_ticks.len() as f64;
    // kube-controller-manager: one period in [12 h, 24 h), for good.
    let period = (12.0 * HOUR as f64 * (1.0 + random.unit())) as u64;
    let t1 = HOUR;
    sync(&mut sent, 1, t1, 200, true);
    let mut at = t1;
    while at + period < DURATION - HOUR {
        at += period;
        truth.kcm_ticks.push(at);
        sync(&mut sent, 1, at, 200, false);
    }
    truth.kcm_period = period as f64;
    // A token bucket (20/s, burst 30) given 3,000 writes at once, 20 hours in.
    truth.qps = 20.0;
    truth.burst = 30;
    let (mut tokens, mut now, mut last) = (30.0, 20.0 * 3600.0, 20.0 * 3600.0);
    for _ in 0..3000 {
        tokens = f64::min(tokens + (now - last) * truth.qps, 30.0);
        last = now;
        if tokens < 1.0 {
            now += (1.0 - tokens) / truth.qps;
            tokens = 1.0;
            last = now;
        }
        tokens -= 1.0;
        let start = (now * 1e9) as u64;
        sent.push(Sent {
            start,
            latency: 2_000_000,
            client: 2,
            method: "POST",
            query: "",
        });
    }
    // A controller restarted at 5 h and 40 h: its informers' LIST and WATCH, then 500
    // PATCHes on one worker, 30 ms each with 5 ms of work between.
    for restart in [5 * HOUR, 40 * HOUR] {
        sent.push(Sent {
            start: restart,
            latency: 3_000_000,
            client: 3,
            method: "GET",
            query: "",
        });
        sent.push(Sent {
            start: restart + 4_000_000,
            latency: 0,
            client: 3,
            method: "GET",
            query: WATCH,
        });
        let mut at = restart + 10_000_000;
        for _ in 0..500 {
            sent.push(Sent {
                start: at,
                latency: 30_000_000,
                client: 3,
                method: "PATCH",
                query: "",
            });
            at += 35_000_000;
        }
        truth.catchups.push((restart, at - 35_000_000 - restart));
    }
    // Noise: every other client GETs one object every 1–20 minutes.
    for client in 4..CLIENTS as u32 {
        let mut at = (random.unit() * 20.0 * 60.0 * SECOND as f64) as u64;
        while at < DURATION {
            sent.push(Sent {
                start: at,
                latency: 1_000_000,
                client,
                method: "GET",
                query: "",
            });
            at += ((60.0 + random.unit() * 19.0 * 60.0) * SECOND as f64) as u64;
        }
    }
    truth.requests = sent.len();
    (sent, truth)
}

/// The simulation's capture header: the daemon attached to pid 1 at event time 0.
fn header() -> Header {
    Header {
        format_version: FORMAT_VERSION,
        pid: 1,
        binary: PathBuf::from("/usr/local/bin/kube-apiserver"),
        target: "kube-apiserver:6443".into(),
        go_version: "1.27.3".into(),
        symbols: SymbolSource::Gopclntab,
        probes: Vec::new(),
        started_unix_ms: 1_790_000_000_000,
        started_ktime_ns: 0,
        mem_profile_rate: 0,
        mem_profile_rate_source: "not tracked".into(),
        cpu_sample_period_ns: 0,
        cautions: Vec::new(),
    }
}

/// The simulated 72 hours, run through a daemon's state as its drained events would
/// be; returns the state at the end (its event time is [`DURATION`]) and the truth.
pub fn run(seed: u64) -> (Live, Truth) {
    let (sent, truth) = generate(seed);
    let names: Vec<Arc<str>> = (0..CLIENTS as u32).map(|c| Arc::from(name(c))).collect();
    // Event order: every start and end, by time (ends first on ties).
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(sent.len() * 2);
    for (i, s) in sent.iter().enumerate() {
        events.push((s.start, true, i as u32));
        events.push((s.start + s.latency, false, i as u32));
    }
    events.sort_unstable();
    let mut live = Live::new(
        Settings {
            bucket_ns: 10 * SECOND,
            retention_ns: HOUR,
            top_clients: 1000,
        },
        0,
    );
    live.attached(&header());
    for (at, is_start, i) in events {
        let s = &sent[i as usize];
        let address = 0xc000_0000 + u64::from(i) * 8;
        let record = if is_start {
            Record::HttpRequest(HttpRequest {
                ktime_ns: at,
                tid: 1,
                goroutine: address,
                goid: address,
                request: address,
                method: s.method.into(),
                path: "/api/v1/namespaces/default/configmaps".into(),
                query: s.query.into(),
                http_version: "HTTP/2.0".into(),
                user_agent: names[s.client as usize].to_string(),
                remote_addr: format!("10.0.{}.{}:40000", s.client / 256, s.client % 256),
                client_pod: None,
                client_owner: None,
                truncated: false,
                query_cut: false,
            })
        } else {
            Record::HttpResponse(HttpResponse {
                ktime_ns: at,
                goroutine: address,
                request: address,
                status: 200,
                response_bytes: 1000,
            })
        };
        live.record(1, record);
    }
    (live, truth)
}
