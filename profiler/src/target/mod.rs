//! The observed process: its executable and Go symbols ([`symbols`]: `.symtab`, or
//! `.gopclntab` when stripped), the Go struct offsets of its version ([`offsets`]), the
//! machine code probes are placed in ([`disasm`]) and which functions are probed, how
//! ([`probes`]).

pub mod disasm;
pub mod offsets;
pub mod probes;
mod process;
pub mod symbols;

pub use process::{Binaries, Target, TargetError, DEFAULT_MEM_PROFILE_RATE};
