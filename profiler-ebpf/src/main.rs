//! apiprof's kernel-side programs. Each probe family lives in its own module; programs
//! stay thin: they copy what userspace needs into the ring buffer and decide nothing
//! that userspace can decide.
#![no_std]
#![no_main]

mod alloc;
mod client;
mod cpu;
mod go;
mod goroutines;
mod header_map;
mod http;
mod maps;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
