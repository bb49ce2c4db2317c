//! Stripped Go binaries are probed through `.gopclntab`, and at the same addresses the
//! unstripped build's `.symtab` gives.

use apiprof::target::{
    disasm::global_compared_with_one,
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
