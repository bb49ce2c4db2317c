//! What userspace tells a program about where it is attached, through its BPF cookie.

/// At the function's first instruction.
pub const AT_ENTRY: u64 = 0;

/// At the conditional jump of the function's stack check (`CMP RSP, [R14+16]; JBE
/// morestack`, the first or second instruction of most Go functions), where the
/// arguments are still in their registers. The kernel emulates a jump instead of
/// single-stepping the displaced instruction out of line, which costs a trap and ~20 µs
/// on a VM. When the jump is taken, the function grows its stack and starts over,
/// passing the probe again: programs ignore that first pass.
pub const AT_STACK_CHECK: u64 = 1;

/// Where an HTTP/2 server's `responseWriterState` keeps what the handler wrote. Its
/// layout depends on the server (net/http's bundled copy, Go 1.27's internal one,
/// golang.org/x/net at the version the binary vendors), so userspace reads it from the
/// machine code of that server's `(*responseWriter).write` and passes it as the cookie
/// of the program that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterFields {
    /// `status` (int).
    pub status: u16,
    /// `wroteHeader` (bool).
    pub wrote_header: u16,
    /// `wroteBytes` (int64).
    pub wrote_bytes: u16,
}

impl WriterFields {
    /// The fields packed into a cookie (16 bits each).
    pub fn to_cookie(self) -> u64 {
        u64::from(self.status)
            | u64::from(self.wrote_header) << 16
            | u64::from(self.wrote_bytes) << 32
    }

    /// The fields a cookie made by [`WriterFields::to_cookie`] holds.
    pub fn from_cookie(cookie: u64) -> Self {
        Self {
            status: cookie as u16,
            wrote_header: (cookie >> 16) as u16,
            wrote_bytes: (cookie >> 32) as u16,
        }
    }
}
