//! apiprof: an eBPF-assisted load profiler for Go HTTP servers, above all the Kubernetes
//! API server. The data flows probe → event → decode → capture → aggregate → report:
//!
//! - [`loader`] loads the kernel programs and attaches them to a Go process, using
//!   [`symbols`] (ELF `.symtab`, or `.gopclntab` in stripped binaries) and [`offsets`]
//!   (generated per Go version);
//! - [`record`] drains kernel events, [`decode`]s them and writes a [`capture`] file;
//! - [`served`] joins request starts and ends and classifies them as the Kubernetes API
//!   server does ([`k8s`]); [`aggregate`] groups them into rows that [`report`] renders.
#![deny(missing_docs)]

pub mod aggregate;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod disasm;
pub mod k8s;
pub mod loader;
pub mod mappings;
pub mod offsets;
pub mod probes;
pub mod record;
pub mod repeats;
pub mod report;
pub mod served;
pub mod symbols;
pub mod target;
