//! Kernel events: drained from the ring buffer ([`drain`]), decoded ([`decode`]), joined
//! to their requests with the repeats of interrupted probes dropped ([`join`]), a
//! client's joined into its requests and resyncs ([`client`]), and the kernel's own
//! pages named in stacks ([`mappings`]).

pub mod client;
pub mod decode;
pub mod drain;
pub mod join;
pub mod mappings;
