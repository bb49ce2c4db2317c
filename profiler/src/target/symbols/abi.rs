//! Names ABI twins as the linker names them in `.symtab`.
//!
//! A function called across the Go ABIs gets a wrapper with the same name: a Go function
//! (ABIInternal) referenced from assembly gets an ABI0 wrapper, and an assembly function
//! (ABI0) called from Go gets an ABIInternal wrapper. `.gopclntab` lists both under one
//! name; `.symtab` appends `.abi0` to the ABI0 one (cmd/link `mangleABIName`), so that the
//! plain name is the ABIInternal code that Go callers run. The ABI0 twin is the one written
//! in assembly (`_func.flag` ASM) or else the compiler's wrapper (`_func.funcID` wrapper).
//! Pairs alike in both (`reflect.callMethod`, itself a wrapper) keep their names; lookups
//! then take the lower address, which in the binaries checked is the body (wrappers follow
//! their package's functions). Go 1.18–1.20 tables shorten generic names to `F[...]`, so
//! instances share a name: those are left alone.

use std::collections::HashMap;

use super::elf::RawFunction;

/// What `_func` says about a function's ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AbiInfo {
    /// `_func.funcID`: 0 for ordinary functions; the wrapper ID for compiler wrappers.
    pub func_id: u8,
    /// Written in assembly (always ABI0).
    pub asm: bool,
}

/// Appends `.abi0` to the ABI0 function of each pair sharing a name; `abis[i]` describes
/// `functions[i]`. Pairs that cannot be told apart keep their names.
pub(super) fn mangle_abi0_twins(functions: &mut [RawFunction], abis: &[AbiInfo]) {
    let wrapper_id = wrapper_func_id(abis);
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in functions
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name.contains("[...]"))
    {
        by_name.entry(f.name.as_str()).or_default().push(i);
    }
    let abi0: Vec<usize> = by_name
        .into_values()
        .filter_map(|twins| match twins[..] {
            [a, b] => abi0_of(wrapper_id, (a, abis[a]), (b, abis[b])),
            _ => None,
        })
        .collect();
    for i in abi0 {
        functions[i].name.push_str(".abi0");
    }
}

/// Which of two same-named functions is the ABI0 one, if they differ in a telling way.
fn abi0_of(
    wrapper_id: Option<u8>,
    (a, a_abi): (usize, AbiInfo),
    (b, b_abi): (usize, AbiInfo),
) -> Option<usize> {
    let is_wrapper = |abi: AbiInfo| Some(abi.func_id) == wrapper_id;
    if a_abi.asm != b_abi.asm {
        Some(if a_abi.asm { a } else { b })
    } else if is_wrapper(a_abi) != is_wrapper(b_abi) {
        Some(if is_wrapper(a_abi) { a } else { b })
    } else {
        None
    }
}

/// The funcID of compiler wrappers. Its value changes between Go releases, but every other
/// non-zero funcID marks one runtime function while wrappers are many: the most common
/// non-zero funcID, if any occurs twice.
fn wrapper_func_id(abis: &[AbiInfo]) -> Option<u8> {
    let mut counts = [0usize; 256];
    for abi in abis {
        counts[usize::from(abi.func_id)] += 1;
    }
    (1..=u8::MAX)
        .max_by_key(|&id| counts[usize::from(id)])
        .filter(|&id| counts[usize::from(id)] > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, address: u64) -> RawFunction {
        RawFunction {
            name: name.into(),
            address,
            size: 0x20,
        }
    }

    const GO: AbiInfo = AbiInfo {
        func_id: 0,
        asm: false,
    };
    const ASM: AbiInfo = AbiInfo {
        func_id: 0,
        asm: true,
    };
    const WRAPPER: AbiInfo = AbiInfo {
        func_id: 22,
        asm: false,
    };

    fn names(functions: &[RawFunction]) -> Vec<&str> {
        functions.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn names_abi0_wrappers_and_assembly() {
        let mut functions = vec![
            f("runtime.osinit", 0x1000),     // Go code
            f("internal/cpu.cpuid", 0x1100), // assembly
            f("internal/cpu.cpuid", 0x1200), // its ABIInternal wrapper
            f("main.main", 0x1300),
            f("runtime.osinit", 0x1400), // its ABI0 wrapper
            f("type:.eq.main.T", 0x1500),
        ];
        let abis = [GO, ASM, WRAPPER, GO, WRAPPER, WRAPPER];
        mangle_abi0_twins(&mut functions, &abis);
        assert_eq!(
            names(&functions),
            [
                "runtime.osinit",
                "internal/cpu.cpuid.abi0",
                "internal/cpu.cpuid",
                "main.main",
                "runtime.osinit.abi0",
                "type:.eq.main.T"
            ]
        );
    }

    #[test]
    fn keeps_names_it_cannot_tell_apart() {
        let mut functions = vec![
            f("a", 0x10),
            f("a", 0x20),
            f("b", 0x30),
            f("b", 0x40),
            f("b", 0x50),
            f("c[...]", 0x60),
            f("c[...]", 0x70),
        ];
        let abis = [GO, GO, WRAPPER, GO, WRAPPER, GO, WRAPPER];
        mangle_abi0_twins(&mut functions, &abis);
        assert_eq!(
            names(&functions),
            ["a", "a", "b", "b", "b", "c[...]", "c[...]"]
        );
    }

    #[test]
    fn wrapper_id_is_the_most_common_special_id() {
        let special = AbiInfo {
            func_id: 3,
            asm: false,
        };
        assert_eq!(
            wrapper_func_id(&[GO, special, WRAPPER, WRAPPER, GO]),
            Some(22)
        );
        assert_eq!(wrapper_func_id(&[GO, special, WRAPPER]), None);
        assert_eq!(wrapper_func_id(&[]), None);
    }
}
