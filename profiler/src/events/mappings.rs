//! Names for addresses outside the Go binary's functions that stacks still contain: the
//! kernel's special mappings in the observed process, `[uprobes]` (the page where the
//! kernel executes instructions a uprobe displaced: a sample there is apiprof's own probe
//! at work) and `[vdso]` (clock reads).

use procfs::process::{MMapPath, MemoryMaps, Process};

/// The special mappings of one process, read from /proc/PID/maps when first needed and
/// again whenever an address falls in none of them (the kernel maps `[uprobes]` at the
/// first probe hit).
#[derive(Debug)]
pub struct Mappings {
    pid: u32,
    ranges: Vec<(u64, u64, &'static str)>,
}

impl Mappings {
    /// The mappings of process `pid`, not yet read.
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            ranges: Vec::new(),
        }
    }

    /// The frame name of `pc` if it lies in a special mapping.
    pub fn name(&mut self, pc: u64) -> Option<&'static str> {
        if let Some(name) = find(&self.ranges, pc) {
            return Some(name);
        }
        let maps = Process::new(i32::try_from(self.pid).ok()?)
            .ok()?
            .maps()
            .ok()?;
        self.ranges = special(&maps);
        find(&self.ranges, pc)
    }
}

fn find(ranges: &[(u64, u64, &'static str)], pc: u64) -> Option<&'static str> {
    ranges
        .iter()
        .find(|(start, end, _)| (*start..*end).contains(&pc))
        .map(|(_, _, name)| *name)
}

/// The special mappings among a process's mappings, with their frame names.
fn special(maps: &MemoryMaps) -> Vec<(u64, u64, &'static str)> {
    maps.iter()
        .filter_map(|map| {
            let frame = match &map.pathname {
                MMapPath::Vdso => "[vdso]",
                MMapPath::Other(name) if name == "uprobes" => "[apiprof uprobe]",
                _ => return None,
            };
            Some((map.address.0, map.address.1, frame))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use procfs::FromBufRead as _;

    use super::*;

    #[test]
    fn uprobe_and_vdso_pages_are_named_and_other_mappings_are_not() {
        let maps = "00400000-00a00000 r-xp 00000000 fd:01 123 /usr/bin/kube-apiserver\n\
                    7f9d1f4f0000-7f9d1f4f2000 r-xp 00000000 00:00 0                          [vdso]\n\
                    7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n\
                    7fffffffe000-7ffffffff000 --xp 00000000 00:00 0                          [uprobes]\n";
        let ranges = special(&MemoryMaps::from_buf_read(maps.as_bytes()).unwrap());
        assert_eq!(find(&ranges, 0x7fffffffe084), Some("[apiprof uprobe]"));
        assert_eq!(find(&ranges, 0x7f9d1f4f1000), Some("[vdso]"));
        assert_eq!(find(&ranges, 0x7ffd1500), None);
        assert_eq!(find(&ranges, 0x401000), None);
    }
}
