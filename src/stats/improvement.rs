//! Probability of improvement P(X > Y) (Agarwal et al. 2021): the chance that a random run
//! of X on an env beats a random run of Y on it, averaged over envs.

use super::bootstrap::{interval, stratified_replicates, Bootstrap, Interval};

/// `P(X_m > Y_m)` on one env: `(#{x > y} + ½ #{x = y}) / (n_x n_y)` over all pairs.
fn pairwise(x: &[f64], y: &[f64]) -> f64 {
    let mut wins = 0.0;
    for &a in x {
        for &b in y {
            wins += if a > b { 1.0 } else if a == b { 0.5 } else { 0.0 };
        }
    }
    wins / (x.len() * y.len()) as f64
}

/// `P(X > Y)`, the mean over envs of `P(X_m > Y_m)`, over the envs where both have runs;
/// `None` when there is no such env.
pub fn probability_of_improvement(x: &[Vec<f64>], y: &[Vec<f64>]) -> Option<f64> {
    let per_env: Vec<f64> =
        x.iter().zip(y).filter(|(a, b)| !a.is_empty() && !b.is_empty()).map(|(a, b)| pairwise(a, b)).collect();
    (!per_env.is_empty()).then(|| per_env.iter().sum::<f64>() / per_env.len() as f64)
}

/// The stratified independent bootstrap CI of `P(X > Y)`: X's and Y's runs are resampled
/// separately within each env. `None` when neither has an env with two runs.
pub fn probability_of_improvement_ci(
    x: &[Vec<f64>],
    y: &[Vec<f64>],
    boot: Bootstrap,
    stream: u64,
) -> Option<Interval> {
    probability_of_improvement_replicates(x, y, boot, stream).map(|r| interval(&r, boot.confidence))
}

/// The sorted bootstrap replicates of `P(X > Y)` behind [`probability_of_improvement_ci`].
pub fn probability_of_improvement_replicates(
    x: &[Vec<f64>],
    y: &[Vec<f64>],
    boot: Bootstrap,
    stream: u64,
) -> Option<Vec<f64>> {
    // Only envs both have runs on count, as in the point estimate.
    let (x, y): (Vec<&Vec<f64>>, Vec<&Vec<f64>>) =
        x.iter().zip(y).filter(|(a, b)| !a.is_empty() && !b.is_empty()).unzip();
    let sizes: Vec<usize> = x.iter().chain(&y).map(|v| v.len()).collect();
    let m = x.len();
    let (mut bx, mut by): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut reps = stratified_replicates(&sizes, 1, boot, stream, |idx, out| {
        let mut total = 0.0;
        for e in 0..m {
            bx.clear();
            bx.extend(idx[e].iter().map(|&i| x[e][i]));
            by.clear();
            by.extend(idx[m + e].iter().map(|&i| y[e][i]));
            total += pairwise(&bx, &by);
        }
        out[0] = total / m as f64;
    })?;
    reps.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_probabilities() {
        // Env 1: x = (1, 3), y = (2, 2): pairs 1<2, 1<2, 3>2, 3>2 → 2/4. Env 2: x = (5),
        // y = (5, 4): tie ½ and win 1 → 0.75. Mean 0.625.
        let x = vec![vec![1.0, 3.0], vec![5.0]];
        let y = vec![vec![2.0, 2.0], vec![5.0, 4.0]];
        assert!((probability_of_improvement(&x, &y).unwrap() - 0.625).abs() < 1e-12);
        assert!((probability_of_improvement(&y, &x).unwrap() - 0.375).abs() < 1e-12);
        // Equal runs: ½.
        assert_eq!(probability_of_improvement(&x, &x), Some(0.5));
        // An env where one side has no run is left out.
        let y2 = vec![vec![2.0, 2.0], vec![]];
        assert_eq!(probability_of_improvement(&x, &y2), Some(0.5));
        assert_eq!(probability_of_improvement(&[vec![]], &[vec![1.0]]), None);
    }

    #[test]
    fn interval_brackets_the_point_and_is_degenerate_for_certain_wins() {
        let x = vec![vec![0.9, 0.8, 0.7, 0.95], vec![0.6, 0.9, 0.5]];
        let y = vec![vec![0.1, 0.2, 0.85, 0.3], vec![0.55, 0.2, 0.1]];
        let p = probability_of_improvement(&x, &y).unwrap();
        let iv = probability_of_improvement_ci(&x, &y, Bootstrap::default(), 1).unwrap();
        assert!(iv.low <= p && p <= iv.high && iv.low < iv.high, "{p} {iv:?}");
        let sure = vec![vec![2.0, 3.0]];
        let iv = probability_of_improvement_ci(&sure, &[vec![0.0, 1.0]], Bootstrap::default(), 1).unwrap();
        assert_eq!((iv.low, iv.high), (1.0, 1.0));
        assert_eq!(probability_of_improvement_ci(&[vec![1.0]], &[vec![0.0]], Bootstrap::default(), 1), None);
    }
}
