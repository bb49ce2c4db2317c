//! Capture files: what `apiprof record` saw, for `apiprof report` to aggregate later.
//!
//! JSON lines, one [`Record`] each: a `header` first, then events as they were drained,
//! then an `end` record. A capture cut short (apiprof killed, disk full) has no `end`;
//! everything before the cut still reads.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    analyze::detect::Clock,
    events::decode::{HttpRequest, HttpResponse, Limiter},
    target::symbols::SymbolSource,
};

mod read;
mod rotate;

pub use read::Reader;
pub use rotate::{Rotating, Rotation};

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now on the clock kernel events are stamped with (`bpf_ktime_get_ns`: CLOCK_MONOTONIC).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Capture format version, bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// One line of a capture file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// What was observed and how.
    Header(Header),
    /// A request began.
    HttpRequest(HttpRequest),
    /// A request ended.
    HttpResponse(HttpResponse),
    /// A stack, symbolized, that later records name by `id`.
    Stack(Stack),
    /// A sampled heap allocation.
    Alloc(Alloc),
    /// An on-CPU sample.
    Cpu(Cpu),
    /// A client process was attached to (`--client`).
    Client(Client),
    /// A client sent a request, after its rate limiter let it go.
    ClientRequest(ClientRequest),
    /// A client's informer resynced.
    Resync(ResyncTick),
    /// A client's workqueue took an item.
    QueueAdd(QueueAdd),
    /// A client's workqueue handed an item to a worker.
    QueueGet(QueueGet),
    /// The recording ended.
    End(End),
}

/// A client-go program attached to with client-side probes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// Its process.
    pub pid: u32,
    /// Its executable.
    pub binary: PathBuf,
    /// The Go version it was built with.
    pub go_version: String,
    /// Go functions probed.
    pub probes: Vec<String>,
}

/// A request a client sent (`net/http.(*Transport).roundTrip`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The client's process.
    pub pid: u32,
    /// Monotonic nanoseconds since boot when it was handed to the transport.
    pub ktime_ns: u64,
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query, without the `?`.
    pub query: String,
    /// The User-Agent header.
    pub user_agent: String,
    /// Whether method, path, query or user agent was cut (see [`crate::events::decode::CUT`]).
    pub truncated: bool,
    /// How long client-go's rate limiter held it back, just before; absent for a
    /// request that passed no limiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttled>,
}

/// A rate-limiter wait, as client-go measures it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throttled {
    /// The wait, nanoseconds.
    pub wait_ns: u64,
    /// The limiter's settings, when it is client-go's token bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limiter: Option<Limiter>,
}

/// One informer resync of a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncTick {
    /// The client's process.
    pub pid: u32,
    /// Monotonic nanoseconds since boot when it fired.
    pub ktime_ns: u64,
    /// The informer's FIFO name (`RealFIFO *v1.ConfigMap`); empty when unreadable.
    pub informer: String,
    /// The FIFO's address: two informers of one type differ by it.
    pub fifo: u64,
    /// Objects it handed to the handlers again.
    pub objects: u64,
}

/// A client's workqueue took an item not already waiting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAdd {
    /// The client's process.
    pub pid: u32,
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The queue (its address).
    pub queue: u64,
    /// Items waiting for a worker, this one included.
    pub depth: u64,
}

/// A client's workqueue handed an item to a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueGet {
    /// The client's process.
    pub pid: u32,
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The queue (its address).
    pub queue: u64,
    /// Items still waiting.
    pub depth: u64,
    /// How long the item waited since it was added (as client-go's queue latency
    /// metric counts); absent when its add was not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ns: Option<u64>,
}

/// First record of a capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Observed process.
    pub pid: u32,
    /// Its executable, as /proc/PID/exe named it.
    pub binary: PathBuf,
    /// The name reports give it (see the `target` dimension); empty in captures of
    /// apiprof versions before the daemon, which are named after the binary.
    #[serde(default)]
    pub target: String,
    /// Go version it was built with.
    pub go_version: String,
    /// Where function addresses came from.
    pub symbols: SymbolSource,
    /// Go functions probed.
    pub probes: Vec<String>,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// The event time (monotonic nanoseconds since boot) at `started_unix_ms`, to give
    /// findings Unix times; 0 in captures of apiprof versions before findings.
    #[serde(default)]
    pub started_ktime_ns: u64,
    /// `runtime.MemProfileRate` of the process: on average one allocation sample per
    /// this many bytes; 0 when allocations were not tracked.
    pub mem_profile_rate: u64,
    /// Where `mem_profile_rate` was read: "symtab", "machine code" (stripped binaries),
    /// "GODEBUG" or "default".
    pub mem_profile_rate_source: String,
    /// CPU time each on-CPU sample stands for, nanoseconds; 0 when CPU was not sampled
    /// (and in captures of apiprof versions before CPU sampling).
    #[serde(default)]
    pub cpu_sample_period_ns: u64,
    /// What every report of this target must say about how far its figures can be
    /// trusted (a Go whose layout apiprof assumed: see `offsets::caution`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cautions: Vec<String>,
}

impl Header {
    /// Event time to Unix time, for this capture.
    pub fn clock(&self) -> Clock {
        Clock {
            unix_ms: self.started_unix_ms,
            ktime_ns: self.started_ktime_ns,
        }
    }

    /// The `target` of the capture's requests.
    pub fn target_name(&self) -> String {
        if !self.target.is_empty() {
            return self.target.clone();
        }
        self.binary
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// A symbolized stack, written once before the first record that names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// Its number within the capture.
    pub id: u32,
    /// Go function names, innermost first; `0x…` for an address outside every function.
    pub frames: Vec<String>,
}

/// A sampled heap allocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alloc {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// Allocating goroutine.
    pub goroutine: u64,
    /// The `*http.Request` it worked for; 0 outside any request (background).
    pub request: u64,
    /// Bytes of the sampled allocation.
    pub size: u64,
    /// The [`Stack`] it was made from.
    pub stack_id: u32,
}

/// An on-CPU sample: one sampling period of CPU time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Monotonic nanoseconds since boot.
    pub ktime_ns: u64,
    /// The goroutine on CPU.
    pub goroutine: u64,
    /// The `*http.Request` it worked for; 0 outside any request (background).
    pub request: u64,
    /// Whether the thread was in the kernel (a system call or fault) for it.
    pub kernel: bool,
    /// The [`Stack`] it was on.
    pub stack_id: u32,
}

/// Last record of a complete capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Events the kernel could not hand over (ring buffer full, unreadable request).
    pub dropped_events: u64,
    /// Why recording stopped: "duration", "signal", "target exited" or "rotated".
    pub reason: String,
    /// When, in Unix milliseconds (absent in captures of apiprof versions before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_ms: Option<u64>,
}

/// Reading or writing a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened, read or written.
    #[error("{path}: {error}; check the path and free disk space")]
    Io {
        /// The capture file.
        path: PathBuf,
        /// The I/O error (in the message, so not a source: said once).
        error: std::io::Error,
    },
    /// A line is not a capture record.
    #[error("{path}:{line}:{column}: not an apiprof capture record ({reason}); is this a file written by `apiprof record`?")]
    Parse {
        /// The capture file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column where the JSON decoder stopped.
        column: usize,
        /// What the JSON decoder found, without its position in the line.
        reason: String,
    },
    /// The first record is not a header, or is of another format version.
    #[error("{path}: {reason}")]
    Format {
        /// The capture file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Writes records as they come, flushed at every [`Writer::flush`] so a crash loses at
/// most what was not yet flushed.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Writer {
    /// Creates (truncates) `path` and writes `header`.
    pub fn create(path: &Path, header: Header) -> Result<Self, CaptureError> {
        let io = |error| CaptureError::Io {
            path: path.to_owned(),
            error,
        };
        let out = BufWriter::new(File::create(path).map_err(io)?);
        let mut writer = Self {
            path: path.to_owned(),
            out,
        };
        writer.write(&Record::Header(header))?;
        writer.flush()?;
        Ok(writer)
    }

    /// Appends one record.
    pub fn write(&mut self, record: &Record) -> Result<(), CaptureError> {
        self.write_counted(record).map(drop)
    }

    /// Appends one record; returns the bytes it took.
    pub fn write_counted(&mut self, record: &Record) -> Result<u64, CaptureError> {
        let io = |error| CaptureError::Io {
            path: self.path.clone(),
            error,
        };
        let line = serde_json::to_vec(record).map_err(|e| io(e.into()))?;
        self.out.write_all(&line).map_err(io)?;
        self.out.write_all(b"\n").map_err(io)?;
        Ok(line.len() as u64 + 1)
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|error| CaptureError::Io {
            path: self.path.clone(),
            error,
        })
    }
}
