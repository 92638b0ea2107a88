//! Statistics over the samples of a metric: median, mean, sample standard
//! deviation, and a bootstrap 95% confidence interval of the median.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Metric;

/// Resamplings used for the bootstrap interval.
const BOOTSTRAP_ROUNDS: usize = 2000;
/// Seed of the bootstrap resampling.
const BOOTSTRAP_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Sample standard deviation (n - 1); 0 for fewer than two samples.
pub fn stddev(samples: &[f64]) -> f64 {
    let n = samples.len();
    if n < 2 {
        return 0.0;
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt()
}

/// Bootstrap percentile interval of the median, with a fixed seed so that the
/// same samples always give the same interval.
pub fn median_ci95(samples: &[f64]) -> (f64, f64) {
    let n = samples.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    if n == 1 {
        return (samples[0], samples[0]);
    }
    // A fixed seed: the same samples give the same interval on every run
    // (rand is pinned by Cargo.lock, whose StdRng is ChaCha12).
    let mut rng = StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut medians = Vec::with_capacity(BOOTSTRAP_ROUNDS);
    let mut resample = vec![0.0; n];
    for _ in 0..BOOTSTRAP_ROUNDS {
        for slot in resample.iter_mut() {
            *slot = samples[rng.gen_range(0..n)];
        }
        resample.sort_by(f64::total_cmp);
        medians.push(median(&resample));
    }
    medians.sort_by(f64::total_cmp);
    let at = |q: f64| medians[((q * (BOOTSTRAP_ROUNDS - 1) as f64).round()) as usize];
    (at(0.025), at(0.975))
}

impl Metric {
    pub fn from_samples(samples: Vec<f64>) -> Metric {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = samples.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            samples.iter().sum::<f64>() / n as f64
        };
        let (ci95_low, ci95_high) = median_ci95(&samples);
        Metric {
            median: median(&sorted),
            mean,
            stddev: stddev(&samples),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            ci95_low,
            ci95_high,
            samples,
        }
    }

    /// Two metrics differ significantly when their median intervals do not
    /// overlap.
    pub fn differs_from(&self, other: &Metric) -> bool {
        self.ci95_high < other.ci95_low || other.ci95_high < self.ci95_low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn metric_summarises_samples() {
        let m = Metric::from_samples(vec![17.2, 17.8, 17.6]);
        assert_eq!(m.median, 17.6);
        assert!((m.mean - 17.533).abs() < 0.001);
        assert!((m.stddev - 0.3055).abs() < 0.001);
        assert_eq!((m.min, m.max), (17.2, 17.8));
        assert!(m.ci95_low <= m.median && m.median <= m.ci95_high);
        assert!(m.ci95_low >= m.min && m.ci95_high <= m.max);
    }

    #[test]
    fn single_sample_has_a_point_interval() {
        let m = Metric::from_samples(vec![5.0]);
        assert_eq!((m.ci95_low, m.ci95_high, m.stddev), (5.0, 5.0, 0.0));
    }

    #[test]
    fn bootstrap_interval_is_the_same_on_every_call() {
        let samples = [9.1, 10.4, 9.8, 10.9, 10.0, 9.5, 10.2];
        let (low, high) = median_ci95(&samples);
        assert_eq!(median_ci95(&samples), (low, high));
        assert!(low < 10.0 && 10.0 < high, "({low}, {high})");
        assert!(low >= 9.1 && high <= 10.9);
    }

    #[test]
    fn separated_metrics_differ_overlapping_do_not() {
        let a = Metric::from_samples(vec![10.0, 10.1, 9.9, 10.0, 10.05]);
        let b = Metric::from_samples(vec![20.0, 20.1, 19.9, 20.0, 20.05]);
        let c = Metric::from_samples(vec![10.02, 9.95, 10.1, 10.0, 9.9]);
        assert!(a.differs_from(&b));
        assert!(!a.differs_from(&c));
    }
}
