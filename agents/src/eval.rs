//! Deterministic evaluation of a policy on its own environment with fixed evaluation seeds.
//!
//! The policy is any closure from observation to action, so every agent (SAC's greedy actor,
//! an ES parameter vector) is scored the same way on the same episodes.

use tame_envs::{Action, Env, EnvError};

/// Episode `i` of every evaluation is reset with seed `EVAL_SEED_BASE + i`: all runs, seeds and
/// temperatures are compared on the same start states, none of which training resets use
/// (training seeds its env with the run seed).
pub const EVAL_SEED_BASE: u64 = 1_000_000;

/// An action chosen by a policy, owned so that a closure can return it.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyAction {
    Discrete(usize),
    Continuous(Vec<f64>),
}

impl PolicyAction {
    pub fn as_action(&self) -> Action<'_> {
        match self {
            PolicyAction::Discrete(a) => Action::Discrete(*a),
            PolicyAction::Continuous(a) => Action::Continuous(a),
        }
    }
}

/// What each evaluation episode gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalStats {
    pub returns: Vec<f64>,
    pub lengths: Vec<u64>,
    /// Whether each episode ended by termination (not time limit) with a positive last
    /// reward: reaching the goal in FrozenLake-style gridworlds.
    pub reached_goal: Vec<bool>,
}

impl EvalStats {
    pub fn mean_return(&self) -> f64 {
        mean(&self.returns)
    }

    /// Population standard deviation of the returns (0 for fewer than two episodes).
    pub fn std_return(&self) -> f64 {
        let m = self.mean_return();
        let n = self.returns.len();
        if n < 2 {
            return 0.0;
        }
        (self.returns.iter().map(|r| (r - m).powi(2)).sum::<f64>() / n as f64).sqrt()
    }

    pub fn goal_rate(&self) -> f64 {
        let hits = self.reached_goal.iter().filter(|&&g| g).count();
        hits as f64 / self.reached_goal.len().max(1) as f64
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Runs `episodes` episodes of `policy` on `env` (which must carry its own time limit),
/// episode `i` reset with seed [`EVAL_SEED_BASE`]` + i`.
pub fn evaluate(
    env: &mut dyn Env,
    episodes: usize,
    policy: &mut dyn FnMut(&[f32]) -> PolicyAction,
) -> Result<EvalStats, EnvError> {
    let mut obs = vec![0.0f32; env.observation_space().dim()];
    let mut stats = EvalStats::default();
    for i in 0..episodes {
        env.reset(Some(EVAL_SEED_BASE + i as u64), &mut obs);
        let (mut ret, mut len) = (0.0, 0u64);
        loop {
            let action = policy(&obs);
            let step = env.step(action.as_action(), &mut obs)?;
            ret += step.reward;
            len += 1;
            if step.terminated || step.truncated {
                stats.reached_goal.push(step.terminated && step.reward > 0.0);
                break;
            }
        }
        stats.returns.push(ret);
        stats.lengths.push(len);
    }
    Ok(stats)
}
