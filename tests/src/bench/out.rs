//! What the bench prints (Markdown: headings, sentences, tables), kept so that the same
//! text goes into `bench/results.md`; and the figures it prints: medians with min–max,
//! latency percentiles.

use std::time::Duration;

/// The bench's output so far.
#[derive(Default)]
pub struct Out {
    text: String,
}

impl Out {
    /// Prints `line` and keeps it.
    pub fn line(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        println!("{line}");
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// A paragraph, and the blank line that ends it.
    pub fn paragraph(&mut self, text: impl AsRef<str>) {
        self.line(text);
        self.line("");
    }

    /// A section heading, after a blank line.
    pub fn heading(&mut self, title: &str) {
        self.line("");
        self.line(format!("## {title}"));
        self.line("");
    }

    /// A Markdown table with its columns padded to line up in a terminal too.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let render = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        self.line(render(header.to_vec()));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        self.line(render(rule.iter().map(String::as_str).collect()));
        for row in rows {
            self.line(render(row.iter().map(String::as_str).collect()));
        }
        self.line("");
    }

    /// Everything printed so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The median of some runs' values, with their least and greatest.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// The median (the upper one of an even count).
    pub median: f64,
    /// The least value.
    pub min: f64,
    /// The greatest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; panics when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        assert!(!values.is_empty(), "a spread of no values");
        values.sort_by(f64::total_cmp);
        Self {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }

    /// `median (min–max)` with `decimals` decimals.
    pub fn show(&self, decimals: usize) -> String {
        format!(
            "{:.decimals$} ({:.decimals$}–{:.decimals$})",
            self.median, self.min, self.max
        )
    }
}

/// The `p`-th percentile (nearest rank, 0 < p ≤ 100) of `latencies`, in milliseconds.
pub fn percentile_ms(latencies: &mut [Duration], p: f64) -> f64 {
    assert!(!latencies.is_empty(), "a percentile of no latencies");
    latencies.sort_unstable();
    let rank = ((p / 100.0 * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1].as_secs_f64() * 1e3
}

/// `a ÷ b` as `×R.RR`.
pub fn times(a: f64, b: f64) -> String {
    format!("×{:.2}", a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut latencies: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut latencies, 50.0), 50.0);
        assert_eq!(percentile_ms(&mut latencies, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut latencies, 100.0), 100.0);
    }

    #[test]
    fn spread_of_an_odd_count_is_its_middle_value() {
        let spread = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 3.0));
        assert_eq!(spread.show(1), "2.0 (1.0–3.0)");
    }
}
