//! Go struct field offsets, handed by userspace to the kernel per observed process.
//!
//! Userspace picks the values for the Go version the observed binary was built with from
//! the generated table (`profiler/src/target/offsets/go_offsets.json`, `cargo xtask offsets`).

/// Byte offsets of the Go fields the probes read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoOffsets {
    /// `net/http.Request.Method` (string).
    pub request_method: u64,
    /// `net/http.Request.URL` (`*url.URL`).
    pub request_url: u64,
    /// `net/http.Request.ProtoMajor` (int).
    pub request_proto_major: u64,
    /// `net/http.Request.ProtoMinor` (int).
    pub request_proto_minor: u64,
    /// `net/http.Request.RemoteAddr` (string).
    pub request_remote_addr: u64,
    /// `net/url.URL.Path` (string).
    pub url_path: u64,
    /// `net/url.URL.RawQuery` (string).
    pub url_raw_query: u64,
    /// `MetaHeadersFrame.Fields` (`[]hpack.HeaderField`) of the HTTP/2 server.
    pub h2_meta_fields: u64,
    /// Size of one `hpack.HeaderField`.
    pub h2_field_size: u64,
    /// `hpack.HeaderField.Name` (string).
    pub h2_field_name: u64,
    /// `hpack.HeaderField.Value` (string).
    pub h2_field_value: u64,
    /// `net/http/internal/http2.ServerRequest.URL` (`*url.URL`, Go 1.27+): the request
    /// Go's own HTTP/2 server creates, whose URL pointer the `*http.Request` served
    /// shares.
    pub h2_server_request_url: u64,
    /// `runtime.g.m` (`*m`): the thread a goroutine runs on.
    pub g_m: u64,
    /// `runtime.m.curg` (`*g`): the user goroutine a thread runs, also while it works
    /// on its system stack (`g0`) for it; nil in the scheduler.
    pub m_curg: u64,
}

const _: () = assert!(core::mem::size_of::<GoOffsets>() == 14 * 8);

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for GoOffsets {}
