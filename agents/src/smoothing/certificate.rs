//! The smoothing certificate K_smooth of the seed document, measured against its bounds:
//! ε; ‖S_ε[L] − L‖∞; the Lipschitz constant of ∇S_ε[L]; and |x*_ε − x*|.
//!
//! For the built-in 1-D objectives every smoothed function and its derivative are evaluated
//! exactly (closed forms, or the numerical prox for the Moreau envelope) on a grid over
//! [−R, R] that is refined to ε/50 around each kink; the measured entries are maxima over
//! that grid. For a gridworld the exact soft solver gives the certificate with ε = τ.

use std::fmt;
use std::str::FromStr;

use tame_envs::TransitionTable;

use super::moreau::moreau_envelope;
use super::ops::{huber, normal_cdf, normal_pdf, sigmoid, softplus, GELU_GAP};
use super::SmoothingError;
use crate::exact::{self, ExactError};
use crate::numfmt::compact;

/// A built-in non-smooth objective of one variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// |x| (L1 penalty): minimum 0 at x* = 0.
    Abs,
    /// max(0, x): minimum on the half-line x ≤ 0.
    Relu,
    /// max(0, 1 − x) (hinge loss of the margin x): minimum on x ≥ 1.
    Hinge,
    /// max of the vector (−x, x/2, 2x − 2): kinks at 0 and 4/3, minimum 0 at x* = 0.
    Max,
    /// 1[x ≤ 0] (0-1 loss of the margin x): discontinuous, minimum on x > 0.
    ZeroOne,
}

/// How the objective is smoothed; ε is the width of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Smoothing {
    /// S_ε[L](x) = E[L(x + εξ)], ξ ~ N(0, 1); exact for these piecewise-linear objectives:
    /// relu(u) → u·Φ(u/ε) + ε·φ(u/ε), step 1[u > 0] → Φ(u/ε).
    Gaussian,
    /// Each ReLU kink by softplus_β with β = 1/ε; a step 1[u > 0] by the sigmoid σ(u/ε).
    Softplus,
    /// Each |u| kink by the Huber function H_ε(u)/ε (= the Moreau envelope of |u|).
    Huber,
    /// Each ReLU kink by the scaled GELU u·Φ(u/ε).
    Gelu,
    /// The max of the objective's affine pieces by LSE_τ with τ = ε.
    Lse,
    /// The Moreau envelope M_λ[L] with λ = ε, by the numerical prox.
    Moreau,
}

impl Objective {
    pub const ALL: [Objective; 5] = [Self::Abs, Self::Relu, Self::Hinge, Self::Max, Self::ZeroOne];

    pub fn name(self) -> &'static str {
        match self {
            Self::Abs => "abs",
            Self::Relu => "relu",
            Self::Hinge => "hinge",
            Self::Max => "max",
            Self::ZeroOne => "zero-one",
        }
    }

    pub fn formula(self) -> &'static str {
        match self {
            Self::Abs => "|x|",
            Self::Relu => "max(0, x)",
            Self::Hinge => "max(0, 1 - x)",
            Self::Max => "max(-x, x/2, 2x - 2)",
            Self::ZeroOne => "1[x <= 0]",
        }
    }

    /// The smoothings that make sense for this objective.
    pub fn accepted(self) -> &'static [Smoothing] {
        use Smoothing::*;
        match self {
            Self::ZeroOne => &[Gaussian, Softplus],
            _ => &[Gaussian, Softplus, Huber, Gelu, Lse, Moreau],
        }
    }

    pub fn value(self, x: f64) -> f64 {
        let pwl = self.pwl();
        pwl.intercept + pwl.slope * x
            + pwl.kinks.iter().map(|&(k, c)| c * (x - k).max(0.0)).sum::<f64>()
            + pwl.steps.iter().map(|&(k, d)| if x > k { d } else { 0.0 }).sum::<f64>()
    }

    /// As `intercept + slope·x + Σ c·relu(x − k) + Σ d·1[x > k]`, which every kink-wise
    /// smoothing acts on term by term.
    fn pwl(self) -> Pwl {
        let pwl = |intercept, slope, kinks, steps| Pwl { intercept, slope, kinks, steps };
        match self {
            Self::Abs => pwl(0.0, -1.0, vec![(0.0, 2.0)], vec![]),
            Self::Relu => pwl(0.0, 0.0, vec![(0.0, 1.0)], vec![]),
            // relu(1 − x) = (1 − x) + relu(x − 1).
            Self::Hinge => pwl(1.0, -1.0, vec![(1.0, 1.0)], vec![]),
            Self::Max => pwl(0.0, -1.0, vec![(0.0, 1.5), (4.0 / 3.0, 1.5)], vec![]),
            Self::ZeroOne => pwl(1.0, 0.0, vec![], vec![(0.0, -1.0)]),
        }
    }

    /// The affine pieces (a, b) with L(x) = max_i (a·x + b), where L is such a max.
    fn pieces(self) -> Option<Vec<(f64, f64)>> {
        match self {
            Self::Abs => Some(vec![(1.0, 0.0), (-1.0, 0.0)]),
            Self::Relu => Some(vec![(0.0, 0.0), (1.0, 0.0)]),
            Self::Hinge => Some(vec![(0.0, 0.0), (-1.0, 1.0)]),
            Self::Max => Some(vec![(-1.0, 0.0), (0.5, 0.0), (2.0, -2.0)]),
            Self::ZeroOne => None,
        }
    }

    /// Lipschitz constant of L (None: discontinuous).
    fn lipschitz(self) -> Option<f64> {
        match self {
            Self::Max => Some(2.0),
            Self::ZeroOne => None,
            _ => Some(1.0),
        }
    }

    /// Sharpness μ with L(x) − min L ≥ μ·dist(x, argmin L) on the domain (None: not sharp).
    fn sharpness(self) -> Option<f64> {
        match self {
            Self::Max => Some(0.5),
            Self::ZeroOne => None,
            _ => Some(1.0),
        }
    }
}

struct Pwl {
    intercept: f64,
    slope: f64,
    kinks: Vec<(f64, f64)>,
    steps: Vec<(f64, f64)>,
}

impl Smoothing {
    pub const ALL: [Smoothing; 6] =
        [Self::Gaussian, Self::Softplus, Self::Huber, Self::Gelu, Self::Lse, Self::Moreau];

    pub fn name(self) -> &'static str {
        match self {
            Self::Gaussian => "gaussian",
            Self::Softplus => "softplus",
            Self::Huber => "huber",
            Self::Gelu => "gelu",
            Self::Lse => "lse",
            Self::Moreau => "moreau",
        }
    }

    /// What ε is for this smoothing.
    pub fn eps_meaning(self) -> &'static str {
        match self {
            Self::Gaussian => "noise std",
            Self::Softplus => "1/beta",
            Self::Huber => "Huber delta",
            Self::Gelu => "GELU scale",
            Self::Lse => "temperature tau",
            Self::Moreau => "envelope lambda",
        }
    }

    /// A kink relu(u) smoothed: (value, derivative), for the kink-wise smoothings.
    fn relu(self, u: f64, eps: f64) -> (f64, f64) {
        let z = u / eps;
        match self {
            Self::Gaussian => (u * normal_cdf(z) + eps * normal_pdf(z), normal_cdf(z)),
            Self::Softplus => (softplus(u, 1.0 / eps), sigmoid(u, 1.0 / eps)),
            // relu(u) = (u + |u|)/2 with |u| → H_ε(u)/ε.
            Self::Huber => (0.5 * (u + huber(u, eps) / eps), 0.5 * (1.0 + z.clamp(-1.0, 1.0))),
            Self::Gelu => (u * normal_cdf(z), normal_cdf(z) + z * normal_pdf(z)),
            Self::Lse | Self::Moreau => unreachable!("not a kink-wise smoothing"),
        }
    }

    /// A step 1[u > 0] smoothed: (value, derivative).
    fn step(self, u: f64, eps: f64) -> (f64, f64) {
        let z = u / eps;
        match self {
            Self::Gaussian => (normal_cdf(z), normal_pdf(z) / eps),
            Self::Softplus => {
                let s = sigmoid(z, 1.0);
                (s, s * (1.0 - s) / eps)
            }
            _ => unreachable!("checked by Objective::accepted"),
        }
    }

    /// Range [lo, hi] of (smoothed relu − relu), and the max |second derivative|, per kink.
    fn relu_error_and_curvature(self, eps: f64) -> ([f64; 2], f64) {
        match self {
            Self::Gaussian => ([0.0, eps * normal_pdf(0.0)], normal_pdf(0.0) / eps),
            Self::Softplus => ([0.0, eps * std::f64::consts::LN_2], 0.25 / eps),
            Self::Huber => ([-0.25 * eps, 0.0], 0.5 / eps),
            Self::Gelu => ([-GELU_GAP * eps, 0.0], 2.0 * normal_pdf(0.0) / eps),
            Self::Lse | Self::Moreau => unreachable!("not a kink-wise smoothing"),
        }
    }

    /// max |second derivative| of the smoothed step.
    fn step_curvature(self, eps: f64) -> f64 {
        match self {
            // d²/du² Φ(u/ε) = −(z/ε²)·φ(z), largest at z = ±1.
            Self::Gaussian => normal_pdf(1.0) / (eps * eps),
            // σ'' = σ(1−σ)(1−2σ), largest 1/(6√3).
            Self::Softplus => 1.0 / (6.0 * 3f64.sqrt() * eps * eps),
            _ => unreachable!("checked by Objective::accepted"),
        }
    }
}

fn parse_named<T: Copy>(s: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|&t| name(t).eq_ignore_ascii_case(s))
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> String {
    all.iter().map(|&t| name(t)).collect::<Vec<_>>().join(", ")
}

impl FromStr for Objective {
    type Err = SmoothingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_named(s, &Self::ALL, Self::name)
            .ok_or_else(|| SmoothingError::Unknown { what: "objective", name: s.into(), accepted: names(&Self::ALL, Self::name) })
    }
}

impl FromStr for Smoothing {
    type Err = SmoothingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_named(s, &Self::ALL, Self::name)
            .ok_or_else(|| SmoothingError::Unknown { what: "smoothing", name: s.into(), accepted: names(&Self::ALL, Self::name) })
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Smoothing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of K_smooth: the measured value and the theoretical bound beside it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    /// Stable key: `sup_error`, `grad_lipschitz`, `argmin_shift` (and `policy_gap` for RL).
    pub name: &'static str,
    /// What was measured, in words.
    pub meaning: String,
    pub measured: f64,
    /// None where the theory gives no bound (said why in the certificate's notes).
    pub bound: Option<f64>,
}

/// K_smooth for one ε.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Certificate {
    pub eps: f64,
    pub entries: Vec<Entry>,
    pub notes: Vec<String>,
}

impl Certificate {
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Computes K_smooth for `objective` smoothed by `smoothing` at width `eps`, measured on a grid
/// over [−range, range].
pub fn certify(
    objective: Objective,
    smoothing: Smoothing,
    eps: f64,
    range: f64,
) -> Result<Certificate, SmoothingError> {
    validate(objective, smoothing, eps, range)?;
    let pwl = objective.pwl();
    let xs = grid(&pwl, range, eps);
    let smoothed: Vec<(f64, f64)> = xs.iter().map(|&x| smoothed_at(objective, &pwl, smoothing, eps, x)).collect();
    let loss: Vec<f64> = xs.iter().map(|&x| objective.value(x)).collect();

    let sup_error = smoothed.iter().zip(&loss).map(|((s, _), l)| (s - l).abs()).fold(0.0, f64::max);
    let grad_lipschitz = xs
        .windows(2)
        .zip(smoothed.windows(2))
        .map(|(x, s)| (s[1].1 - s[0].1).abs() / (x[1] - x[0]))
        .fold(0.0, f64::max);
    let l_min = loss.iter().copied().fold(f64::INFINITY, f64::min);
    let mut i_eps = 0;
    for (i, (s, _)) in smoothed.iter().enumerate() {
        if *s < smoothed[i_eps].0 {
            i_eps = i;
        }
    }
    let argmin_shift = xs
        .iter()
        .zip(&loss)
        .filter(|(_, l)| **l <= l_min + 1e-12)
        .map(|(x, _)| (x - xs[i_eps]).abs())
        .fold(f64::INFINITY, f64::min);

    let (error_range, curvature) = bounds(objective, &pwl, smoothing, eps);
    let sup_bound = match (smoothing, objective.lipschitz()) {
        // The seed's Step 2: |S_ε[L] − L| ≤ Lip(L)·ε·E|ξ|.
        (Smoothing::Gaussian, Some(lip)) => Some(lip * eps * super::gaussian::expected_norm(1)),
        _ => error_range.map(|[lo, hi]| lo.abs().max(hi.abs())),
    };
    // S − L ∈ [lo, hi] gives L(x*_ε) ≤ S(x*_ε) − lo ≤ S(x*) − lo ≤ min L + (hi − lo), and
    // sharpness μ turns that value gap into a distance: dist(x*_ε, argmin L) ≤ (hi − lo)/μ.
    let shift_bound = match (smoothing, objective.sharpness(), error_range) {
        (Smoothing::Moreau, _, _) => Some(0.0),
        (_, Some(mu), Some([lo, hi])) => Some((hi - lo) / mu),
        _ => None,
    };
    let mut notes = vec![format!(
        "L(x) = {}, smoothed by {} with eps = {} ({}); measured on {} grid points over [-{r}, {r}]",
        objective.formula(),
        smoothing.name(),
        compact(eps),
        smoothing.eps_meaning(),
        xs.len(),
        r = compact(range)
    )];
    match objective {
        Objective::ZeroOne => notes.push(
            "zero-one is discontinuous: the sup error stays 1/2 at x = 0 for every eps (the O(eps) claim needs a Lipschitz L), and its minimum is not sharp, so neither has a bound".into(),
        ),
        Objective::Relu | Objective::Hinge => notes.push(format!(
            "argmin of {} is a half-line; the shift is the distance to it inside the grid",
            objective.formula()
        )),
        _ => {}
    }
    Ok(Certificate {
        eps,
        entries: vec![
            Entry { name: "sup_error", meaning: "sup |S_eps L - L|".into(), measured: sup_error, bound: sup_bound },
            Entry { name: "grad_lipschitz", meaning: "Lipschitz constant of (S_eps L)'".into(), measured: grad_lipschitz, bound: Some(curvature) },
            Entry { name: "argmin_shift", meaning: "dist(argmin S_eps L, argmin L)".into(), measured: argmin_shift, bound: shift_bound },
        ],
        notes,
    })
}

fn validate(objective: Objective, smoothing: Smoothing, eps: f64, range: f64) -> Result<(), SmoothingError> {
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(SmoothingError::BadParameter(format!("eps = {}; it must be a positive finite width", compact(eps))));
    }
    if !(range >= 2.0 && range.is_finite()) {
        return Err(SmoothingError::BadParameter(format!(
            "range = {}; it must be at least 2 so that the grid holds every kink (at 0, 1 and 4/3)",
            compact(range)
        )));
    }
    if !objective.accepted().contains(&smoothing) {
        return Err(SmoothingError::Unsupported {
            objective: objective.name(),
            smoothing: smoothing.name(),
            accepted: names(objective.accepted(), Smoothing::name),
        });
    }
    Ok(())
}

/// (Range of S − L if known, bound on the Lipschitz constant of the smoothed gradient.)
fn bounds(objective: Objective, pwl: &Pwl, smoothing: Smoothing, eps: f64) -> (Option<[f64; 2]>, f64) {
    match smoothing {
        Smoothing::Lse => {
            // LSE_τ − max ∈ [0, τ log n]; (LSE_τ)'' = Var_{softmax}(a)/τ ≤ (max a − min a)²/(4τ).
            let pieces = objective.pieces().unwrap_or_default();
            let (lo, hi) = pieces.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(a, _)| (lo.min(a), hi.max(a)));
            (Some([0.0, eps * (pieces.len() as f64).ln()]), (hi - lo).powi(2) / (4.0 * eps))
        }
        Smoothing::Moreau => {
            // Convex G-Lipschitz L: −λG²/2 ≤ M_λ − L ≤ 0, and ∇M_λ is (1/λ)-Lipschitz.
            let g = objective.lipschitz().unwrap_or(f64::INFINITY);
            (Some([-0.5 * eps * g * g, 0.0]), 1.0 / eps)
        }
        _ => {
            let ([lo, hi], curv) = if pwl.kinks.is_empty() { ([0.0, 0.0], 0.0) } else { smoothing.relu_error_and_curvature(eps) };
            let mut range = [0.0, 0.0];
            let mut curvature = 0.0;
            for &(_, c) in &pwl.kinks {
                range[0] += (c * lo).min(c * hi);
                range[1] += (c * lo).max(c * hi);
                curvature += c.abs() * curv;
            }
            for &(_, d) in &pwl.steps {
                curvature += d.abs() * smoothing.step_curvature(eps);
            }
            let range = if pwl.steps.is_empty() { Some(range) } else { None };
            (range, curvature)
        }
    }
}

/// (S_ε[L](x), S_ε[L]'(x)).
fn smoothed_at(objective: Objective, pwl: &Pwl, smoothing: Smoothing, eps: f64, x: f64) -> (f64, f64) {
    match smoothing {
        Smoothing::Lse => {
            let pieces = objective.pieces().unwrap_or_default();
            let z: Vec<f64> = pieces.iter().map(|&(a, b)| a * x + b).collect();
            let p = super::ops::softmax(&z, eps);
            (super::ops::lse(&z, eps), pieces.iter().zip(&p).map(|((a, _), pi)| a * pi).sum())
        }
        Smoothing::Moreau => {
            let g = objective.lipschitz().unwrap_or(1.0);
            let m = moreau_envelope(|y| objective.value(y), x, eps, 2.0 * eps * g + 1e-9);
            (m.value, m.grad)
        }
        _ => {
            let (mut v, mut d) = (pwl.intercept + pwl.slope * x, pwl.slope);
            for &(k, c) in &pwl.kinks {
                let (sv, sd) = smoothing.relu(x - k, eps);
                v += c * sv;
                d += c * sd;
            }
            for &(k, c) in &pwl.steps {
                let (sv, sd) = smoothing.step(x - k, eps);
                v += c * sv;
                d += c * sd;
            }
            (v, d)
        }
    }
}

/// 2001 uniform points over [−R, R], plus 801 points over ±8ε around each kink (ε/50 apart),
/// so that the curvature of the smoothed kink is resolved for every ε.
fn grid(pwl: &Pwl, range: f64, eps: f64) -> Vec<f64> {
    let mut xs: Vec<f64> = (0..=2000).map(|i| -range + 2.0 * range * i as f64 / 2000.0).collect();
    for &(k, _) in pwl.kinks.iter().chain(&pwl.steps) {
        xs.extend((0..=800).map(|i| k - 8.0 * eps + 16.0 * eps * i as f64 / 800.0).filter(|x| x.abs() <= range));
        xs.push(k);
    }
    xs.sort_by(f64::total_cmp);
    xs.dedup_by(|a, b| (*a - *b).abs() < 1e-15);
    xs
}

/// The gridworld certificate from the exact solver, with ε = τ.
///
/// - `sup_error`: ‖V*_τ − V*‖∞ over states, bound τ·log|A|/(1−γ);
/// - `grad_lipschitz`: the largest curvature of the smoothed max the soft Bellman operator
///   uses, max_s λ_max(∇²LSE_τ(Q*_τ(s,·))) = max_s λ_max(diag π − ππᵀ)/τ, bound 1/(2τ);
/// - `argmin_shift`: how far π*_τ is from a hard-optimal policy, max_s of the probability it
///   puts outside argmax_a Q*(s,a) (no bound: it decays like exp(−action gap/τ));
/// - `policy_gap`: ‖V* − V^{π*_τ}‖∞, the value lost by acting with π*_τ, same bound.
pub fn certify_gridworld(table: &TransitionTable, gamma: f64, tau: f64) -> Result<Certificate, ExactError> {
    if !(tau > 0.0 && tau.is_finite()) {
        return Err(ExactError::BadTau(tau));
    }
    let c = exact::compare(table, gamma, tau, crate::soft::Regularizer::Entropy)?;
    let soft = c.soft.as_ref().unwrap_or(&c.hard);
    let max_diff = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let bound = c.reference.bound;
    let curvature = c.soft_policy.iter().map(|p| largest_eigenvalue_softmax_jacobian(p) / tau).fold(0.0, f64::max);
    let shift = c
        .hard
        .q
        .iter()
        .zip(&c.hard.v)
        .zip(&c.soft_policy)
        .map(|((q, v), p)| {
            let tol = 1e-9 * (1.0 + v.abs());
            q.iter().zip(p).filter(|(qa, _)| **qa < v - tol).map(|(_, pa)| pa).sum::<f64>()
        })
        .fold(0.0, f64::max);
    Ok(Certificate {
        eps: tau,
        entries: vec![
            Entry { name: "sup_error", meaning: "max_s |V*_tau(s) - V*(s)|".into(), measured: max_diff(&soft.v, &c.hard.v), bound: Some(bound) },
            Entry {
                name: "grad_lipschitz",
                meaning: "max_s lambda_max of the Hessian of LSE_tau at Q*_tau(s,.)".into(),
                measured: curvature,
                bound: Some(if table.n_actions > 1 { 0.5 / tau } else { 0.0 }),
            },
            Entry { name: "argmin_shift", meaning: "max_s P(pi*_tau picks a non-optimal action)".into(), measured: shift, bound: None },
            Entry { name: "policy_gap", meaning: "max_s V*(s) - V^{pi*_tau}(s)".into(), measured: max_diff(&c.hard.v, &c.v_pi_tau), bound: Some(bound) },
        ],
        notes: vec![format!(
            "eps = tau = {}, gamma = {}, |A| = {}; bounds tau*log|A|/(1-gamma) = {bound:.6e} (Geist, Scherrer & Pietquin 2019) and 1/(2 tau); {} soft sweeps, residual {:.3e}",
            compact(tau), compact(gamma), table.n_actions, c.reference.iterations, c.reference.residual
        )],
    })
}

/// λ_max of diag(p) − ppᵀ (the softmax Jacobian, PSD) by power iteration from each
/// e_i − p, taking the best Rayleigh quotient, so no start is orthogonal to the top vector.
fn largest_eigenvalue_softmax_jacobian(p: &[f64]) -> f64 {
    let n = p.len();
    let apply = |v: &[f64]| -> Vec<f64> {
        let pv: f64 = p.iter().zip(v).map(|(a, b)| a * b).sum();
        (0..n).map(|i| p[i] * v[i] - p[i] * pv).collect()
    };
    let mut best: f64 = 0.0;
    for start in 0..n {
        let mut v: Vec<f64> = (0..n).map(|i| if i == start { 1.0 } else { 0.0 } - p[i]).collect();
        for _ in 0..200 {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-300 {
                break;
            }
            v.iter_mut().for_each(|x| *x /= norm);
            let w = apply(&v);
            best = best.max(v.iter().zip(&w).map(|(a, b)| a * b).sum());
            v = w;
        }
    }
    best
}

/// One point of a smoothed curve: x, L(x), S_ε[L](x) and S_ε[L]'(x).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct CurvePoint {
    pub x: f64,
    pub loss: f64,
    pub smoothed: f64,
    pub smoothed_grad: f64,
}

/// L and its smoothing at `n + 1` evenly spaced points over [−range, range], for plots.
pub fn smoothed_curve(
    objective: Objective,
    smoothing: Smoothing,
    eps: f64,
    range: f64,
    n: usize,
) -> Result<Vec<CurvePoint>, SmoothingError> {
    validate(objective, smoothing, eps, range)?;
    let pwl = objective.pwl();
    Ok((0..=n.max(1))
        .map(|i| -range + 2.0 * range * i as f64 / n.max(1) as f64)
        .map(|x| {
            let (smoothed, smoothed_grad) = smoothed_at(objective, &pwl, smoothing, eps, x);
            CurvePoint { x, loss: objective.value(x), smoothed, smoothed_grad }
        })
        .collect())
}
