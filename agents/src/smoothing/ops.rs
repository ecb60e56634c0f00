//! Closed-form smoothing operators of the seed's table, each beside the non-smooth function it
//! approaches as its width parameter goes to 0.

use std::f64::consts::{LN_2, PI};

/// Standard normal density φ(x) = exp(−x²/2)/√(2π).
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// Standard normal distribution function Φ(x) = erfc(−x/√2)/2 (accurate in both tails).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Huber function H_δ(x) = x²/2 for |x| ≤ δ, δ·(|x| − δ/2) otherwise.
///
/// H_δ/δ → |x| as δ → 0, and H_δ(x)/δ is the Moreau envelope of |·| with λ = δ.
pub fn huber(x: f64, delta: f64) -> f64 {
    let a = x.abs();
    if a <= delta {
        0.5 * x * x
    } else {
        delta * (a - 0.5 * delta)
    }
}

/// H'_δ(x) = clamp(x, −δ, δ).
pub fn huber_grad(x: f64, delta: f64) -> f64 {
    x.clamp(-delta, delta)
}

/// softplus_β(x) = log(1 + exp(βx))/β, with 0 ≤ softplus_β(x) − max(0, x) ≤ log 2/β.
///
/// Written as max(0, x) + log(1 + exp(−β|x|))/β so that it never overflows.
pub fn softplus(x: f64, beta: f64) -> f64 {
    x.max(0.0) + (-beta * x.abs()).exp().ln_1p() / beta
}

/// The logistic sigmoid σ(βx) = 1/(1 + exp(−βx)), the derivative of softplus_β.
pub fn sigmoid(x: f64, beta: f64) -> f64 {
    let z = beta * x;
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// GELU(x) = x·Φ(x) (Hendrycks & Gimpel 2016): ReLU with its gate smoothed by a normal cdf.
pub fn gelu(x: f64) -> f64 {
    x * normal_cdf(x)
}

/// max_{z} (relu(z) − GELU(z)) = max_{z>0} z·Φ(−z): GELU(x) − ReLU(x) ∈ [−GELU_GAP, 0].
/// Attained at z ≈ 0.7518 (where Φ(−z) = z·φ(z)); rounded up, checked by a unit test.
pub const GELU_GAP: f64 = 0.169_971_21;

/// LSE_τ(x) = τ·log Σ_i exp(x_i/τ), with max_i x_i ≤ LSE_τ(x) ≤ max_i x_i + τ·log n.
/// Computed as m + τ·log Σ exp((x_i − m)/τ) with m = max x, stable for any τ > 0.
pub fn lse(x: &[f64], tau: f64) -> f64 {
    crate::math::log_sum_exp(x, tau)
}

/// softmax_τ(x)_i = exp(x_i/τ)/Σ_j exp(x_j/τ) = ∂LSE_τ/∂x_i; → one-hot argmax as τ → 0,
/// → uniform as τ → ∞ (max-shifted; the crate's one softmax).
pub use crate::math::softmax;

/// Label smoothing (Szegedy et al. 2016): y'_k = (1 − α)·y_k + α/K over K classes.
pub fn label_smoothing(y: &[f64], alpha: f64) -> Vec<f64> {
    let k = y.len() as f64;
    y.iter().map(|&yk| (1.0 - alpha) * yk + alpha / k).collect()
}

/// Cross-entropy −Σ_k y_k·log p_k of predicted probabilities `p` against targets `y`.
pub fn cross_entropy(y: &[f64], p: &[f64]) -> f64 {
    -y.iter().zip(p).map(|(&yk, &pk)| if yk > 0.0 { yk * pk.ln() } else { 0.0 }).sum::<f64>()
}

/// Shannon entropy H(π) = −Σ_a π_a·log π_a (natural log; 0·log 0 = 0).
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter().map(|&pa| if pa > 0.0 { pa * pa.ln() } else { 0.0 }).sum::<f64>()
}

/// Entropy-regularized objective of a policy π over action values q:
/// J_τ(π) = Σ_a π_a·q_a + τ·H(π), i.e. the loss L_ent = L − τ·H(π) with L = −Σ π q.
///
/// Its maximum over the simplex is LSE_τ(q), attained at π = softmax_τ(q) (the Gibbs
/// variational principle); this is what turns the Bellman max into soft value iteration.
pub fn entropy_regularized(q: &[f64], p: &[f64], tau: f64) -> f64 {
    q.iter().zip(p).map(|(qa, pa)| qa * pa).sum::<f64>() + tau * entropy(p)
}

/// log 2, the largest gap between softplus_1 and ReLU.
pub const SOFTPLUS_GAP: f64 = LN_2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_gap_is_the_max_of_relu_minus_gelu() {
        let best = (1..200_000).map(|i| i as f64 * 1e-5).map(|z| z * normal_cdf(-z)).fold(0.0, f64::max);
        assert!(best <= GELU_GAP && GELU_GAP - best < 1e-8, "{best}");
    }

    #[test]
    fn sigmoid_and_softplus_are_stable_at_extremes() {
        assert_eq!(sigmoid(1e6, 1.0), 1.0);
        assert_eq!(sigmoid(-1e6, 1.0), 0.0);
        assert_eq!(softplus(1e6, 1.0), 1e6);
        assert_eq!(softplus(-1e6, 1.0), 0.0);
    }
}
