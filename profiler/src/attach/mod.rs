//! Loading apiprof's eBPF object, attaching its probes to a process ([`Probes`]),
//! finding the processes to attach to ([`processes`]), and following client-go programs
//! with the client-side probes ([`clients`]).

pub mod clients;
mod loader;
pub mod processes;

pub use loader::{Links, LoadError, Probes, Tracking};
