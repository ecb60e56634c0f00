//! One interface to a trained policy, whatever trained it: the deterministic evaluation
//! action and, for discrete actions, the whole distribution π(·|s). Rendering, policy maps
//! and the training loops' evaluation hook use it instead of matching on the agent.

//!
//! Each learner implements it beside its own type (`SacAgent` in `sac`, `EsActor` in `es`).

use crate::eval::PolicyAction;

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
