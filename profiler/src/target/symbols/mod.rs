//! Go function symbols and the Go version of an executable: functions come from the ELF
//! `.symtab` when the binary has one, else from the Go function table `.gopclntab`, which
//! survives `go build -ldflags="-s -w"`; the version comes from `.go.buildinfo`.

mod abi;
mod buildinfo;
mod elf;
mod error;
mod gopclntab;
mod version;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use tracing::debug;

pub use error::SymbolError;
pub use version::GoVersion;

use buildinfo::BuildInfoError;
use elf::{AddressMap, RawFunction};

/// The oldest Go with the register ABI, which the probes read arguments by.
const MIN_GO: GoVersion = GoVersion {
    major: 1,
    minor: 17,
    patch: 0,
};

/// Where function addresses came from.
///
/// Also `Deserialize`: capture files record it and are read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolSource {
    /// The ELF symbol table: exact function sizes.
    Symtab,
    /// Go's function table (stripped binaries): a size runs to the next function, so it
    /// includes the alignment padding (INT3 bytes) after the code.
    Gopclntab,
}

/// A function of the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Go symbol name, e.g. `net/http.(*conn).serve`.
    pub name: String,
    /// Entry virtual address (as linked; add the load bias for PIE processes).
    pub address: u64,
    /// Size of its code in bytes.
    pub size: u64,
    /// Offset of its entry in the file, as uprobes want it.
    pub file_offset: u64,
}

/// A Go executable read into memory, with its functions and Go version.
pub struct GoBinary {
    path: PathBuf,
    data: Vec<u8>,
    version: GoVersion,
    source: SymbolSource,
    /// Sorted by address.
    functions: Vec<Function>,
    /// Index into `functions` by name (the first, by address, of duplicates).
    by_name: HashMap<String, usize>,
}

impl GoBinary {
    /// Reads and parses the executable at `path`.
    pub fn open(path: &Path) -> Result<Self, SymbolError> {
        let data = std::fs::read(path).map_err(|source| SymbolError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, data)
    }

    /// Parses the executable `data`, read from `path` (named in errors).
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Self, SymbolError> {
        let (version, source, mut functions) = inspect(path, &data)?;
        functions.sort_by_key(|f| f.address);
        let mut by_name = HashMap::with_capacity(functions.len());
        for (i, f) in functions.iter().enumerate() {
            by_name.entry(f.name.clone()).or_insert(i);
        }
        debug!(path = %path.display(), go = %version, ?source, functions = functions.len(), "read Go binary");
        Ok(Self {
            path: path.to_owned(),
            data,
            version,
            source,
            functions,
            by_name,
        })
    }

    /// The function at the lowest address.
    pub fn first_function(&self) -> Option<&Function> {
        self.functions.first()
    }

    /// The Go version the binary was built with.
    pub fn go_version(&self) -> GoVersion {
        self.version
    }

    /// Where the functions come from: `Symtab` if `.symtab` has Go functions, else `Gopclntab`.
    pub fn source(&self) -> SymbolSource {
        self.source
    }

    /// The function called exactly `name`, e.g. `net/http.serverHandler.ServeHTTP`.
    pub fn function(&self, name: &str) -> Result<Function, SymbolError> {
        self.by_name
            .get(name)
            .map(|&i| self.functions[i].clone())
            .ok_or_else(|| SymbolError::FunctionNotFound {
                path: self.path.clone(),
                name: name.to_owned(),
                symbols: self.source,
            })
    }

    /// The functions `pattern` names: the one so called, or, for a pattern with
    /// `go.shape.*` (a generic function, `(*Typed[go.shape.*]).Add`), every
    /// instantiation Go compiled for it (one per shape of its type arguments), by
    /// address.
    pub fn functions_named(&self, pattern: &str) -> Vec<Function> {
        let Some((before, after)) = pattern.split_once("go.shape.*") else {
            return self.function(pattern).into_iter().collect();
        };
        self.functions
            .iter()
            .filter(|f| {
                f.name
                    .strip_prefix(before)
                    .and_then(|rest| rest.strip_prefix("go.shape."))
                    .is_some_and(|rest| rest.ends_with(after))
            })
            .cloned()
            .collect()
    }

    /// The function whose code holds `address` (a sampled program counter), if any.
    pub fn function_at(&self, address: u64) -> Option<&Function> {
        let i = self
            .functions
            .partition_point(|f| f.address <= address)
            .checked_sub(1)?;
        let f = &self.functions[i];
        (address < f.address + f.size.max(1)).then_some(f)
    }

    /// The address of the global variable `name` (e.g. `runtime.MemProfileRate`), from
    /// `.symtab`; `None` in stripped binaries, which keep no data symbols.
    pub fn variable(&self, name: &str) -> Option<u64> {
        let file = object::File::parse(self.data.as_slice()).ok()?;
        elf::symtab_variable(&file, name)
    }

    /// The machine code of `f`: `f.size` bytes from its file offset (fewer if the file
    /// ends first).
    pub fn code(&self, f: &Function) -> &[u8] {
        let start = usize::try_from(f.file_offset).unwrap_or(usize::MAX);
        let len = usize::try_from(f.size).unwrap_or(usize::MAX);
        self.data
            .get(start..)
            .map_or(&[], |rest| &rest[..len.min(rest.len())])
    }
}

/// The parsers of this module's private formats, for the fuzz targets (`fuzz/`); not
/// an API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{buildinfo, elf::AddressMap, gopclntab, GoVersion};

    /// The number of functions `.gopclntab` bytes `table` list, or why they list none;
    /// and the tables found by searching `table` for a header.
    pub fn gopclntab(table: &[u8], text: Option<u64>) -> (Result<usize, String>, usize) {
        let listed = gopclntab::functions(table, text).map(|f| f.len());
        (listed, gopclntab::candidates(table).count())
    }

    /// The Go version of `.go.buildinfo` bytes `section`, in a file `data` loaded by
    /// `segments` (`(address, size, file offset)`, for the pre-Go 1.18 pointers).
    pub fn buildinfo(
        section: &[u8],
        data: &[u8],
        segments: &[(u64, u64, u64)],
    ) -> Option<GoVersion> {
        buildinfo::go_version(section, data, &AddressMap::from_segments(segments)).ok()
    }
}

/// The Go version, the symbol source and the functions of the executable in `data`.
fn inspect(
    path: &Path,
    data: &[u8],
) -> Result<(GoVersion, SymbolSource, Vec<Function>), SymbolError> {
    let path_buf = || path.to_owned();
    let file = object::File::parse(data).map_err(|source| SymbolError::NotElf {
        path: path_buf(),
        source,
    })?;
    let map = AddressMap::new(&file);
    if object::Object::sections(&file).next().is_none() {
        return Err(SymbolError::NoSections { path: path_buf() });
    }

    let info = elf::section(&file, &[".go.buildinfo"])
        .ok_or_else(|| SymbolError::NotGo { path: path_buf() })?;
    let version = buildinfo::go_version(info, data, &map).map_err(|e| match e {
        BuildInfoError::NoMagic => SymbolError::NotGo { path: path_buf() },
        BuildInfoError::Corrupt(reason) => SymbolError::BadBuildInfo {
            path: path_buf(),
            reason,
        },
    })?;
    if version < MIN_GO {
        return Err(SymbolError::UnsupportedGo {
            path: path_buf(),
            version,
        });
    }

    let symtab = elf::symtab_functions(&file);
    let (source, raw) = if symtab.is_empty() {
        (SymbolSource::Gopclntab, pclntab_functions(path, &file)?)
    } else {
        (SymbolSource::Symtab, symtab)
    };
    let listed = raw.len();
    let functions: Vec<Function> = raw
        .into_iter()
        .filter_map(|f| {
            let file_offset = map.file_offset(f.address)?;
            Some(Function {
                name: f.name,
                address: f.address,
                size: f.size,
                file_offset,
            })
        })
        .collect();
    if functions.len() < listed {
        debug!(
            skipped = listed - functions.len(),
            "functions outside the file's loaded segments"
        );
    }
    Ok((version, source, functions))
}

/// Functions from `.gopclntab` (`.data.rel.ro.gopclntab` in PIE builds). External linkers
/// may merge it into `.data.rel.ro`; then its header is searched for.
fn pclntab_functions(
    path: &Path,
    file: &object::File<'_>,
) -> Result<Vec<RawFunction>, SymbolError> {
    let text = elf::text_address(file);
    if let Some(table) = elf::section(file, &[".gopclntab", ".data.rel.ro.gopclntab"]) {
        return gopclntab::functions(table, text).map_err(|reason| SymbolError::BadPclntab {
            path: path.to_owned(),
            reason,
        });
    }
    debug!("no .gopclntab section; searching the data sections for its header");
    elf::data_sections(file)
        .into_iter()
        .flat_map(gopclntab::candidates)
        .find_map(|table| gopclntab::functions(table, text).ok())
        .ok_or_else(|| SymbolError::NoSymbols {
            path: path.to_owned(),
        })
}
