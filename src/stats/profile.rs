//! Performance profiles (Agarwal et al. 2021): the run-score distribution
//! `F̂(x) = fraction of all runs with score > x`, with stratified bootstrap bands.

use super::bootstrap::{interval, stratified_replicates, Bootstrap, Interval};

/// The fraction of all pooled runs whose score exceeds each threshold.
pub fn run_score_distribution(scores: &[Vec<f64>], thresholds: &[f64]) -> Vec<f64> {
    let mut all: Vec<f64> = scores.iter().flatten().copied().collect();
    all.sort_unstable_by(f64::total_cmp);
    above(&all, thresholds)
}

/// For sorted `all`: `#{x > t} / n` per threshold, by binary search.
fn above(sorted: &[f64], thresholds: &[f64]) -> Vec<f64> {
    let n = sorted.len() as f64;
    thresholds.iter().map(|&t| (sorted.len() - sorted.partition_point(|&x| x <= t)) as f64 / n).collect()
}

/// The profile with a stratified bootstrap band per threshold; `None` for the band when no
/// env has two runs.
pub fn run_score_distribution_ci(
    scores: &[Vec<f64>],
    thresholds: &[f64],
    boot: Bootstrap,
    stream: u64,
) -> (Vec<f64>, Option<Vec<Interval>>) {
    let reps = run_score_distribution_replicates(scores, thresholds, boot, stream);
    let band = reps.map(|r| r.iter().map(|v| interval(v, boot.confidence)).collect());
    (run_score_distribution(scores, thresholds), band)
}

/// The sorted bootstrap replicates (one row per threshold) behind
/// [`run_score_distribution_ci`].
pub fn run_score_distribution_replicates(
    scores: &[Vec<f64>],
    thresholds: &[f64],
    boot: Bootstrap,
    stream: u64,
) -> Option<Vec<Vec<f64>>> {
    let sizes: Vec<usize> = scores.iter().map(Vec::len).collect();
    let mut pooled = Vec::with_capacity(sizes.iter().sum());
    stratified_replicates(&sizes, thresholds.len(), boot, stream, |idx, out| {
        pooled.clear();
        for (s, ix) in scores.iter().zip(idx) {
            pooled.extend(ix.iter().map(|&i| s[i]));
        }
        pooled.sort_unstable_by(f64::total_cmp);
        out.copy_from_slice(&above(&pooled, thresholds));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_counts_strictly_greater_scores() {
        let s = vec![vec![0.0, 0.5, 1.0], vec![0.5]];
        // > −1: all 4; > 0: 3; > 0.5: 1 (strict); > 1: none.
        assert_eq!(run_score_distribution(&s, &[-1.0, 0.0, 0.5, 1.0]), vec![1.0, 0.75, 0.25, 0.0]);
        let (p, band) = run_score_distribution_ci(&s, &[-1.0, 0.25, 1.0], Bootstrap::default(), 2);
        assert_eq!(p, vec![1.0, 0.75, 0.0]);
        let band = band.unwrap();
        assert_eq!((band[0].low, band[0].high), (1.0, 1.0), "every resample is above −1");
        assert!(band[1].low < 0.75 && band[1].high >= 0.75);
        // Each resample keeps env 2's single run (0.5 > 0.25), so at least 1 of 4 is above.
        assert!(band[1].low >= 0.25);
    }
}
