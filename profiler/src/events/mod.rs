//! Kernel events: drained from the ring buffer ([`drain`]), decoded ([`decode`]), with
//! the repeats of interrupted probes dropped ([`repeats`]) and the kernel's own pages
//! named in stacks ([`mappings`]).

pub mod decode;
pub mod drain;
pub mod mappings;
pub mod repeats;
