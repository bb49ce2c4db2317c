//! A request line as the kernel copies it — method, path, query, user agent and remote
//! address, separated by NUL bytes and decoded as lossily as the event decoder does —
//! read as the API server reads it: query parameters, request info (verb, resource,
//! namespace, name), resourceVersion class, selectors, and every report dimension.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\0');
    let mut next = || fields.next().unwrap_or_default();
    let (method, path, query, user_agent, remote_addr) = (next(), next(), next(), next(), next());
    let request = apiprof_fuzz::request(method, path, query, user_agent, remote_addr);
    assert_eq!(
        request.dimensions.len(),
        apiprof::analyze::Dimension::ALL.len()
    );
});
