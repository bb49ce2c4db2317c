//! ELF helpers: functions from `.symtab`, section contents, and virtual address to file
//! offset translation through the `PT_LOAD` segments.

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SectionKind, SymbolKind};

/// A function as a symbol table or `.gopclntab` names it, before its file offset is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RawFunction {
    /// Go symbol name.
    pub name: String,
    /// Entry virtual address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Defined `STT_FUNC` symbols of `.symtab`; empty when the binary has no symbol table or
/// when it holds no Go function (no `runtime.` symbol), as after `strip`.
pub(super) fn symtab_functions(file: &object::File<'_>) -> Vec<RawFunction> {
    let functions: Vec<RawFunction> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            Some(RawFunction {
                name: name.to_owned(),
                address: s.address(),
                size: s.size(),
            })
        })
        .collect();
    if functions.iter().any(|f| f.name.starts_with("runtime.")) {
        functions
    } else {
        Vec::new()
    }
}

/// The address of the defined data symbol `name` in `.symtab`.
pub(super) fn symtab_variable(file: &object::File<'_>, name: &str) -> Option<u64> {
    file.symbols()
        .find(|s| s.kind() == SymbolKind::Data && s.is_definition() && s.name() == Ok(name))
        .map(|s| s.address())
}

/// The address of the `.text` section (where Go's `runtime.text` starts).
pub(super) fn text_address(file: &object::File<'_>) -> Option<u64> {
    file.section_by_name(".text").map(|s| s.address())
}

/// The contents of the first section called one of `names`.
pub(super) fn section<'data>(file: &object::File<'data>, names: &[&str]) -> Option<&'data [u8]> {
    names
        .iter()
        .find_map(|name| file.section_by_name(name)?.data().ok())
}

/// Contents of every allocated section that holds file data, except executable code:
/// where Go's tables end up when an external linker merges their sections away.
pub(super) fn data_sections<'data>(file: &object::File<'data>) -> Vec<&'data [u8]> {
    file.sections()
        .filter(|s| s.kind() != SectionKind::Text && s.address() != 0)
        .filter_map(|s| s.data().ok())
        .filter(|data| !data.is_empty())
        .collect()
}

/// One file-backed stretch of the address space: `PT_LOAD` `[address, address + size)` is
/// read from the file at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    address: u64,
    size: u64,
    offset: u64,
}

/// Translates virtual addresses to file offsets.
#[derive(Clone, Debug, Default)]
pub(super) struct AddressMap {
    mappings: Vec<Mapping>,
}

impl AddressMap {
    /// The `PT_LOAD` segments of `file`.
    pub fn new(file: &object::File<'_>) -> Self {
        let mappings = file
            .segments()
            .map(|segment| {
                let (offset, size) = segment.file_range();
                Mapping {
                    address: segment.address(),
                    size,
                    offset,
                }
            })
            .filter(|m| m.size != 0)
            .collect();
        Self { mappings }
    }

    /// A map of `(address, size, offset)` segments, for tests and fuzzing.
    pub fn from_segments(segments: &[(u64, u64, u64)]) -> Self {
        let mappings = segments
            .iter()
            .map(|&(address, size, offset)| Mapping {
                address,
                size,
                offset,
            })
            .collect();
        Self { mappings }
    }

    /// The file offset of `address`, if a segment loads it from the file (not from zeroed
    /// memory past the segment's file size).
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        self.mappings
            .iter()
            .find(|m| address >= m.address && address - m.address < m.size)
            // A corrupt header's offset may overflow: then nothing is there.
            .and_then(|m| (address - m.address).checked_add(m.offset))
    }

    /// Up to `len` bytes of `data` (the whole file) at `address`, within its segment.
    pub fn read<'data>(&self, data: &'data [u8], address: u64, len: u64) -> Option<&'data [u8]> {
        let m = self
            .mappings
            .iter()
            .find(|m| address >= m.address && address - m.address < m.size)?;
        let start = (address - m.address).checked_add(m.offset)?;
        let end = start.checked_add(len.min(m.size - (address - m.address)))?;
        data.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> AddressMap {
        AddressMap::from_segments(&[(0x40_0000, 0x100, 0), (0x50_0000, 0x10, 0x200)])
    }

    #[test]
    fn translates_addresses_inside_segments() {
        let map = map();
        assert_eq!(map.file_offset(0x40_0000), Some(0));
        assert_eq!(map.file_offset(0x40_00ff), Some(0xff));
        assert_eq!(map.file_offset(0x40_0100), None);
        assert_eq!(map.file_offset(0x50_0004), Some(0x204));
        assert_eq!(map.file_offset(0x3f_ffff), None);
    }

    #[test]
    fn reads_are_clamped_to_the_segment() {
        let data: Vec<u8> = (0..=255).cycle().take(0x300).collect();
        let map = map();
        assert_eq!(map.read(&data, 0x50_0000, 4), Some(&data[0x200..0x204]));
        assert_eq!(map.read(&data, 0x50_000c, 100), Some(&data[0x20c..0x210]));
        assert_eq!(map.read(&data, 0x60_0000, 4), None);
    }

    #[test]
    fn a_segment_whose_file_offset_overflows_maps_nothing() {
        // A corrupt program header: p_offset near 2^64.
        let map = AddressMap::from_segments(&[(0x40_0000, 0x100, u64::MAX - 0x10)]);
        assert_eq!(map.file_offset(0x40_0080), None);
        assert_eq!(map.read(&[0; 16], 0x40_0080, 4), None);
    }
}
