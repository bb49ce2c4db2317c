//! Turns raw ring-buffer records into typed events. The kernel copies bytes; every
//! interpretation (text, truncation, HTTP version) happens here.

use std::mem::size_of;

use profiler_common::{
    event::{kind, EventHeader},
    http::HttpRequestEvent,
};
use serde::{Deserialize, Serialize};

/// A decoded kernel event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A Go HTTP server began serving a request.
    HttpRequest(HttpRequest),
}

/// The request line of one request, as the Go server parsed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Monotonic nanoseconds since boot when serving began.
    pub ktime_ns: u64,
    /// Kernel thread that served it.
    pub tid: u32,
    /// Goroutine (`runtime.g` address) that served it.
    pub goroutine: u64,
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
    /// Whether method, path or query was longer than the kernel copies (then cut).
    pub truncated: bool,
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
        kind => Err(DecodeError::UnknownKind { kind }),
    }
}

fn read<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Size {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    // SAFETY: length checked above; T is a plain-old-data repr(C) event type, valid for
    // any bit pattern, and read_unaligned has no alignment requirement.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

fn http_request(raw: &HttpRequestEvent) -> HttpRequest {
    let (method, cut_method) = text(&raw.method, raw.method_len);
    let (path, cut_path) = text(&raw.path, raw.path_len);
    let (query, cut_query) = text(&raw.query, raw.query_len);
    HttpRequest {
        ktime_ns: raw.header.ktime_ns,
        tid: raw.header.tid,
        goroutine: raw.header.goroutine,
        request: raw.request,
        method,
        path,
        query,
        http_version: format!("HTTP/{}.{}", raw.proto_major, raw.proto_minor),
        truncated: cut_method || cut_path || cut_query,
    }
}

/// The copied prefix of a Go string whose true length is `len`, and whether it was cut.
fn text(buf: &[u8], len: u32) -> (String, bool) {
    let len = len as usize;
    let kept = len.min(buf.len());
    (
        String::from_utf8_lossy(&buf[..kept]).into_owned(),
        len > buf.len(),
    )
}

#[cfg(test)]
mod tests {
    use profiler_common::http::{METHOD_CAP, PATH_CAP, QUERY_CAP};

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
            proto_major: 2,
            proto_minor: 0,
            method_len: method.len() as u32,
            path_len: path.len() as u32,
            query_len,
            _pad: 0,
            method: [0; METHOD_CAP],
            path: [0; PATH_CAP],
            query: [b'q'; QUERY_CAP],
        };
        e.method[..method.len()].copy_from_slice(method.as_bytes());
        e.path[..path.len()].copy_from_slice(path.as_bytes());
        e
    }

    fn bytes(e: &HttpRequestEvent) -> Vec<u8> {
        // SAFETY: HttpRequestEvent is repr(C) without padding.
        unsafe {
            std::slice::from_raw_parts(
                (e as *const HttpRequestEvent).cast::<u8>(),
                size_of::<HttpRequestEvent>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn request_line_is_decoded_from_its_copied_prefixes() {
        let Event::HttpRequest(r) = decode(&bytes(&raw("GET", "/api/v1/pods", 3))).unwrap();
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
        let Event::HttpRequest(r) = decode(&bytes(&raw("GET", "/", QUERY_CAP as u32 + 1))).unwrap();
        assert_eq!((r.query.len(), r.truncated), (QUERY_CAP, true));
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
