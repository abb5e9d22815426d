//! Latency histograms: HDR histograms in nanoseconds (three significant figures), summarised in
//! microseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest value a histogram keeps exactly; longer values are clamped to it (a benchmark
/// that sees them has failed anyway).
const HIGHEST_NANOS: u64 = 120_000_000_000;

/// A latency histogram that never fails to record.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    #[expect(
        clippy::expect_used,
        reason = "the bounds are constants that hdrhistogram accepts"
    )]
    pub fn new() -> Self {
        Self {
            inner: Histogram::new_with_bounds(1, HIGHEST_NANOS, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(HIGHEST_NANOS);
        self.inner.saturating_record(nanos.min(HIGHEST_NANOS));
    }

    pub fn merge(&mut self, other: &Self) {
        // Both histograms share the same bounds, so adding cannot fail; saturate if it ever did.
        if self.inner.add(&other.inner).is_err() {
            for value in other.inner.iter_recorded() {
                self.inner
                    .saturating_record_n(value.value_iterated_to(), value.count_at_value());
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    pub fn summary(&self) -> LatencySummary {
        if self.inner.is_empty() {
            return LatencySummary::default();
        }
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        let at = |quantile: f64| micros(self.inner.value_at_quantile(quantile));
        LatencySummary {
            count: self.inner.len(),
            mean_us: self.inner.mean() / 1_000.0,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: micros(self.inner.max()),
        }
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// What a proxy adds to the direct path at the same percentile: the difference of the two
/// distributions' percentiles, in microseconds (negative when it was faster, which is noise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AddedLatency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

impl AddedLatency {
    pub fn between(proxied: &LatencySummary, direct: &LatencySummary) -> Self {
        Self {
            p50_us: proxied.p50_us - direct.p50_us,
            p90_us: proxied.p90_us - direct.p90_us,
            p99_us: proxied.p99_us - direct.p99_us,
            p999_us: proxied.p999_us - direct.p999_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_micros(values: impl IntoIterator<Item = u64>) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::new();
        for value in values {
            histogram.record(Duration::from_micros(value));
        }
        histogram
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.001 + 0.001
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand_microseconds() {
        let summary = of_micros(1..=10_000).summary();
        assert_eq!(summary.count, 10_000);
        assert!(close(summary.p50_us, 5_000.0), "{summary:?}");
        assert!(close(summary.p90_us, 9_000.0), "{summary:?}");
        assert!(close(summary.p99_us, 9_900.0), "{summary:?}");
        assert!(close(summary.p999_us, 9_990.0), "{summary:?}");
        assert!(close(summary.max_us, 10_000.0), "{summary:?}");
        assert!(close(summary.mean_us, 5_000.5), "{summary:?}");
    }

    #[test]
    fn empty_histogram_summarises_to_zeros() {
        assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
    }

    #[test]
    fn zero_and_huge_values_are_kept_not_rejected() {
        let mut histogram = LatencyHistogram::new();
        histogram.record(Duration::ZERO);
        histogram.record(Duration::from_secs(100_000));
        let summary = histogram.summary();
        assert_eq!(summary.count, 2);
        assert_eq!(summary.p50_us, 0.0);
        assert!(summary.max_us >= 119_000_000.0, "{summary:?}");
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut left = of_micros(1..=500);
        let right = of_micros(501..=1_000);
        left.merge(&right);
        assert_eq!(left.summary(), of_micros(1..=1_000).summary());
    }

    #[test]
    fn added_latency_is_the_difference_of_percentiles() {
        let direct = of_micros(100..=199).summary();
        let proxied = of_micros(150..=249).summary();
        let added = AddedLatency::between(&proxied, &direct);
        // Each percentile is exact to three significant figures, so the difference to ±0.25 µs.
        assert!((added.p50_us - 50.0).abs() < 0.25, "{added:?}");
        assert!((added.p99_us - 50.0).abs() < 0.25, "{added:?}");
    }
}
