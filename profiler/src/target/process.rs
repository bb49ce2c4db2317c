//! The observed process: its executable, symbols and runtime settings.

use std::{
    fs::File,
    os::unix::fs::{FileExt, MetadataExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use procfs::process::MMapPath;
use tracing::debug;

use crate::{
    target::disasm::global_compared_with_one,
    target::symbols::{GoBinary, SymbolError},
};

/// Go's default `runtime.MemProfileRate`: one sample per 512 KiB allocated on average.
pub const DEFAULT_MEM_PROFILE_RATE: u64 = 512 * 1024;

/// The process could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The process is gone or not ours to see.
    #[error(
        "process {pid}: cannot read /proc/{pid}/exe ({source}); is the pid right, and is apiprof root with CAP_SYS_PTRACE?"
    )]
    Process {
        /// The pid asked for.
        pid: u32,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The binary's symbols or version could not be read.
    #[error(transparent)]
    Symbols(#[from] SymbolError),
}

/// An executable file's identity: (device, inode, size, mtime).
type FileKey = (u64, u64, u64, i64);

/// Binaries read recently, oldest first.
#[derive(Default)]
pub struct Binaries(Vec<(FileKey, Arc<GoBinary>)>);

/// Binaries [`Binaries`] keeps: a node runs one or two API server builds.
const KEPT_BINARIES: usize = 4;

/// The observed process.
pub struct Target {
    /// Its pid.
    pub pid: u32,
    /// /proc/PID/exe resolved, for reports.
    pub exe: PathBuf,
    /// Its symbols and Go version (shared: a restarted process runs the same binary).
    pub binary: Arc<GoBinary>,
    /// Where the process loaded its executable, less the addresses the file names: 0
    /// for a Go executable linked at fixed addresses, the load address of a
    /// position-independent one (`-buildmode=pie`).
    pub load_bias: u64,
}

impl Target {
    /// Opens the executable of process `pid` (through /proc, so it works across mount
    /// namespaces, as for a containerized apiserver).
    pub fn open(pid: u32) -> Result<Self, TargetError> {
        Self::open_cached(pid, &mut Binaries::default())
    }

    /// [`Target::open`], reading the executable's symbols only if `binaries` does not
    /// hold that very file already (an API server restarted on the same binary).
    pub fn open_cached(pid: u32, binaries: &mut Binaries) -> Result<Self, TargetError> {
        let proc_exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let process = |source| TargetError::Process { pid, source };
        let exe = std::fs::read_link(&proc_exe).map_err(process)?;
        let meta = std::fs::metadata(&proc_exe).map_err(process)?;
        let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime());
        let binary = match binaries.0.iter().find(|(k, _)| *k == key) {
            Some((_, binary)) => binary.clone(),
            None => {
                let binary = Arc::new(GoBinary::open(&proc_exe)?);
                if binaries.0.len() >= KEPT_BINARIES {
                    binaries.0.remove(0);
                }
                binaries.0.push((key, binary.clone()));
                binary
            }
        };
        let load_bias = load_bias(pid, &exe, meta.ino(), &binary);
        debug!(pid, load_bias, "executable's load bias");
        Ok(Self {
            pid,
            exe,
            binary,
            load_bias,
        })
    }

    /// What reports call it: the executable's file name, and `:PORT` when its command
    /// line sets `--secure-port` (as kube-apiserver's does), so that two API servers on
    /// one node stay apart and a restarted one keeps its name.
    pub fn name(&self) -> String {
        let exe = self
            .exe
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        // Not procfs's `cmdline()`: it refuses a command line that is not UTF-8, and drops
        // empty arguments (`--secure-port ""` is an empty port, not the next argument).
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        match secure_port(&args) {
            Some(port) => format!("{exe}:{port}"),
            None => exe,
        }
    }

    /// The process's `runtime.MemProfileRate` and where it was read: the variable, found
    /// in `.symtab` ("symtab") or, in stripped binaries, in the machine code of
    /// `runtime.profilealloc` ("machine code"); else `GODEBUG=memprofilerate=N` in its
    /// environment (honoured by Go 1.21+; earlier runtimes overwrite it at init); else
    /// Go's default.
    pub fn mem_profile_rate(&self) -> (u64, &'static str) {
        if let Some((rate, source)) =
            self.mem_profile_rate_address()
                .and_then(|(address, source)| {
                    Some((self.read_u64(address.wrapping_add(self.load_bias))?, source))
                })
        {
            return (rate, source);
        }
        if let Some(rate) = self.godebug("memprofilerate").and_then(|v| v.parse().ok()) {
            return (rate, "GODEBUG");
        }
        (DEFAULT_MEM_PROFILE_RATE, "default")
    }

    fn mem_profile_rate_address(&self) -> Option<(u64, &'static str)> {
        if let Some(address) = self.binary.variable("runtime.MemProfileRate") {
            return Some((address, "symtab"));
        }
        let f = self.binary.function("runtime.profilealloc").ok()?;
        global_compared_with_one(self.binary.code(&f), f.address).map(|a| (a, "machine code"))
    }

    /// A `u64` of the process's memory at `address`.
    fn read_u64(&self, address: u64) -> Option<u64> {
        let mem = File::open(format!("/proc/{}/mem", self.pid)).ok()?;
        let mut buf = [0u8; 8];
        match mem.read_exact_at(&mut buf, address) {
            Ok(()) => Some(u64::from_le_bytes(buf)),
            Err(error) => {
                debug!(%error, address, "reading the process's memory");
                None
            }
        }
    }

    /// A `GODEBUG` setting from the process's environment.
    fn godebug(&self, key: &str) -> Option<String> {
        let environ = procfs::process::Process::new(i32::try_from(self.pid).ok()?)
            .ok()?
            .environ()
            .ok()?;
        let godebug = environ.get(std::ffi::OsStr::new("GODEBUG"))?;
        godebug_value(&godebug.to_string_lossy(), key)
    }
}

/// The load bias of process `pid`'s executable (`exe`, inode `inode`): where
/// /proc/PID/maps shows the file's code mapped, less where `binary` says that code
/// lies. The mapping is the file's by inode or, where a file system shows another inode
/// in maps (overlayfs), by path. 0 when the maps cannot be read (a process gone:
/// nothing is attributed then anyway).
fn load_bias(pid: u32, exe: &Path, inode: u64, binary: &GoBinary) -> u64 {
    let maps = i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok()?.maps().ok());
    let (Some(maps), Some(f)) = (maps, binary.first_function()) else {
        return 0;
    };
    maps.iter()
        .find(|m| {
            let (start, end) = m.address;
            let file = m.inode == inode || m.pathname == MMapPath::Path(exe.to_owned());
            file && (m.offset..m.offset + (end - start)).contains(&f.file_offset)
        })
        .map_or(0, |m| {
            (m.address.0 + (f.file_offset - m.offset)).wrapping_sub(f.address)
        })
}

/// The value of `--secure-port` in a command line (`--secure-port=N` or `--secure-port N`;
/// the last one wins, as Go's flag package lets it).
fn secure_port(args: &[String]) -> Option<String> {
    let mut port = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        // Go's flags take one dash or two.
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        if let Some(value) = flag.strip_prefix("secure-port=") {
            port = Some(value.to_owned());
        } else if flag == "secure-port" {
            port = args.next().cloned();
        }
    }
    port
}

/// The last `key=value` for `key` in a GODEBUG list (the runtime lets later ones win).
fn godebug_value(godebug: &str, key: &str) -> Option<String> {
    godebug
        .rsplit(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_port_is_read_in_either_flag_form() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            secure_port(&args(&["kube-apiserver", "--secure-port=6443"])),
            Some("6443".into())
        );
        assert_eq!(
            secure_port(&args(&["x", "-secure-port", "1", "--secure-port", "2"])),
            Some("2".into())
        );
        assert_eq!(
            secure_port(&args(&["x", "-secure-port", "1"])),
            Some("1".into())
        );
        assert_eq!(secure_port(&args(&["x", "--port=1"])), None);
    }

    #[test]
    fn godebug_settings_are_read_last_one_winning() {
        assert_eq!(
            godebug_value("gctrace=1,memprofilerate=4096", "memprofilerate"),
            Some("4096".into())
        );
        assert_eq!(
            godebug_value("memprofilerate=1,memprofilerate=2", "memprofilerate"),
            Some("2".into())
        );
        assert_eq!(godebug_value("gctrace=1", "memprofilerate"), None);
    }
}
