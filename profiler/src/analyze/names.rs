//! Bounded sets of names: the daemon keeps the busiest values of a dimension (above all
//! user agents) by name and folds the rest into `other`, so its memory and its metrics'
//! label values stay bounded however many distinct values clients send.
//!
//! Names are admitted while slots are free. Past that, newcomers count as `other`, and a
//! bounded Space-Saving sketch follows the busiest of them; at every rotation (the
//! daemon rotates once per time bucket) a newcomer busier over the last period than the
//! least busy kept name takes its slot.

use std::collections::HashMap;

use super::rows::OTHER;

/// The busiest values of one dimension, by name.
#[derive(Debug)]
pub struct Names {
    capacity: usize,
    /// Kept names and their requests in the current period.
    kept: HashMap<String, u64>,
    /// Newcomers past capacity and their (over)estimated requests this period.
    candidates: HashMap<String, u64>,
}

impl Names {
    /// Keeps at most `capacity` names.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            kept: HashMap::new(),
            candidates: HashMap::new(),
        }
    }

    /// The name a request with `value` is counted under: `value` when kept, else `other`.
    pub fn admit(&mut self, value: &str) -> bool {
        if let Some(n) = self.kept.get_mut(value) {
            *n += 1;
            return true;
        }
        if self.kept.len() < self.capacity {
            self.kept.insert(value.to_owned(), 1);
            return true;
        }
        self.note_candidate(value);
        false
    }

    /// Space-Saving: a newcomer not followed yet replaces the least counted one and
    /// inherits its count, so no busy newcomer is missed.
    fn note_candidate(&mut self, value: &str) {
        if let Some(n) = self.candidates.get_mut(value) {
            *n += 1;
            return;
        }
        if self.candidates.len() < self.capacity.max(1) {
            self.candidates.insert(value.to_owned(), 1);
            return;
        }
        let Some((least, count)) = self
            .candidates
            .iter()
            .min_by_key(|(_, n)| **n)
            .map(|(name, n)| (name.clone(), *n))
        else {
            return;
        };
        self.candidates.remove(&least);
        self.candidates.insert(value.to_owned(), count + 1);
    }

    /// Ends a period: newcomers busier than the least busy kept names take their slots.
    /// Returns the names given up (their rows now count as `other`).
    pub fn rotate(&mut self) -> Vec<String> {
        let mut candidates: Vec<(String, u64)> = self.candidates.drain().collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut evicted = Vec::new();
        for (name, count) in candidates {
            let Some((least, least_count)) = self
                .kept
                .iter()
                .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(name, n)| (name.clone(), *n))
            else {
                break;
            };
            if count <= least_count {
                break;
            }
            self.kept.remove(&least);
            self.kept.insert(name, 0);
            evicted.push(least);
        }
        for n in self.kept.values_mut() {
            *n = 0;
        }
        evicted
    }

    /// Names kept now.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether no name is kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// `value` as counted by `names`: itself, or `other`.
pub fn bounded(names: &mut Names, value: &str) -> String {
    if names.admit(value) {
        value.to_owned()
    } else {
        OTHER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_capacity_names_count_as_other_until_a_busier_one_takes_a_slot() {
        let mut names = Names::new(2);
        assert_eq!(bounded(&mut names, "a"), "a");
        assert_eq!(bounded(&mut names, "b"), "b");
        for _ in 0..5 {
            assert_eq!(bounded(&mut names, "busy"), OTHER);
        }
        assert_eq!(bounded(&mut names, "a"), "a");
        // "busy" (5) beats "b" (1) over the period; "a" (2) stays.
        assert_eq!(names.rotate(), ["b"]);
        assert_eq!(bounded(&mut names, "busy"), "busy");
        assert_eq!(bounded(&mut names, "b"), OTHER);
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn a_hundred_thousand_distinct_names_keep_the_sets_bounded() {
        let mut names = Names::new(10);
        for i in 0..100_000 {
            names.admit(&format!("ua-{i}"));
        }
        assert_eq!((names.len(), names.candidates.len()), (10, 10));
    }
}
