//! The Go version recorded in `.go.buildinfo` (debug/buildinfo): a 32-byte header — the
//! magic `"\xff Go buildinf:"`, ptrSize u8, flags u8, two pointers — then, since Go 1.18
//! (flags & 2), the version and module info as uvarint-length-prefixed strings. Before Go
//! 1.18 the pointers locate Go string headers `{data, len}` of the version and module info.

use super::{elf::AddressMap, GoVersion};

/// The 14-byte magic that starts the build info.
const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Size of the header that precedes the inline strings.
const HEADER_SIZE: usize = 32;
/// Flags bit: strings inline after the header (Go 1.18+).
const FLAG_INLINE: u8 = 2;
/// Flags bit: pointers are big-endian.
const FLAG_BIG_ENDIAN: u8 = 1;

/// Why no version could be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BuildInfoError {
    /// No magic: not a Go binary.
    NoMagic,
    /// The build info is there but unreadable; says why.
    Corrupt(String),
}

/// The Go version of a binary whose `.go.buildinfo` section holds `section`; `data` is the
/// whole file and `map` translates its addresses (for the pre-1.18 pointer format).
pub(super) fn go_version(
    section: &[u8],
    data: &[u8],
    map: &AddressMap,
) -> Result<GoVersion, BuildInfoError> {
    let text = version_string(section, data, map)?;
    // Development toolchains write "devel go1.25-abcdef01 Tue Jan 1 ...".
    let trimmed = text.strip_prefix("devel ").unwrap_or(text);
    GoVersion::parse(trimmed)
        .ok_or_else(|| BuildInfoError::Corrupt(format!("unrecognized Go version {text:?}")))
}

/// The raw version string, such as `go1.24.4` or `go1.24.4 X:nocoverageredesign`.
fn version_string<'data>(
    section: &'data [u8],
    data: &'data [u8],
    map: &AddressMap,
) -> Result<&'data str, BuildInfoError> {
    if !section.starts_with(MAGIC) {
        return Err(BuildInfoError::NoMagic);
    }
    let header = section.get(..HEADER_SIZE).ok_or_else(|| {
        BuildInfoError::Corrupt(format!("{} bytes is too short for a header", section.len()))
    })?;
    let (ptr_size, flags) = (header[14], header[15]);
    let bytes = if flags & FLAG_INLINE != 0 {
        uvarint_string(&section[HEADER_SIZE..])
            .ok_or_else(|| BuildInfoError::Corrupt("truncated version string".into()))?
    } else {
        if ptr_size != 8 || flags & FLAG_BIG_ENDIAN != 0 {
            return Err(BuildInfoError::Corrupt(format!(
                "pre-Go 1.18 build info with pointer size {ptr_size} and flags {flags:#x}; expected 8-byte little-endian"
            )));
        }
        pointed_string(header, data, map).ok_or_else(|| {
            BuildInfoError::Corrupt(
                "the pre-Go 1.18 version pointer does not resolve to a string in the file".into(),
            )
        })?
    };
    std::str::from_utf8(bytes)
        .map_err(|e| BuildInfoError::Corrupt(format!("version string is not UTF-8: {e}")))
}

/// The string whose Go string header `{data, len}` the version pointer (header bytes
/// 16..24) locates.
fn pointed_string<'data>(
    header: &[u8],
    data: &'data [u8],
    map: &AddressMap,
) -> Option<&'data [u8]> {
    let word = |b: &[u8], at: usize| Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?));
    let string_header = map.read(data, word(header, 16)?, 16)?;
    let (address, len) = (word(string_header, 0)?, word(string_header, 8)?);
    let bytes = map.read(data, address, len)?;
    (bytes.len() as u64 == len).then_some(bytes)
}

/// A string prefixed by its uvarint length, at the start of `b`.
fn uvarint_string(b: &[u8]) -> Option<&[u8]> {
    let (len, n) = uvarint(b)?;
    let len = usize::try_from(len).ok()?;
    b.get(n..n.checked_add(len)?)
}

/// Decodes an unsigned LEB128 varint (Go's `binary.Uvarint`): the value and the number of
/// bytes read; `None` if truncated or longer than 64 bits.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline_info(version: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[8, FLAG_INLINE]);
        b.resize(HEADER_SIZE, 0);
        b.push(version.len() as u8);
        b.extend_from_slice(version.as_bytes());
        b.extend_from_slice(b"\x05path\tx"); // module info follows; not read
        b
    }

    #[test]
    fn decodes_uvarints() {
        assert_eq!(uvarint(&[0x00]), Some((0, 1)));
        assert_eq!(uvarint(&[0x7f, 0xff]), Some((127, 1)));
        assert_eq!(uvarint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(uvarint(&[0xac, 0x02]), Some((300, 2)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(uvarint(&max), Some((u64::MAX, 10)));
        assert_eq!(
            uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(uvarint(&[0x80, 0x80]), None);
        assert_eq!(uvarint(&[]), None);
    }

    #[test]
    fn decodes_uvarint_strings() {
        assert_eq!(uvarint_string(b"\x08go1.24.4rest"), Some(&b"go1.24.4"[..]));
        assert_eq!(uvarint_string(b"\x00"), Some(&b""[..]));
        assert_eq!(uvarint_string(b"\x09go1.24.4"), None);
        let mut long = vec![0x82, 0x01];
        long.extend(std::iter::repeat_n(b'a', 130));
        assert_eq!(uvarint_string(&long).map(<[u8]>::len), Some(130));
    }

    #[test]
    fn reads_inline_versions() {
        let map = AddressMap::default();
        let version = |s: &str| go_version(&inline_info(s), &[], &map);
        assert_eq!(
            version("go1.24.4"),
            Ok(GoVersion {
                major: 1,
                minor: 24,
                patch: 4
            })
        );
        assert_eq!(
            version("go1.19.8"),
            Ok(GoVersion {
                major: 1,
                minor: 19,
                patch: 8
            })
        );
        assert_eq!(
            version("devel go1.25-1a2b3c4d Tue"),
            Ok(GoVersion {
                major: 1,
                minor: 25,
                patch: 0
            })
        );
        assert!(matches!(version("gccgo"), Err(BuildInfoError::Corrupt(_))));
    }

    #[test]
    fn reads_pre_go118_pointer_versions() {
        // File: build info at 0, string header at 0x40, "go1.16.15" at 0x60; loaded at 0x50_0000.
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&[8, 0]);
        file.extend_from_slice(&0x50_0040u64.to_le_bytes());
        file.resize(0x40, 0);
        file.extend_from_slice(&0x50_0060u64.to_le_bytes());
        file.extend_from_slice(&9u64.to_le_bytes());
        file.resize(0x60, 0);
        file.extend_from_slice(b"go1.16.15");
        let map = AddressMap::from_segments(&[(0x50_0000, file.len() as u64, 0)]);
        assert_eq!(
            go_version(&file[..HEADER_SIZE], &file, &map),
            Ok(GoVersion {
                major: 1,
                minor: 16,
                patch: 15
            })
        );
        file.truncate(0x65);
        let map = AddressMap::from_segments(&[(0x50_0000, file.len() as u64, 0)]);
        assert!(matches!(
            go_version(&file[..HEADER_SIZE], &file, &map),
            Err(BuildInfoError::Corrupt(_))
        ));
    }

    #[test]
    fn rejects_missing_or_truncated_info() {
        let map = AddressMap::default();
        assert_eq!(
            go_version(b"\x7fELF", &[], &map),
            Err(BuildInfoError::NoMagic)
        );
        assert!(matches!(
            go_version(MAGIC, &[], &map),
            Err(BuildInfoError::Corrupt(_))
        ));
        let info = inline_info("go1.24.4");
        assert!(matches!(
            go_version(&info[..HEADER_SIZE + 4], &[], &map),
            Err(BuildInfoError::Corrupt(_))
        ));
        let mut pointers = info.clone();
        pointers[15] = 0; // pre-1.18 pointer format, with pointers that resolve nowhere
        assert!(matches!(
            go_version(&pointers, &[], &map),
            Err(BuildInfoError::Corrupt(_))
        ));
    }
}
