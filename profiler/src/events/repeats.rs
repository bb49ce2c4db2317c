//! Drops events a uprobe reported twice. When a signal arrives while the kernel
//! single-steps a probed instruction, the instruction is restarted and the probe runs
//! again; Go's preemption signal (SIGURG) makes this common on busy goroutines. A repeat
//! is recognisable: the same goroutine reports the same request start, or the same
//! allocated object, twice in a row.

use std::collections::HashMap;

use crate::events::decode::Event;

/// What each goroutine last reported.
#[derive(Debug, Default)]
pub struct Repeats {
    /// The request each goroutine started serving and has not yet finished.
    started: HashMap<u64, u64>,
    /// The object address of each goroutine's last allocation sample.
    allocated: HashMap<u64, u64>,
    /// Events dropped so far.
    pub dropped: u64,
}

impl Repeats {
    /// Whether `event` repeats the one before it on its goroutine (and should be
    /// dropped); remembers it otherwise.
    pub fn is_repeat(&mut self, event: &Event) -> bool {
        let repeat = match event {
            Event::HttpRequest(r) => self.started.insert(r.goroutine, r.request) == Some(r.request),
            Event::HttpResponse(r) => {
                self.started.remove(&r.goroutine);
                false
            }
            Event::Alloc(a) => self.allocated.insert(a.goroutine, a.address) == Some(a.address),
            // Perf-event programs do not single-step: they never run twice.
            Event::Cpu(_) => false,
        };
        self.dropped += u64::from(repeat);
        repeat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decode::{AllocSample, HttpRequest, HttpResponse};

    fn start(goroutine: u64, request: u64) -> Event {
        Event::HttpRequest(HttpRequest {
            ktime_ns: 0,
            tid: 1,
            goroutine,
            request,
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            http_version: "HTTP/1.1".into(),
            user_agent: String::new(),
            remote_addr: String::new(),
            client_pod: None,
            client_owner: None,
            truncated: false,
        })
    }

    fn end(goroutine: u64, request: u64) -> Event {
        Event::HttpResponse(HttpResponse {
            ktime_ns: 0,
            goroutine,
            request,
            status: 200,
            response_bytes: 0,
        })
    }

    fn alloc(goroutine: u64, address: u64) -> Event {
        Event::Alloc(AllocSample {
            ktime_ns: 0,
            goroutine,
            request: 0,
            address,
            size: 8,
            stack: vec![],
        })
    }

    #[test]
    fn a_second_report_of_the_same_start_or_object_on_a_goroutine_is_a_repeat() {
        let mut r = Repeats::default();
        let seen: Vec<bool> = [
            start(1, 0xa),
            start(1, 0xa), // repeat
            start(2, 0xa), // another goroutine
            end(1, 0xa),
            start(1, 0xa), // a new request at a reused address
            alloc(1, 0x10),
            alloc(1, 0x10), // repeat
            alloc(2, 0x10),
            alloc(1, 0x20),
            alloc(1, 0x10), // reused after another allocation
        ]
        .iter()
        .map(|e| r.is_repeat(e))
        .collect();
        assert_eq!(
            seen,
            [false, true, false, false, false, false, true, false, false, false]
        );
        assert_eq!(r.dropped, 2);
    }
}
