//! The Go HTTPS fixture server (tests/fixtures/goserver), as a guard.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::fixtures_dir;

/// A running fixture server; killed on drop.
pub struct GoServer {
    child: Child,
    /// `https://127.0.0.1:PORT`
    pub url: String,
}

impl GoServer {
    /// Starts fixture build `build` (see [`crate::GOSERVER_BUILDS`]) on an ephemeral
    /// loopback port and waits until it accepts connections.
    pub fn start(build: &str) -> Self {
        Self::start_with_args(build, &[])
    }

    /// [`GoServer::start`] with command-line flags (e.g. `-memprofilerate=1`).
    pub fn start_with_args(build: &str, args: &[&str]) -> Self {
        Self::start_path(&fixtures_dir().join(build), args)
    }

    /// [`GoServer::start_with_args`] of a fixture binary at `path` (a copy under another
    /// name, as a replaced binary is).
    pub fn start_path(path: &Path, args: &[&str]) -> Self {
        let build = path.display();
        let mut child = Command::new(path)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {build}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the fixture's first line");
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| {
                panic!("{build} printed {line:?}, expected \"listening https://...\"")
            })
            .to_owned();
        Self { child, url }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fixture `build` copied into `dir` as `name`, executable, its bytes changed by `edit`
/// first (a binary apiprof should refuse, or one that says another Go version).
pub fn edited(dir: &Path, build: &str, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let binary = dir.join(name);
    let mut elf = std::fs::read(fixtures_dir().join(build)).expect("fixture");
    edit(&mut elf);
    std::fs::write(&binary, elf).expect("writing the copy");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    binary
}

/// Cuts the `.gopclntab` section header of ELF64 `elf` to 64 bytes, too short for the
/// table's header. The program still runs: the Go runtime reaches its table through its
/// own pointers, never through section headers. Only apiprof's reading is broken.
pub fn cut_gopclntab(elf: &mut [u8]) {
    use object::{read::elf::FileHeader as _, Object as _, ObjectSection as _};
    let file =
        object::read::elf::ElfFile64::<object::Endianness>::parse(&elf[..]).expect("an ELF file");
    let index = file
        .section_by_name(".gopclntab")
        .expect("a .gopclntab section")
        .index()
        .0;
    let (header, endian) = (file.elf_header(), file.endian());
    let at = header.e_shoff(endian) as usize + index * header.e_shentsize(endian) as usize;
    // Elf64_Shdr: sh_size is the 8 bytes at 32.
    elf[at + 32..at + 40].copy_from_slice(&64u64.to_le_bytes());
}
