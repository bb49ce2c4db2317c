//! Stripped Go binaries are probed through `.gopclntab`, and at the same addresses the
//! unstripped build's `.symtab` gives; what apiprof reads from machine code is where the
//! DWARF says.

use apiprof::target::{
    disasm::{global_compared_with_one, writer_fields},
    symbols::{GoBinary, SymbolSource},
};
use apiprof_tests::fixtures_dir;

#[test]
fn stripped_builds_resolve_the_probed_function_at_the_unstripped_address() {
    for go in ["1.19", "1.24", "1.27"] {
        let full = GoBinary::open(&fixtures_dir().join(format!("goserver-go{go}"))).unwrap();
        let stripped =
            GoBinary::open(&fixtures_dir().join(format!("goserver-go{go}-stripped"))).unwrap();
        assert_eq!(
            (full.source(), stripped.source()),
            (SymbolSource::Symtab, SymbolSource::Gopclntab)
        );
        assert_eq!(full.go_version(), stripped.go_version());
        assert_eq!(
            format!("{}.{}", full.go_version().major, full.go_version().minor),
            go
        );
        let name = "net/http.serverHandler.ServeHTTP";
        let (a, b) = (
            full.function(name).unwrap(),
            stripped.function(name).unwrap(),
        );
        assert_eq!(a.address, b.address, "Go {go}: {name}");
        assert_eq!(a.file_offset, b.file_offset, "Go {go}: {name}");
    }
}

#[test]
fn mem_profile_rate_is_found_in_machine_code_where_symtab_puts_it() {
    // Decoded in the unstripped build, checked against its .symtab; in the stripped one
    // (whose data may sit elsewhere) it must be found too: the allocation tests check
    // the value read there against the rate the server runs with.
    for go in ["1.19", "1.24", "1.27"] {
        for build in [
            format!("goserver-go{go}"),
            format!("goserver-go{go}-stripped"),
        ] {
            let binary = GoBinary::open(&fixtures_dir().join(&build)).unwrap();
            let f = binary.function("runtime.profilealloc").unwrap();
            let decoded = global_compared_with_one(binary.code(&f), f.address);
            assert!(decoded.is_some(), "{build}");
            if binary.source() == SymbolSource::Symtab {
                assert_eq!(
                    decoded,
                    binary.variable("runtime.MemProfileRate"),
                    "{build}"
                );
            } else {
                assert_eq!(binary.variable("runtime.MemProfileRate"), None, "{build}");
            }
        }
    }
}

#[test]
fn http2_writer_fields_are_found_in_machine_code_where_dwarf_puts_them() {
    // The DWARF truth for net/http's bundled server and Go 1.27's internal one is in
    // the offsets table `cargo xtask offsets` generates (apiprof itself reads the
    // machine code, which also covers golang.org/x/net's server, stripped or not).
    let table: serde_json::Value = serde_json::from_str(include_str!(
        "../../profiler/src/target/offsets/go_offsets.json"
    ))
    .unwrap();
    let dwarf = |field: &str, go: &str| -> u16 {
        let minor: u32 = go[2..].parse().unwrap();
        let history = table["fields"][format!("net/http.http2responseWriterState.{field}")]
            .as_array()
            .unwrap();
        let entry = history
            .iter()
            .rfind(|e| e["since"].as_str().unwrap()[2..].parse::<u32>().unwrap() <= minor)
            .unwrap();
        entry["offset"].as_u64().unwrap() as u16
    };
    for go in ["1.19", "1.24", "1.27"] {
        let write = if go == "1.27" {
            "net/http/internal/http2.(*responseWriter).write"
        } else {
            "net/http.(*http2responseWriter).write"
        };
        let want = (
            dwarf("status", go),
            dwarf("wroteHeader", go),
            dwarf("wroteBytes", go),
        );
        for build in [
            format!("goserver-go{go}"),
            format!("goserver-go{go}-stripped"),
        ] {
            let binary = GoBinary::open(&fixtures_dir().join(&build)).unwrap();
            let function = binary.function(write).unwrap();
            assert_eq!(
                writer_fields(binary.code(&function), function.address).map(|f| (
                    f.status,
                    f.wrote_header,
                    f.wrote_bytes
                )),
                Some(want),
                "{build}"
            );
        }
    }
}
