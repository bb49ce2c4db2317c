//! Types shared by apiprof's eBPF programs (`profiler-ebpf`) and its userspace
//! (`profiler`).
//!
//! Every type here is `#[repr(C)]`, `Copy`, free of `bool` and of implicit padding, so
//! that both sides agree on its layout byte for byte. Sizes are asserted at compile time.
//! The `user` feature adds the `aya::Pod` impls userspace needs to read and write them.
#![no_std]
#![deny(missing_docs)]

pub mod alloc;
pub mod attach;
pub mod client;
pub mod cpu;
pub mod event;
pub mod http;
pub mod offsets;
