//! Size-bounded, rotating capture files for the daemon (`apiprof daemon --capture DIR`):
//! each file is a complete capture `apiprof report` reads on its own (its header, the
//! stacks its samples use, an end record), and the directory keeps the newest few.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use super::{CaptureError, End, Header, Record, Stack, Writer};
use crate::events::drain::Consumer;

/// How much capture the daemon keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The directory of capture files.
    pub dir: PathBuf,
    /// A file is closed and a new one begun past this many bytes.
    pub max_file_bytes: u64,
    /// Files kept in `dir` (of every target); the oldest go first.
    pub max_files: usize,
}

/// Writes one target's records into rotating files.
pub struct Rotating {
    rotation: Rotation,
    header: Header,
    writer: Writer,
    written: u64,
    /// Every stack so far, to write into each new file before its first use.
    stacks: HashMap<u32, Stack>,
    in_file: HashSet<u32>,
    dropped_events: u64,
}

impl Rotating {
    /// Begins the first file of the target `header` describes.
    pub fn create(rotation: Rotation, header: Header) -> Result<Self, CaptureError> {
        std::fs::create_dir_all(&rotation.dir).map_err(|error| CaptureError::Io {
            path: rotation.dir.clone(),
            error,
        })?;
        let writer = Writer::create(&file_name(&rotation.dir, &header), header.clone())?;
        Ok(Self {
            rotation,
            header,
            writer,
            written: 0,
            stacks: HashMap::new(),
            in_file: HashSet::new(),
            dropped_events: 0,
        })
    }

    fn rotate(&mut self) -> Result<(), CaptureError> {
        self.writer.write(&Record::End(End {
            dropped_events: self.dropped_events,
            reason: "rotated".into(),
            unix_ms: Some(super::unix_ms()),
        }))?;
        self.writer.flush()?;
        self.header.started_unix_ms = super::unix_ms();
        self.header.started_ktime_ns = super::monotonic_ns();
        let path = file_name(&self.rotation.dir, &self.header);
        self.writer = Writer::create(&path, self.header.clone())?;
        self.written = 0;
        self.in_file.clear();
        prune(&self.rotation)
    }

    fn write(&mut self, record: &Record) -> Result<(), CaptureError> {
        self.written += self.writer.write_counted(record)?;
        Ok(())
    }
}

impl Consumer for Rotating {
    fn consume(&mut self, record: Record) -> Result<(), CaptureError> {
        if self.written >= self.rotation.max_file_bytes {
            self.rotate()?;
        }
        let stack_id = match &record {
            Record::Stack(stack) => {
                self.stacks.insert(stack.id, stack.clone());
                self.in_file.insert(stack.id);
                None
            }
            Record::Alloc(a) => Some(a.stack_id),
            Record::Cpu(c) => Some(c.stack_id),
            _ => None,
        };
        if let Some(id) = stack_id.filter(|id| !self.in_file.contains(id)) {
            if let Some(stack) = self.stacks.get(&id).cloned() {
                self.write(&Record::Stack(stack))?;
                self.in_file.insert(id);
            }
        }
        self.write(&record)
    }

    fn tick(&mut self, dropped_events: u64) -> Result<(), CaptureError> {
        self.dropped_events = dropped_events;
        self.writer.flush()
    }
}

/// `DIR/apiprof-TARGET-PID-UNIXMS.jsonl`: sorted by name within a target, oldest first.
fn file_name(dir: &Path, header: &Header) -> PathBuf {
    let target: String = header
        .target_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!(
        "apiprof-{target}-{}-{:013}.jsonl",
        header.pid, header.started_unix_ms
    ))
}

/// Deletes the oldest capture files of `rotation.dir` beyond `max_files`.
fn prune(rotation: &Rotation) -> Result<(), CaptureError> {
    let io = |error| CaptureError::Io {
        path: rotation.dir.clone(),
        error,
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&rotation.dir)
        .map_err(io)?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("apiprof-") && name.ends_with(".jsonl")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(rotation.max_files);
    for (_, path) in files.into_iter().take(excess) {
        std::fs::remove_file(&path).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_capture_files_and_nothing_else_is_touched() {
        let dir = std::env::temp_dir().join(format!("apiprof-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join(format!("apiprof-t-1-{i:013}.jsonl")), "").unwrap();
            // Distinct modification times, oldest first.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        prune(&Rotation {
            dir: dir.clone(),
            max_file_bytes: 1,
            max_files: 3,
        })
        .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            left,
            [
                "apiprof-t-1-0000000000002.jsonl",
                "apiprof-t-1-0000000000003.jsonl",
                "apiprof-t-1-0000000000004.jsonl",
                "notes.txt"
            ]
        );
    }
}
