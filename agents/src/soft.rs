//! The soft (entropy-regularized) objective that the exact solver and SAC share: what the bonus
//! τ·(H(π(·|s)) − c) measures. Soft values are defined by it: the exact solver's
//! `V(s) = τ·log Σ_a exp(Q(s,a)/τ) − τ·c` and SAC's target `E_π[min Q − τ·(log π + c)]`.

use serde::{Deserialize, Serialize};

/// What the soft bonus measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regularizer {
    /// Maximum entropy, the papers' objective: reward + τ·H(π(·|s)). The bonus is positive, so
    /// in episodic tasks staying alive pays τ·H per step (on FrozenLake at τ = 0.1 the
    /// soft-optimal policy never enters the goal: wandering is worth more than its reward).
    Entropy,
    /// Relative entropy to the uniform policy: reward − τ·KL(π(·|s) ‖ uniform), i.e. the
    /// entropy bonus minus its maximum τ·log|A| (log-volume of [-1, 1]^d when continuous).
    /// Same optimal policy in continuing tasks; in episodic ones the bonus is ≤ 0 and no
    /// longer rewards avoiding termination. Geist et al. 2019 treat both regularizers.
    KlUniform,
}

impl Regularizer {
    /// c in every τ·(log π + c): 0 for entropy, `log_volume` (log|A|, or the log-volume of the
    /// action box) for KL to uniform.
    pub fn log_reference(self, log_volume: f64) -> f64 {
        match self {
            Regularizer::Entropy => 0.0,
            Regularizer::KlUniform => log_volume,
        }
    }
}
