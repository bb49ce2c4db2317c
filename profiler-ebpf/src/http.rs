//! Probes on Go's `net/http` server.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::uprobe,
    programs::ProbeContext,
};
use profiler_common::{
    event::{kind, EventHeader, RINGBUF_WAKEUP_BYTES},
    http::HttpRequestEvent,
};

use crate::{
    go,
    maps::{count_dropped, EVENTS, GO_OFFSETS},
};

/// `func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)` in `net/http`,
/// Go 1.17+ (register ABI): sh in RAX, rw (an interface, two words) in RBX and RCX,
/// req in RDI. Every request passes here once: HTTP/1.x from `(*conn).serve`, HTTP/2 from
/// `initALPNRequest.ServeHTTP` (net/http's bundled server).
#[uprobe]
pub fn http_serve(ctx: ProbeContext) -> u32 {
    match try_http_serve(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_http_serve(ctx: &ProbeContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the value is copied out before the map can change.
    let Some(offsets) = (unsafe { GO_OFFSETS.get(tgid) }).copied() else {
        return Ok(());
    };
    let request = go::arg(ctx, 3);

    let Some(mut entry) = EVENTS.reserve::<HttpRequestEvent>(0) else {
        count_dropped();
        return Ok(());
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points at reserved ring-buffer memory large enough for the event;
    // every field is written below before submit.
    let event = unsafe { &mut *event };
    event.header = EventHeader {
        kind: kind::HTTP_REQUEST,
        tgid,
        tid: pid_tgid as u32,
        _pad: 0,
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        goroutine: go::goroutine(ctx),
    };
    event.request = request;
    event._pad = 0;
    let filled = fill_request(event, request, &offsets);
    if filled.is_err() {
        // A request we cannot read is not a request we can attribute; the reader would
        // only see zeroes. Count it as dropped so the loss stays visible.
        entry.discard(0);
        count_dropped();
        return filled;
    }
    let flags = if EVENTS.query(0) >= RINGBUF_WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(u64::from(flags));
    Ok(())
}

fn fill_request(
    event: &mut HttpRequestEvent,
    request: u64,
    offsets: &profiler_common::offsets::GoOffsets,
) -> Result<(), i64> {
    event.method_len = go::read_string(request + offsets.request_method, &mut event.method)?;
    event.proto_major = go::read_u64(request + offsets.request_proto_major)?;
    event.proto_minor = go::read_u64(request + offsets.request_proto_minor)?;
    let url = go::read_u64(request + offsets.request_url)?;
    event.path_len = go::read_string(url + offsets.url_path, &mut event.path)?;
    event.query_len = go::read_string(url + offsets.url_raw_query, &mut event.query)?;
    Ok(())
}
