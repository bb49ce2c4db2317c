//! What apiprof could leave attached in the kernel, read from the kernel itself: BPF
//! programs and links by id, and tracefs's uprobe events. A test takes it before
//! apiprof runs and checks the kernel is back at it once apiprof is gone or refused.

use std::time::Duration;

/// BPF programs and links loaded in the kernel, by id (`bpf(BPF_*_GET_NEXT_ID)`).
fn bpf_objects(command: i32) -> Vec<u32> {
    #[repr(C)]
    struct NextId {
        start_id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut ids = Vec::new();
    let mut attr = NextId {
        start_id: 0,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: the bpf syscall reads and writes the attr we pass, of the size we give.
    while unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            &mut attr as *mut NextId,
            std::mem::size_of::<NextId>(),
        )
    } == 0
    {
        ids.push(attr.next_id);
        attr.start_id = attr.next_id;
    }
    ids
}

const BPF_PROG_GET_NEXT_ID: i32 = 11;
const BPF_LINK_GET_NEXT_ID: i32 = 31;

/// What apiprof could leave attached in the kernel: BPF programs, BPF links and tracefs
/// uprobe events.
#[derive(Debug, PartialEq)]
pub struct Attached {
    /// BPF program ids.
    pub programs: Vec<u32>,
    /// BPF link ids.
    pub links: Vec<u32>,
    /// The text of tracefs's `uprobe_events`.
    pub uprobe_events: String,
}

impl Attached {
    /// What is attached now.
    pub fn now() -> Self {
        Self {
            programs: bpf_objects(BPF_PROG_GET_NEXT_ID),
            links: bpf_objects(BPF_LINK_GET_NEXT_ID),
            uprobe_events: std::fs::read_to_string("/sys/kernel/tracing/uprobe_events")
                .unwrap_or_default(),
        }
    }

    /// Waits up to 5 s for the kernel to be back at `self` (it frees programs and links
    /// after their last file closes, not always at once); panics with `why` otherwise.
    /// (Blocking: a test calls it with nothing else of its own running.)
    pub fn wait_back(&self, why: &str) {
        let start = std::time::Instant::now();
        while Attached::now() != *self && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(Attached::now(), *self, "{why}: left attached");
    }
}
