//! The stratified bootstrap: resample runs with replacement within each stratum (env), compute
//! a statistic on every resample, and read percentile intervals off the replicates.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// rliable's default number of resamples for profiles (and Agarwal et al.'s figures).
pub const DEFAULT_RESAMPLES: usize = 2000;

/// How intervals are drawn: resamples, coverage and the generator's seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bootstrap {
    pub resamples: usize,
    /// Coverage of the percentile interval, 0.95 for 95%.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self { resamples: DEFAULT_RESAMPLES, confidence: 0.95, seed: 0x7a3e }
    }
}

/// A confidence interval `[low, high]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Runs the stratified bootstrap over strata of `sizes[m]` items each. For every resample
/// `idx[m]` holds `sizes[m]` indices drawn uniformly with replacement from `0..sizes[m]`, and
/// `stat(idx, out)` writes `k` numbers. Returns the replicates, `k` rows of `resamples`
/// values, each row sorted; `None` when no stratum has two items (nothing to resample).
///
/// Draws come from `ChaCha8Rng::seed_from_u64(seed)` on stream `stream`, stratum by stratum,
/// so the result depends only on the seed, the stream and the sizes.
pub fn stratified_replicates(
    sizes: &[usize],
    k: usize,
    boot: Bootstrap,
    stream: u64,
    mut stat: impl FnMut(&[Vec<usize>], &mut [f64]),
) -> Option<Vec<Vec<f64>>> {
    if sizes.iter().all(|&n| n < 2) || boot.resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(boot.seed);
    rng.set_stream(stream);
    let mut idx: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![0; n]).collect();
    let mut reps = vec![Vec::with_capacity(boot.resamples); k];
    let mut out = vec![0.0; k];
    for _ in 0..boot.resamples {
        for (stratum, &n) in idx.iter_mut().zip(sizes) {
            for i in stratum.iter_mut() {
                *i = rng.random_range(0..n);
            }
        }
        stat(&idx, &mut out);
        for (r, &o) in reps.iter_mut().zip(&out) {
            r.push(o);
        }
    }
    for r in &mut reps {
        r.sort_unstable_by(f64::total_cmp);
    }
    Some(reps)
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted values, interpolated linearly between order
/// statistics (numpy's default `percentile` method).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The central percentile interval of coverage `confidence` from sorted replicates.
pub fn interval(sorted: &[f64], confidence: f64) -> Interval {
    let alpha = 1.0 - confidence;
    Interval { low: percentile(sorted, alpha / 2.0), high: percentile(sorted, 1.0 - alpha / 2.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let s = [1.0, 2.0, 4.0, 8.0];
        // np.percentile([1,2,4,8], [0, 25, 50, 97.5, 100]) = 1, 1.75, 3, 7.7, 8.
        for (q, want) in [(0.0, 1.0), (0.25, 1.75), (0.5, 3.0), (0.975, 7.7), (1.0, 8.0)] {
            assert!((percentile(&s, q) - want).abs() < 1e-12, "q {q}: {}", percentile(&s, q));
        }
        assert_eq!(percentile(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn resamples_stay_within_their_stratum_and_are_reproducible() {
        let boot = Bootstrap { resamples: 500, ..Bootstrap::default() };
        let sizes = [3, 1, 5];
        let mut seen = [[false; 5]; 3];
        let reps = stratified_replicates(&sizes, 1, boot, 4, |idx, out| {
            for (m, ix) in idx.iter().enumerate() {
                assert_eq!(ix.len(), sizes[m]);
                for &i in ix {
                    assert!(i < sizes[m]);
                    seen[m][i] = true;
                }
            }
            out[0] = idx[2].iter().sum::<usize>() as f64;
        })
        .unwrap();
        assert!(seen[0][..3].iter().all(|&s| s) && seen[2].iter().all(|&s| s));
        let again = stratified_replicates(&sizes, 1, boot, 4, |idx, out| out[0] = idx[2].iter().sum::<usize>() as f64);
        assert_eq!(Some(reps.clone()), again);
        let other = stratified_replicates(&sizes, 1, boot, 5, |idx, out| out[0] = idx[2].iter().sum::<usize>() as f64);
        assert_ne!(Some(reps), other, "another stream draws other resamples");
        assert_eq!(stratified_replicates(&[1, 1], 1, boot, 0, |_, o| o[0] = 0.0), None);
    }

    #[test]
    fn the_bootstrap_interval_of_a_mean_is_near_the_normal_one() {
        // 40 values 0..39 in one stratum: the mean's standard error is σ/√n with the
        // population σ = √((n²−1)/12) ≈ 11.54, so ≈ 1.825; a 95% interval is ≈ ±3.58.
        let xs: Vec<f64> = (0..40).map(f64::from).collect();
        let reps = stratified_replicates(&[40], 1, Bootstrap::default(), 0, |idx, out| {
            out[0] = idx[0].iter().map(|&i| xs[i]).sum::<f64>() / 40.0;
        })
        .unwrap();
        let iv = interval(&reps[0], 0.95);
        let half = (iv.high - iv.low) / 2.0;
        assert!((half - 3.58).abs() < 0.4, "{iv:?}");
        assert!(((iv.high + iv.low) / 2.0 - 19.5).abs() < 0.4, "{iv:?}");
    }
}
