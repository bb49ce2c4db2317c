//! Go struct field offsets, handed by userspace to the kernel per observed process.
//!
//! Userspace picks the values for the Go version the observed binary was built with from
//! the generated table (`profiler/src/target/offsets/go_offsets.json`, `cargo xtask offsets`).

/// How the observed Go implements maps (`http.Header` is a `map[string][]string`).
pub mod map_kind {
    /// Buckets of 8 slots with a top-hash byte each (`runtime.hmap`, Go 1.19–1.23).
    pub const BUCKETS: u64 = 1;
    /// Swiss tables: groups of 8 slots with a control word (`internal/runtime/maps`,
    /// Go 1.24+).
    pub const SWISS: u64 = 2;
}

/// Bytes of `http.Request` the start probe copies in one read: every field it reads
/// (`Method` to `Header`, and `RemoteAddr`) lies within them.
pub const REQUEST_WINDOW: usize = 192;
/// Bytes of `url.URL` copied in one read (`Path` and `RawQuery` lie within them).
pub const URL_WINDOW: usize = 112;
/// Bytes of net/http's `response` copied in one read (`wroteHeader`, `written`,
/// `status`).
pub const RESPONSE_WINDOW: usize = 192;
/// Bytes of an HTTP/2 `responseWriterState` copied in one read, from its `status`.
pub const WRITER_STATE_WINDOW: usize = 32;

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
    /// `net/http.Request.Header` (`map[string][]string`).
    pub request_header: u64,
    /// `net/http.Request.RemoteAddr` (string).
    pub request_remote_addr: u64,
    /// `net/url.URL.Path` (string).
    pub url_path: u64,
    /// `net/url.URL.RawQuery` (string).
    pub url_raw_query: u64,
    /// `net/http.response.status` (int): the HTTP/1 status written.
    pub response_status: u64,
    /// `net/http.response.wroteHeader` (bool).
    pub response_wrote_header: u64,
    /// `net/http.response.written` (int64): body bytes the handler wrote.
    pub response_written: u64,
    /// `net/http.response.handlerDone` (a 32-bit atomic flag): `finishRequest` ran.
    pub response_handler_done: u64,
    /// `net/http.conn.hijackedv` (bool).
    pub conn_hijacked: u64,
    /// The `*response` pointer inside `net/http.conn.curReq` (an atomic field).
    pub conn_cur_req: u64,
    /// `runtime.g.goid` (uint64).
    pub g_goid: u64,
    /// `runtime.g.parentGoid` (uint64, Go 1.21+); 0: the runtime has none.
    pub g_parent_goid: u64,
    /// `runtime.g.m` (`*m`): the thread a goroutine runs on.
    pub g_m: u64,
    /// `runtime.m.curg` (`*g`): the user goroutine a thread runs, also while it works
    /// on its system stack (`g0`) for it; nil in the scheduler.
    pub m_curg: u64,
    /// One of [`map_kind`].
    pub map_kind: u64,
    /// [`map_kind::BUCKETS`]: `runtime.hmap.flags` (uint8).
    pub hmap_flags: u64,
    /// [`map_kind::BUCKETS`]: `runtime.hmap.B` (uint8, log2 of the bucket count).
    pub hmap_b: u64,
    /// [`map_kind::BUCKETS`]: `runtime.hmap.buckets` (pointer).
    pub hmap_buckets: u64,
    /// [`map_kind::BUCKETS`]: `runtime.hmap.oldbuckets` (pointer; non-nil while growing).
    pub hmap_oldbuckets: u64,
    /// [`map_kind::SWISS`]: `internal/runtime/maps.Map.dirPtr` (a group, or tables).
    pub swiss_dir_ptr: u64,
    /// [`map_kind::SWISS`]: `internal/runtime/maps.Map.dirLen` (0: one small group).
    pub swiss_dir_len: u64,
    /// [`map_kind::SWISS`]: `internal/runtime/maps.table.groups` (data pointer, then
    /// the length mask).
    pub swiss_table_groups: u64,
}

const _: () = assert!(core::mem::size_of::<GoOffsets>() == 26 * 8);

impl GoOffsets {
    /// All zero: what the kernel programs are compiled with, before userspace sets them.
    pub const ZERO: Self = Self {
        request_method: 0,
        request_url: 0,
        request_proto_major: 0,
        request_proto_minor: 0,
        request_header: 0,
        request_remote_addr: 0,
        url_path: 0,
        url_raw_query: 0,
        response_status: 0,
        response_wrote_header: 0,
        response_written: 0,
        response_handler_done: 0,
        conn_hijacked: 0,
        conn_cur_req: 0,
        g_goid: 0,
        g_parent_goid: 0,
        g_m: 0,
        m_curg: 0,
        map_kind: 0,
        hmap_flags: 0,
        hmap_b: 0,
        hmap_buckets: 0,
        hmap_oldbuckets: 0,
        swiss_dir_ptr: 0,
        swiss_dir_len: 0,
        swiss_table_groups: 0,
    };
}

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for GoOffsets {}
