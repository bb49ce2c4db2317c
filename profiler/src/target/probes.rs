//! Which eBPF program goes on which Go function, and where in it.
//!
//! Each probe lists the Go functions it fits, as each Go HTTP server names them: net/http's
//! HTTP/1 server, its bundled HTTP/2 server (`http2` prefix), x/net's HTTP/2 server (what
//! kube-apiserver ≤ 1.36 built with Go ≤ 1.26 serves h2 with) and Go 1.27's own
//! (`net/http/internal/http2`). The program is attached to every one the binary has.

/// Where in a function a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The first instruction: arguments are in registers.
    Entry,
    /// Every RET instruction: results are in registers (never a uretprobe).
    Returns,
    /// Every CALL of the named function: its arguments are in registers, and the kernel
    /// emulates the call instead of single-stepping it.
    CallTo(&'static str),
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
}

const SERVE_HTTP: &str = "net/http.serverHandler.ServeHTTP";

/// Every probe apiprof attaches to a Go HTTP server.
pub const HTTP: &[Probe] = &[
    Probe {
        program: "http_serve",
        functions: &[SERVE_HTTP],
        at: At::Entry,
        provides: "requests",
        required: true,
    },
    Probe {
        program: "http_serve_return",
        functions: &[SERVE_HTTP],
        at: At::Returns,
        provides: "request ends",
        required: true,
    },
    Probe {
        program: "http_write_header",
        functions: &[
            "net/http.(*response).WriteHeader",
            "net/http.(*http2responseWriter).WriteHeader",
            "golang.org/x/net/http2.(*responseWriter).WriteHeader",
            "net/http/internal/http2.(*responseWriter).WriteHeader",
            // Go 1.27's net/http wraps that writer (a struct holding the pointer, passed
            // in RAX) and inlines the call into the promoted method; first code wins, so
            // seeing both is harmless.
            "net/http.http2ResponseWriter.WriteHeader",
        ],
        at: At::Entry,
        provides: "status codes",
        required: true,
    },
    Probe {
        program: "http_write",
        functions: &[
            "net/http.(*response).write",
            "net/http.(*http2responseWriter).write",
            "golang.org/x/net/http2.(*responseWriter).write",
            "net/http/internal/http2.(*responseWriter).write",
        ],
        at: At::Entry,
        provides: "response bytes",
        required: true,
    },
    Probe {
        program: "http1_header_line",
        // `k, v, ok := bytes.Cut(kv, colon)`, once per header line: emulated, where the
        // RETs of readContinuedLineSlice, which return the same line, are single-stepped.
        functions: &["net/textproto.readMIMEHeader"],
        at: At::CallTo("bytes.Cut"),
        provides: "HTTP/1 user agents",
        required: false,
    },
    Probe {
        program: "http2_headers",
        functions: &[
            "net/http.(*http2serverConn).processHeaders",
            "golang.org/x/net/http2.(*serverConn).processHeaders",
            "net/http/internal/http2.(*serverConn).processHeaders",
        ],
        at: At::Entry,
        provides: "HTTP/2 user agents",
        required: false,
    },
    Probe {
        program: "http2_request_created",
        functions: &[
            "net/http.(*http2serverConn).newWriterAndRequest",
            "golang.org/x/net/http2.(*serverConn).newWriterAndRequest",
        ],
        at: At::Returns,
        provides: "HTTP/2 user agents",
        required: false,
    },
    Probe {
        program: "http2_server_request_created",
        functions: &["net/http/internal/http2.(*serverConn).newWriterAndRequest"],
        at: At::Returns,
        provides: "HTTP/2 user agents",
        required: false,
    },
];

/// Goroutine lineage: a goroutine a handler starts works for its request, so its
/// allocations and CPU samples are the request's. Optional: without it (a Go whose
/// `newproc` is shaped otherwise than 1.19–1.27's), what such goroutines do counts as
/// background, and apiprof says so.
pub const LINEAGE: &[Probe] = &[Probe {
    program: "go_newproc",
    functions: &["runtime.newproc.func1"],
    at: At::CallTo("runtime.runqput"),
    provides: "goroutine lineage (work of goroutines a handler starts counts as background)",
    required: false,
}];

/// The runtime's memory-profile samples, attributed to requests through [`LINEAGE`].
pub const ALLOC: &[Probe] = &[Probe {
    program: "go_alloc",
    functions: &["runtime.profilealloc"],
    at: At::Entry,
    provides: "allocation samples",
    required: true,
}];
