//! Turns raw ring-buffer records into typed events. The kernel copies bytes; every
//! interpretation (text, truncation, HTTP version) happens here; a client's events in
//! [`client`].

use std::mem::size_of;

use profiler_common::{
    alloc::AllocEvent,
    client::ResyncedEvent,
    cpu::{CpuEvent, MODE_KERNEL},
    event::{kind, EventHeader, GoroutineEvent, Lineage},
    http::{HttpRequestEvent, HttpResponseEvent, QUERY_CAP},
};
use serde::{Deserialize, Serialize};

mod client;

pub use client::{Limiter, QueueChange, Resync, Throttle};

/// A decoded kernel event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A Go HTTP server began serving a request.
    HttpRequest(HttpRequest),
    /// It finished.
    HttpResponse(HttpResponse),
    /// The Go runtime sampled a heap allocation.
    Alloc(AllocSample),
    /// The sampling clock found the process on CPU.
    Cpu(CpuSample),
    /// A goroutine started another (deep lineage only).
    Goroutine(GoroutineStart),
    /// A client handed a request to its HTTP transport (only `ktime_ns`, `goroutine`,
    /// `goid`, the request line and user agent are set).
    ClientRequest(HttpRequest),
    /// A client's rate limiter began or finished holding a request back.
    Throttle(Throttle),
    /// A client's informer resync fired.
    Resync(Resync),
    /// A client's informer handed one object to its handlers in a resync.
    Resynced {
        /// Monotonic nanoseconds since boot.
        ktime_ns: u64,
    },
    /// A client's workqueue took an item, or handed one to a worker.
    Queue(QueueChange),
}

/// A goroutine started another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoroutineStart {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The creator's goroutine id.
    pub creator_goid: u64,
    /// The new goroutine's id.
    pub child_goid: u64,
}

/// One on-CPU sample, its stack still as addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSample {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The goroutine on CPU (the thread's `g` when it ran none).
    pub goroutine: u64,
    /// Its id and its parent's.
    pub lineage: Lineage,
    /// The `*http.Request` it worked for (joined in userspace); 0 outside any request.
    pub request: u64,
    /// Whether the thread was in the kernel (a system call or fault) for it.
    pub kernel: bool,
    /// User stack, innermost return address first.
    pub stack: Vec<u64>,
}

/// One sampled heap allocation, its stack still as addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocSample {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// Allocating goroutine.
    pub goroutine: u64,
    /// Its id and its parent's.
    pub lineage: Lineage,
    /// The `*http.Request` it worked for (joined in userspace); 0 outside any request.
    pub request: u64,
    /// The allocated object's address.
    pub address: u64,
    /// Bytes of the sampled allocation.
    pub size: u64,
    /// User stack, innermost return address first.
    pub stack: Vec<u64>,
}

/// Ends a value longer than the kernel copies: its copied prefix, then this mark.
pub const CUT: char = '…';

/// The request line of one request, as the Go server parsed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Monotonic nanoseconds since boot when serving began.
    pub ktime_ns: u64,
    /// Kernel thread that served it.
    pub tid: u32,
    /// Goroutine (`runtime.g` address) that served it.
    pub goroutine: u64,
    /// That goroutine's id (0 in captures of apiprof versions before it).
    #[serde(default)]
    pub goid: u64,
    /// Address of the `*http.Request`.
    pub request: u64,
    /// HTTP method.
    pub method: String,
    /// URL path, still percent-decoded as Go's `URL.Path` is.
    pub path: String,
    /// Raw (still encoded) query string, without the `?`.
    pub query: String,
    /// "HTTP/1.1", "HTTP/2.0", ...
    pub http_version: String,
    /// The User-Agent header; empty when the request had none.
    pub user_agent: String,
    /// `http.Request.RemoteAddr`: the client's "IP:port" ("[IPv6]:port") as the server
    /// accepted the connection; empty in captures of apiprof versions before it.
    #[serde(default)]
    pub remote_addr: String,
    /// The Pod that sent it (`namespace/name`), when the daemon knows the cluster's Pods
    /// (see `analyze::clients`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_pod: Option<String>,
    /// That Pod's workload (`Deployment/namespace/name`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_owner: Option<String>,
    /// Whether method, path, query, user agent or remote address was longer than the
    /// kernel copies (then cut, and ending in [`CUT`]).
    pub truncated: bool,
    /// Whether the query was cut (absent in captures of apiprof versions before it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub query_cut: bool,
}

impl HttpRequest {
    /// The raw query as far as it was copied, and whether it was cut there. Captures
    /// of apiprof versions before [`HttpRequest::query_cut`] marked no cut value: a
    /// truncated request's query of the whole copy size is taken as cut.
    pub fn query_prefix(&self) -> (&str, bool) {
        if self.query_cut {
            return (self.query.strip_suffix(CUT).unwrap_or(&self.query), true);
        }
        let old_cut = self.truncated && !self.query.ends_with(CUT) && self.query.len() >= QUERY_CAP;
        (&self.query, old_cut)
    }
}

/// The end of serving one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Monotonic nanoseconds since boot when the handler returned.
    pub ktime_ns: u64,
    /// Goroutine that served it.
    pub goroutine: u64,
    /// Address of the `*http.Request`, as in its [`HttpRequest`] (the kernel reports the
    /// goroutine; userspace joins the two).
    pub request: u64,
    /// Status code sent (200 when the handler wrote none, as Go does); 0 when there was
    /// no complete response: the handler panicked, or took over the connection without
    /// writing a status.
    pub status: u16,
    /// Body bytes the handler wrote.
    pub response_bytes: u64,
}

/// A record the decoder cannot read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the event its header announces.
    #[error("event of kind {kind} is {len} bytes, expected {expected}: the eBPF object and apiprof are from different builds; rebuild both")]
    Size {
        /// The kind from the header.
        kind: u32,
        /// Bytes received.
        len: usize,
        /// Bytes the kind needs.
        expected: usize,
    },
    /// A kind this build does not know.
    #[error("unknown event kind {kind}: the eBPF object and apiprof are from different builds; rebuild both")]
    UnknownKind {
        /// The kind from the header.
        kind: u32,
    },
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: EventHeader = read(bytes, 0)?;
    match header.kind {
        kind::HTTP_REQUEST => {
            let raw: HttpRequestEvent = read(bytes, header.kind)?;
            Ok(Event::HttpRequest(http_request(&raw)))
        }
        kind::HTTP_RESPONSE => {
            let raw: HttpResponseEvent = read(bytes, header.kind)?;
            Ok(Event::HttpResponse(http_response(&raw)))
        }
        kind::ALLOC => {
            let raw: AllocEvent = read(bytes, header.kind)?;
            Ok(Event::Alloc(AllocSample {
                ktime_ns: raw.header.ktime_ns,
                goroutine: raw.header.goroutine,
                lineage: raw.lineage,
                request: 0,
                address: raw.address,
                size: raw.size,
                stack: stack(&raw.stack, raw.stack_len),
            }))
        }
        kind::CPU => {
            let raw: CpuEvent = read(bytes, header.kind)?;
            Ok(Event::Cpu(CpuSample {
                ktime_ns: raw.header.ktime_ns,
                goroutine: raw.header.goroutine,
                lineage: raw.lineage,
                request: 0,
                kernel: raw.mode == MODE_KERNEL,
                stack: stack(&raw.stack, raw.stack_len),
            }))
        }
        kind::GOROUTINE => {
            let raw: GoroutineEvent = read(bytes, header.kind)?;
            Ok(Event::Goroutine(GoroutineStart {
                ktime_ns: raw.header.ktime_ns,
                creator_goid: raw.creator_goid,
                child_goid: raw.child_goid,
            }))
        }
        kind::CLIENT_REQUEST => {
            let raw: HttpRequestEvent = read(bytes, header.kind)?;
            Ok(Event::ClientRequest(http_request(&raw)))
        }
        kind::CLIENT_THROTTLE => Ok(Event::Throttle(client::throttle(&read(
            bytes,
            header.kind,
        )?))),
        kind::CLIENT_RESYNC => Ok(Event::Resync(client::resync(&read(bytes, header.kind)?))),
        kind::CLIENT_RESYNCED => {
            let raw: ResyncedEvent = read(bytes, header.kind)?;
            Ok(Event::Resynced {
                ktime_ns: raw.header.ktime_ns,
            })
        }
        kind::CLIENT_QUEUE => Ok(Event::Queue(client::queue(&read(bytes, header.kind)?))),
        kind => Err(DecodeError::UnknownKind { kind }),
    }
}

/// The valid frames of a kernel stack copy.
fn stack(frames: &[u64], len: u64) -> Vec<u64> {
    frames[..(len as usize).min(frames.len())].to_vec()
}

/// The `T` at the start of `bytes`; `Pod` limits it to the repr(C) event types that any
/// bit pattern is a valid value of.
fn read<T: aya::Pod>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Size {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    // SAFETY: length checked above; T is Pod, valid for any bit pattern, and
    // read_unaligned has no alignment requirement.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

fn http_request(raw: &HttpRequestEvent) -> HttpRequest {
    let (method, cut_method) = text(&raw.method, raw.method_len);
    let (path, cut_path) = text(&raw.path, raw.path_len);
    let (query, cut_query) = text(&raw.query, raw.query_len);
    let (user_agent, cut_user_agent) = text(&raw.user_agent.bytes, raw.user_agent.len);
    let (remote_addr, cut_remote_addr) = text(&raw.remote_addr, raw.remote_addr_len);
    HttpRequest {
        ktime_ns: raw.header.ktime_ns,
        tid: raw.header.tid,
        goroutine: raw.header.goroutine,
        goid: raw.goid,
        request: raw.request,
        method,
        path,
        query,
        http_version: format!("HTTP/{}.{}", raw.proto_major, raw.proto_minor),
        // HTTP/1 values keep the blanks after the colon.
        user_agent: user_agent.trim_start_matches([' ', '\t']).to_owned(),
        remote_addr,
        client_pod: None,
        client_owner: None,
        truncated: cut_method || cut_path || cut_query || cut_user_agent || cut_remote_addr,
        query_cut: cut_query,
    }
}

fn http_response(raw: &HttpResponseEvent) -> HttpResponse {
    HttpResponse {
        ktime_ns: raw.header.ktime_ns,
        goroutine: raw.header.goroutine,
        request: 0,
        status: u16::try_from(raw.status).unwrap_or(u16::MAX),
        response_bytes: raw.bytes,
    }
}

/// The copied prefix of a Go string whose true length is `len` (ending in [`CUT`] when
/// it was longer than the kernel copies), and whether it was cut.
fn text(buf: &[u8], len: u32) -> (String, bool) {
    let len = len as usize;
    let kept = len.min(buf.len());
    let mut text = String::from_utf8_lossy(&buf[..kept]).into_owned();
    let cut = len > buf.len();
    if cut {
        text.push(CUT);
    }
    (text, cut)
}

#[cfg(test)]
mod tests {
    use profiler_common::http::{
        UserAgent, METHOD_CAP, PATH_CAP, QUERY_CAP, REMOTE_ADDR_CAP, USER_AGENT_CAP,
    };

    use super::*;

    fn raw(method: &str, path: &str, query_len: u32) -> HttpRequestEvent {
        let mut e = HttpRequestEvent {
            header: EventHeader {
                kind: kind::HTTP_REQUEST,
                tgid: 7,
                tid: 8,
                _pad: 0,
                ktime_ns: 99,
                goroutine: 0xc000,
            },
            request: 0xc100,
            response_writer: 0xc200,
            goid: 42,
            proto_major: 2,
            proto_minor: 0,
            method_len: method.len() as u32,
            path_len: path.len() as u32,
            query_len,
            remote_addr_len: 0,
            _pad: 0,
            user_agent: UserAgent {
                len: 0,
                bytes: [0; USER_AGENT_CAP],
            },
            method: [0; METHOD_CAP],
            path: [0; PATH_CAP],
            query: [b'q'; QUERY_CAP],
            remote_addr: [0; REMOTE_ADDR_CAP],
        };
        e.method[..method.len()].copy_from_slice(method.as_bytes());
        e.path[..path.len()].copy_from_slice(path.as_bytes());
        let ua = b" \tkubectl/v1.36.0";
        e.user_agent.len = ua.len() as u32;
        e.user_agent.bytes[..ua.len()].copy_from_slice(ua);
        set_remote_addr(&mut e, "[2001:db8::17]:43210");
        e
    }

    fn set_remote_addr(e: &mut HttpRequestEvent, addr: &str) {
        let kept = addr.len().min(REMOTE_ADDR_CAP);
        e.remote_addr_len = addr.len() as u32;
        e.remote_addr[..kept].copy_from_slice(&addr.as_bytes()[..kept]);
    }

    fn bytes<T>(e: &T) -> Vec<u8> {
        // SAFETY: the event types are repr(C) without padding.
        unsafe { std::slice::from_raw_parts((e as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    #[test]
    fn request_line_is_decoded_from_its_copied_prefixes() {
        let Ok(Event::HttpRequest(r)) = decode(&bytes(&raw("GET", "/api/v1/pods", 3))) else {
            panic!("not a request")
        };
        assert_eq!(r.user_agent, "kubectl/v1.36.0");
        assert_eq!(r.remote_addr, "[2001:db8::17]:43210");
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("GET", "/api/v1/pods", "qqq")
        );
        assert_eq!(
            (r.http_version.as_str(), r.truncated, r.goroutine, r.tid),
            ("HTTP/2.0", false, 0xc000, 8)
        );
    }

    #[test]
    fn a_query_longer_than_the_kernel_copies_is_marked_truncated() {
        let Ok(Event::HttpRequest(r)) = decode(&bytes(&raw("GET", "/", QUERY_CAP as u32 + 1)))
        else {
            panic!()
        };
        assert_eq!(r.query, format!("{}{CUT}", "q".repeat(QUERY_CAP)));
        assert_eq!(r.query_prefix(), ("q".repeat(QUERY_CAP).as_str(), true));
        assert!(r.truncated);
    }

    #[test]
    fn a_remote_address_longer_than_the_kernel_copies_is_marked_truncated() {
        let mut e = raw("GET", "/", 0);
        let long = format!("[fe80::1%{}]:443", "x".repeat(REMOTE_ADDR_CAP));
        set_remote_addr(&mut e, &long);
        let Ok(Event::HttpRequest(r)) = decode(&bytes(&e)) else {
            panic!()
        };
        assert_eq!(
            (r.remote_addr.as_str(), r.truncated),
            (format!("{}{CUT}", &long[..REMOTE_ADDR_CAP]).as_str(), true)
        );
    }

    #[test]
    fn a_capture_line_without_remote_address_still_reads() {
        // As apiprof wrote `http_request` records before it copied RemoteAddr.
        let line = r#"{"ktime_ns":1,"tid":2,"goroutine":3,"request":4,"method":"GET","path":"/","query":"","http_version":"HTTP/1.1","user_agent":"curl/8","truncated":false}"#;
        let r: HttpRequest = serde_json::from_str(line).unwrap();
        assert_eq!(
            (r.remote_addr.as_str(), r.user_agent.as_str()),
            ("", "curl/8")
        );
    }

    #[test]
    fn a_response_carries_the_status_and_bytes_the_kernel_read() {
        let raw = HttpResponseEvent {
            header: EventHeader {
                kind: kind::HTTP_RESPONSE,
                tgid: 7,
                tid: 8,
                _pad: 0,
                ktime_ns: 5,
                goroutine: 9,
            },
            status: 404,
            bytes: 1234,
        };
        let Ok(Event::HttpResponse(r)) = decode(&bytes(&raw)) else {
            panic!()
        };
        assert_eq!(
            (r.goroutine, r.request, r.status, r.response_bytes),
            (9, 0, 404, 1234)
        );
    }

    #[test]
    fn short_and_unknown_records_are_refused() {
        let b = bytes(&raw("GET", "/", 0));
        assert!(matches!(
            decode(&b[..40]),
            Err(DecodeError::Size {
                kind: 1,
                len: 40,
                ..
            })
        ));
        let mut unknown = b.clone();
        unknown[0] = 77;
        assert!(matches!(
            decode(&unknown),
            Err(DecodeError::UnknownKind { kind: 77 })
        ));
    }
}
