//! K_smooth on the built-in objectives: every measured entry within its bound, and the
//! O(ε) / O(1/ε) rates visible when ε shrinks tenfold.

use tame_agents::smoothing::{certify, Objective, Smoothing, SmoothingError};

const RANGE: f64 = 3.0;

fn entry(c: &tame_agents::smoothing::Certificate, name: &str) -> (f64, Option<f64>) {
    let e = c.entry(name).unwrap_or_else(|| panic!("no entry {name}"));
    (e.measured, e.bound)
}

#[test]
fn every_measured_entry_is_within_its_bound() {
    for objective in Objective::ALL {
        for &smoothing in objective.accepted() {
            for eps in [1e-3, 0.01, 0.1, 0.5] {
                let c = certify(objective, smoothing, eps, RANGE).unwrap();
                for e in &c.entries {
                    assert!(e.measured.is_finite() && e.measured >= 0.0, "{objective}/{smoothing} eps={eps}: {e:?}");
                    if let Some(b) = e.bound {
                        assert!(e.measured <= b * (1.0 + 1e-6) + 1e-9, "{objective}/{smoothing} eps={eps}: {e:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn errors_and_shifts_shrink_linearly_and_curvature_grows_as_one_over_eps() {
    for objective in [Objective::Abs, Objective::Relu, Objective::Hinge, Objective::Max] {
        for &smoothing in objective.accepted() {
            let a = certify(objective, smoothing, 0.01, RANGE).unwrap();
            let b = certify(objective, smoothing, 0.1, RANGE).unwrap();
            let (ea, _) = entry(&a, "sup_error");
            let (eb, _) = entry(&b, "sup_error");
            // Kink-wise smoothings are self-similar (S_ε − L = ε·e(x/ε)): the ratio is 10.
            assert!((eb / ea - 10.0).abs() < 0.5, "{objective}/{smoothing}: sup error {ea} -> {eb}");
            let (la, _) = entry(&a, "grad_lipschitz");
            let (lb, _) = entry(&b, "grad_lipschitz");
            assert!((la / lb - 10.0).abs() < 0.5, "{objective}/{smoothing}: lipschitz {lb} -> {la}");
            let (sa, _) = entry(&a, "argmin_shift");
            let (sb, _) = entry(&b, "argmin_shift");
            assert!(sa <= 0.011 && sb <= 0.11 && sa <= sb + 1e-12, "{objective}/{smoothing}: shift {sb} -> {sa}");
        }
    }
}

#[test]
fn known_exact_entries_are_reproduced() {
    // Gaussian |x|: sup error ε·√(2/π) at the kink, curvature 2φ(0)/ε there: the bounds are tight.
    let eps = 0.2;
    let c = certify(Objective::Abs, Smoothing::Gaussian, eps, RANGE).unwrap();
    let (m, b) = entry(&c, "sup_error");
    assert!((m - eps * (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-12 && (m - b.unwrap()).abs() < 1e-12);
    let (m, b) = entry(&c, "grad_lipschitz");
    assert!((m / b.unwrap() - 1.0).abs() < 1e-3, "{m} vs {b:?}");
    // LSE of (−x, x/2): the minimizer moves to x = (2/3)·τ·log 2.
    let tau = 0.05;
    let c = certify(Objective::Max, Smoothing::Lse, tau, RANGE).unwrap();
    let (m, _) = entry(&c, "argmin_shift");
    assert!((m - 2.0 / 3.0 * tau * 2f64.ln()).abs() < tau / 50.0, "{m}");
    // Moreau keeps the minimizer of |x|, and its sup error is λ/2.
    let c = certify(Objective::Abs, Smoothing::Moreau, 0.3, RANGE).unwrap();
    assert_eq!(entry(&c, "argmin_shift").0, 0.0);
    assert!((entry(&c, "sup_error").0 - 0.15).abs() < 1e-9);
}

#[test]
fn zero_one_loss_keeps_a_sup_error_of_one_half_at_every_eps() {
    for smoothing in [Smoothing::Gaussian, Smoothing::Softplus] {
        for eps in [1e-3, 0.1, 1.0] {
            let c = certify(Objective::ZeroOne, smoothing, eps, RANGE).unwrap();
            let (m, b) = entry(&c, "sup_error");
            assert!((m - 0.5).abs() < 1e-12 && b.is_none(), "{smoothing} eps={eps}: {m}");
            assert!(c.notes.iter().any(|n| n.contains("discontinuous")));
        }
    }
}

#[test]
fn nonsensical_combinations_and_parameters_are_rejected_with_the_accepted_list() {
    let err = certify(Objective::ZeroOne, Smoothing::Huber, 0.1, RANGE).unwrap_err();
    assert!(matches!(err, SmoothingError::Unsupported { .. }));
    let msg = err.to_string();
    assert!(msg.contains("huber") && msg.contains("gaussian, softplus"), "{msg}");
    for bad_eps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(certify(Objective::Abs, Smoothing::Gaussian, bad_eps, RANGE).is_err());
    }
    assert!(certify(Objective::Abs, Smoothing::Gaussian, 0.1, 1.0).unwrap_err().to_string().contains("range = 1"));
    let msg = "l2".parse::<Objective>().unwrap_err().to_string();
    assert!(msg.contains("'l2'") && msg.contains("abs, relu, hinge, max, zero-one"), "{msg}");
    let msg = "cubic".parse::<Smoothing>().unwrap_err().to_string();
    assert!(msg.contains("gaussian, softplus, huber, gelu, lse, moreau"), "{msg}");
}
