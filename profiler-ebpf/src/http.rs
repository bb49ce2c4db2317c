//! Probes on Go's `net/http` server: a request starts when its handler does and ends
//! when the handler returns, panics or takes over the connection. Every probe sits
//! where the kernel emulates the probed instruction (a stack check's jump, a CALL):
//! one trap per request at each end, and nothing per header line or per write.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, generated::bpf_get_attach_cookie},
    macros::uprobe,
    programs::ProbeContext,
    EbpfContext,
};
use profiler_common::{
    attach::WriterFields,
    event::{kind, EventHeader, RINGBUF_WAKEUP_BYTES},
    http::{HttpRequestEvent, HttpResponseEvent, WorksFor},
    offsets::GoOffsets,
};

use crate::{
    go, header_map,
    maps::{count_dropped, offsets, EVENTS, WORKS_FOR},
};

/// `func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)` in `net/http`,
/// Go 1.17+ (register ABI): sh in RAX, rw (an interface: type, data) in RBX and RCX,
/// req in RDI. Every request passes here once: HTTP/1.x from `(*conn).serve`, HTTP/2 from
/// `initALPNRequest.ServeHTTP`, on the goroutine that runs the handler. Copies the
/// request line, `Request.RemoteAddr` and the User-Agent header.
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
    let Some(offsets) = offsets((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    let goroutine = go::goroutine(ctx);
    let request = go::arg(ctx, 3);
    let response_writer = go::arg(ctx, 2);
    let goid = go::read_u64(goroutine + offsets.g_goid)?;
    WORKS_FOR.insert(
        goid,
        WorksFor {
            request,
            response_writer,
        },
        0,
    )?;

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
    if let Err(e) = fill_request(event, request, &offsets) {
        // A request we cannot read is not one we can attribute: count it as dropped so
        // the loss stays visible.
        entry.discard(0);
        count_dropped();
        return Err(e);
    }
    entry.submit(wakeup_flags());
    Ok(())
}

fn fill_request(event: &mut HttpRequestEvent, request: u64, offsets: &GoOffsets) -> Result<(), i64> {
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
    let headers = go::read_u64(request + offsets.request_header)?;
    header_map::user_agent(headers, offsets, &mut event.user_agent);
    Ok(())
}

/// The `CALL (*conn).hijacked` in `net/http.(*conn).serve` right after the handler of an
/// HTTP/1 request returned (`if c.hijacked() { return }`), c in RAX, on the connection's
/// goroutine, which served it. The `*response` still holds what the handler wrote;
/// one the handler left without a status gets 200 from `finishRequest` next.
#[uprobe]
pub fn http1_handler_returned(ctx: ProbeContext) -> u32 {
    let _ = try_http1_end(&ctx, false);
    0
}

/// The same CALL in the function `(*conn).serve` defers, which runs as the connection
/// ends: when a request is still in flight there, its handler panicked (or called
/// `runtime.Goexit`) and Go closes the connection.
#[uprobe]
pub fn http1_connection_ended(ctx: ProbeContext) -> u32 {
    let _ = try_http1_end(&ctx, true);
    0
}

fn try_http1_end(ctx: &ProbeContext, aborted: bool) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(offsets) = offsets((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    let goroutine = go::goroutine(ctx);
    let Some(serving) = take_serving(goroutine, &offsets)? else {
        return Ok(());
    };
    let w = serving.response_writer;
    let bytes = go::read_u64(w + offsets.response_written)?;
    let status = if aborted {
        0
    } else if read_bool(w + offsets.response_wrote_header)? {
        go::read_u64(w + offsets.response_status)?
    } else if read_bool(go::arg(ctx, 0) + offsets.conn_hijacked)? {
        0
    } else {
        200
    };
    respond(pid_tgid, goroutine, serving.request, status, bytes);
    Ok(())
}

/// The `CALL (*responseWriter).handlerDone` in the function an HTTP/2 server's
/// `runHandler` defers, taken when the handler returned: the `*responseWriter` in RAX,
/// on the handler's goroutine. Its state still holds what the handler wrote (the
/// cookie says where, see [`WriterFields`]); one the handler left without a status
/// gets 200 from `handlerDone`.
#[uprobe]
pub fn http2_handler_returned(ctx: ProbeContext) -> u32 {
    let _ = try_http2_handler_returned(&ctx);
    0
}

fn try_http2_handler_returned(ctx: &ProbeContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(offsets) = offsets((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    let goroutine = go::goroutine(ctx);
    let Some(serving) = take_serving(goroutine, &offsets)? else {
        return Ok(());
    };
    // SAFETY: a helper without preconditions.
    let fields = WriterFields::from_cookie(unsafe { bpf_get_attach_cookie(ctx.as_ptr()) });
    // responseWriter{rws *responseWriterState}
    let state = go::read_u64(go::arg(ctx, 0))?;
    let bytes = go::read_u64(state + u64::from(fields.wrote_bytes))?;
    let status = if read_bool(state + u64::from(fields.wrote_header))? {
        go::read_u64(state + u64::from(fields.status))?
    } else {
        200
    };
    respond(pid_tgid, goroutine, serving.request, status, bytes);
    Ok(())
}

/// The `CALL runtime.gorecover` in the same deferred function, taken when the handler
/// panicked (or called `runtime.Goexit`): the server resets the stream.
#[uprobe]
pub fn http2_handler_panicked(ctx: ProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(offsets) = offsets((pid_tgid >> 32) as u32) else {
        return 0;
    };
    let goroutine = go::goroutine(&ctx);
    if let Ok(Some(serving)) = take_serving(goroutine, &offsets) {
        respond(pid_tgid, goroutine, serving.request, 0, 0);
    }
    0
}

/// The request `goroutine` serves, if it serves one, which it no longer does.
fn take_serving(goroutine: u64, offsets: &GoOffsets) -> Result<Option<WorksFor>, i64> {
    let goid = go::read_u64(goroutine + offsets.g_goid)?;
    // SAFETY: the value is copied before removal.
    let Some(works_for) = (unsafe { WORKS_FOR.get(goid) }).copied() else {
        return Ok(None);
    };
    if works_for.response_writer == 0 {
        return Ok(None);
    }
    let _ = WORKS_FOR.remove(goid);
    Ok(Some(works_for))
}

fn respond(pid_tgid: u64, goroutine: u64, request: u64, status: u64, bytes: u64) {
    let event = HttpResponseEvent {
        header: header(kind::HTTP_RESPONSE, pid_tgid, goroutine),
        request,
        status,
        bytes,
    };
    if EVENTS
        .output::<HttpResponseEvent>(&event, wakeup_flags())
        .is_err()
    {
        count_dropped();
    }
}

fn read_bool(addr: u64) -> Result<bool, i64> {
    let mut b = [0u8; 1];
    go::read_bytes(addr, 1, &mut b)?;
    Ok(b[0] != 0)
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
