//! apiprof's report against the truth: per key (user_agent, verb, resource, rv_class;
//! or user_agent, http_version), the requests counted and the response bytes, with
//! precision and recall of the counts.
//!
//! Precision = Σ min(truth, reported) / Σ reported and recall = Σ min / Σ truth, summed
//! over every key either side has (a reported row no client sent counts against
//! precision). Bytes are checked on keys other than WATCHes (whose bytes depend on
//! when the recording stops), exactly as the client received them ([`BYTES_TOLERANCE`]),
//! and on the same keys the status codes exactly.

use std::{collections::BTreeMap, fmt};

use crate::load::Tally;

/// Largest accepted |reported − truth| / truth of response bytes per key: none. apiprof
/// reads the bytes the handler wrote from the writer's own counter, and the clients read
/// every body but a WATCH's to its end, so one write counted twice (the bug the ledger
/// once found) fails.
pub const BYTES_TOLERANCE: f64 = 0.0;

/// One key's figures on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The values of the dimensions compared by.
    pub key: Vec<String>,
    pub truth: Tally,
    pub reported: Tally,
    /// Whether bytes and status codes are compared on this key (only when keyed by
    /// verb, and not for WATCHes).
    pub bytes_checked: bool,
}

impl Row {
    /// Relative error of the reported bytes; 0 when both are 0.
    pub fn bytes_error(&self) -> f64 {
        let (t, r) = (self.truth.bytes as f64, self.reported.bytes as f64);
        if t == 0.0 {
            if r == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (r - t).abs() / t
        }
    }

    /// Whether the status codes are as the clients received them (where checked).
    pub fn status_ok(&self) -> bool {
        !self.bytes_checked || self.truth.status == self.reported.status
    }

    /// Counts equal, status codes equal and bytes within tolerance where checked.
    pub fn ok(&self) -> bool {
        self.truth.count == self.reported.count
            && self.status_ok()
            && (!self.bytes_checked || self.bytes_error() <= BYTES_TOLERANCE)
    }
}

/// The comparison of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The report dimensions the keys are made of.
    pub by: Vec<String>,
    pub rows: Vec<Row>,
    pub precision: f64,
    pub recall: f64,
    /// The largest relative bytes error over the checked keys.
    pub bytes_error: f64,
}

impl Comparison {
    /// Precision and recall 1.0, every status code as received, bytes within tolerance.
    pub fn passed(&self) -> bool {
        self.precision == 1.0
            && self.recall == 1.0
            && self.rows.iter().all(Row::status_ok)
            && self.bytes_error <= BYTES_TOLERANCE
    }
}

/// Compares `reported` (apiprof) with `truth` (the ledger), both keyed by the report
/// dimensions `by`.
pub fn compare(
    by: &[&str],
    truth: &BTreeMap<Vec<String>, Tally>,
    reported: &BTreeMap<Vec<String>, Tally>,
) -> Comparison {
    let verb = by.iter().position(|d| *d == "verb");
    let mut keys: Vec<&Vec<String>> = truth.keys().chain(reported.keys()).collect();
    keys.sort();
    keys.dedup();
    let rows: Vec<Row> = keys
        .into_iter()
        .map(|key| Row {
            key: key.clone(),
            truth: truth.get(key).cloned().unwrap_or_default(),
            reported: reported.get(key).cloned().unwrap_or_default(),
            bytes_checked: verb.is_some_and(|i| key[i] != "watch"),
        })
        .collect();
    let sum = |f: &dyn Fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    let matched = sum(&|r| r.truth.count.min(r.reported.count));
    let ratio = |total: u64| {
        if total == 0 {
            1.0
        } else {
            matched as f64 / total as f64
        }
    };
    let bytes_error = rows
        .iter()
        .filter(|r| r.bytes_checked)
        .map(Row::bytes_error)
        .fold(0.0, f64::max);
    Comparison {
        by: by.iter().map(|d| (*d).to_owned()).collect(),
        precision: ratio(sum(&|r| r.reported.count)),
        recall: ratio(sum(&|r| r.truth.count)),
        bytes_error,
        rows,
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.rows.iter().map(|r| r.key.join(" ")).collect();
        let header = format!("key ({})", self.by.join(" "));
        let width = keys
            .iter()
            .map(String::len)
            .chain([header.len()])
            .max()
            .unwrap_or(0);
        writeln!(
            f,
            "{header:width$} | {:>5} | {:>7} | {:>11} | {:>13} | ok",
            "truth", "apiprof", "truth bytes", "apiprof bytes"
        )?;
        for (row, key) in self.rows.iter().zip(&keys) {
            let bytes = |n: u64| {
                if row.bytes_checked {
                    n.to_string()
                } else {
                    "-".into()
                }
            };
            writeln!(
                f,
                "{key:width$} | {:>5} | {:>7} | {:>11} | {:>13} | {}",
                row.truth.count,
                row.reported.count,
                bytes(row.truth.bytes),
                bytes(row.reported.bytes),
                if row.ok() {
                    "ok".to_owned()
                } else if !row.status_ok() {
                    format!(
                        "MISMATCH status {:?} vs {:?}",
                        row.truth.status, row.reported.status
                    )
                } else {
                    "MISMATCH".to_owned()
                }
            )?;
        }
        write!(
            f,
            "precision {:.4}  recall {:.4}  bytes error {:.4}% (tolerance {}%)",
            self.precision,
            self.recall,
            self.bytes_error * 100.0,
            BYTES_TOLERANCE * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BY: [&str; 4] = ["user_agent", "verb", "resource", "rv_class"];

    fn key(ua: &str, verb: &str) -> Vec<String> {
        [ua, verb, "configmaps", "most_recent"]
            .map(String::from)
            .to_vec()
    }

    fn tally(count: u64, bytes: u64) -> Tally {
        Tally {
            count,
            bytes,
            ..Tally::default()
        }
    }

    #[test]
    fn equal_counts_and_bytes_pass_whatever_a_watch_reports() {
        let truth = BTreeMap::from([
            (key("a", "list"), tally(10, 1000)),
            (key("a", "watch"), tally(1, 50)),
        ]);
        let reported = BTreeMap::from([
            (key("a", "list"), tally(10, 1000)),
            (key("a", "watch"), tally(1, 0)),
        ]);
        let c = compare(&BY, &truth, &reported);
        assert_eq!((c.precision, c.recall, c.bytes_error), (1.0, 1.0, 0.0));
        assert!(c.passed(), "{c}");
    }

    #[test]
    fn missed_and_foreign_requests_lower_recall_and_precision() {
        let truth = BTreeMap::from([
            (key("a", "list"), tally(8, 800)),
            (key("a", "get"), tally(2, 20)),
        ]);
        let reported = BTreeMap::from([
            (key("a", "list"), tally(6, 600)),
            (key("other", "get"), tally(2, 20)),
        ]);
        let c = compare(&BY, &truth, &reported);
        // matched: 6 lists; reported 8; sent 10
        assert_eq!((c.precision, c.recall), (0.75, 0.6));
        assert_eq!(c.rows.len(), 3);
        assert!(!c.passed());
        assert_eq!(c.rows.iter().filter(|r| !r.ok()).count(), 3);
    }

    #[test]
    fn one_byte_too_many_fails() {
        let truth = BTreeMap::from([(key("a", "get"), tally(1, 1000))]);
        let reported = BTreeMap::from([(key("a", "get"), tally(1, 1001))]);
        let c = compare(&BY, &truth, &reported);
        assert_eq!((c.precision, c.recall), (1.0, 1.0));
        assert!(!c.passed());
        assert!(c.to_string().contains("MISMATCH"), "{c}");
    }

    #[test]
    fn a_status_code_other_than_received_fails() {
        let with = |status: u16| Tally {
            status: BTreeMap::from([(status, 1)]),
            ..tally(1, 100)
        };
        let truth = BTreeMap::from([(key("a", "get"), with(200))]);
        let reported = BTreeMap::from([(key("a", "get"), with(404))]);
        let c = compare(&BY, &truth, &reported);
        assert_eq!((c.precision, c.recall), (1.0, 1.0));
        assert!(!c.passed());
        assert!(c.to_string().contains("MISMATCH status"), "{c}");
    }

    #[test]
    fn without_a_verb_dimension_only_counts_are_compared() {
        let key = |v: &str| vec!["a".to_owned(), v.to_owned()];
        let t = |count| Tally {
            count,
            bytes: 5,
            ..Tally::default()
        };
        let truth = BTreeMap::from([(key("HTTP/2.0"), t(3))]);
        let reported = BTreeMap::from([(
            key("HTTP/2.0"),
            Tally {
                count: 3,
                ..Tally::default()
            },
        )]);
        let c = compare(&["user_agent", "http_version"], &truth, &reported);
        assert!(c.passed(), "{c}");
        assert!(
            c.to_string()
                .starts_with("key (user_agent http_version) | truth"),
            "{c}"
        );
    }
}
