//! The softmax family, once: max, argmax, log-sum-exp, softmax, log-softmax and the softmax's
//! entropy, for the exact solver, the smoothing library, SAC, ES and the policy maps.
//!
//! Each function fixes its floating-point order of operations (max-shifted, f64 sums in index
//! order); callers depend on it for bit-identical results, so change none of them lightly.

/// The largest value; −∞ for an empty slice.
pub fn max(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The first index `a` of `0..n` with the largest `value(a)` (ties go to the lowest index; a
/// NaN is never chosen over index 0). For values that are not in one slice, such as a lane of
/// interleaved logits.
pub fn argmax_by<T: PartialOrd>(n: usize, value: impl Fn(usize) -> T) -> usize {
    let mut best = 0;
    for a in 1..n {
        if value(a) > value(best) {
            best = a;
        }
    }
    best
}

/// The first index of the largest value (see [`argmax_by`]); 0 for an empty slice.
pub fn argmax<T: PartialOrd + Copy>(x: &[T]) -> usize {
    argmax_by(x.len(), |i| x[i])
}

/// `τ·log Σ exp(x/τ)`, shifted by the max so that every exponent is ≤ 0; −∞ when every
/// value is.
pub fn log_sum_exp(x: &[f64], tau: f64) -> f64 {
    let m = max(x);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + tau * x.iter().map(|&xi| ((xi - m) / tau).exp()).sum::<f64>().ln()
}

/// `softmax(x/τ)`, shifted by the max; τ > 0.
pub fn softmax(x: &[f64], tau: f64) -> Vec<f64> {
    let m = max(x);
    let e: Vec<f64> = x.iter().map(|&xi| ((xi - m) / tau).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|ei| ei / z).collect()
}

/// `softmax(x/τ)` for τ > 0 and its τ → 0 limit at τ = 0, the one-hot of the first argmax.
pub fn softmax_or_argmax(x: &[f64], tau: f64) -> Vec<f64> {
    if tau > 0.0 {
        return softmax(x, tau);
    }
    let best = argmax(x);
    (0..x.len()).map(|a| if a == best { 1.0 } else { 0.0 }).collect()
}

/// log softmax of each row of `n` f32 logits (row-major), in f64, max-shifted:
/// `z − max − log Σ exp(z − max)`.
pub fn log_softmax_rows(logits: &[f32], n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(n) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z as f64));
        let log_sum = row.iter().map(|&z| (z as f64 - max).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|&z| z as f64 - max - log_sum));
    }
    out
}

/// H(softmax(x/τ)) = log Z − Σ_a p_a·z_a with z = (x − max)/τ; 0 at τ = 0 (the argmax).
pub fn softmax_entropy(x: &[f64], tau: f64) -> f64 {
    if tau == 0.0 {
        return 0.0;
    }
    let m = max(x);
    let z: Vec<f64> = x.iter().map(|l| (l - m) / tau).collect();
    let total: f64 = z.iter().map(|v| v.exp()).sum();
    let mean_z: f64 = z.iter().map(|v| v.exp() * v).sum::<f64>() / total;
    total.ln() - mean_z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1);
        assert_eq!(argmax(&[2.0f32, f32::NAN, 5.0]), 2);
        assert_eq!(argmax::<f64>(&[]), 0);
        assert_eq!(argmax_by(4, |a| -((a as f64) - 2.0).abs()), 2);
    }

    #[test]
    fn log_sum_exp_and_softmax_agree_with_their_definitions() {
        let x = [0.5, -1.0, 2.0];
        let tau = 0.7;
        let naive = tau * x.iter().map(|v: &f64| (v / tau).exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&x, tau) - naive).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY; 2], 1.0), f64::NEG_INFINITY);
        // Stable where the naive form overflows.
        assert!((log_sum_exp(&[1e4, 1e4], 1.0) - (1e4 + 2f64.ln())).abs() < 1e-9);
        let p = softmax(&x, tau);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..3 {
            assert!((p[i].ln() - (x[i] - log_sum_exp(&x, tau)) / tau).abs() < 1e-12);
        }
        let rows = log_softmax_rows(&[0.5, -1.0, 2.0, 3.0, 3.0, 3.0], 3);
        for (i, lp) in rows[..3].iter().enumerate() {
            assert!((lp - p_at(&x, i)).abs() < 1e-6);
        }
        assert!(rows[3..].iter().all(|lp| (lp + 3f64.ln()).abs() < 1e-12));
    }

    fn p_at(x: &[f64], i: usize) -> f64 {
        softmax(x, 1.0)[i].ln()
    }

    #[test]
    fn softmax_sharpens_into_the_argmax_as_tau_goes_to_zero() {
        let z = [1.0, 3.0, 2.0, 3.0];
        assert_eq!(softmax_or_argmax(&z, 0.0), vec![0.0, 1.0, 0.0, 0.0], "ties go to the first");
        let p = softmax_or_argmax(&z, 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[1] / p[2] - 1f64.exp()).abs() < 1e-12, "ratio exp(Δz/τ)");
        let sharp = softmax_or_argmax(&z, 1e-3);
        assert!((sharp[1] - 0.5).abs() < 1e-12 && sharp[0] < 1e-300);
        let flat = softmax_or_argmax(&z, 1e6);
        assert!(flat.iter().all(|q| (q - 0.25).abs() < 1e-5));
    }

    #[test]
    fn softmax_entropy_is_minus_sum_p_log_p() {
        let x = [0.3, -0.2, 1.1, 0.0];
        for tau in [0.5, 1.0, 3.0] {
            let h: f64 = -softmax(&x, tau).iter().map(|p| p * p.ln()).sum::<f64>();
            assert!((softmax_entropy(&x, tau) - h).abs() < 1e-12);
        }
        assert_eq!(softmax_entropy(&x, 0.0), 0.0);
        assert!((softmax_entropy(&x, 1e6) - 4f64.ln()).abs() < 1e-5);
    }
}
