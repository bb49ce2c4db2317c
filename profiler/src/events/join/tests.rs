use profiler_common::event::Lineage;

use super::*;
use crate::events::decode::{AllocSample, CpuSample, GoroutineStart, HttpRequest, HttpResponse};

fn start(at: u64, goroutine: u64, goid: u64, request: u64) -> Event {
    Event::HttpRequest(HttpRequest {
        ktime_ns: at,
        tid: 1,
        goroutine,
        goid,
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
        query_cut: false,
    })
}

fn end(at: u64, goroutine: u64) -> Event {
    Event::HttpResponse(HttpResponse {
        ktime_ns: at,
        goroutine,
        request: 0,
        status: 200,
        response_bytes: 0,
    })
}

fn alloc(goroutine: u64, address: u64) -> Event {
    Event::Alloc(AllocSample {
        ktime_ns: 0,
        goroutine,
        lineage: Lineage::default(),
        request: 0,
        address,
        size: 8,
        stack: vec![],
    })
}

fn cpu(at: u64, goid: u64, parent_goid: u64) -> Event {
    Event::Cpu(CpuSample {
        ktime_ns: at,
        goroutine: 0,
        lineage: Lineage { goid, parent_goid },
        request: 0,
        kernel: false,
        stack: vec![],
    })
}

fn request(event: Option<Event>) -> Option<u64> {
    event.map(|e| match e {
        Event::HttpRequest(r) => r.request,
        Event::HttpResponse(r) => r.request,
        Event::Alloc(a) => a.request,
        Event::Cpu(c) => c.request,
        other => unreachable!("{other:?}"),
    })
}

#[test]
fn a_second_report_of_the_same_start_or_object_on_a_goroutine_is_a_repeat() {
    let mut j = Join::default();
    let kept: Vec<bool> = [
        start(0, 1, 11, 0xa),
        start(0, 1, 11, 0xa), // repeat
        start(0, 2, 12, 0xa), // another goroutine
        end(0, 1),
        start(0, 1, 11, 0xa), // a new request at a reused address
        alloc(1, 0x10),
        alloc(1, 0x10), // repeat
        alloc(2, 0x10),
        alloc(1, 0x20),
        alloc(1, 0x10), // reused after another allocation
    ]
    .into_iter()
    .map(|e| j.join(e).is_some())
    .collect();
    assert_eq!(
        kept,
        [true, false, true, true, true, true, false, true, true, true]
    );
    assert_eq!(j.repeats, 2);
}

#[test]
fn an_end_is_the_end_of_the_request_its_goroutine_started_last() {
    let mut j = Join::default();
    assert_eq!(request(j.join(start(1, 7, 70, 0xa))), Some(0xa));
    assert_eq!(request(j.join(start(2, 8, 80, 0xb))), Some(0xb));
    assert_eq!(request(j.join(end(3, 8))), Some(0xb));
    assert_eq!(request(j.join(end(4, 7))), Some(0xa));
    // An HTTP/1 connection ending with nothing in flight.
    assert_eq!(request(j.join(end(5, 7))), None);
}

#[test]
fn samples_belong_to_the_request_served_or_started_by_their_parent() {
    let mut j = Join::default();
    j.join(start(1, 7, 70, 0xa));
    // The serving goroutine; a child of it; a grandchild once the child was seen.
    assert_eq!(request(j.join(cpu(2, 70, 1))), Some(0xa));
    assert_eq!(request(j.join(cpu(3, 71, 70))), Some(0xa));
    assert_eq!(request(j.join(cpu(4, 72, 71))), Some(0xa));
    // Unrelated goroutines are background.
    assert_eq!(request(j.join(cpu(5, 90, 1))), Some(0));
    j.join(end(6, 7));
    // The handler returned: its goroutine's own samples are background, its children
    // still work for it (they may outlive it) until LINGER_NS has passed.
    assert_eq!(request(j.join(cpu(7, 70, 1))), Some(0));
    assert_eq!(request(j.join(cpu(8, 71, 70))), Some(0xa));
    assert_eq!(request(j.join(cpu(9, 73, 70))), Some(0xa));
    j.join(start(10 + LINGER_NS, 9, 95, 0xc));
    assert_eq!(request(j.join(cpu(11 + LINGER_NS, 74, 70))), Some(0));
}

#[test]
fn with_deep_lineage_goroutines_inherit_their_creators_request() {
    let mut j = Join::default();
    j.join(start(1, 7, 70, 0xa));
    let started = |creator_goid, child_goid| {
        Event::Goroutine(GoroutineStart {
            ktime_ns: 2,
            creator_goid,
            child_goid,
        })
    };
    assert!(j.join(started(70, 71)).is_none());
    assert!(j.join(started(71, 72)).is_none());
    // No parent id (Go before 1.21): the chain of starts alone finds the request.
    assert_eq!(request(j.join(cpu(3, 72, 0))), Some(0xa));
}
