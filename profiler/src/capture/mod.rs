//! Capture files: what `apiprof record` saw, for `apiprof report` to aggregate later.
//!
//! JSON lines, one [`Record`] each: a `header` first, then events as they were drained,
//! then an `end` record. A capture cut short (apiprof killed, disk full) has no `end`;
//! everything before the cut still reads.

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Read as _, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    analyze::detect::Clock,
    events::decode::{HttpRequest, HttpResponse, Limiter},
    target::symbols::SymbolSource,
};

mod rotate;

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

/// The longest line a capture holds, with room to spare: a record is at most some tens
/// of kilobytes (a request's strings are cut to a few hundred bytes each, a stack to 64
/// frames). A longer line is not apiprof's, and reading it whole would take unbounded
/// memory.
const MAX_LINE: u64 = 16 << 20;

/// A capture's lines, as bytes: the JSON decoder names a non-UTF-8 byte's line, which a
/// reader of text would report as an I/O error of the file.
struct Lines {
    input: Box<dyn BufRead + Send>,
    /// The 1-based number of the line read last.
    number: usize,
}

/// One line of a capture.
struct Line {
    /// 1-based.
    number: usize,
    /// Without its newline.
    bytes: Vec<u8>,
    /// Ended by a newline: the writer finished it.
    complete: bool,
}

impl CaptureError {
    /// Line `line` of the capture at `path` is not a record: `error` says why.
    fn parse(path: &Path, line: usize, error: &serde_json::Error) -> Self {
        let reason = error.to_string();
        let at = format!(" at line {} column {}", error.line(), error.column());
        Self::Parse {
            path: path.to_owned(),
            line,
            column: error.column(),
            reason: reason.strip_suffix(&at).unwrap_or(&reason).to_owned(),
        }
    }
}

impl Lines {
    fn next(&mut self, path: &Path) -> Result<Option<Line>, CaptureError> {
        let mut bytes = Vec::new();
        let read = (&mut self.input)
            .take(MAX_LINE)
            .read_until(b'\n', &mut bytes)
            .map_err(|error| CaptureError::Io {
                path: path.to_owned(),
                error,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        if !complete && read as u64 == MAX_LINE {
            return Err(CaptureError::Format {
                path: path.to_owned(),
                reason: format!(
                    "line {} is longer than {} MiB: not a capture written by `apiprof record`",
                    self.number,
                    MAX_LINE >> 20
                ),
            });
        }
        Ok(Some(Line {
            number: self.number,
            bytes,
            complete,
        }))
    }
}

/// The record on the next of `lines`; `None` at the end, or for a last line cut
/// mid-write (no newline), as the writer was killed while writing it.
fn next_record(path: &Path, lines: &mut Lines) -> Result<Option<Record>, CaptureError> {
    let Some(line) = lines.next(path)? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Record>(&line.bytes) {
        Ok(record) => Ok(Some(record)),
        Err(_) if line.number > 1 && !line.complete => Ok(None),
        Err(error) => Err(CaptureError::parse(path, line.number, &error)),
    }
}

/// Reads a capture record by record, so a capture of any size reads in bounded memory.
pub struct Reader {
    path: PathBuf,
    lines: Lines,
    header: Header,
}

impl Reader {
    /// Opens the capture at `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|error| CaptureError::Io {
            path: path.to_owned(),
            error,
        })?;
        Self::from_reader(path, BufReader::new(file))
    }

    /// Reads the capture `input`, read from `path` (named in errors), and its header.
    pub fn from_reader(
        path: &Path,
        input: impl BufRead + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let format = |reason: String| CaptureError::Format {
            path: path.to_owned(),
            reason,
        };
        let mut lines = Lines {
            input: Box::new(input),
            number: 0,
        };
        // The version first: a newer format's header may not parse as this one's.
        let first = lines.next(path)?;
        if let Some(first) = &first {
            let version = serde_json::from_slice::<serde_json::Value>(&first.bytes)
                .ok()
                .and_then(|v| v.get("format_version")?.as_u64());
            if let Some(version) = version.filter(|v| *v > u64::from(FORMAT_VERSION)) {
                return Err(format(format!(
                    "written by a newer apiprof (capture format {version}; this apiprof reads format {FORMAT_VERSION}): report it with the apiprof that recorded it, or a newer one"
                )));
            }
        }
        let record_again = "; record it again with this apiprof";
        let header = match first.map(|line| serde_json::from_slice::<Record>(&line.bytes)) {
            Some(Ok(Record::Header(header))) => header,
            Some(Err(error)) => return Err(CaptureError::parse(path, 1, &error)),
            Some(_) => {
                let reason = format!("the first record is not a header{record_again}");
                return Err(format(reason));
            }
            None => return Err(format(format!("the file is empty{record_again}"))),
        };
        let reader = Self {
            path: path.to_owned(),
            lines,
            header,
        };
        if reader.header.format_version != FORMAT_VERSION {
            return Err(format(format!(
                "capture format {} (this apiprof reads format {FORMAT_VERSION}){record_again}",
                reader.header.format_version
            )));
        }
        Ok(reader)
    }

    /// The capture's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record after the header; `None` at the end (see [`next_record`]).
    pub fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        match next_record(&self.path, &mut self.lines)? {
            Some(Record::Header(_)) => Err(CaptureError::Format {
                path: self.path.clone(),
                reason: "a second header".into(),
            }),
            record => Ok(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader of `header` then `rest`, as a file would hand them.
    fn reader(rest: &[u8]) -> Result<Reader, CaptureError> {
        let header = Record::Header(crate::analyze::aggregate::tests::header());
        let mut bytes = serde_json::to_vec(&header).unwrap();
        bytes.push(b'\n');
        bytes.extend_from_slice(rest);
        Reader::from_reader(Path::new("c.jsonl"), std::io::Cursor::new(bytes))
    }

    #[test]
    fn a_line_cut_mid_write_ends_the_capture_and_a_damaged_one_is_named() {
        let end = br#"{"type":"end","dropped_events":0,"reason":"signal"}"#;
        // Cut: no newline after the partial record.
        let mut cut = reader(&end[..20]).unwrap();
        assert!(cut.next_record().unwrap().is_none());
        // The same bytes with their newline: written whole, so damaged.
        let mut damaged = reader(&[&end[..20], b"\n"].concat()).unwrap();
        let error = damaged.next_record().unwrap_err().to_string();
        assert!(
            error.starts_with(
                "c.jsonl:2:20: not an apiprof capture record (EOF while parsing a string);"
            ),
            "{error}"
        );
        // Not UTF-8: named by line and column like any other damage.
        let mut bytes = reader(b"{\"type\":\"\xff\"}\n").unwrap();
        let error = bytes.next_record().unwrap_err().to_string();
        assert!(error.starts_with("c.jsonl:2:"), "{error}");
        let mut whole = reader(&[&end[..], b"\n"].concat()).unwrap();
        assert!(matches!(whole.next_record(), Ok(Some(Record::End(_)))));
    }

    #[test]
    fn a_line_longer_than_any_record_is_refused_unread() {
        let long = vec![b' '; MAX_LINE as usize + 1];
        let error = reader(&long)
            .unwrap()
            .next_record()
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "c.jsonl: line 2 is longer than 16 MiB: not a capture written by `apiprof record`"
        );
    }
}
