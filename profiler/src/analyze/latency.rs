//! Handler latencies in bounded, mergeable histograms: log buckets 1/32 octave wide
//! for report percentiles (within 1.1% of the true value), and the API server's own
//! `apiserver_request_duration_seconds` bounds for Prometheus.

use std::collections::BTreeMap;

/// Log buckets per doubling.
const PER_OCTAVE: f64 = 32.0;

/// Upper bounds, in seconds, of the Prometheus histogram's buckets: those of the API
/// server's own `apiserver_request_duration_seconds`, so the two can be compared.
pub const PROMETHEUS_BOUNDS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// A histogram of latencies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Count per log bucket: bucket `i` holds `[2^(i/32), 2^((i+1)/32))` ns.
    log: BTreeMap<u16, u64>,
    /// Count per [`PROMETHEUS_BOUNDS`] bucket (not cumulative), `+Inf` last.
    prometheus: [u64; PROMETHEUS_BOUNDS.len() + 1],
    /// Sum of all latencies, nanoseconds.
    pub sum_ns: u64,
    /// Latencies recorded.
    pub count: u64,
}

impl Latency {
    /// Records one latency.
    pub fn add(&mut self, ns: u64) {
        let bucket = ((ns.max(1) as f64).log2() * PER_OCTAVE).floor() as u16;
        *self.log.entry(bucket).or_default() += 1;
        let seconds = ns as f64 / 1e9;
        let slot = PROMETHEUS_BOUNDS.partition_point(|le| *le < seconds);
        self.prometheus[slot] += 1;
        self.sum_ns += ns;
        self.count += 1;
    }

    /// Adds `other`'s latencies.
    pub fn merge(&mut self, other: &Self) {
        for (bucket, n) in &other.log {
            *self.log.entry(*bucket).or_default() += n;
        }
        for (mine, theirs) in self.prometheus.iter_mut().zip(other.prometheus) {
            *mine += theirs;
        }
        self.sum_ns += other.sum_ns;
        self.count += other.count;
    }

    /// The nearest-rank `p`th percentile, milliseconds: the geometric middle of the log
    /// bucket holding it; `None` when empty.
    pub fn percentile_ms(&self, p: u64) -> Option<f64> {
        let rank = (p * self.count).div_ceil(100).max(1);
        let mut seen = 0;
        let (bucket, _) = self.log.iter().find(|(_, n)| {
            seen += **n;
            seen >= rank
        })?;
        let ns = 2f64.powf((f64::from(*bucket) + 0.5) / PER_OCTAVE);
        Some(ns / 1e6)
    }

    /// Cumulative counts at each of [`PROMETHEUS_BOUNDS`], as Prometheus buckets are.
    pub fn prometheus_cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut total = 0;
        PROMETHEUS_BOUNDS
            .iter()
            .zip(&self.prometheus)
            .map(move |(le, n)| {
                total += n;
                (*le, total)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|g| (g - want).abs() / want < 0.011)
    }

    #[test]
    fn percentiles_are_nearest_rank_within_the_bucket_width() {
        let mut l = Latency::default();
        for ms in 1..=100 {
            l.add(ms * 1_000_000);
        }
        assert!(
            close(l.percentile_ms(50), 50.0),
            "{:?}",
            l.percentile_ms(50)
        );
        assert!(
            close(l.percentile_ms(99), 99.0),
            "{:?}",
            l.percentile_ms(99)
        );
        assert_eq!(Latency::default().percentile_ms(50), None);
    }

    #[test]
    fn merged_histograms_equal_one_fed_everything() {
        let (mut a, mut b, mut both) = Default::default();
        for ns in [5, 70_000, 3_000_000_000] {
            Latency::add(&mut a, ns);
            Latency::add(&mut both, ns);
        }
        for ns in [1, 80_000_000_000] {
            Latency::add(&mut b, ns);
            Latency::add(&mut both, ns);
        }
        Latency::merge(&mut a, &b);
        assert_eq!(a, both);
        let cumulative: Vec<_> = a.prometheus_cumulative().collect();
        assert_eq!(cumulative[0], (0.005, 3));
        assert_eq!(cumulative[12], (3.0, 4), "3 s falls in the le=3 bucket");
        assert_eq!(cumulative.last(), Some(&(60.0, 4)));
        assert_eq!(a.count, 5);
    }
}
