//! Why a Go binary's symbols or version could not be read; each message names a fix.

use std::path::PathBuf;

use super::{GoVersion, SymbolSource};

/// Reading a Go binary's functions or version failed.
#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    /// The file could not be read.
    #[error("reading {}: {source}; is the process still running and are you root?", path.display())]
    Read {
        /// The executable.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an ELF executable.
    #[error("{} is not an ELF executable ({source}); point apiprof at a Linux Go server (its pid or binary)", path.display())]
    NotElf {
        /// The file.
        path: PathBuf,
        /// The ELF parser's error.
        #[source]
        source: object::Error,
    },
    /// The section headers were removed after linking: Go's tables cannot be found.
    #[error("{} has no section headers (removed after linking, by sstrip or a packer), so its Go build info and function table (.go.buildinfo, .gopclntab) cannot be found; use the binary as `go build` wrote it (`-ldflags=\"-s -w\"` is fine)", path.display())]
    NoSections {
        /// The executable.
        path: PathBuf,
    },
    /// No Go build info: not built by the Go toolchain.
    #[error("{} is not a Go binary (no .go.buildinfo section or build-info magic); apiprof observes Go HTTP servers such as kube-apiserver", path.display())]
    NotGo {
        /// The executable.
        path: PathBuf,
    },
    /// The build info is there but truncated or unreadable.
    #[error("{} has a corrupt Go build info ({reason}); check that the file is complete, or rebuild the server", path.display())]
    BadBuildInfo {
        /// The executable.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Built with a Go older than the register ABI.
    #[error("{} was built with Go {version}; apiprof needs Go 1.17+ (register ABI); rebuild the server with a newer Go", path.display())]
    UnsupportedGo {
        /// The executable.
        path: PathBuf,
        /// Its Go version.
        version: GoVersion,
    },
    /// Neither `.symtab` nor `.gopclntab` names functions.
    #[error("{} has neither a symbol table (.symtab) nor a Go function table (.gopclntab): it was stripped of both; use the binary as `go build` wrote it (`-ldflags=\"-s -w\"` is fine, but do not strip .gopclntab with `strip`/`objcopy`)", path.display())]
    NoSymbols {
        /// The executable.
        path: PathBuf,
    },
    /// The `.gopclntab` has an unknown magic or is corrupt.
    #[error("{} has an unusable .gopclntab ({reason}); apiprof reads the table of Go 1.18 and newer as the linker wrote it: check that the binary is complete and unedited, rebuild an older server with a newer Go, or keep its .symtab (do not strip it)", path.display())]
    BadPclntab {
        /// The executable.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The function is not in the binary.
    #[error("function {name} not found in {} (symbols from {symbols:?}); the server may not use it or the linker inlined it", path.display())]
    FunctionNotFound {
        /// The executable.
        path: PathBuf,
        /// The Go symbol name asked for.
        name: String,
        /// Where the function list came from. (Not named `source`: thiserror would take it
        /// for the underlying error.)
        symbols: SymbolSource,
    },
}
