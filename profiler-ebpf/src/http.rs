//! Probes on Go's `net/http` server: request start and end, and what the handler wrote.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::uprobe,
    programs::ProbeContext,
};
use profiler_common::{
    event::{kind, EventHeader, RINGBUF_WAKEUP_BYTES},
    http::{HttpRequestEvent, HttpResponseEvent, Inflight, Response},
    offsets::GoOffsets,
};

use crate::{
    go,
    maps::{
        count_dropped, offsets, EVENTS, INFLIGHT, REQUEST_OF, RESPONSES, UA_BY_GOROUTINE,
        UA_BY_REQUEST,
    },
};

/// `func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)` in `net/http`,
/// Go 1.17+ (register ABI): sh in RAX, rw (an interface: type, data) in RBX and RCX,
/// req in RDI. Every request passes here once: HTTP/1.x from `(*conn).serve`, HTTP/2 from
/// `initALPNRequest.ServeHTTP`, on the goroutine that runs the handler. Copies the
/// request line, `Request.RemoteAddr` and the User-Agent parked for it.
#[uprobe]
pub fn http_serve(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    match try_http_serve(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_http_serve(ctx: &ProbeContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let Some(offsets) = offsets(tgid) else {
        return Ok(());
    };
    let goroutine = go::goroutine(ctx);
    let request = go::arg(ctx, 3);
    let response_writer = go::arg(ctx, 2);
    let inflight = Inflight {
        request,
        response_writer,
    };
    INFLIGHT.insert(goroutine, inflight, 0)?;
    REQUEST_OF.insert(goroutine, request, 0)?;
    RESPONSES.insert(response_writer, Response::default(), 0)?;

    let Some(mut entry) = EVENTS.reserve::<HttpRequestEvent>(0) else {
        count_dropped();
        return Ok(());
    };
    // SAFETY: reserved ring-buffer memory large enough for the event; every field the
    // decoder reads is written below before submit.
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(kind::HTTP_REQUEST, pid_tgid, goroutine);
    event.request = request;
    event.response_writer = response_writer;
    if let Err(e) = fill_request(event, request, goroutine, &offsets) {
        // A request we cannot read is not one we can attribute: count it as dropped so
        // the loss stays visible.
        entry.discard(0);
        count_dropped();
        return Err(e);
    }
    entry.submit(wakeup_flags());
    Ok(())
}

fn fill_request(
    event: &mut HttpRequestEvent,
    request: u64,
    goroutine: u64,
    offsets: &GoOffsets,
) -> Result<(), i64> {
    event.method_len = go::read_string(request + offsets.request_method, &mut event.method)?;
    event.proto_major = go::read_u64(request + offsets.request_proto_major)?;
    event.proto_minor = go::read_u64(request + offsets.request_proto_minor)?;
    let url = go::read_u64(request + offsets.request_url)?;
    event.path_len = go::read_string(url + offsets.url_path, &mut event.path)?;
    event.query_len = go::read_string(url + offsets.url_raw_query, &mut event.query)?;
    // The connection's peer as the server wrote it ("IP:port", "[IPv6]:port") before any
    // handler ran, so no middleware has rewritten it yet. Only the address string.
    event.remote_addr_len = go::read_string(
        request + offsets.request_remote_addr,
        &mut event.remote_addr,
    )?;
    event._pad = 0;
    // HTTP/2 values were re-keyed to the request's URL when the request was created;
    // HTTP/1 values wait on the connection's goroutine, which serves the request. Either
    // is claimed once.
    // SAFETY: values are copied before removal.
    let user_agent = if event.proto_major == 2 {
        let ua = unsafe { UA_BY_REQUEST.get(url) }.copied();
        let _ = UA_BY_REQUEST.remove(url);
        ua
    } else {
        let ua = unsafe { UA_BY_GOROUTINE.get(goroutine) }.copied();
        let _ = UA_BY_GOROUTINE.remove(goroutine);
        ua
    };
    match user_agent {
        Some(ua) => event.user_agent = ua,
        None => event.user_agent.len = 0,
    }
    Ok(())
}

/// Attached to every RET instruction of `net/http.serverHandler.ServeHTTP` (never as a
/// uretprobe: Go moves stacks). The goroutine is the one that entered.
#[uprobe]
pub fn http_serve_return(ctx: ProbeContext) -> u32 {
    match try_http_serve_return(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_http_serve_return(ctx: &ProbeContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let goroutine = go::goroutine(ctx);
    // SAFETY: values are copied before removal.
    let Some(inflight) = (unsafe { INFLIGHT.get(goroutine) }).copied() else {
        return Ok(());
    };
    let _ = INFLIGHT.remove(goroutine);
    let _ = REQUEST_OF.remove(goroutine);
    let response = unsafe { RESPONSES.get(inflight.response_writer) }
        .copied()
        .unwrap_or_default();
    let _ = RESPONSES.remove(inflight.response_writer);
    let event = HttpResponseEvent {
        header: header(kind::HTTP_RESPONSE, pid_tgid, goroutine),
        request: inflight.request,
        response,
    };
    if EVENTS
        .output::<HttpResponseEvent>(&event, wakeup_flags())
        .is_err()
    {
        count_dropped();
    }
    Ok(())
}

/// `func (w *response) WriteHeader(code int)` (HTTP/1) and
/// `func (w *http2responseWriter) WriteHeader(code int)` (HTTP/2): w in RAX, code in RBX.
/// The first final (>= 200) code wins, as in Go.
#[uprobe]
pub fn http_write_header(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let writer = go::arg(&ctx, 0);
    let code = go::arg(&ctx, 1);
    if let Some(response) = RESPONSES.get_ptr_mut(writer) {
        // SAFETY: map value of this writer; Go serializes calls on one writer.
        let response = unsafe { &mut *response };
        if response.status == 0 && code >= 200 {
            response.status = code;
        }
    }
    0
}

/// `func (w *response) write(lenData int, dataB []byte, dataS string) (int, error)` and
/// its HTTP/2 twin on `*http2responseWriter`: w in RAX, lenData in RBX. Every
/// `Write`/`WriteString` of a handler goes through it.
#[uprobe]
pub fn http_write(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let writer = go::arg(&ctx, 0);
    let len = go::arg(&ctx, 1);
    if let Some(response) = RESPONSES.get_ptr_mut(writer) {
        // SAFETY: as in `http_write_header`.
        let response = unsafe { &mut *response };
        response.bytes += len;
        response.writes += 1;
    }
    0
}

pub fn header(kind: u32, pid_tgid: u64, goroutine: u64) -> EventHeader {
    EventHeader {
        kind,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        _pad: 0,
        // SAFETY: a helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        goroutine,
    }
}

/// Wake userspace only once much is waiting; it also drains on a timer.
pub fn wakeup_flags() -> u64 {
    u64::from(if EVENTS.query(0) >= RINGBUF_WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    })
}
