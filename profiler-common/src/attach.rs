//! Where userspace attached an entry uprobe, told to the program through its BPF cookie.

/// At the function's first instruction.
pub const AT_ENTRY: u64 = 0;

/// At the conditional jump of the function's stack check (`CMP RSP, [R14+16]; JBE
/// morestack`, the first or second instruction of most Go functions), where the
/// arguments are still in their registers. The kernel emulates a jump instead of
/// single-stepping the displaced instruction out of line, which costs a trap and ~20 µs
/// on a VM. When the jump is taken, the function grows its stack and starts over,
/// passing the probe again: programs ignore that first pass.
pub const AT_STACK_CHECK: u64 = 1;
