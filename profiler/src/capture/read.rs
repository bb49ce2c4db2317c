//! Reading a capture back, record by record, in bounded memory: a line cut mid-write
//! ends it, a damaged one is named by line and column.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read as _},
    path::{Path, PathBuf},
};

use super::{CaptureError, Header, Record, FORMAT_VERSION};

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
