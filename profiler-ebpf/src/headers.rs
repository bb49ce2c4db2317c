//! User-Agent capture while Go parses request headers. Header maps are never read (their
//! layout changed with Go 1.24's swiss maps); only the User-Agent value is copied, never
//! another header.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};
use profiler_common::{
    http::{UserAgent, H2_FIELDS_MAX},
    offsets::GoOffsets,
};

use crate::{
    go,
    maps::{offsets, UA_BY_GOROUTINE, UA_BY_REQUEST, UA_SCRATCH},
};

/// HTTP/1 header name with its colon; compared ignoring ASCII case (`b | 0x20` maps
/// upper to lower case and leaves '-' and ':' as they are).
const H1_NAME: &[u8; 11] = b"user-agent:";
/// HTTP/2 header names are lower case on the wire.
const H2_NAME: &[u8; 10] = b"user-agent";

/// The `CALL bytes.Cut(kv, colon)` in `textproto.readMIMEHeader` (Go 1.19–1.27), once
/// per header line: the line `kv` in RAX (data) and RBX (length). Runs on the HTTP/1
/// connection's goroutine, which then serves the request.
#[uprobe]
pub fn http1_header_line(ctx: ProbeContext) -> u32 {
    let _ = try_http1_header_line(&ctx);
    0
}

fn try_http1_header_line(ctx: &ProbeContext) -> Result<(), i64> {
    let (data, len) = (go::arg(ctx, 0), go::arg(ctx, 1));
    if len < H1_NAME.len() as u64 || data == 0 {
        return Ok(());
    }
    let mut name = [0u8; 11];
    go::read_bytes(data, name.len() as u64, &mut name)?;
    for i in 0..H1_NAME.len() {
        if name[i] | 0x20 != H1_NAME[i] {
            return Ok(());
        }
    }
    let ua = scratch()?;
    let skip = H1_NAME.len() as u64;
    ua.len = go::read_bytes(data + skip, len - skip, &mut ua.bytes)?;
    park(ctx, ua)
}

/// `func (sc *serverConn) processHeaders(f *MetaHeadersFrame)` of net/http's bundled
/// HTTP/2 server (`net/http.(*http2serverConn)`), x/net's and Go 1.27's: sc in RAX, f in
/// RBX. Records the stream's User-Agent (or none) on the connection's goroutine, where
/// `newWriterAndRequest` picks it up.
#[uprobe]
pub fn http2_headers(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let _ = try_http2_headers(&ctx);
    0
}

fn try_http2_headers(ctx: &ProbeContext) -> Result<(), i64> {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(offsets) = offsets(tgid) else {
        return Ok(());
    };
    let frame = go::arg(ctx, 1);
    let fields = go::read_u64(frame + offsets.h2_meta_fields)?;
    let count = go::read_u64(frame + offsets.h2_meta_fields + 8)?;
    let ua = scratch()?;
    ua.len = 0;
    for i in 0..H2_FIELDS_MAX {
        if u64::from(i) >= count {
            break;
        }
        let field = fields + u64::from(i) * offsets.h2_field_size;
        let name = field + offsets.h2_field_name;
        if go::read_u64(name + 8)? != H2_NAME.len() as u64 {
            continue;
        }
        let mut bytes = [0u8; 10];
        go::read_string(name, &mut bytes)?;
        if &bytes == H2_NAME {
            ua.len = go::read_string(field + offsets.h2_field_value, &mut ua.bytes)?;
            break;
        }
    }
    // Always written, so a stream without a User-Agent never inherits the previous one.
    park(ctx, ua)
}

/// Attached to every RET instruction of the bundled and x/net HTTP/2 servers'
/// `(*serverConn).newWriterAndRequest`, which returns (*responseWriter, *http.Request,
/// error): the request in RBX. Moves the User-Agent `processHeaders` recorded on this
/// goroutine to the request's URL, as the handler runs on a goroutine of its own.
#[uprobe]
pub fn http2_request_created(ctx: ProbeContext) -> u32 {
    hand_over(&ctx, |offsets| offsets.request_url);
    0
}

/// The same on Go 1.27's `net/http/internal/http2`, which returns a `*ServerRequest`:
/// net/http copies its URL pointer into the `*http.Request` it serves.
#[uprobe]
pub fn http2_server_request_created(ctx: ProbeContext) -> u32 {
    hand_over(&ctx, |offsets| offsets.h2_server_request_url);
    0
}

/// Re-keys the User-Agent parked on this goroutine by the URL of the request in RBX,
/// whose URL field is at `url_offset`.
fn hand_over(ctx: &ProbeContext, url_offset: fn(&GoOffsets) -> u64) {
    let goroutine = go::goroutine(ctx);
    let request = go::arg(ctx, 1);
    // SAFETY: the value is copied before removal.
    let Some(ua) = unsafe { UA_BY_GOROUTINE.get(goroutine) }.copied() else {
        return;
    };
    let _ = UA_BY_GOROUTINE.remove(goroutine);
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(offsets) = offsets(tgid) else {
        return;
    };
    if request == 0 {
        return;
    }
    if let Ok(url) = go::read_u64(request + url_offset(&offsets)) {
        let _ = UA_BY_REQUEST.insert(url, ua, 0);
    }
}

/// Leaves `ua` on the current goroutine for the request it parses headers for.
fn park(ctx: &ProbeContext, ua: &UserAgent) -> Result<(), i64> {
    // By reference: by value would copy the 196-byte value onto the 512-byte BPF stack.
    UA_BY_GOROUTINE.insert(go::goroutine(ctx), ua, 0)?;
    Ok(())
}

fn scratch() -> Result<&'static mut UserAgent, i64> {
    let ua = UA_SCRATCH.get_ptr_mut(0).ok_or(-1i64)?;
    // SAFETY: per-CPU slot; a BPF program runs to completion on its CPU.
    Ok(unsafe { &mut *ua })
}
