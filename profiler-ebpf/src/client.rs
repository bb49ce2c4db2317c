//! Probes in client-go programs (controllers on the node): the requests they send, how
//! long client-go's rate limiter held each back, their informers' resyncs and their
//! workqueues' depth. Attached only to the clients asked for (`--client`), each where
//! the kernel emulates the probed instruction, as on the server side.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_get_attach_cookie},
    macros::uprobe,
    programs::ProbeContext,
    EbpfContext,
};
use profiler_common::{
    client::{
        key_kind, phase, queue_op, ClientOffsets, QueueEvent, ResyncEvent, ResyncedEvent,
        ThrottleEvent, ITEM_CAP,
    },
    event::kind,
};

use crate::{
    go,
    http::{emit, header, report_request, wakeup_flags},
    maps::{count_dropped, EVENTS},
};

/// The client-go offsets of the observed client, set at load time.
#[unsafe(no_mangle)]
static CLIENT_OFFSETS: ClientOffsets = ClientOffsets::ZERO;

fn client_offsets() -> ClientOffsets {
    // SAFETY: a constant set at load time; the volatile read keeps the compiler from
    // folding the zero it was compiled with.
    unsafe { core::ptr::read_volatile(&CLIENT_OFFSETS) }
}

/// `func (t *Transport) roundTrip(req *Request) (*Response, error)` in `net/http`: req
/// in RBX, on the goroutine that sends it (client-go's, through its wrappers, after its
/// rate limiter let it go). Copies the request line and User-Agent, as the server side
/// does.
#[uprobe]
pub fn client_request(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let _ = report_request(&ctx, kind::CLIENT_REQUEST, go::arg(&ctx, 1), 0);
    0
}

/// `func (r *Request) tryThrottleWithInfo(ctx context.Context, retryInfo string) error`
/// in `k8s.io/client-go/rest`: r in RAX. A request without a limiter is not held back
/// and reports nothing. Reads the token bucket behind the limiter interface:
/// `tokenBucketRateLimiter{limiter *rate.Limiter; qps float32}` and
/// `rate.Limiter{mu sync.Mutex; limit float64; burst int}`.
#[uprobe]
pub fn client_wait(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let _ = try_client_wait(&ctx);
    0
}

fn try_client_wait(ctx: &ProbeContext) -> Result<(), i64> {
    let request = go::arg(ctx, 0);
    let limiter = go::read_u64(request + client_offsets().request_rate_limiter + 8)?;
    if limiter == 0 {
        return Ok(());
    }
    let bucket = go::read_u64(limiter).unwrap_or(0);
    let (limit_bits, burst) = if bucket == 0 {
        (0, 0)
    } else {
        (
            go::read_u64(bucket + 8).unwrap_or(0),
            go::read_u64(bucket + 16).unwrap_or(0),
        )
    };
    let qps_bits = go::read_u64(limiter + 8).map_or(0, |w| w & 0xffff_ffff);
    emit(&ThrottleEvent {
        header: header(
            kind::CLIENT_THROTTLE,
            bpf_get_current_pid_tgid(),
            go::goroutine(ctx),
        ),
        phase: phase::START,
        limit_bits,
        burst,
        qps_bits,
    });
    Ok(())
}

/// The `CALL time.Since` in the same function, right after the limiter's `Wait`
/// returned: the wait's end, as client-go measures it.
#[uprobe]
pub fn client_waited(ctx: ProbeContext) -> u32 {
    emit(&ThrottleEvent {
        header: header(
            kind::CLIENT_THROTTLE,
            bpf_get_current_pid_tgid(),
            go::goroutine(&ctx),
        ),
        phase: phase::END,
        limit_bits: 0,
        burst: 0,
        qps_bits: 0,
    });
    0
}

/// `func (f *RealFIFO) Resync() error` and `func (f *DeltaFIFO) Resync() error` in
/// `k8s.io/client-go/tools/cache`: f in RAX, on the reflector's resync goroutine.
#[uprobe]
pub fn client_resync(ctx: ProbeContext) -> u32 {
    if go::restarts(&ctx) {
        return 0;
    }
    let fifo = go::arg(&ctx, 0);
    let Some(mut entry) = EVENTS.reserve::<ResyncEvent>(0) else {
        count_dropped();
        return 0;
    };
    // SAFETY: reserved ring-buffer memory large enough for the event; every field the
    // decoder reads is written below before submit.
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(
        kind::CLIENT_RESYNC,
        bpf_get_current_pid_tgid(),
        go::goroutine(&ctx),
    );
    event.fifo = fifo;
    event.name_len =
        u64::from(go::read_string(fifo + client_offsets().fifo_name, &mut event.name).unwrap_or(0));
    entry.submit(wakeup_flags());
    0
}

/// The `CALL (*sharedProcessor).distribute` in `(*sharedIndexInformer).OnUpdate`:
/// the notification in RBX and RCX, `sync` in DI (set when old and new have one
/// resourceVersion: a resync). Only resyncs are reported.
#[uprobe]
pub fn client_resynced(ctx: ProbeContext) -> u32 {
    if go::arg(&ctx, 3) as u8 == 0 {
        return 0;
    }
    emit(&ResyncedEvent {
        header: header(
            kind::CLIENT_RESYNCED,
            bpf_get_current_pid_tgid(),
            go::goroutine(&ctx),
        ),
    });
    0
}

/// The `CALL runtime.mapassign*` in `func (q *Typed[T]) Add(item T)` of
/// `k8s.io/client-go/util/workqueue` (each shape instantiation): `q.dirty.Insert(item)`,
/// reached only for an item not already waiting; and the `CALL runtime.mapdelete*` in
/// `Get`: `q.dirty.Delete(item)` as it hands the item to a worker. Both with the
/// queue's lock held. The map (`dirty`: the items added and not yet taken) is in RBX,
/// the item in RCX (and its length in RDI for a string; the cookie says how, see
/// [`key_kind`], and which operation, see [`queue_op`]). Go keeps a map's count first in
/// its header (`hmap.count`, Swiss `Map.used`), so the depth is exact.
#[uprobe]
pub fn client_queue(ctx: ProbeContext) -> u32 {
    // SAFETY: a helper without preconditions.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let (op, key) = (cookie >> 8, cookie & 0xff);
    let dirty = go::arg(&ctx, 1);
    let Ok(count) = go::read_u64(dirty) else {
        return 0;
    };
    let mut event = QueueEvent {
        header: header(
            kind::CLIENT_QUEUE,
            bpf_get_current_pid_tgid(),
            go::goroutine(&ctx),
        ),
        op,
        queue: dirty,
        // The item is in the set at a get, and not yet at an add.
        depth: if op == queue_op::ADD {
            count + 1
        } else {
            count.saturating_sub(1)
        },
        item_len: 0,
        item: [0; ITEM_CAP],
    };
    let item = go::arg(&ctx, 2);
    event.item_len = match key {
        key_kind::STRING => {
            u64::from(go::read_bytes(item, go::arg(&ctx, 3), &mut event.item).unwrap_or(0))
        }
        key_kind::WORD64 => {
            event.item[..8].copy_from_slice(&item.to_le_bytes());
            8
        }
        key_kind::WORD32 => {
            event.item[..4].copy_from_slice(&(item as u32).to_le_bytes());
            4
        }
        _ => {
            let n = go::read_bytes(item, ITEM_CAP as u64, &mut event.item).unwrap_or(0);
            u64::from(n)
        }
    };
    emit(&event);
    0
}
