//! The four aggregate scores of Agarwal et al. 2021 over a (ragged) score matrix
//! `scores[env][run]`, computed exactly as rliable's `metrics` module does.

use serde::Serialize;

/// An aggregate of normalized scores across runs and envs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Iqm,
    Median,
    Mean,
    OptimalityGap,
}

impl Aggregate {
    pub const ALL: [Aggregate; 4] = [Aggregate::Iqm, Aggregate::Median, Aggregate::Mean, Aggregate::OptimalityGap];

    /// The name rliable's plots use.
    pub fn label(self) -> &'static str {
        match self {
            Aggregate::Iqm => "IQM",
            Aggregate::Median => "Median",
            Aggregate::Mean => "Mean",
            Aggregate::OptimalityGap => "Optimality Gap",
        }
    }

    /// The aggregate of `scores`.
    pub fn of(self, scores: &[Vec<f64>]) -> f64 {
        match self {
            Aggregate::Iqm => iqm(scores),
            Aggregate::Median => median_of_means(scores),
            Aggregate::Mean => mean_of_means(scores),
            Aggregate::OptimalityGap => optimality_gap(scores),
        }
    }
}

/// Interquartile mean of all runs pooled: sort the `N` scores and average positions
/// `⌊N/4⌋ .. N − ⌊N/4⌋` (scipy's `trim_mean(x, 0.25)`). NaN for no scores.
pub fn iqm(scores: &[Vec<f64>]) -> f64 {
    let mut all: Vec<f64> = scores.iter().flatten().copied().collect();
    iqm_in_place(&mut all)
}

/// [`iqm`] of a flat buffer, reordering it: two selections instead of a sort.
pub(crate) fn iqm_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    let cut = n / 4;
    let keep = n - 2 * cut;
    if cut > 0 {
        // v[..cut] ≤ v[cut] ≤ v[cut+1..], then the `keep` smallest of v[cut..] to its front.
        v.select_nth_unstable_by(cut, f64::total_cmp);
        v[cut..].select_nth_unstable_by(keep - 1, f64::total_cmp);
    }
    v[cut..cut + keep].iter().sum::<f64>() / keep as f64
}

/// The per-env means, envs without runs left out.
fn env_means(scores: &[Vec<f64>]) -> Vec<f64> {
    scores
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.iter().sum::<f64>() / r.len() as f64)
        .collect()
}

/// Median over envs of each env's mean score.
pub fn median_of_means(scores: &[Vec<f64>]) -> f64 {
    let mut m = env_means(scores);
    m.sort_unstable_by(f64::total_cmp);
    match m.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => m[n / 2],
        n => (m[n / 2 - 1] + m[n / 2]) / 2.0,
    }
}

/// Mean over envs of each env's mean score.
pub fn mean_of_means(scores: &[Vec<f64>]) -> f64 {
    let m = env_means(scores);
    m.iter().sum::<f64>() / m.len() as f64
}

/// `1 − mean(min(x, 1))` over all runs pooled: the shortfall from the normalized optimum
/// (γ = 1 in rliable's notation), scores above 1 counting as 1.
pub fn optimality_gap(scores: &[Vec<f64>]) -> f64 {
    let (sum, n) = scores.iter().flatten().fold((0.0, 0usize), |(s, n), &x| (s + x.min(1.0), n + 1));
    1.0 - sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_cuts_a_quarter_from_each_end() {
        // N = 8: drop two at each end of 0..7 → mean(2, 3, 4, 5) = 3.5.
        assert_eq!(iqm(&[vec![7.0, 0.0, 3.0, 1.0], vec![6.0, 2.0, 5.0, 4.0]]), 3.5);
        // N = 5: ⌊5/4⌋ = 1 → mean(2, 3, 100) of (−50, 2, 3, 100, 1000) — a large outlier on
        // the inside survives when N is not a multiple of 4 (scipy's rule).
        assert!((iqm(&[vec![-50.0, 2.0, 3.0, 100.0, 1000.0]]) - 35.0).abs() < 1e-12);
        // N < 4 cuts nothing.
        assert_eq!(iqm(&[vec![1.0, 2.0, 6.0]]), 3.0);
    }

    #[test]
    fn median_and_mean_are_over_env_means() {
        let s = vec![vec![0.0, 1.0], vec![2.0], vec![10.0, 20.0, 30.0], vec![]];
        // Env means 0.5, 2, 20 (the empty env is left out).
        assert_eq!(median_of_means(&s), 2.0);
        assert!((mean_of_means(&s) - 22.5 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn optimality_gap_caps_scores_at_one() {
        assert!((optimality_gap(&[vec![0.5, 1.5], vec![1.0, -1.0]]) - (1.0 - 1.5 / 4.0)).abs() < 1e-12);
        assert_eq!(optimality_gap(&[vec![1.0, 2.0]]), 0.0);
    }
}
