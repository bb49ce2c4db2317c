//! Loading apiprof's eBPF object, attaching its probes to a process ([`Probes`]), and
//! finding the processes to attach to ([`processes`]).

mod loader;
pub mod processes;

pub use loader::{Links, LoadError, Probes, Tracking};
