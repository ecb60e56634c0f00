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
    /// Each episode's success as the env judges it (`Env::success`: a gridworld's goal
    /// reached); `None` for envs without a notion of success.
    pub success: Vec<Option<bool>>,
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

    /// Fraction of successful episodes; `None` when the env has no notion of success.
    pub fn success_rate(&self) -> Option<f64> {
        let verdicts: Option<Vec<bool>> = self.success.iter().copied().collect();
        let verdicts = verdicts.filter(|v| !v.is_empty())?;
        Some(verdicts.iter().filter(|&&s| s).count() as f64 / verdicts.len() as f64)
    }
}

/// A deterministic evaluation, as every learner reports it.
#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    /// Returns, lengths and goals per episode.
    pub stats: EvalStats,
    /// Mean policy entropy over the visited states, where the policy has one.
    pub policy_entropy: Option<f64>,
}

impl EvalReport {
    pub fn mean_return(&self) -> f64 {
        self.stats.mean_return()
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
                stats.success.push(env.success());
                break;
            }
        }
        stats.returns.push(ret);
        stats.lengths.push(len);
    }
    Ok(stats)
}

/// Logs an evaluation the way every agent does: `eval/mean_return`, and the spread of the
/// episodes' returns as the `eval/returns` histogram (a few failing episodes show there).
pub fn log_eval(logger: &mut dyn crate::Logger, step: u64, stats: &EvalStats) -> anyhow::Result<()> {
    logger.scalar("eval/mean_return", step, stats.mean_return())?;
    logger.histogram("eval/returns", step, &stats.returns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_comes_from_the_env_and_is_absent_without_one() {
        // CliffWalking's safe path: up, right along row 2, down into the goal (UP 0, RIGHT 1,
        // DOWN 2). Its last reward is -1, so only the env can tell this episode succeeded.
        let mut env = tame_envs::make("cliffwalking").unwrap();
        let mut t = 0;
        let stats = evaluate(env.as_mut(), 2, &mut |_| {
            let a = match t % 13 {
                0 => 0,
                12 => 2,
                _ => 1,
            };
            t += 1;
            PolicyAction::Discrete(a)
        })
        .unwrap();
        assert_eq!(stats.returns, vec![-13.0, -13.0]);
        assert_eq!(stats.success_rate(), Some(1.0));

        let mut env = tame_envs::make("pendulum").unwrap();
        let stats = evaluate(env.as_mut(), 1, &mut |_| PolicyAction::Continuous(vec![0.0])).unwrap();
        assert_eq!(stats.success_rate(), None);
    }
}
