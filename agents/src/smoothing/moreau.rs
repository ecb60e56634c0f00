//! Moreau envelope M_λ[L](x) = min_y { L(y) + (x − y)²/(2λ) } and the proximal map
//! prox_λ(x) = argmin_y { … }, in closed form for |·| and numerically for a 1-D function.
//!
//! For convex L the envelope is differentiable with ∇M_λ(x) = (x − prox_λ(x))/λ, that
//! gradient is (1/λ)-Lipschitz, and M_λ has the same minimizers and minimum as L.

use super::ops::huber;

/// prox_λ of |·|: soft thresholding sign(x)·max(|x| − λ, 0).
pub fn prox_abs(x: f64, lambda: f64) -> f64 {
    x.signum() * (x.abs() - lambda).max(0.0)
}

/// M_λ[|·|](x) = H_λ(x)/λ: x²/(2λ) for |x| ≤ λ, |x| − λ/2 otherwise (the Huber function).
pub fn moreau_abs(x: f64, lambda: f64) -> f64 {
    huber(x, lambda) / lambda
}

/// A point of the envelope: its value, the prox and the envelope's gradient (x − prox)/λ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MoreauPoint {
    pub value: f64,
    pub prox: f64,
    pub grad: f64,
}

/// Numerical Moreau envelope of a 1-D function `f` at `x`, searching y in [x − r, x + r].
///
/// A scan of 257 points finds the best y; golden-section search then refines it within the
/// neighbouring cells. For convex f the objective is strongly convex, so the result is the
/// exact prox whenever it lies in the search interval (for an L-Lipschitz convex f,
/// |prox_λ(x) − x| ≤ λ·L, so r = λ·L suffices). For non-convex f it is the best local
/// minimum near the best scanned point.
pub fn moreau_envelope(f: impl Fn(f64) -> f64, x: f64, lambda: f64, radius: f64) -> MoreauPoint {
    let obj = |y: f64| f(y) + (x - y) * (x - y) / (2.0 * lambda);
    const SCAN: usize = 256;
    let h = 2.0 * radius / SCAN as f64;
    let (mut best_i, mut best) = (0, f64::INFINITY);
    for i in 0..=SCAN {
        let v = obj(x - radius + i as f64 * h);
        if v < best {
            best = v;
            best_i = i;
        }
    }
    let (mut a, mut b) = (x - radius + best_i.saturating_sub(1) as f64 * h, x - radius + (best_i + 1).min(SCAN) as f64 * h);
    // Golden-section search on [a, b].
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - r * (b - a), a + r * (b - a));
    let (mut fc, mut fd) = (obj(c), obj(d));
    while b - a > 1e-13 * (1.0 + x.abs()) {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = obj(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = obj(d);
        }
    }
    let mut prox = 0.5 * (a + b);
    let scanned = x - radius + best_i as f64 * h;
    if obj(scanned) < obj(prox) {
        prox = scanned;
    }
    MoreauPoint { value: obj(prox), prox, grad: (x - prox) / lambda }
}
