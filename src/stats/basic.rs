//! Per-run and per-group basics: mean, standard deviation, a plain bootstrap CI of one
//! group's mean, area under a learning curve and steps to a threshold.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Arithmetic mean; `None` for an empty slice.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Population standard deviation (numpy's default, as SB3/CleanRL report eval std).
pub fn std(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    Some((xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt())
}

/// Percentile bootstrap confidence interval of the mean at level `1 - alpha`.
///
/// Resamples are drawn from a generator seeded with `seed`, so a report is reproducible.
/// With one value the interval collapses to that value.
pub fn bootstrap_ci(xs: &[f64], alpha: f64, resamples: usize, seed: u64) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    if xs.len() == 1 {
        return Some((xs[0], xs[0]));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = xs.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| xs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some((at(alpha / 2.0), at(1.0 - alpha / 2.0)))
}

/// Area under a learning curve `(step, value)` by the trapezoid rule, divided by the span
/// of steps: the curve's average height, comparable across budgets. A single point gives
/// its value.
pub fn normalized_auc(curve: &[(u64, f64)]) -> Option<f64> {
    match curve {
        [] => None,
        [(_, v)] => Some(*v),
        _ => {
            let span = (curve[curve.len() - 1].0 - curve[0].0) as f64;
            if span == 0.0 {
                return mean(&curve.iter().map(|p| p.1).collect::<Vec<_>>());
            }
            let area: f64 = curve
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) as f64 * (w[0].1 + w[1].1) / 2.0)
                .sum();
            Some(area / span)
        }
    }
}

/// First step at which the curve reaches `threshold`.
pub fn steps_to_threshold(curve: &[(u64, f64)], threshold: f64) -> Option<u64> {
    curve.iter().find(|(_, v)| *v >= threshold).map(|(s, _)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std_match_hand_computation() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(mean(&xs), Some(2.5));
        assert!((std(&xs).unwrap() - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn bootstrap_ci_brackets_the_mean_and_is_reproducible() {
        let xs = [0.1, 0.5, 0.9, 0.4, 0.7, 0.3];
        let (lo, hi) = bootstrap_ci(&xs, 0.05, 2000, 7).unwrap();
        let m = mean(&xs).unwrap();
        assert!(lo < m && m < hi, "{lo} < {m} < {hi}");
        assert!(lo >= 0.1 && hi <= 0.9);
        assert_eq!(bootstrap_ci(&xs, 0.05, 2000, 7), Some((lo, hi)));
        // More spread gives a wider interval.
        let wide = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let (wlo, whi) = bootstrap_ci(&wide, 0.05, 2000, 7).unwrap();
        assert!(whi - wlo > hi - lo);
    }

    #[test]
    fn auc_of_a_linear_curve_is_its_midpoint() {
        let curve = [(0, 0.0), (50, 5.0), (100, 10.0)];
        assert!((normalized_auc(&curve).unwrap() - 5.0).abs() < 1e-12);
        assert_eq!(normalized_auc(&[(10, 3.0)]), Some(3.0));
        assert_eq!(normalized_auc(&[]), None);
    }

    #[test]
    fn threshold_is_first_crossing() {
        let curve = [(100, -500.0), (200, -190.0), (300, -300.0), (400, -150.0)];
        assert_eq!(steps_to_threshold(&curve, -200.0), Some(200));
        assert_eq!(steps_to_threshold(&curve, 0.0), None);
    }
}
