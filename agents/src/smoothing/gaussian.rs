//! Gaussian smoothing S_ε[L](x) = E_{ξ~N(0,I)}[L(x + εξ)] by Monte Carlo, with both gradient
//! estimators and their standard errors, plus the closed form for L = |x| used to check them.

use rand::Rng;
use rand_distr::StandardNormal;

use super::ops::{normal_cdf, normal_pdf};
use super::SmoothingError;

/// A Monte Carlo mean with its standard error (sample std / √units, where a unit is one draw,
/// or one antithetic pair).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub mean: f64,
    pub std_err: f64,
}

impl Estimate {
    /// The normal-approximation confidence interval mean ± z·std_err (z = 1.96 for 95%).
    pub fn ci(&self, z: f64) -> (f64, f64) {
        (self.mean - z * self.std_err, self.mean + z * self.std_err)
    }
}

/// Gaussian smoothing of width ε estimated from `samples` evaluations.
///
/// - value: S_ε[L](x) ≈ (1/n) Σ_i L(x + εξ_i).
/// - pathwise (reparameterized) gradient: ∇S_ε[L](x) = E[∇L(x + εξ)], needs ∇L a.e.
/// - score-function gradient (Nesterov & Spokoiny 2017; the ES estimator of Salimans et al.
///   2017): ∇S_ε[L](x) = (1/ε)·E[L(x + εξ)·ξ], needs only values of L.
/// - antithetic: each ξ is paired with −ξ; the unit becomes the pair mean, e.g.
///   (L(x + εξ) − L(x − εξ))·ξ/(2ε) for the score function, which cancels the L(x)·ξ/ε term
///   whose variance grows as 1/ε². `samples` counts evaluations either way.
#[derive(Clone, Copy, Debug)]
pub struct GaussianSmoothing {
    eps: f64,
    samples: usize,
    antithetic: bool,
}

impl GaussianSmoothing {
    pub fn new(eps: f64, samples: usize, antithetic: bool) -> Result<Self, SmoothingError> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(SmoothingError::BadParameter(format!("eps = {}; it must be a positive finite width", crate::numfmt::compact(eps))));
        }
        let min = if antithetic { 4 } else { 2 };
        if samples < min || (antithetic && samples % 2 == 1) {
            return Err(SmoothingError::BadParameter(format!(
                "samples = {samples}; need at least {min}{}",
                if antithetic { " and an even count (pairs ξ, −ξ)" } else { "" }
            )));
        }
        Ok(Self { eps, samples, antithetic })
    }

    /// S_ε[L](x).
    pub fn value<R: Rng>(&self, f: impl Fn(&[f64]) -> f64, x: &[f64], rng: &mut R) -> Estimate {
        let mut out = [Welford::default()];
        self.run(x, rng, |y_plus, y_minus, _xi, acc: &mut [Welford; 1]| {
            let unit = match y_minus {
                Some(ym) => 0.5 * (f(y_plus) + f(ym)),
                None => f(y_plus),
            };
            acc[0].push(unit);
        }, &mut out);
        out[0].estimate()
    }

    /// Pathwise estimate of ∇S_ε[L](x) from `grad(y, out)` writing ∇L(y).
    pub fn grad_pathwise<R: Rng>(
        &self,
        grad: impl Fn(&[f64], &mut [f64]),
        x: &[f64],
        rng: &mut R,
    ) -> Vec<Estimate> {
        let d = x.len();
        let mut acc = vec![Welford::default(); d];
        let (mut g1, mut g2) = (vec![0.0; d], vec![0.0; d]);
        self.run(x, rng, |y_plus, y_minus, _xi, acc: &mut Vec<Welford>| {
            grad(y_plus, &mut g1);
            if let Some(ym) = y_minus {
                grad(ym, &mut g2);
                for i in 0..d {
                    acc[i].push(0.5 * (g1[i] + g2[i]));
                }
            } else {
                for i in 0..d {
                    acc[i].push(g1[i]);
                }
            }
        }, &mut acc);
        acc.iter().map(Welford::estimate).collect()
    }

    /// Score-function estimate of ∇S_ε[L](x) = (1/ε)·E[L(x + εξ)·ξ] from values of L only.
    pub fn grad_score<R: Rng>(&self, f: impl Fn(&[f64]) -> f64, x: &[f64], rng: &mut R) -> Vec<Estimate> {
        let d = x.len();
        let eps = self.eps;
        let mut acc = vec![Welford::default(); d];
        self.run(x, rng, |y_plus, y_minus, xi, acc: &mut Vec<Welford>| {
            // Antithetic: (L(x+εξ) − L(x−εξ))·ξ/(2ε); plain: L(x+εξ)·ξ/ε.
            let w = match y_minus {
                Some(ym) => (f(y_plus) - f(ym)) / (2.0 * eps),
                None => f(y_plus) / eps,
            };
            for i in 0..d {
                acc[i].push(w * xi[i]);
            }
        }, &mut acc);
        acc.iter().map(Welford::estimate).collect()
    }

    /// Draws the units in a fixed order and hands each (x + εξ, x − εξ if antithetic, ξ) on.
    fn run<R: Rng, A>(
        &self,
        x: &[f64],
        rng: &mut R,
        mut unit: impl FnMut(&[f64], Option<&[f64]>, &[f64], &mut A),
        acc: &mut A,
    ) {
        let d = x.len();
        let (mut xi, mut yp, mut ym) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        let units = if self.antithetic { self.samples / 2 } else { self.samples };
        for _ in 0..units {
            for i in 0..d {
                xi[i] = rng.sample(StandardNormal);
                yp[i] = x[i] + self.eps * xi[i];
                ym[i] = x[i] - self.eps * xi[i];
            }
            unit(&yp, self.antithetic.then_some(&ym[..]), &xi, acc);
        }
    }
}

/// Closed form of S_ε[|·|](x) = ε·√(2/π)·exp(−x²/(2ε²)) + x·(1 − 2Φ(−x/ε)) in one dimension
/// (the mean of a folded normal).
pub fn smoothed_abs(x: f64, eps: f64) -> f64 {
    2.0 * eps * normal_pdf(x / eps) + x * (1.0 - 2.0 * normal_cdf(-x / eps))
}

/// Its derivative d/dx S_ε[|·|](x) = 1 − 2Φ(−x/ε) = erf(x/(ε√2)).
pub fn smoothed_abs_grad(x: f64, eps: f64) -> f64 {
    libm::erf(x / (eps * std::f64::consts::SQRT_2))
}

/// E‖ξ‖ for ξ ~ N(0, I_d): √2·Γ((d+1)/2)/Γ(d/2) (√(2/π) in one dimension), the constant in
/// the seed's bound |S_ε[L] − L| ≤ Lip(L)·ε·E‖ξ‖.
pub fn expected_norm(d: usize) -> f64 {
    let d = d as f64;
    std::f64::consts::SQRT_2 * (libm::lgamma((d + 1.0) / 2.0) - libm::lgamma(d / 2.0)).exp()
}

/// Running mean and variance (Welford), so that one pass gives the standard error.
#[derive(Clone, Copy, Debug, Default)]
struct Welford {
    n: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn estimate(&self) -> Estimate {
        let var = if self.n > 1 { self.m2 / (self.n - 1) as f64 } else { f64::INFINITY };
        Estimate { mean: self.mean, std_err: (var / self.n as f64).sqrt() }
    }
}
