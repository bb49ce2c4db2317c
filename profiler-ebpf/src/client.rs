//! Probes in client-go programs (controllers on the node): the requests they send, how
//! long client-go's rate limiter held each back, their informers' resyncs and their
//! workqueues' depth. Attached only to the clients asked for (`--client`), each where
//! the kernel emulates the probed instruction, as on the server side.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::uprobe, programs::ProbeContext};
use profiler_common::{
    client::{phase, ClientOffsets, QueueAddEvent, ResyncEvent, ResyncedEvent, ThrottleEvent},
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
        limiter,
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
        limiter: 0,
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
    // SAFETY: as in `try_client_request`.
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
/// reached only for an item not already waiting, with the queue's lock held. The map
/// (`dirty`: the items added and not yet taken) is in RBX; Go keeps its count first in
/// the map's header (`hmap.count`, Swiss `Map.used`), so the queue's depth with this
/// item is that count plus one, exactly.
#[uprobe]
pub fn client_queue_add(ctx: ProbeContext) -> u32 {
    let dirty = go::arg(&ctx, 1);
    let Ok(count) = go::read_u64(dirty) else {
        return 0;
    };
    emit(&QueueAddEvent {
        header: header(
            kind::CLIENT_QUEUE_ADD,
            bpf_get_current_pid_tgid(),
            go::goroutine(&ctx),
        ),
        queue: dirty,
        depth: count + 1,
    });
    0
}
