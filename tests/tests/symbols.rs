//! Stripped Go binaries are probed through `.gopclntab`, and at the same addresses the
//! unstripped build's `.symtab` gives.

use apiprof::{
    disasm::global_compared_with_one,
    symbols::{GoBinary, SymbolSource},
};
use apiprof_tests::fixtures_dir;

#[test]
fn stripped_builds_resolve_the_probed_function_at_the_unstripped_address() {
    for go in ["1.19", "1.24"] {
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
fn stripped_builds_find_mem_profile_rate_where_symtab_puts_it() {
    for go in ["1.19", "1.24"] {
        let full = GoBinary::open(&fixtures_dir().join(format!("goserver-go{go}"))).unwrap();
        let stripped =
            GoBinary::open(&fixtures_dir().join(format!("goserver-go{go}-stripped"))).unwrap();
        let f = stripped.function("runtime.profilealloc").unwrap();
        let decoded = global_compared_with_one(stripped.code(&f), f.address);
        assert_eq!(decoded, full.variable("runtime.MemProfileRate"), "Go {go}");
        assert!(decoded.is_some(), "Go {go}");
        assert_eq!(stripped.variable("runtime.MemProfileRate"), None, "Go {go}");
    }
}
