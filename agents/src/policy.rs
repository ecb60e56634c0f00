//! One interface to a trained policy, whatever trained it: the deterministic evaluation
//! action and, for discrete actions, the whole distribution π(·|s). Rendering, policy maps
//! and the training loops' evaluation hook use it instead of matching on the agent.

use crate::es::EsPolicy;
use crate::es_policy::{forward, scatter_lane, tanh_lanes, Activations, LANES};
use crate::es_rollout::{Head, ObsEncoding};
use crate::eval::PolicyAction;
use crate::exact::argmax;
use crate::sac::SacAgent;

/// A policy that can be played and inspected.
pub trait Policy {
    /// The deterministic evaluation action at `obs` (what `tame eval` scores).
    fn act(&mut self, obs: &[f32]) -> PolicyAction;
    /// π(a|s) for every action `a` of a discrete action space, `None` for continuous ones.
    /// A hard (τ = 0) policy gives the one-hot of its argmax.
    fn action_probs(&mut self, obs: &[f32]) -> Option<Vec<f64>>;
}

/// A borrowed policy plays like the policy itself (what [`crate::run::Learner::policy`] lends).
impl<P: Policy + ?Sized> Policy for &mut P {
    fn act(&mut self, obs: &[f32]) -> PolicyAction {
        (**self).act(obs)
    }
    fn action_probs(&mut self, obs: &[f32]) -> Option<Vec<f64>> {
        (**self).action_probs(obs)
    }
}

/// SAC: the actor's greedy action; π(·|s) is the categorical actor (the argmax of the min
/// twin Q at τ = 0).
impl Policy for SacAgent {
    fn act(&mut self, obs: &[f32]) -> PolicyAction {
        self.act_deterministic(obs).0
    }
    fn action_probs(&mut self, obs: &[f32]) -> Option<Vec<f64>> {
        self.discrete_probs(obs)
    }
}

/// An ES parameter vector played one observation at a time: the argmax logit or the tanh
/// mean, and π(·|s) = softmax(logits/τ) at the run's τ (one-hot at τ = 0).
pub struct EsActor {
    policy: EsPolicy,
    tau: f64,
    /// θ in lane 0 of the interleaved layout the batched forward pass reads.
    params: Vec<f32>,
    x: Vec<f32>,
    out: Vec<f32>,
    act: Activations,
}

impl EsActor {
    pub fn new(policy: EsPolicy, tau: f64) -> Self {
        let (spec, theta, _) = policy.parts();
        let mut params = vec![0.0; spec.shape.num_params() * LANES];
        scatter_lane(theta, &mut params, 0);
        let x = vec![0.0; spec.shape.inputs() * LANES];
        let out = vec![0.0; spec.shape.outputs() * LANES];
        let act = Activations::new(&spec.shape);
        EsActor { policy, tau, params, x, out, act }
    }

    /// The network's outputs at `obs` (logits, or the pre-tanh mean).
    fn outputs(&mut self, obs: &[f32]) -> Vec<f64> {
        let (spec, _, norm) = self.policy.parts();
        match spec.obs {
            ObsEncoding::Box(dim) => {
                for i in 0..dim {
                    self.x[i * LANES] = ((obs[i] - norm.mean[i]) * norm.inv_std[i]).clamp(-5.0, 5.0);
                }
            }
            ObsEncoding::OneHot(n) => {
                for i in 0..n {
                    self.x[i * LANES] = if i == obs[0] as usize { 1.0 } else { 0.0 };
                }
            }
        }
        forward(&spec.shape, &self.params, &self.x, &mut self.act, &mut self.out);
        (0..spec.shape.outputs()).map(|j| self.out[j * LANES] as f64).collect()
    }
}

impl Policy for EsActor {
    fn act(&mut self, obs: &[f32]) -> PolicyAction {
        let out = self.outputs(obs);
        match &self.policy.parts().0.head {
            Head::Discrete(_) => PolicyAction::Discrete(argmax(&out)),
            Head::Continuous { center, half_width } => {
                // The same squashing tanh as the batched evaluation, so episodes match it.
                self.out.as_chunks_mut::<LANES>().0.iter_mut().for_each(tanh_lanes);
                let mean = |d: usize| self.out[d * LANES] as f64;
                PolicyAction::Continuous((0..center.len()).map(|d| center[d] + half_width[d] * mean(d).clamp(-1.0, 1.0)).collect())
            }
        }
    }
    fn action_probs(&mut self, obs: &[f32]) -> Option<Vec<f64>> {
        if !matches!(self.policy.parts().0.head, Head::Discrete(_)) {
            return None;
        }
        let logits = self.outputs(obs);
        Some(softmax(&logits, self.tau))
    }
}

/// softmax(z/τ) (`crate::exact::softmax`, max-shifted); the one-hot of the first argmax at τ = 0.
pub fn softmax(z: &[f64], tau: f64) -> Vec<f64> {
    if tau > 0.0 {
        return crate::exact::softmax(z, tau);
    }
    let best = argmax(z);
    (0..z.len()).map(|a| if a == best { 1.0 } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sharpens_into_the_argmax_as_tau_goes_to_zero() {
        let z = [1.0, 3.0, 2.0, 3.0];
        assert_eq!(softmax(&z, 0.0), vec![0.0, 1.0, 0.0, 0.0], "ties go to the first");
        let p = softmax(&z, 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[1] / p[2] - 1f64.exp()).abs() < 1e-12, "ratio exp(Δz/τ)");
        let sharp = softmax(&z, 1e-3);
        assert!((sharp[1] - 0.5).abs() < 1e-12 && sharp[0] < 1e-300);
        let flat = softmax(&z, 1e6);
        assert!(flat.iter().all(|q| (q - 0.25).abs() < 1e-5));
    }
}
