//! Where client-go keeps what the client-side probes read, in the client-go versions
//! whose layout they know (0.31 to 0.36: the FIFOs open with their `klog.Logger`).
//! Userspace checks what it reads: a FIFO name that is not `RealFIFO …` or
//! `DeltaFIFO …` names no informer, and a limiter whose two rates disagree is no token
//! bucket. `rest.Request.rateLimiter` is not here: apiprof reads it from the machine
//! code of the client's own `tryThrottleWithInfo`; nor is anything of the workqueue: its
//! probe reads the map `Add` hands to the runtime.

/// `RealFIFO.name` and `DeltaFIFO.name`: after `logger klog.Logger` (`logr.Logger`: a
/// `LogSink` interface and a level, 24 bytes).
pub const FIFO_NAME: u64 = 24;
