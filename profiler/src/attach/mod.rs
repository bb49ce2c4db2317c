//! Loading apiprof's eBPF object and attaching its probes to the observed processes.

mod loader;

pub use loader::{LoadError, Probes, Tracking};
