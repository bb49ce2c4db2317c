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
    event::{kind, EventHeader, WAKEUP_EVERY},
    http::{HttpRequestEvent, HttpResponseEvent},
    offsets::{GoOffsets, REQUEST_WINDOW, RESPONSE_WINDOW, URL_WINDOW, WRITER_STATE_WINDOW},
};

use crate::{
    go, header_map,
    maps::{count_dropped, offsets, EVENTS, SUBMITTED},
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
    report_request(ctx, kind::HTTP_REQUEST, go::arg(ctx, 3), go::arg(ctx, 2))
}

/// Reports the `*http.Request` at `request` as an event of `kind`: a request a server
/// began serving (with its `ResponseWriter`'s data pointer) or one a client sends (0).
pub fn report_request(
    ctx: &ProbeContext,
    kind: u32,
    request: u64,
    response_writer: u64,
) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let offsets = offsets();
    let goroutine = go::goroutine(ctx);
    let Some(mut entry) = EVENTS.reserve::<HttpRequestEvent>(0) else {
        count_dropped();
        return Ok(());
    };
    // SAFETY: reserved ring-buffer memory large enough for the event; every field the
    // decoder reads is written below before submit.
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(kind, pid_tgid, goroutine);
    event.request = request;
    event.response_writer = response_writer;
    event.goid = go::read_u64(goroutine + offsets.g_goid).unwrap_or(0);
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

/// Copies the request line, the peer's address and the User-Agent: the `Request` and
/// its `URL` in one read each, then the strings they point to.
fn fill_request(
    event: &mut HttpRequestEvent,
    request: u64,
    offsets: &GoOffsets,
) -> Result<(), i64> {
    let fields = go::window(request, REQUEST_WINDOW)?;
    event.proto_major = go::field(fields, offsets.request_proto_major);
    event.proto_minor = go::field(fields, offsets.request_proto_minor);
    let url = go::field(fields, offsets.request_url);
    let headers = go::field(fields, offsets.request_header);
    event.method_len = go::string(fields, offsets.request_method as usize, &mut event.method)?;
    // The connection's peer as the server wrote it ("IP:port", "[IPv6]:port") before any
    // handler ran, so no middleware has rewritten it yet. Only the address string.
    event.remote_addr_len = go::string(
        fields,
        offsets.request_remote_addr as usize,
        &mut event.remote_addr,
    )?;
    event._pad = 0;
    let fields = go::window(url, URL_WINDOW)?;
    event.path_len = go::string(fields, offsets.url_path as usize, &mut event.path)?;
    event.query_len = go::string(fields, offsets.url_raw_query as usize, &mut event.query)?;
    header_map::user_agent(headers, offsets, &mut event.user_agent);
    Ok(())
}

/// The `CALL (*conn).hijacked` in `net/http.(*conn).serve` right after the handler of an
/// HTTP/1 request returned (`if c.hijacked() { return }`), c in RAX, on the connection's
/// goroutine, which served it. Its `*response` (`c.curReq`) still holds what the handler
/// wrote; one the handler left without a status gets 200 from `finishRequest` next.
#[uprobe]
pub fn http1_handler_returned(ctx: ProbeContext) -> u32 {
    let _ = try_http1_end(&ctx, false);
    0
}

/// The same CALL in the function `(*conn).serve` defers, which runs as the connection
/// ends: when its last request did not finish (`handlerDone` unset), its handler
/// panicked (or called `runtime.Goexit`) and Go closes the connection.
#[uprobe]
pub fn http1_connection_ended(ctx: ProbeContext) -> u32 {
    let _ = try_http1_end(&ctx, true);
    0
}

fn try_http1_end(ctx: &ProbeContext, aborted: bool) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let offsets = offsets();
    let goroutine = go::goroutine(ctx);
    // conn.curReq holds the *response the handler wrote to (nil before the first
    // request).
    let conn = go::arg(ctx, 0);
    let w = go::read_u64(conn + offsets.conn_cur_req)?;
    if w == 0 {
        return Ok(());
    }
    let fields = go::window(w, RESPONSE_WINDOW)?;
    if aborted {
        // A connection ending after its last request finished (or was hijacked, and
        // reported then) is no news; userspace ignores an end without a request.
        if go::field(fields, offsets.response_handler_done) as u32 == 0 {
            respond(
                pid_tgid,
                goroutine,
                0,
                go::field(fields, offsets.response_written),
            );
        }
        return Ok(());
    }
    let hijacked = read_bool(conn + offsets.conn_hijacked)?;
    let bytes = go::field(fields, offsets.response_written);
    let status = if go::field(fields, offsets.response_wrote_header) as u8 != 0 {
        go::field(fields, offsets.response_status)
    } else if hijacked {
        0
    } else {
        200
    };
    respond(pid_tgid, goroutine, status, bytes);
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
    // SAFETY: a helper without preconditions.
    let fields = WriterFields::from_cookie(unsafe { bpf_get_attach_cookie(ctx.as_ptr()) });
    // responseWriter{rws *responseWriterState}
    let state = go::read_u64(go::arg(ctx, 0))?;
    let window = go::window(state + u64::from(fields.status), WRITER_STATE_WINDOW)?;
    let at = |field: u16| u64::from(field - fields.status);
    let bytes = go::field(window, at(fields.wrote_bytes));
    let status = if go::field(window, at(fields.wrote_header)) as u8 != 0 {
        go::field(window, 0)
    } else {
        200
    };
    respond(
        bpf_get_current_pid_tgid(),
        go::goroutine(ctx),
        status,
        bytes,
    );
    Ok(())
}

/// The `CALL runtime.gorecover` in the same deferred function, taken when the handler
/// panicked (or called `runtime.Goexit`): the server resets the stream.
#[uprobe]
pub fn http2_handler_panicked(ctx: ProbeContext) -> u32 {
    respond(bpf_get_current_pid_tgid(), go::goroutine(&ctx), 0, 0);
    0
}

/// Reports the end of the request `goroutine` serves.
fn respond(pid_tgid: u64, goroutine: u64, status: u64, bytes: u64) {
    let event = HttpResponseEvent {
        header: header(kind::HTTP_RESPONSE, pid_tgid, goroutine),
        status,
        bytes,
    };
    emit(&event);
}

/// Hands a small event to userspace (large ones are built in place with `reserve`).
pub fn emit<T>(event: &T) {
    if EVENTS.output::<T>(event, wakeup_flags()).is_err() {
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

/// Wakes userspace once every [`WAKEUP_EVERY`] events of a CPU; it also drains on a
/// short timer. Deciding by how much is waiting would read the consumer's position, a
/// cache line userspace writes: measured, that read cost more than half of a
/// request-end program's time; a per-CPU count costs next to nothing.
pub fn wakeup_flags() -> u64 {
    let Some(count) = SUBMITTED.get_ptr_mut(0) else {
        return u64::from(BPF_RB_NO_WAKEUP);
    };
    // SAFETY: per-CPU slot, no concurrent writer on this CPU.
    let count = unsafe {
        *count += 1;
        *count
    };
    u64::from(if count % WAKEUP_EVERY == 0 {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    })
}
