//! Deterministic evaluation of a policy on its own environment with fixed evaluation seeds.
//!
//! The policy is any closure from observation to action, so every agent (SAC's greedy actor,
//! an ES parameter vector) is scored the same way on the same episodes.

use tame_envs::{Action, Env, EnvError};

/// Episode `i` of every evaluation is reset with seed `EVAL_SEED_BASE + i`: all runs, seeds and
/// temperatures are compared on the same start states, none of which training resets use
/// (training seeds its env with the run seed).
pub const EVAL_SEED_BASE: u64 = 1_000_000;

/// Steps after which an evaluation episode is cut on an env without a time limit (plain
/// CliffWalking, a map without `limit=`): a greedy policy that never reaches a terminal state
/// would otherwise make the evaluation run forever. Envs with a limit are cut at their limit.
pub const DEFAULT_EVAL_MAX_EPISODE_STEPS: u64 = 10_000;

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
    /// Whether each episode was cut (by the env's time limit or the evaluation's bound)
    /// rather than reaching a terminal state, as Gymnasium's `truncated`.
    pub truncated: Vec<bool>,
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

    /// Episodes cut before a terminal state (time limit or evaluation bound).
    pub fn truncated_count(&self) -> usize {
        self.truncated.iter().filter(|&&t| t).count()
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

/// Runs `episodes` episodes of `policy` on `env`, episode `i` reset with seed
/// [`EVAL_SEED_BASE`]` + i`, each cut after `max_steps` steps if neither the env's time limit
/// nor a terminal state ended it first (a cut episode counts as truncated).
pub fn evaluate(
    env: &mut dyn Env,
    episodes: usize,
    max_steps: u64,
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
            if step.terminated || step.truncated || len >= max_steps {
                stats.success.push(env.success());
                stats.truncated.push(!step.terminated);
                break;
            }
        }
        stats.returns.push(ret);
        stats.lengths.push(len);
    }
    Ok(stats)
}

/// Logs an evaluation the way every agent does: `eval/mean_return`, the spread of the
/// episodes' returns as the `eval/returns` histogram (a few failing episodes show there), and
/// `eval/truncated`, the episodes cut before a terminal state.
pub fn log_eval(logger: &mut dyn crate::Logger, step: u64, stats: &EvalStats) -> anyhow::Result<()> {
    logger.scalar("eval/mean_return", step, stats.mean_return())?;
    logger.scalar("eval/truncated", step, stats.truncated_count() as f64)?;
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
        let stats = evaluate(env.as_mut(), 2, DEFAULT_EVAL_MAX_EPISODE_STEPS, &mut |_| {
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
        assert_eq!(stats.truncated_count(), 0);

        let mut env = tame_envs::make("pendulum").unwrap();
        let stats = evaluate(env.as_mut(), 1, DEFAULT_EVAL_MAX_EPISODE_STEPS, &mut |_| PolicyAction::Continuous(vec![0.0])).unwrap();
        assert_eq!(stats.success_rate(), None);
        // Pendulum's 200-step time limit cuts it: truncated, as Gymnasium says.
        assert_eq!((stats.lengths.clone(), stats.truncated_count()), (vec![200], 1));
    }

    #[test]
    fn a_policy_that_never_reaches_the_goal_is_cut_at_the_bound_and_counted() {
        // Plain CliffWalking has no time limit; always pushing LEFT (3) into the start
        // state's wall never terminates, so only the bound ends these episodes.
        let mut env = tame_envs::make("cliffwalking").unwrap();
        assert_eq!(tame_envs::time_limit("cliffwalking").unwrap(), None);
        let stats = evaluate(env.as_mut(), 3, 500, &mut |_| PolicyAction::Discrete(3)).unwrap();
        assert_eq!(stats.lengths, vec![500, 500, 500]);
        assert_eq!(stats.returns, vec![-500.0; 3]);
        assert_eq!(stats.truncated_count(), 3);
        assert_eq!(stats.success_rate(), Some(0.0));
        // A bound above the env's own limit changes nothing: the limit cuts first.
        let mut env = tame_envs::make("frozenlake-noslip").unwrap();
        let stats = evaluate(env.as_mut(), 1, DEFAULT_EVAL_MAX_EPISODE_STEPS, &mut |_| PolicyAction::Discrete(0)).unwrap();
        assert_eq!((stats.lengths.clone(), stats.truncated_count()), (vec![100], 1));
    }
}
