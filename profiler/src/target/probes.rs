//! Which eBPF program goes on which Go function, and where in it.
//!
//! Each probe lists the Go functions it fits, as each Go HTTP server names them: net/http's
//! HTTP/1 server, its bundled HTTP/2 server (`http2` prefix), x/net's HTTP/2 server (what
//! kube-apiserver ≤ 1.36 built with Go ≤ 1.26 serves h2 with) and Go 1.27's own
//! (`net/http/internal/http2`). The program is attached to every one the binary has.

use profiler_common::client::queue_op;

/// Where in a function a program runs. Only where the kernel emulates the probed
/// instruction: a single-stepped probe costs ~20 µs a hit here, an emulated one ~1.3 µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The first instruction, or the jump of the stack check right after it:
    /// arguments are in registers.
    Entry,
    /// Every CALL of the named function: its arguments are in registers, and the kernel
    /// emulates the call instead of single-stepping it.
    CallTo(&'static str),
    /// Every CALL of any of the named functions (variants of one operation).
    CallToAny(&'static [&'static str]),
}

impl At {
    /// The functions whose CALLs it names; none for [`At::Entry`].
    pub fn callees(&self) -> &[&'static str] {
        match self {
            Self::Entry => &[],
            Self::CallTo(callee) => std::slice::from_ref(callee),
            Self::CallToAny(callees) => callees,
        }
    }
}

/// One probe: an eBPF program and the Go functions it attaches to.
#[derive(Debug)]
pub struct Probe {
    /// The eBPF program (a function in `profiler-ebpf`).
    pub program: &'static str,
    /// The Go functions, by their symbol names.
    pub functions: &'static [&'static str],
    /// Where in each function.
    pub at: At,
    /// Whether recording is refused when the binary has none of `functions`.
    pub required: bool,
    /// What it contributes to reports; apiprof warns when no probe providing it could be
    /// attached (probes for other Go versions' functions provide the same).
    pub provides: &'static str,
    /// The HTTP/2 server's `(*responseWriter).write`, whose code shows where the
    /// server keeps what a handler wrote: the program's cookie
    /// (`profiler_common::attach::WriterFields`).
    pub writer_fields_from: Option<&'static str>,
    /// What the program's cookie says besides, shifted left by 8 bits; at an
    /// [`At::CallToAny`] the low 8 bits are the callee's index in the list.
    pub cookie: u64,
}

const SERVE_HTTP: &str = "net/http.serverHandler.ServeHTTP";
const HIJACKED: &str = "net/http.(*conn).hijacked";
const RECOVER: &str = "runtime.gorecover";

/// The end of an HTTP/2 request whose handler returned, in one of the three servers: the
/// CALL of its `handlerDone` in its `runHandler`'s deferred function, and its `write`.
const fn http2_handler_returned(
    run_handler: &'static [&'static str],
    handler_done: &'static str,
    write: &'static str,
) -> Probe {
    Probe {
        program: "http2_handler_returned",
        functions: run_handler,
        at: At::CallTo(handler_done),
        provides: "HTTP/2 request ends",
        required: false,
        writer_fields_from: Some(write),
        cookie: 0,
    }
}

/// `runHandler`'s deferred function in each HTTP/2 server: net/http's bundled copy
/// (Go ≤ 1.26), golang.org/x/net's (kube-apiserver ≤ 1.36) and Go 1.27's internal one.
const BUNDLED_RUN_HANDLER: &str = "net/http.(*http2serverConn).runHandler.func1";
const XNET_RUN_HANDLER: &str = "golang.org/x/net/http2.(*serverConn).runHandler.func1";
const INTERNAL_RUN_HANDLER: &str = "net/http/internal/http2.(*serverConn).runHandler.func1";

/// Every probe apiprof attaches to a Go HTTP server: two emulated hits per request.
pub const HTTP: &[Probe] = &[
    Probe {
        program: "http_serve",
        functions: &[SERVE_HTTP],
        at: At::Entry,
        provides: "requests",
        required: true,
        writer_fields_from: None,
        cookie: 0,
    },
    Probe {
        program: "http1_handler_returned",
        functions: &["net/http.(*conn).serve"],
        at: At::CallTo(HIJACKED),
        provides: "HTTP/1 request ends",
        required: true,
        writer_fields_from: None,
        cookie: 0,
    },
    Probe {
        program: "http1_connection_ended",
        functions: &["net/http.(*conn).serve.func1"],
        at: At::CallTo(HIJACKED),
        provides: "ends of HTTP/1 requests whose handler panicked",
        required: false,
        writer_fields_from: None,
        cookie: 0,
    },
    http2_handler_returned(
        &[BUNDLED_RUN_HANDLER],
        "net/http.(*http2responseWriter).handlerDone",
        "net/http.(*http2responseWriter).write",
    ),
    http2_handler_returned(
        &[XNET_RUN_HANDLER],
        "golang.org/x/net/http2.(*responseWriter).handlerDone",
        "golang.org/x/net/http2.(*responseWriter).write",
    ),
    http2_handler_returned(
        &[INTERNAL_RUN_HANDLER],
        "net/http/internal/http2.(*responseWriter).handlerDone",
        "net/http/internal/http2.(*responseWriter).write",
    ),
    Probe {
        program: "http2_handler_panicked",
        functions: &[BUNDLED_RUN_HANDLER, XNET_RUN_HANDLER, INTERNAL_RUN_HANDLER],
        at: At::CallTo(RECOVER),
        provides: "ends of HTTP/2 requests whose handler panicked",
        required: false,
        writer_fields_from: None,
        cookie: 0,
    },
];

/// Goroutine lineage at any depth: a goroutine a handler starts works for its request,
/// and so do the ones it starts. Without it, lineage comes from `runtime.g.parentGoid`
/// (Go 1.21+) when a sample is taken, at no cost per goroutine; apiprof attaches it
/// for Go before 1.21, or when asked for deep lineage. Optional: without it on such a
/// Go (a `newproc` shaped otherwise than 1.19–1.27's), what such goroutines do counts
/// as background, and apiprof says so.
pub const LINEAGE: &[Probe] = &[Probe {
    program: "go_newproc",
    functions: &["runtime.newproc.func1"],
    at: At::CallTo("runtime.runqput"),
    provides: "goroutine lineage (work of goroutines a handler starts counts as background)",
    required: false,
    writer_fields_from: None,
    cookie: 0,
}];

/// The runtime's memory-profile samples, attributed to requests through their goroutines.
pub const ALLOC: &[Probe] = &[Probe {
    program: "go_alloc",
    functions: &["runtime.profilealloc"],
    at: At::Entry,
    provides: "allocation samples",
    required: true,
    writer_fields_from: None,
    cookie: 0,
}];

/// Where client-go holds a request back (`tryThrottle` calls it).
pub const TRY_THROTTLE: &str = "k8s.io/client-go/rest.(*Request).tryThrottleWithInfo";

/// The client-side probes, on a client-go program asked for with `--client`: each
/// request it sends, how long client-go's rate limiter held it back, its informers'
/// resyncs and its workqueues' depth and waits. Per request: three emulated hits (the
/// request, and the limiter's start and end), plus two per workqueue item (its add and
/// its get).
pub const CLIENT: &[Probe] = &[
    Probe {
        program: "client_request",
        functions: &["net/http.(*Transport).roundTrip"],
        at: At::Entry,
        provides: "client requests",
        required: true,
        writer_fields_from: None,
        cookie: 0,
    },
    Probe {
        program: "client_wait",
        functions: &[TRY_THROTTLE],
        at: At::Entry,
        provides: "client-side throttling waits",
        required: false,
        writer_fields_from: None,
        cookie: 0,
    },
    Probe {
        program: "client_waited",
        functions: &[TRY_THROTTLE],
        at: At::CallTo("time.Since"),
        provides: "client-side throttling waits",
        required: false,
        writer_fields_from: None,
        cookie: 0,
    },
    Probe {
        program: "client_resync",
        functions: &[
            "k8s.io/client-go/tools/cache.(*RealFIFO).Resync",
            "k8s.io/client-go/tools/cache.(*DeltaFIFO).Resync",
        ],
        at: At::Entry,
        provides: "informer resyncs",
        required: false,
        writer_fields_from: None,
        cookie: 0,
    },
    Probe {
        program: "client_resynced",
        functions: &["k8s.io/client-go/tools/cache.(*sharedIndexInformer).OnUpdate"],
        at: At::CallTo("k8s.io/client-go/tools/cache.(*sharedProcessor).distribute"),
        provides: "objects each informer resync re-queued",
        required: false,
        writer_fields_from: None,
        cookie: 0,
    },
    queue(
        &["k8s.io/client-go/util/workqueue.(*Typed[go.shape.*]).Add"],
        &MAP_ASSIGN,
        queue_op::ADD,
    ),
    queue(
        &["k8s.io/client-go/util/workqueue.(*Typed[go.shape.*]).Get"],
        &MAP_DELETE,
        queue_op::GET,
    ),
];

/// The runtime's map assignment and deletion, in the order of
/// `profiler_common::client::key_kind` (string, 64-bit, 32-bit, any other key).
const MAP_ASSIGN: [&str; 4] = [
    "runtime.mapassign_faststr",
    "runtime.mapassign_fast64",
    "runtime.mapassign_fast32",
    "runtime.mapassign",
];
const MAP_DELETE: [&str; 4] = [
    "runtime.mapdelete_faststr",
    "runtime.mapdelete_fast64",
    "runtime.mapdelete_fast32",
    "runtime.mapdelete",
];

/// The workqueue probe on a method of client-go's generic workqueue, each instantiation
/// Go compiled for a shape of `T` (`(*Typed[go.shape.string]).Add`, …), at its change of
/// the `dirty` set: the runtime's map function for the item's shape.
const fn queue(
    method: &'static [&'static str],
    map_functions: &'static [&'static str],
    op: u64,
) -> Probe {
    Probe {
        program: "client_queue",
        functions: method,
        at: At::CallToAny(map_functions),
        provides: "workqueue depth and waits",
        required: false,
        writer_fields_from: None,
        cookie: op << 8,
    }
}
