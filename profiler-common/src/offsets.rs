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
    /// `net/http.conn.hijackedv` (bool).
    pub conn_hijacked: u64,
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

const _: () = assert!(core::mem::size_of::<GoOffsets>() == 24 * 8);

#[cfg(feature = "user")]
// SAFETY: plain old data, no padding, every bit pattern valid.
unsafe impl aya::Pod for GoOffsets {}
