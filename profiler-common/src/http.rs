//! Events from the Go HTTP server probes.

use crate::event::EventHeader;

/// Bytes of `http.Request.Method` kept (longer methods are cut; the true length is kept).
pub const METHOD_CAP: usize = 16;
/// Bytes of `url.URL.Path` kept.
pub const PATH_CAP: usize = 256;
/// Bytes of `url.URL.RawQuery` kept.
pub const QUERY_CAP: usize = 512;

/// A Go HTTP server began serving a request (`net/http.serverHandler.ServeHTTP` entry),
/// HTTP/1.x and HTTP/2 alike.
///
/// Only the request line is copied: never headers or bodies.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HttpRequestEvent {
    /// Common header; `kind` is [`crate::event::kind::HTTP_REQUEST`].
    pub header: EventHeader,
    /// Address of the `*http.Request`: identifies the request while it is served.
    pub request: u64,
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
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// `http.Request.Method`, the first `min(method_len, METHOD_CAP)` bytes.
    pub method: [u8; METHOD_CAP],
    /// `http.Request.URL.Path`, the first `min(path_len, PATH_CAP)` bytes.
    pub path: [u8; PATH_CAP],
    /// `http.Request.URL.RawQuery`, the first `min(query_len, QUERY_CAP)` bytes.
    pub query: [u8; QUERY_CAP],
}

const _: () = assert!(
    core::mem::size_of::<HttpRequestEvent>()
        == 32 + 3 * 8 + 4 * 4 + METHOD_CAP + PATH_CAP + QUERY_CAP
);

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for HttpRequestEvent {}
