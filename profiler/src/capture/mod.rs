//! Capture files: what `apiprof record` saw, for `apiprof report` to aggregate later.
//!
//! JSON lines, one [`Record`] each: a `header` first, then events as they were drained,
//! then an `end` record. A capture cut short (apiprof killed, disk full) has no `end`;
//! everything before the cut still reads.

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    events::decode::{HttpRequest, HttpResponse},
    target::symbols::SymbolSource,
};

/// Capture format version, bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// One line of a capture file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The recording ended.
    End(End),
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
    /// Go version it was built with.
    pub go_version: String,
    /// Where function addresses came from.
    pub symbols: SymbolSource,
    /// Go functions probed.
    pub probes: Vec<String>,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
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
    /// Why recording stopped: "duration", "signal" or "target exited".
    pub reason: String,
}

/// Reading or writing a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}; check the path and free disk space")]
    Io {
        /// The capture file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a capture record.
    #[error("{path}:{line}: not an apiprof capture record ({source}); is this a file written by `apiprof record`?")]
    Parse {
        /// The capture file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The first record is not a header, or is of another format version.
    #[error("{path}: {reason}; record it again with this apiprof")]
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
        let io = |source| CaptureError::Io {
            path: path.to_owned(),
            source,
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
        let io = |source| CaptureError::Io {
            path: self.path.clone(),
            source,
        };
        serde_json::to_writer(&mut self.out, record).map_err(|e| io(e.into()))?;
        self.out.write_all(b"\n").map_err(io)
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|source| CaptureError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// A capture read back.
#[derive(Debug)]
pub struct Capture {
    /// The header.
    pub header: Header,
    /// Every request start, in file order.
    pub requests: Vec<HttpRequest>,
    /// Every request end, in file order.
    pub responses: Vec<HttpResponse>,
    /// Every allocation sample, in file order.
    pub allocs: Vec<Alloc>,
    /// Every on-CPU sample, in file order.
    pub cpu: Vec<Cpu>,
    /// Stacks by id.
    pub stacks: Vec<Stack>,
    /// The end record; `None` when the capture was cut short.
    pub end: Option<End>,
}

impl Capture {
    /// Reads a whole capture. A last line cut mid-write (no newline) is ignored, as the
    /// writer was killed while writing it.
    pub fn read(path: &Path) -> Result<Self, CaptureError> {
        let io = |source| CaptureError::Io {
            path: path.to_owned(),
            source,
        };
        let format = |reason: String| CaptureError::Format {
            path: path.to_owned(),
            reason,
        };
        let mut lines = BufReader::new(File::open(path).map_err(io)?)
            .lines()
            .enumerate()
            .peekable();
        let mut header = None;
        let mut requests = Vec::new();
        let mut responses = Vec::new();
        let mut allocs = Vec::new();
        let mut cpu = Vec::new();
        let mut stacks = Vec::new();
        let mut end = None;
        while let Some((index, line)) = lines.next() {
            let line = line.map_err(io)?;
            let record = match serde_json::from_str::<Record>(&line) {
                Ok(record) => record,
                Err(_) if lines.peek().is_none() && header.is_some() => break,
                Err(source) => {
                    return Err(CaptureError::Parse {
                        path: path.to_owned(),
                        line: index + 1,
                        source,
                    })
                }
            };
            match record {
                Record::Header(h) if index == 0 => header = Some(h),
                Record::Header(_) => {
                    return Err(format(format!("line {}: a second header", index + 1)))
                }
                _ if header.is_none() => {
                    return Err(format("the first record is not a header".into()))
                }
                Record::HttpRequest(r) => requests.push(r),
                Record::HttpResponse(r) => responses.push(r),
                Record::Stack(s) => stacks.push(s),
                Record::Alloc(a) => allocs.push(a),
                Record::Cpu(c) => cpu.push(c),
                Record::End(e) => end = Some(e),
            }
        }
        let header = header.ok_or_else(|| format("the file is empty".into()))?;
        if header.format_version != FORMAT_VERSION {
            return Err(format(format!(
                "format version {} (this apiprof reads {FORMAT_VERSION})",
                header.format_version
            )));
        }
        Ok(Self {
            header,
            requests,
            responses,
            allocs,
            cpu,
            stacks,
            end,
        })
    }
}
