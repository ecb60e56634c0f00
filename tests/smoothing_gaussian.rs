//! Gaussian smoothing by Monte Carlo: the seed's approximation bound and both gradient
//! estimators, checked against the closed form for |x| (fixed seeds).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tame_agents::smoothing::gaussian::{expected_norm, smoothed_abs, smoothed_abs_grad};
use tame_agents::smoothing::GaussianSmoothing;

/// 99.9% normal quantile: over the ~100 interval checks below, a correct estimator would
/// land outside about 0.1 times in all.
const Z: f64 = 3.29;

#[test]
fn expected_norm_matches_known_values() {
    assert!((expected_norm(1) - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-12);
    // E‖ξ‖ for d = 2 is √(π/2); for large d it approaches √d.
    assert!((expected_norm(2) - (std::f64::consts::PI / 2.0).sqrt()).abs() < 1e-12);
    assert!((expected_norm(400) / 20.0 - 1.0).abs() < 1e-3);
}

#[test]
fn closed_form_of_smoothed_abs_matches_quadrature() {
    for eps in [0.05, 0.5, 2.0] {
        for x in [-1.3, -0.02, 0.0, 0.4, 3.0] {
            // Midpoint rule over ξ ∈ [−10, 10].
            let n = 200_000;
            let h = 20.0 / n as f64;
            let q: f64 = (0..n)
                .map(|i| -10.0 + (i as f64 + 0.5) * h)
                .map(|xi| (x + eps * xi).abs() * (-0.5 * xi * xi).exp() / (2.0 * std::f64::consts::PI).sqrt() * h)
                .sum();
            assert!((q - smoothed_abs(x, eps)).abs() < 1e-8, "eps={eps} x={x}");
        }
    }
}

#[test]
fn smoothing_a_lipschitz_function_stays_within_l_eps_expected_norm() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // 1-Lipschitz in the Euclidean norm: ‖x‖₂ and max_i x_i; 3-Lipschitz: 3·|x₀ − 0.5|.
    type Lipschitz = (&'static str, f64, fn(&[f64]) -> f64);
    let fns: [Lipschitz; 3] = [
        ("norm", 1.0, |x| x.iter().map(|v| v * v).sum::<f64>().sqrt()),
        ("max", 1.0, |x| x.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        ("3abs", 3.0, |x| 3.0 * (x[0] - 0.5).abs()),
    ];
    for (name, lip, f) in fns {
        for eps in [0.01, 0.1, 1.0] {
            for x in [[0.0, 0.0, 0.0], [0.5, -0.2, 0.1], [2.0, 1.0, -3.0]] {
                let smoothing = GaussianSmoothing::new(eps, 20_000, true).unwrap();
                let est = smoothing.value(f, &x, &mut rng);
                let bound = lip * eps * expected_norm(3);
                assert!((est.mean - f(&x)).abs() <= bound + Z * est.std_err, "{name} eps={eps} x={x:?}: {est:?} vs bound {bound}");
            }
        }
    }
    // The bound is tight for |x| at its kink: S_ε|·|(0) = ε·E|ξ| exactly.
    assert!((smoothed_abs(0.0, 0.3) - 0.3 * expected_norm(1)).abs() < 1e-15);
}

fn abs_grad(y: &[f64], g: &mut [f64]) {
    g[0] = if y[0] >= 0.0 { 1.0 } else { -1.0 };
}

#[test]
fn both_gradient_estimators_agree_with_the_erf_gradient_within_their_cis() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut checks = 0;
    for eps in [0.1, 0.5, 1.0] {
        for x in [-0.7, -0.05, 0.0, 0.2, 1.5] {
            let truth = smoothed_abs_grad(x, eps);
            for antithetic in [false, true] {
                let s = GaussianSmoothing::new(eps, 40_000, antithetic).unwrap();
                let path = s.grad_pathwise(abs_grad, &[x], &mut rng)[0];
                let score = s.grad_score(|y| y[0].abs(), &[x], &mut rng)[0];
                for (kind, est) in [("pathwise", path), ("score", score)] {
                    let (lo, hi) = est.ci(Z);
                    // 1e-9: where no draw reaches the kink (prob. < 1e-11 each) the CI has zero width.
                    assert!(lo - 1e-9 <= truth && truth <= hi + 1e-9, "{kind} anti={antithetic} eps={eps} x={x}: {est:?} vs {truth}");
                    // Informative intervals, not vacuous ones.
                    assert!(est.std_err < 0.1, "{kind} eps={eps} x={x}: {est:?}");
                    checks += 1;
                }
            }
        }
    }
    assert_eq!(checks, 60);
}

#[test]
fn antithetic_pairs_lower_the_variance_at_equal_evaluations() {
    for eps in [0.1, 0.5, 1.0] {
        // Points within reach of the kink (further out both estimators are exact).
        for x in [-0.7 * eps, 0.0, 0.2 * eps, 1.5 * eps] {
            let plain = GaussianSmoothing::new(eps, 20_000, false).unwrap();
            let anti = GaussianSmoothing::new(eps, 20_000, true).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let sp = plain.grad_score(|y| y[0].abs(), &[x], &mut rng)[0];
            let sa = anti.grad_score(|y| y[0].abs(), &[x], &mut rng)[0];
            assert!(sa.std_err < sp.std_err, "score eps={eps} x={x}: {sa:?} vs {sp:?}");
            let pp = plain.grad_pathwise(abs_grad, &[x], &mut rng)[0];
            let pa = anti.grad_pathwise(abs_grad, &[x], &mut rng)[0];
            assert!(pa.std_err < pp.std_err, "pathwise eps={eps} x={x}: {pa:?} vs {pp:?}");
        }
    }
}

#[test]
fn bad_widths_and_sample_counts_are_errors() {
    assert!(GaussianSmoothing::new(0.0, 100, false).is_err());
    assert!(GaussianSmoothing::new(f64::NAN, 100, false).is_err());
    assert!(GaussianSmoothing::new(0.1, 1, false).is_err());
    let err = GaussianSmoothing::new(0.1, 7, true).unwrap_err().to_string();
    assert!(err.contains("samples = 7") && err.contains("even"), "{err}");
}

#[test]
fn same_seed_gives_the_same_estimate() {
    let s = GaussianSmoothing::new(0.3, 1000, true).unwrap();
    let a = s.grad_score(|y| y[0].abs(), &[0.1], &mut ChaCha8Rng::seed_from_u64(9));
    let b = s.grad_score(|y| y[0].abs(), &[0.1], &mut ChaCha8Rng::seed_from_u64(9));
    assert_eq!(a, b);
}
