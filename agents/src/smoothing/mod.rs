//! The smoothing library of the seed document: operators that turn a non-smooth objective L
//! into a smooth S_ε[L] with |S_ε[L] − L| = O(ε), each with its formula, and the certificate
//! K_smooth that measures those claims against their bounds.
//!
//! - [`ops`]: Huber, softplus, GELU, LSE_τ, softmax_τ, label smoothing, entropy regularization;
//! - [`gaussian`]: Gaussian smoothing by Monte Carlo with pathwise and score-function gradients;
//! - [`moreau`]: Moreau envelope and prox, closed form for |·| and numerical in 1-D;
//! - [`certificate`]: K_smooth for built-in objectives and for gridworlds (ε = τ).

pub mod certificate;
pub mod gaussian;
pub mod moreau;
pub mod ops;

pub use certificate::{certify, certify_gridworld, smoothed_curve, Certificate, CurvePoint, Entry, Objective, Smoothing};
pub use gaussian::{Estimate, GaussianSmoothing};

/// Bad smoothing requests; each names the bad value and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum SmoothingError {
    #[error("{0}")]
    BadParameter(String),
    #[error("unknown {what} '{name}'; accepted: {accepted}")]
    Unknown { what: &'static str, name: String, accepted: String },
    #[error("smoothing '{smoothing}' does not apply to objective '{objective}'; accepted for {objective}: {accepted}")]
    Unsupported { objective: &'static str, smoothing: &'static str, accepted: String },
}
