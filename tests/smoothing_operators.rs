//! The seed's closed-form smoothings keep their promised distance to the non-smooth originals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tame_agents::smoothing::moreau::{moreau_abs, moreau_envelope, prox_abs};
use tame_agents::smoothing::ops::{
    cross_entropy, entropy, entropy_regularized, gelu, huber, huber_grad, label_smoothing, lse, softmax,
    softplus, GELU_GAP,
};

const TAUS: [f64; 8] = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3];

fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..=n).map(move |i| lo + (hi - lo) * i as f64 / n as f64)
}

#[test]
fn lse_minus_max_lies_in_zero_to_tau_log_n() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in [1usize, 2, 4, 17] {
        for &tau in &TAUS {
            for _ in 0..50 {
                let x: Vec<f64> = (0..n).map(|_| rng.random_range(-50.0..50.0)).collect();
                let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let gap = lse(&x, tau) - max;
                let slack = 1e-12 * (1.0 + max.abs());
                assert!(gap >= -slack && gap <= tau * (n as f64).ln() + slack, "n={n} tau={tau} gap={gap}");
            }
            // All entries equal: the upper end is attained exactly.
            let tied = vec![3.0; n];
            assert!((lse(&tied, tau) - 3.0 - tau * (n as f64).ln()).abs() < 1e-9 * (1.0 + tau));
        }
    }
}

#[test]
fn softmax_is_a_distribution_that_hardens_as_tau_falls() {
    let x = [1.0, 0.5, -2.0, 0.999];
    for &tau in &TAUS {
        let p = softmax(&x, tau);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p.iter().all(|pi| pi.is_finite() && *pi >= 0.0));
    }
    assert!(softmax(&x, 1e-4)[0] > 0.9999);
    let uniform = softmax(&x, 1e6);
    assert!(uniform.iter().all(|p| (p - 0.25).abs() < 1e-5));
}

#[test]
fn softplus_minus_relu_lies_in_zero_to_log2_over_beta() {
    for beta in [1e-2, 0.5, 1.0, 10.0, 1e4] {
        for x in grid(-30.0, 30.0, 6000) {
            let gap = softplus(x, beta) - x.max(0.0);
            assert!(gap >= 0.0 && gap <= std::f64::consts::LN_2 / beta + 1e-12, "beta={beta} x={x} gap={gap}");
        }
        assert!((softplus(0.0, beta) - std::f64::consts::LN_2 / beta).abs() < 1e-12);
    }
}

#[test]
fn gelu_lies_within_its_gap_below_relu() {
    for x in grid(-10.0, 10.0, 20_000) {
        let gap = gelu(x) - x.max(0.0);
        assert!((-GELU_GAP..=1e-15).contains(&gap), "x={x} gap={gap}");
    }
}

#[test]
fn huber_matches_delta_abs_minus_half_delta_squared_off_the_kink() {
    for delta in [1e-3, 0.1, 1.0, 5.0] {
        for x in grid(-10.0, 10.0, 4000) {
            let linear = delta * x.abs() - 0.5 * delta * delta;
            let diff = (huber(x, delta) - linear).abs();
            if x.abs() >= delta {
                assert!(diff <= 1e-12 * (1.0 + linear.abs()), "delta={delta} x={x}");
            }
            // Inside the kink the quadratic sits above the line by (|x| − δ)²/2 ≤ δ²/2.
            assert!(diff <= 0.5 * delta * delta + 1e-12);
            assert_eq!(huber_grad(x, delta), x.clamp(-delta, delta));
        }
    }
}

#[test]
fn moreau_envelope_of_abs_is_huber_over_lambda_and_prox_is_soft_threshold() {
    for lambda in [1e-3, 0.1, 1.0, 3.0] {
        for x in grid(-5.0, 5.0, 400) {
            let closed = moreau_abs(x, lambda);
            assert!((closed - huber(x, lambda) / lambda).abs() < 1e-12);
            let num = moreau_envelope(f64::abs, x, lambda, 2.0 * lambda + 1e-9);
            assert!((num.value - closed).abs() < 1e-9 * (1.0 + closed), "lambda={lambda} x={x}");
            assert!((num.prox - prox_abs(x, lambda)).abs() < 1e-7, "lambda={lambda} x={x}");
            assert!((num.grad - huber_grad(x, lambda) / lambda).abs() < 1e-6 / lambda);
        }
    }
}

#[test]
fn numerical_moreau_envelope_keeps_minimum_and_has_gradient_x_minus_prox_over_lambda() {
    let f = |y: f64| (-y).max(0.5 * y).max(2.0 * y - 2.0);
    let lambda = 0.2;
    let env = |x: f64| moreau_envelope(f, x, lambda, 1.0);
    // Same minimizer (0) and minimum (0) as f; below f everywhere.
    assert!(env(0.0).value.abs() < 1e-12);
    for x in grid(-3.0, 3.0, 600) {
        let m = env(x);
        assert!(m.value <= f(x) + 1e-12 && m.value >= -1e-12, "x={x}");
        let h = 1e-5;
        let fd = (env(x + h).value - env(x - h).value) / (2.0 * h);
        assert!((fd - m.grad).abs() < 1e-4, "x={x}: fd {fd} vs {}", m.grad);
    }
}

#[test]
fn label_smoothing_mixes_toward_uniform() {
    let y = [0.0, 0.0, 1.0, 0.0];
    let s = label_smoothing(&y, 0.1);
    assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!((s[2] - 0.925).abs() < 1e-12 && (s[0] - 0.025).abs() < 1e-12);
    // The smoothed target bounds the loss of a confident prediction; the hard one does not.
    let confident = [1e-9, 1e-9, 1.0 - 3e-9, 1e-9];
    assert!(cross_entropy(&y, &confident) < 1e-8);
    assert!(cross_entropy(&s, &confident) > 1.0);
}

#[test]
fn entropy_regularized_objective_peaks_at_softmax_with_value_lse() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let q = [1.0, 0.3, -0.5, 0.9];
    for &tau in &[1e-3, 0.1, 1.0, 10.0] {
        let p = softmax(&q, tau);
        let best = entropy_regularized(&q, &p, tau);
        assert!((best - lse(&q, tau)).abs() < 1e-9 * (1.0 + best.abs()), "tau={tau}");
        for _ in 0..200 {
            let w: Vec<f64> = (0..4).map(|_| rng.random::<f64>()).collect();
            let z: f64 = w.iter().sum();
            let other: Vec<f64> = w.iter().map(|wi| wi / z).collect();
            assert!(entropy_regularized(&q, &other, tau) <= best + 1e-12);
        }
    }
    assert!((entropy(&[0.25; 4]) - 4f64.ln()).abs() < 1e-12);
}
