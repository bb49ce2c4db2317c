//! Rebuild the eBPF programs when bpf-linker changes (as aya-template does): a new linker
//! can produce a different object from the same source.
use which::which;

fn main() {
    let bpf_linker = which("bpf-linker").expect(
        "bpf-linker not found on PATH: run `cargo xtask setup`, which builds the pinned version",
    );
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
}
