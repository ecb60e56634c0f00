//! Statistics for reports, and the aggregate statistics of Agarwal et al. 2021, "Deep
//! Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS), as their
//! `rliable` package computes them.
//!
//! A *score matrix* of one method (one τ of a sweep) is `scores[m][n]`: the normalized score
//! of run (seed) `n` on task (env) `m`. Envs may hold different numbers of runs (a failed run
//! is left out). With `N = Σ_m n_m` runs in all, `M` envs and `x̄_m` the mean of env `m`:
//!
//! - **IQM**, the interquartile mean: the mean of the middle 50% of all `N` pooled scores,
//!   cutting `⌊N/4⌋` from each end (scipy's `trim_mean(·, 0.25)`, as rliable).
//! - **Median**: the median over envs of `x̄_m` (rliable's `aggregate_median`).
//! - **Mean**: the mean over envs of `x̄_m` (rliable's `aggregate_mean`).
//! - **Optimality gap** at γ = 1: `1 − mean of min(x, 1)` over all pooled scores; how far the
//!   method falls short of the normalized optimum (lower is better).
//! - **Performance profile** (the run-score distribution): `F̂(x)`, the fraction of all pooled
//!   runs whose score exceeds `x`, over a grid of thresholds `x`.
//! - **Probability of improvement** `P(X > Y) = (1/M) Σ_m P(X_m > Y_m)` with
//!   `P(X_m > Y_m) = (1/(n_x n_y)) Σ_i Σ_j S(x_{m,i}, y_{m,j})`, `S = 1` if `x > y`, `½` if
//!   equal, `0` otherwise (the Mann–Whitney U statistic divided by `n_x n_y`), over the envs
//!   both methods have runs on.
//!
//! **Confidence intervals** are 95% percentile intervals of the **stratified bootstrap**: each
//! resample draws `n_m` runs with replacement *within* each env `m`, so every env keeps its
//! weight (the paper's recommendation, rliable's `StratifiedBootstrap` without task
//! resampling). Probability of improvement resamples X and Y independently, each stratified
//! (rliable's `StratifiedIndependentBootstrap`). 2,000 resamples by default, drawn from a
//! `ChaCha8Rng` seeded by the caller, one stream per statistic, so a report is reproducible
//! bit for bit. The percentile is numpy's linear interpolation between order statistics.
//!
//! Edge cases: when no env has two runs (one seed) there is no bootstrap variability and no
//! interval is reported (`None`), rather than a zero-width one; when every run is equal the
//! interval is the point itself, which is the honest answer.

mod aggregate;
mod basic;
mod bootstrap;
mod improvement;
mod profile;

pub use aggregate::{iqm, mean_of_means, median_of_means, optimality_gap, Aggregate};
pub use basic::{bootstrap_ci, mean, normalized_auc, std, steps_to_threshold};
pub use bootstrap::{
    interval, percentile, stratified_replicates, Bootstrap, Interval, DEFAULT_RESAMPLES,
};
pub use improvement::{probability_of_improvement, probability_of_improvement_ci, probability_of_improvement_replicates};
pub use profile::{run_score_distribution, run_score_distribution_ci, run_score_distribution_replicates};

/// Point estimates of every aggregate, and their stratified bootstrap CIs (one shared set of
/// resamples for the four, as rliable computes them together).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AggregateEstimates {
    pub iqm: f64,
    pub median: f64,
    pub mean: f64,
    pub optimality_gap: f64,
    /// `[IQM, median, mean, optimality gap]`; `None` when no env has two runs.
    pub ci: Option<[Interval; 4]>,
}

impl AggregateEstimates {
    /// The point estimate of `a`.
    pub fn point(&self, a: Aggregate) -> f64 {
        match a {
            Aggregate::Iqm => self.iqm,
            Aggregate::Median => self.median,
            Aggregate::Mean => self.mean,
            Aggregate::OptimalityGap => self.optimality_gap,
        }
    }

    /// The interval of `a`, if there is one.
    pub fn interval(&self, a: Aggregate) -> Option<Interval> {
        self.ci.map(|c| c[a as usize])
    }
}

/// IQM, median, mean and optimality gap of `scores` with their CIs; `None` for no scores.
pub fn aggregates(scores: &[Vec<f64>], boot: Bootstrap, stream: u64) -> Option<AggregateEstimates> {
    if scores.iter().all(Vec::is_empty) {
        return None;
    }
    let mut point = [0.0; 4];
    all_aggregates(scores, &mut point);
    let ci = aggregate_replicates(scores, boot, stream)
        .map(|r| [0, 1, 2, 3].map(|k| interval(&r[k], boot.confidence)));
    Some(AggregateEstimates { iqm: point[0], median: point[1], mean: point[2], optimality_gap: point[3], ci })
}

/// CIs of a statistic of the resampled score values (`k` numbers per resample).
pub fn stratified_values(
    scores: &[Vec<f64>],
    k: usize,
    boot: Bootstrap,
    stream: u64,
    stat: impl FnMut(&[Vec<f64>], &mut [f64]),
) -> Option<Vec<Interval>> {
    let reps = value_replicates(scores, k, boot, stream, stat)?;
    Some(reps.iter().map(|r| interval(r, boot.confidence)).collect())
}

/// The sorted bootstrap replicates behind [`stratified_values`].
pub fn value_replicates(
    scores: &[Vec<f64>],
    k: usize,
    boot: Bootstrap,
    stream: u64,
    mut stat: impl FnMut(&[Vec<f64>], &mut [f64]),
) -> Option<Vec<Vec<f64>>> {
    let sizes: Vec<usize> = scores.iter().map(Vec::len).collect();
    let mut buf: Vec<Vec<f64>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
    stratified_replicates(&sizes, k, boot, stream, |idx, out| {
        for ((b, s), ix) in buf.iter_mut().zip(scores).zip(idx) {
            for (slot, &i) in b.iter_mut().zip(ix) {
                *slot = s[i];
            }
        }
        stat(&buf, out)
    })
}

/// The sorted replicates of `[IQM, median, mean, optimality gap]` behind [`aggregates`].
pub fn aggregate_replicates(scores: &[Vec<f64>], boot: Bootstrap, stream: u64) -> Option<Vec<Vec<f64>>> {
    value_replicates(scores, 4, boot, stream, all_aggregates)
}

fn all_aggregates(s: &[Vec<f64>], out: &mut [f64]) {
    for (o, a) in out.iter_mut().zip(Aggregate::ALL) {
        *o = a.of(s);
    }
}

/// IQM (over runs and envs, pooled) at each point of the runs' learning curves, with CIs:
/// `curves[m][n][t]` is run `n` of env `m` at grid point `t`; every run has `points` points.
pub fn iqm_curve(
    curves: &[Vec<Vec<f64>>],
    points: usize,
    boot: Bootstrap,
    stream: u64,
) -> (Vec<f64>, Option<Vec<Interval>>) {
    let sizes: Vec<usize> = curves.iter().map(Vec::len).collect();
    let mut buf = Vec::with_capacity(sizes.iter().sum());
    let mut at = |t: usize, pick: &dyn Fn(usize, usize) -> usize| {
        buf.clear();
        for (m, &n) in sizes.iter().enumerate() {
            buf.extend((0..n).map(|i| curves[m][pick(m, i)][t]));
        }
        aggregate::iqm_in_place(&mut buf)
    };
    let point: Vec<f64> = (0..points).map(|t| at(t, &|_, n| n)).collect();
    let reps = stratified_replicates(&sizes, points, boot, stream, |idx, out| {
        for (t, o) in out.iter_mut().enumerate() {
            *o = at(t, &|m, n| idx[m][n]);
        }
    });
    (point, reps.map(|r| r.iter().map(|v| interval(v, boot.confidence)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_of_a_hand_made_matrix() {
        // Two envs, four runs each: pooled sorted 0 .1 .2 .3 .4 .5 .8 1.2 → IQM = mean(.2..0.5).
        let s = vec![vec![0.0, 0.2, 0.4, 0.8], vec![0.1, 0.3, 0.5, 1.2]];
        let a = aggregates(&s, Bootstrap::default(), 0).unwrap();
        assert!((a.iqm - 0.35).abs() < 1e-12, "{}", a.iqm);
        // Env means 0.35 and 0.525: median of two = their mean, mean likewise.
        assert!((a.median - 0.4375).abs() < 1e-12);
        assert!((a.mean - 0.4375).abs() < 1e-12);
        // min(x, 1) caps 1.2 at 1: mean 3.3/8, gap 1 − 0.4125.
        assert!((a.optimality_gap - 0.5875).abs() < 1e-12);
        let ci = a.ci.unwrap();
        for (i, agg) in Aggregate::ALL.into_iter().enumerate() {
            assert!(ci[i].low <= a.point(agg) && a.point(agg) <= ci[i].high, "{agg:?} {:?}", ci[i]);
            assert!(ci[i].high > ci[i].low);
        }
        assert_eq!(aggregates(&s, Bootstrap::default(), 0), Some(a), "same seed, same bits");
    }

    #[test]
    fn one_seed_has_no_interval_and_equal_runs_a_zero_width_one() {
        let one = vec![vec![0.3], vec![0.9]];
        let a = aggregates(&one, Bootstrap::default(), 0).unwrap();
        assert_eq!(a.ci, None);
        assert!((a.iqm - 0.6).abs() < 1e-12 && (a.median - 0.6).abs() < 1e-12);
        let equal = vec![vec![0.5; 5], vec![0.5; 5]];
        let a = aggregates(&equal, Bootstrap::default(), 0).unwrap();
        for iv in a.ci.unwrap() {
            assert!(iv.low == iv.high, "{iv:?}");
        }
        assert_eq!(a.iqm, 0.5);
        assert_eq!(aggregates(&[vec![], vec![]], Bootstrap::default(), 0), None);
    }

    #[test]
    fn iqm_curve_follows_each_point() {
        // One env, four runs, two points: point 0 all zero, point 1 = 0, 1, 2, 3 → IQM 1.5.
        let curves = vec![vec![vec![0.0, 0.0], vec![0.0, 1.0], vec![0.0, 2.0], vec![0.0, 3.0]]];
        let (p, ci) = iqm_curve(&curves, 2, Bootstrap::default(), 0);
        assert_eq!(p, vec![0.0, 1.5]);
        let ci = ci.unwrap();
        assert_eq!((ci[0].low, ci[0].high), (0.0, 0.0));
        assert!(ci[1].low < 1.5 && ci[1].high > 1.5);
    }
}
