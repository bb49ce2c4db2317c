//! The Go 1.18+ function table (`.gopclntab`): every function's name and entry address,
//! present even in binaries built with `-ldflags="-s -w"`.
//!
//! Layout (runtime/symtab.go `pcHeader`, debug/gosym/pclntab.go): magic u32, two zero
//! bytes, minLC u8, ptrSize u8, then eight uintptr fields — nfunc, nfiles, textStart,
//! funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset (offsets from the table
//! start). At pclnOffset: nfunc `{entryoff u32, funcoff u32}` pairs and a final entryoff
//! (the end of the text); funcoff locates a `_func` (relative to pclnOffset) that starts
//! with entryOff u32 and nameOff i32 into the NUL-terminated names at funcnameOffset,
//! and has funcID u8 and flag u8 at offset 36 (Go 1.18/1.19) or 40 (Go 1.20+, after
//! startLine).

use super::{
    abi::{self, AbiInfo},
    elf::RawFunction,
};

/// Magic of Go 1.18 and 1.19 tables.
const GO118_MAGIC: u32 = 0xFFFF_FFF0;
/// Magic of Go 1.20+ tables (same header as 1.18; `_func` gained startLine).
const GO120_MAGIC: u32 = 0xFFFF_FFF1;
/// Magic of Go 1.16–1.17 tables.
const GO116_MAGIC: u32 = 0xFFFF_FFFA;
/// Magic of Go 1.2–1.15 tables.
const GO12_MAGIC: u32 = 0xFFFF_FFFB;
/// Pointer size of the amd64 tables read here.
const PTR_SIZE: usize = 8;
/// Header size: 8 bytes, then 8 uintptr fields.
const HEADER_SIZE: usize = 8 + 8 * PTR_SIZE;
/// `_func.flag` bit of functions written in assembly (Go 1.19+).
const FUNC_FLAG_ASM: u8 = 1 << 2;

/// The parts of the header needed to list functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    nfunc: usize,
    text_start: u64,
    funcname_offset: usize,
    pcln_offset: usize,
    /// Offset of funcID in `_func`; flag follows it.
    func_id_offset: usize,
}

/// Every function of the table at the start of `table` (the table runs to its end, or
/// beyond: trailing bytes are ignored). `text` is the address of the binary's `.text`
/// section, where `runtime.text` sits: Go 1.26+ no longer stores textStart in the
/// header (it would need a relocation), and debug/gosym uses the text start then too.
/// The error says what is wrong, for
/// [`SymbolError::BadPclntab`](super::SymbolError::BadPclntab).
pub(super) fn functions(table: &[u8], text: Option<u64>) -> Result<Vec<RawFunction>, String> {
    let mut header = header(table)?;
    if header.text_start == 0 {
        header.text_start = text.filter(|&t| t != 0).ok_or(
            "textStart is 0 (Go 1.26+ no longer stores it) and the binary has no .text section to take it from",
        )?;
    }
    let bounds = |i: usize| format!("function table entry {i} is out of bounds");
    let entry_at = |i: usize| u32_at(table, header.pcln_offset + 8 * i).ok_or_else(|| bounds(i));
    // Cap the allocation by what the table can hold, in case nfunc is corrupt.
    let capacity = header.nfunc.min(table.len() / 8);
    let (mut functions, mut abis) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    for i in 0..header.nfunc {
        let entry = entry_at(i)?;
        let end = entry_at(i + 1)?;
        let func_off = u32_at(table, header.pcln_offset + 8 * i + 4).ok_or_else(|| bounds(i))?;
        if end < entry {
            return Err(format!(
                "function {i} ends (+{end:#x}) before it starts (+{entry:#x})"
            ));
        }
        let func = header.pcln_offset + func_off as usize;
        if u32_at(table, func) != Some(entry) {
            return Err(format!(
                "_func of function {i} at +{func:#x} does not repeat its entry +{entry:#x}"
            ));
        }
        let field = |off: usize| table.get(func + off).copied();
        let (name_off, func_id, flag) = match (
            u32_at(table, func + 4),
            field(header.func_id_offset),
            field(header.func_id_offset + 1),
        ) {
            (Some(name_off), Some(func_id), Some(flag)) => (name_off, func_id, flag),
            _ => return Err(format!("_func of function {i} is out of bounds")),
        };
        let name = name_at(table, header.funcname_offset + name_off as usize).ok_or_else(|| {
            format!("name of function {i} at +{name_off:#x} is out of bounds or not UTF-8")
        })?;
        let address = header
            .text_start
            .checked_add(u64::from(entry))
            .ok_or_else(|| {
                format!(
                    "function {i} at textStart {:#x} + {entry:#x} overflows",
                    header.text_start
                )
            })?;
        functions.push(RawFunction {
            name: name.to_owned(),
            address,
            size: u64::from(end - entry),
        });
        abis.push(AbiInfo {
            func_id,
            asm: flag & FUNC_FLAG_ASM != 0,
        });
    }
    abi::mangle_abi0_twins(&mut functions, &abis);
    Ok(functions)
}

/// Offsets in `data` (8-byte aligned, as Go aligns the table) where a Go 1.18+ table
/// header starts: for finding the table when no section is named after it.
pub(super) fn candidates(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    (0..data.len().saturating_sub(HEADER_SIZE))
        .step_by(8)
        .map(|start| &data[start..])
        .filter(|t| {
            matches!(u32_at(t, 0), Some(GO118_MAGIC | GO120_MAGIC))
                && t[4..8] == [0, 0, 1, PTR_SIZE as u8]
        })
}

/// Parses and checks the header.
fn header(table: &[u8]) -> Result<Header, String> {
    if table.len() < HEADER_SIZE {
        return Err(format!("{} bytes is too short for a header", table.len()));
    }
    let func_id_offset = match u32::from_le_bytes([table[0], table[1], table[2], table[3]]) {
        GO118_MAGIC => 36,
        GO120_MAGIC => 40,
        GO116_MAGIC => return Err("magic 0xfffffffa is the Go 1.16/1.17 format".into()),
        GO12_MAGIC => return Err("magic 0xfffffffb is the Go 1.2-1.15 format".into()),
        magic => return Err(format!("unknown magic {magic:#010x}")),
    };
    if table[4..6] != [0, 0] || usize::from(table[7]) != PTR_SIZE {
        return Err(format!(
            "header bytes 4..8 are {:02x?}, expected [0, 0, minLC, 8]",
            &table[4..8]
        ));
    }
    let word = |i: usize| u64_at(table, 8 + PTR_SIZE * i).unwrap_or_default();
    let offset = |i: usize| -> Result<usize, String> {
        usize::try_from(word(i))
            .ok()
            .filter(|&off| off < table.len())
            .ok_or_else(|| format!("header field {i} ({:#x}) points outside the table", word(i)))
    };
    let header = Header {
        nfunc: usize::try_from(word(0))
            .map_err(|_| format!("nfunc {:#x} is too large", word(0)))?,
        text_start: word(2),
        funcname_offset: offset(3)?,
        pcln_offset: offset(7)?,
        func_id_offset,
    };
    if header.nfunc == 0 {
        return Err("it lists no functions".into());
    }
    Ok(header)
}

/// The little-endian u32 at `off`.
fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let bytes = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// The little-endian u64 at `off`.
fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    let bytes = data.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The NUL-terminated UTF-8 string at `off`.
fn name_at(data: &[u8], off: usize) -> Option<&str> {
    let rest = data.get(off..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a table: header, names, then functab and `_func`s; functions are
    /// `(name, entryoff)` and `end` is the sentinel entryoff.
    fn table(magic: u32, text_start: u64, funcs: &[(&str, u32)], end: u32) -> Vec<u8> {
        let funcs: Vec<_> = funcs
            .iter()
            .map(|&(name, entry)| (name, entry, 0, 0))
            .collect();
        table_with_ids(magic, text_start, &funcs, end)
    }

    /// As [`table`], with `(name, entryoff, funcID, flag)` functions.
    fn table_with_ids(
        magic: u32,
        text_start: u64,
        funcs: &[(&str, u32, u8, u8)],
        end: u32,
    ) -> Vec<u8> {
        let func_id_offset = if magic == GO118_MAGIC { 36 } else { 40 };
        let mut names = Vec::new();
        let mut name_offs = Vec::new();
        for (name, ..) in funcs {
            name_offs.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let funcname_offset = HEADER_SIZE;
        let pcln_offset = (funcname_offset + names.len()).next_multiple_of(8);
        let functab_len = 8 * funcs.len() + 4;
        let mut pcln = vec![0u8; functab_len];
        for (i, (&(_, entry, func_id, flag), name_off)) in funcs.iter().zip(&name_offs).enumerate()
        {
            let func_off = pcln.len() as u32;
            pcln[8 * i..8 * i + 4].copy_from_slice(&entry.to_le_bytes());
            pcln[8 * i + 4..8 * i + 8].copy_from_slice(&func_off.to_le_bytes());
            let func = pcln.len();
            pcln.extend_from_slice(&entry.to_le_bytes());
            pcln.extend_from_slice(&name_off.to_le_bytes());
            pcln.resize(func + func_id_offset, 0xAA); // args, deferreturn, pcsp, ...: not read
            pcln.extend_from_slice(&[func_id, flag, 0, 0]);
        }
        pcln[8 * funcs.len()..functab_len].copy_from_slice(&end.to_le_bytes());

        let mut t = magic.to_le_bytes().to_vec();
        t.extend_from_slice(&[0, 0, 1, 8]);
        let offsets = [
            funcs.len() as u64,
            3,
            text_start,
            funcname_offset as u64,
            0,
            0,
            0,
            pcln_offset as u64,
        ];
        for word in offsets {
            t.extend_from_slice(&word.to_le_bytes());
        }
        t.extend_from_slice(&names);
        t.resize(pcln_offset, 0);
        t.extend_from_slice(&pcln);
        t
    }

    fn raw(name: &str, address: u64, size: u64) -> RawFunction {
        RawFunction {
            name: name.into(),
            address,
            size,
        }
    }

    #[test]
    fn lists_functions_of_go118_and_go120_tables() {
        let funcs = [
            ("runtime.main", 0),
            ("net/http.(*conn).serve", 0x40),
            ("main.main", 0x1a0),
        ];
        for magic in [GO118_MAGIC, GO120_MAGIC] {
            let t = table(magic, 0x40_1000, &funcs, 0x200);
            assert_eq!(
                functions(&t, None),
                Ok(vec![
                    raw("runtime.main", 0x40_1000, 0x40),
                    raw("net/http.(*conn).serve", 0x40_1040, 0x160),
                    raw("main.main", 0x40_11a0, 0x60),
                ])
            );
        }
    }

    #[test]
    fn names_abi0_twins_from_func_id_and_flag() {
        for magic in [GO118_MAGIC, GO120_MAGIC] {
            let funcs = [
                ("runtime.osinit", 0, 0, 0),
                ("runtime.memmove", 0x20, 0, FUNC_FLAG_ASM),
                ("runtime.osinit", 0x40, 21, 0),
                ("runtime.memmove", 0x60, 21, 0),
            ];
            let t = table_with_ids(magic, 0x40_1000, &funcs, 0x80);
            let names: Vec<String> = functions(&t, None)
                .expect("valid table")
                .into_iter()
                .map(|f| f.name)
                .collect();
            assert_eq!(
                names,
                [
                    "runtime.osinit",
                    "runtime.memmove.abi0",
                    "runtime.osinit.abi0",
                    "runtime.memmove"
                ]
            );
        }
    }

    #[test]
    fn header_fields() {
        let t = table(GO120_MAGIC, 0x40_1000, &[("a", 0), ("b", 8)], 16);
        let h = header(&t).expect("valid header");
        assert_eq!(h.nfunc, 2);
        assert_eq!(h.text_start, 0x40_1000);
        assert_eq!(h.funcname_offset, HEADER_SIZE);
        assert_eq!(h.pcln_offset, (HEADER_SIZE + 4).next_multiple_of(8));
        assert_eq!(h.func_id_offset, 40);
    }

    #[test]
    fn rejects_old_and_unknown_magics() {
        for (magic, expect) in [
            (GO116_MAGIC, "1.16"),
            (GO12_MAGIC, "1.2"),
            (0x1234_5678, "unknown magic 0x12345678"),
        ] {
            let t = table(magic, 0x40_1000, &[("a", 0)], 8);
            let err = functions(&t, None).expect_err("old magic");
            assert!(err.contains(expect), "{err}");
        }
    }

    #[test]
    fn rejects_corrupt_tables() {
        let good = table(GO120_MAGIC, 0x40_1000, &[("a", 0), ("b", 8)], 16);
        assert!(functions(&good[..HEADER_SIZE - 1], None).is_err());
        assert!(
            functions(&good[..good.len() - 20], None).is_err(),
            "truncated _func"
        );

        let mut bad_ptr = good.clone();
        bad_ptr[7] = 4;
        assert!(functions(&bad_ptr, None).is_err());

        let mut bad_entry = good.clone();
        let pcln = header(&good).expect("valid header").pcln_offset;
        bad_entry[pcln..pcln + 4].copy_from_slice(&4u32.to_le_bytes());
        assert!(functions(&bad_entry, None)
            .expect_err("entry mismatch")
            .contains("does not repeat"));

        let unordered = table(GO120_MAGIC, 0x40_1000, &[("a", 8), ("b", 0)], 16);
        assert!(functions(&unordered, None)
            .expect_err("unordered")
            .contains("before it starts"));

        // Go 1.26+ leaves textStart 0: the .text section's address stands in.
        let no_text_start = table(GO120_MAGIC, 0, &[("a", 0)], 8);
        assert!(functions(&no_text_start, None)
            .expect_err("no text")
            .contains("textStart"));
        assert_eq!(
            functions(&no_text_start, Some(0x40_1000)),
            Ok(vec![raw("a", 0x40_1000, 8)])
        );
        assert!(functions(&table(GO120_MAGIC, 0x40_1000, &[], 0), None).is_err());
        let overflow = table(GO120_MAGIC, u64::MAX - 4, &[("a", 8)], 16);
        assert!(functions(&overflow, None)
            .expect_err("overflow")
            .contains("overflows"));
    }

    #[test]
    fn finds_aligned_headers_in_merged_sections() {
        let t = table(GO118_MAGIC, 0x40_1000, &[("a", 0)], 8);
        let mut section = vec![0xEEu8; 24];
        section.extend_from_slice(&t);
        let found: Vec<&[u8]> = candidates(&section).collect();
        assert_eq!(found, vec![&section[24..]]);
        assert_eq!(functions(found[0], None), Ok(vec![raw("a", 0x40_1000, 8)]));

        let mut unaligned = vec![0xEEu8; 20];
        unaligned.extend_from_slice(&t);
        assert_eq!(candidates(&unaligned).count(), 0);
    }
}
