//! Events and map values of the Go HTTP server probes.

use crate::event::EventHeader;

/// Bytes of `http.Request.Method` kept (longer methods are cut; the true length is kept).
pub const METHOD_CAP: usize = 16;
/// Bytes of `url.URL.Path` kept.
pub const PATH_CAP: usize = 256;
/// Bytes of `url.URL.RawQuery` kept.
pub const QUERY_CAP: usize = 512;
/// Bytes of `http.Request.RemoteAddr` kept: "IP:port" or "[IPv6]:port" is at most 53
/// bytes without an IPv6 zone (`%eth0`), so only odd addresses are cut.
pub const REMOTE_ADDR_CAP: usize = 64;
/// Bytes of the User-Agent header value kept.
pub const USER_AGENT_CAP: usize = 192;

/// A Go HTTP server began serving a request (`net/http.serverHandler.ServeHTTP` entry),
/// HTTP/1.x and HTTP/2 alike.
///
/// Only the request line, the client's address and the User-Agent value are copied:
/// never other headers or bodies.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HttpRequestEvent {
    /// Common header; `kind` is [`crate::event::kind::HTTP_REQUEST`].
    pub header: EventHeader,
    /// Address of the `*http.Request`: identifies the request while it is served.
    pub request: u64,
    /// The `http.ResponseWriter`'s data pointer (`*response` or `*http2responseWriter`).
    pub response_writer: u64,
    /// The serving goroutine's `goid`: goroutines it starts name it as their parent.
    pub goid: u64,
    /// `http.Request.ProtoMajor`.
    pub proto_major: u64,
    /// `http.Request.ProtoMinor`.
    pub proto_minor: u64,
    /// True length of the method; more than [`METHOD_CAP`] means `method` is cut.
    pub method_len: u32,
    /// True length of the path; more than [`PATH_CAP`] means `path` is cut.
    pub path_len: u32,
    /// True length of the raw query; more than [`QUERY_CAP`] means `query` is cut.
    pub query_len: u32,
    /// True length of the remote address; more than [`REMOTE_ADDR_CAP`] means
    /// `remote_addr` is cut.
    pub remote_addr_len: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// The request's User-Agent header (its first value), read from `Request.Header`.
    pub user_agent: UserAgent,
    /// `http.Request.Method`, the first `min(method_len, METHOD_CAP)` bytes.
    pub method: [u8; METHOD_CAP],
    /// `http.Request.URL.Path`, the first `min(path_len, PATH_CAP)` bytes.
    pub path: [u8; PATH_CAP],
    /// `http.Request.URL.RawQuery`, the first `min(query_len, QUERY_CAP)` bytes.
    pub query: [u8; QUERY_CAP],
    /// `http.Request.RemoteAddr` (the connection's peer, set by the server), the first
    /// `min(remote_addr_len, REMOTE_ADDR_CAP)` bytes.
    pub remote_addr: [u8; REMOTE_ADDR_CAP],
}

const _: () = assert!(
    core::mem::size_of::<HttpRequestEvent>()
        == 32
            + 5 * 8
            + 5 * 4
            + core::mem::size_of::<UserAgent>()
            + METHOD_CAP
            + PATH_CAP
            + QUERY_CAP
            + REMOTE_ADDR_CAP
);

/// The server finished serving a request: its handler returned, panicked or took over
/// the connection. It is the request the same goroutine started last (userspace joins
/// them); an HTTP/1 connection that ends with no request in flight reports one too.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HttpResponseEvent {
    /// Common header; `kind` is [`crate::event::kind::HTTP_RESPONSE`].
    pub header: EventHeader,
    /// The status code the response carries (200 when the handler wrote none, as Go
    /// then sends); 0 when there is no complete response: the handler panicked (Go
    /// resets the stream or closes the connection) or hijacked the connection without
    /// writing a status.
    pub status: u64,
    /// Body bytes the handler wrote (before any transfer encoding).
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<HttpResponseEvent>() == 32 + 2 * 8);

/// A User-Agent value: `len` true bytes, the first `min(len, USER_AGENT_CAP)` kept.
/// Length 0: the request had none (or it was not seen).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UserAgent {
    /// True length of the value.
    pub len: u32,
    /// The value's bytes.
    pub bytes: [u8; USER_AGENT_CAP],
}

const _: () = assert!(core::mem::size_of::<UserAgent>() == 4 + USER_AGENT_CAP);

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all): plain old data, no implicit padding, every bit pattern valid.
    unsafe impl aya::Pod for super::HttpRequestEvent {}
    unsafe impl aya::Pod for super::HttpResponseEvent {}
}
