//! Latency histograms with log-spaced buckets: a value's bucket is `ceil(log_γ(µs))` with
//! `γ = (1 + α) / (1 − α)`, `α = 0.02`, and a bucket is reported as `2γ^i / (γ + 1)`, which is
//! within α of every value the bucket holds: percentiles have at most 2 % relative error whatever
//! the range (1 µs to hours in ~600 buckets). Histograms are sparse (only buckets that hold a
//! value exist) and merge by adding bucket counts, so hourly ones add up to daily ones exactly.

use std::collections::BTreeMap;

/// The relative error bound of every reported value.
pub const RELATIVE_ERROR: f64 = 0.02;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// The bucket of a latency in microseconds (anything under 1 µs is bucket 0).
pub fn bucket_of(micros: u64) -> u32 {
    if micros <= 1 {
        return 0;
    }
    ((micros as f64).ln() / gamma().ln()).ceil() as u32
}

/// The value a bucket stands for, in microseconds.
pub fn value_of(bucket: u32) -> f64 {
    let gamma = gamma();
    if bucket == 0 {
        return 1.0;
    }
    2.0 * gamma.powi(bucket as i32) / (gamma + 1.0)
}

/// Counts per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        *self.buckets.entry(bucket_of(micros)).or_default() += 1;
    }

    pub fn add(&mut self, bucket: u32, count: u64) {
        if count > 0 {
            *self.buckets.entry(bucket).or_default() += count;
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.buckets {
            self.add(*bucket, *count);
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// `(bucket, count)` in ascending order of latency.
    pub fn buckets(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.buckets.iter().map(|(b, c)| (*b, *c))
    }

    /// The `q`-quantile (0 < q ≤ 1) in microseconds: the value of the bucket that holds the
    /// `ceil(q·n)`-th smallest latency; none for an empty histogram.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(value_of(*bucket));
            }
        }
        self.buckets.keys().next_back().map(|b| value_of(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_reported_within_two_percent() {
        for micros in (1..2_000_000u64).step_by(997).chain([3_600_000_000]) {
            let reported = value_of(bucket_of(micros));
            let error = (reported - micros as f64).abs() / micros as f64;
            assert!(error <= RELATIVE_ERROR + 1e-9, "{micros} µs → {reported}");
        }
    }

    #[test]
    fn quantiles_follow_the_ranks() {
        let mut histogram = Histogram::default();
        for micros in 1..=1000u64 {
            histogram.record(micros * 100);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0)] {
            let got = histogram.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact <= RELATIVE_ERROR + 1e-9,
                "{q}: {got}"
            );
        }
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
