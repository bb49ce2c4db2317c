//! User agents as the daemon keeps them: lines of user agents, each counted in a bounded
//! set of names (rotated every eighth) and matched against a `user_agent=` filter whose
//! patterns are the first line.
#![no_main]

use apiprof::analyze::{
    filter::Filter,
    names::{bounded, Names},
};
use libfuzzer_sys::fuzz_target;

/// Names kept: small, so that inputs of a few lines already evict.
const CAPACITY: usize = 3;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut filter = Filter::default();
    // A pattern with `=` or `,` is still a filter: only the first `=` or `!=` splits.
    let _ = filter.add(&format!("user_agent={}", lines.next().unwrap_or_default()));
    let mut names = Names::new(CAPACITY);
    for (i, user_agent) in lines.enumerate() {
        bounded(&mut names, user_agent);
        if i % 8 == 7 {
            names.rotate();
        }
        assert!(names.len() <= CAPACITY);
        let request = apiprof_fuzz::request("GET", "/api/v1/pods", "", user_agent, "10.0.0.1:443");
        filter.admits(&request);
    }
});
