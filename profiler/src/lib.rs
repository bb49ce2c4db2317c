//! apiprof: an eBPF-assisted load profiler for Go HTTP servers, above all the Kubernetes
//! API server. The folders follow the data:
//!
//! - [`target`]: the observed process — symbols (ELF `.symtab`, or `.gopclntab` in
//!   stripped binaries), Go struct offsets per version, where each probe goes;
//! - [`attach`]: loading the kernel programs and attaching them;
//! - [`events`]: draining, decoding and cleaning kernel events;
//! - [`capture`]: the capture file format, its writer and reader;
//! - [`analyze`]: requests read as the API server reads them, joined with their costs,
//!   grouped into rows;
//! - [`serve`]: the daemon's state, fed by every attached process, and its HTTP API
//!   (`/metrics`, `/report`, `/healthz`);
//! - [`report`]: table, JSON and folded stacks;
//! - [`cli`]: one module per verb, wiring the stages together.
#![deny(missing_docs)]

pub mod analyze;
pub mod attach;
pub mod capture;
pub mod cli;
pub mod events;
pub mod report;
pub mod serve;
pub mod target;
