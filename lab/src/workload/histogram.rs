//! Latency histograms (microsecond resolution, HdrHistogram with 3
//! significant digits) and the metrics they yield.

use hdrhistogram::Histogram;

use super::Sample;

/// Latencies of one worker; merge them with [`LatencyHistogram::merge`].
#[derive(Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    sum_ns: u128,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        LatencyHistogram {
            // Auto-resizing, so no latency is ever clamped or dropped.
            hist: Histogram::new(3).expect("3 significant digits is valid"),
            sum_ns: 0,
        }
    }

    /// Records one latency, kept in nanoseconds so that sub-microsecond
    /// round trips stay distinguishable.
    pub fn record(&mut self, latency: std::time::Duration) {
        let ns = latency.as_nanos().max(1);
        self.sum_ns += ns;
        self.hist
            .record(ns.min(u64::MAX as u128) as u64)
            .expect("auto-resizing histogram accepts any value");
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.hist.add(&other.hist).expect("auto-resizing histogram");
        self.sum_ns += other.sum_ns;
    }

    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Latency at quantile `q` (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }

    pub fn mean_us(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.sum_ns as f64 / self.len() as f64 / 1000.0
        }
    }

    /// Adds latency_us_p50/p90/p99/max/mean; nothing when empty.
    pub fn add_to(&self, sample: &mut Sample) {
        if self.is_empty() {
            return;
        }
        sample.set("latency_us_p50", self.quantile_us(0.50));
        sample.set("latency_us_p90", self.quantile_us(0.90));
        sample.set("latency_us_p99", self.quantile_us(0.99));
        sample.set("latency_us_max", self.max_us());
        sample.set("latency_us_mean", self.mean_us());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_of_uniform_1_to_1000_us() {
        let mut h = LatencyHistogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let within = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(within(h.quantile_us(0.5), 500.0), "{}", h.quantile_us(0.5));
        assert!(within(h.quantile_us(0.9), 900.0), "{}", h.quantile_us(0.9));
        assert!(
            within(h.quantile_us(0.99), 990.0),
            "{}",
            h.quantile_us(0.99)
        );
        assert!(within(h.max_us(), 1000.0));
        assert!((h.mean_us() - 500.5).abs() < 1e-9);
    }

    #[test]
    fn merge_adds_counts_and_keeps_order() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for _ in 0..90 {
            a.record(Duration::from_micros(10));
        }
        for _ in 0..10 {
            b.record(Duration::from_millis(5));
        }
        a.merge(&b);
        assert_eq!(a.len(), 100);
        let mut s = Sample::default();
        a.add_to(&mut s);
        let p = |n: &str| s.get(n).unwrap();
        assert!((p("latency_us_p50") - 10.0).abs() < 0.01);
        assert!((p("latency_us_p99") - 5000.0).abs() < 5.0);
        assert!(p("latency_us_p50") <= p("latency_us_p90"));
        assert!(p("latency_us_p90") <= p("latency_us_p99"));
        assert!(p("latency_us_p99") <= p("latency_us_max"));
    }

    #[test]
    fn empty_histogram_adds_nothing() {
        let mut s = Sample::default();
        LatencyHistogram::new().add_to(&mut s);
        assert!(s.metrics.is_empty());
    }
}
