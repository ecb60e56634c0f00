//! Per-env score normalization, so that returns of different envs can be aggregated:
//! `score = (return − random) / (reference − random)`, 0 for a uniform random policy and 1
//! for the reference.
//!
//! - **Gridworlds** (every env with a transition table): `random` and `reference` are exact
//!   undiscounted expected returns at the start state *within the env's time limit*, the
//!   quantity an evaluation episode measures, by finite-horizon dynamic programming
//!   ([`tame_agents::exact::horizon_start_values`]). `reference` is the finite-horizon optimum
//!   (the best expected return any, possibly time-dependent, policy reaches within T steps;
//!   a stationary greedy policy of the discounted V* may reach less), `random` the uniform
//!   policy's. Without a time limit (CliffWalking, a map with `:limit=none`) T is the
//!   evaluation's default bound, [`DEFAULT_EVAL_MAX_EPISODE_STEPS`], where its episodes are cut.
//! - **Classic control**: documented constants, [`CLASSIC`], each with its source.
//! - Anything else must be given in the sweep file, `[normalization."ENV"]` with `random` and
//!   `reference`; otherwise the sweep is refused before any run starts.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tame_agents::eval::{evaluate, PolicyAction, DEFAULT_EVAL_MAX_EPISODE_STEPS};
use tame_envs::Space;

/// How one env's returns are mapped to scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Return of the uniform random policy (score 0).
    pub random: f64,
    /// Return of the reference: the optimum on gridworlds, a documented agent's elsewhere (score 1).
    pub reference: f64,
    /// Where the two figures come from.
    pub source: String,
}

impl Normalization {
    pub fn score(&self, ret: f64) -> f64 {
        (ret - self.random) / (self.reference - self.random)
    }
}

/// A normalization given in a sweep file: `[normalization."ENV"] random = R, reference = S`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenNormalization {
    pub random: f64,
    pub reference: f64,
}

/// Classic control: `(name, Gymnasium id, random, its source, reference, its source)`.
///
/// Random returns are uniform random actions (Box: uniform in [low, high]) measured by tame
/// itself over 10,000 episodes with `tame env random-return ENV --episodes 10000` (seed 0; standard
/// errors: CartPole 0.12, Pendulum 2.9, MountainCarContinuous 0.043, Acrobot 0.11; MountainCar-v0's
/// uniform walker never reaches the flag within 200 steps, so it is −200 exactly). References are
/// rl-baselines3-zoo's trained agents (benchmark.md, "Performance of trained agents"):
/// CartPole-v1 500.000 (a2c, ppo, trpo, qrdqn, all at the 500-step limit, so also the
/// optimum), Pendulum-v1 −156.995 (sac, 20k steps), MountainCarContinuous-v0 94.679 (sac,
/// 50k steps); for the two discrete-action tasks the value-based dqn, the nearest kin of
/// discrete SAC: Acrobot-v1 −76.639 (100k steps) and MountainCar-v0 −100.849 (120k steps).
pub const CLASSIC: [(&str, &str, f64, &str, f64, &str); 5] = [
    ("cartpole", "CartPole-v1", 22.27, "tame env random-return cartpole --episodes 10000: 22.27 ± 0.12", 500.0, "rl-baselines3-zoo benchmark.md (a2c/ppo/trpo/qrdqn: 500.000)"),
    ("pendulum", "Pendulum-v1", -1227.43, "tame env random-return pendulum --episodes 10000: -1227.43 ± 2.88", -156.995, "rl-baselines3-zoo benchmark.md (sac: -156.995)"),
    ("mountaincar", "MountainCarContinuous-v0", -33.133, "tame env random-return mountaincar --episodes 10000: -33.133 ± 0.043", 94.679, "rl-baselines3-zoo benchmark.md (sac: 94.679)"),
    ("acrobot", "Acrobot-v1", -498.913, "tame env random-return acrobot --episodes 10000: -498.913 ± 0.107", -76.639, "rl-baselines3-zoo benchmark.md (dqn: -76.639)"),
    ("mountaincar-discrete", "MountainCar-v0", -200.0, "tame env random-return mountaincar-discrete --episodes 10000: -200 ± 0 (never at the flag)", -100.849, "rl-baselines3-zoo benchmark.md (dqn: -100.849)"),
];

/// The normalization of `env`: given in the sweep file, else exact (gridworlds), else
/// documented (classic control); an error naming the env and how to supply one otherwise.
pub fn resolve(env: &str, given: &BTreeMap<String, GivenNormalization>) -> anyhow::Result<Normalization> {
    if let Some(g) = given.get(env) {
        if !(g.random.is_finite() && g.reference.is_finite()) || g.random == g.reference {
            bail!(
                "[normalization.\"{env}\"] random = {}, reference = {}: need two different finite returns",
                g.random,
                g.reference
            );
        }
        return Ok(Normalization { random: g.random, reference: g.reference, source: "sweep file".into() });
    }
    if let Ok(table) = tame_envs::transition_table(env) {
        let limit = tame_envs::time_limit(env)?;
        // The horizon an evaluation episode has: the env's limit, else the evaluation's bound.
        let horizon = limit.unwrap_or(DEFAULT_EVAL_MAX_EPISODE_STEPS as u32);
        let h = tame_agents::exact::horizon_start_values(&table, Some(horizon))
            .with_context(|| format!("exact finite-horizon values of {env}"))?;
        if h.optimal == h.uniform {
            bail!(
                "env '{env}': the optimal and the uniform policy both return {} within its time limit, so \
                 scores cannot be normalized; give [normalization.\"{env}\"] random = ..., reference = ... in the sweep file",
                h.optimal
            );
        }
        let horizon = match limit {
            Some(t) => format!("time limit {t}"),
            None => format!("evaluation bound {horizon} (the env has no time limit)"),
        };
        return Ok(Normalization {
            random: h.uniform,
            reference: h.optimal,
            source: format!(
                "exact: undiscounted expected returns within the {horizon} of the finite-horizon optimal \
                 and the uniform policy (finite-horizon dynamic programming on the transition table)"
            ),
        });
    }
    if let Some(c) = CLASSIC.iter().find(|c| c.0 == env || c.1 == env) {
        return Ok(Normalization {
            random: c.2,
            reference: c.4,
            source: format!("random: uniform actions, `{}` (standard error); reference: {}", c.3, c.5),
        });
    }
    bail!(
        "env '{env}' has no known score normalization (known: every gridworld, exactly; {}). Give one in \
         the sweep file:\n  [normalization.\"{env}\"]\n  random = R      # return of a uniform random policy \
         (e.g. from `tame env random-return {env}`)\n  reference = S   # return of a reference agent",
        CLASSIC.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
    )
}

/// Mean return of uniform random actions over `episodes` evaluation episodes (the
/// evaluation's seeds), with its standard error; draws from `ChaCha8Rng::seed_from_u64(seed)`.
pub fn random_policy_return(env: &str, episodes: usize, seed: u64) -> anyhow::Result<(f64, f64)> {
    if episodes < 2 {
        bail!("--episodes {episodes}: need at least 2 for a standard error");
    }
    let mut e = tame_envs::make(env)?;
    if tame_envs::time_limit(env)?.is_none() && tame_envs::transition_table(env).is_err() {
        bail!("env '{env}' has no time limit; add one (e.g. {env}:limit=1000)");
    }
    let space = e.action_space();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A gridworld without a limit (a map whose goal is walled off) is cut as evaluations are.
    let bound = tame_envs::time_limit(env)?.map_or(DEFAULT_EVAL_MAX_EPISODE_STEPS, u64::from);
    let stats = evaluate(e.as_mut(), episodes, bound, &mut |_| match &space {
        Space::Discrete(n) => PolicyAction::Discrete(rng.random_range(0..*n)),
        Space::Box { low, high } => PolicyAction::Continuous(
            low.iter().zip(high).map(|(&l, &h)| rng.random_range(f64::from(l)..=f64::from(h))).collect(),
        ),
    })
    .with_context(|| format!("random rollouts on {env}"))?;
    let n = stats.returns.len() as f64;
    let mean = stats.mean_return();
    let var = stats.returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok((mean, (var / n).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gridworlds_are_exact_and_classic_envs_documented() {
        let none = BTreeMap::new();
        let lake = resolve("frozenlake-noslip", &none).unwrap();
        // The goal is 6 steps away and pays 1: the optimum within 100 steps is 1.
        assert_eq!(lake.reference, 1.0);
        assert!(lake.random > 0.0 && lake.random < 0.1, "{lake:?}");
        assert!((lake.score(1.0) - 1.0).abs() < 1e-12 && lake.score(lake.random).abs() < 1e-12);
        let cliff = resolve("cliffwalking", &none).unwrap();
        assert!((cliff.reference + 13.0).abs() < 1e-9, "{cliff:?}");
        // No time limit: the horizon is the evaluation's bound, where its episodes are cut.
        assert!(cliff.source.contains("evaluation bound 10000"), "{cliff:?}");
        // Uniform walkers that have not reached the goal after 10,000 steps are cut: -51,672.8
        // against -65,375.1 for the unbounded limit.
        assert!((cliff.random + 51_672.787_738_716).abs() < 1e-6, "{cliff:?}");
        // Random starts: the table's initial-state distribution weighs each start. Taxi's
        // optimum is the delivery's 20 less −1 per other step; rain costs it 3.98.
        // Uniform moves are uniform on the slippery cliff too, so its random figure is the
        // dry cliff's.
        for (env, random, reference) in [
            ("taxi", -771.090_999_449_666_8, 7.93),
            ("taxi:rainy=true", -772.516_508_614_229_5, 3.954_574_516_550_825),
            ("blackjack", -0.394_174_557_022_041_6, -0.043_113_105_413_477_34),
            ("cliffwalking-slippery", -51_672.787_738_73, -64.709_175_909_962_4),
        ] {
            let n = resolve(env, &none).unwrap();
            assert!(n.source.starts_with("exact"), "{env}: {n:?}");
            assert!((n.random - random).abs() < 1e-6 && (n.reference - reference).abs() < 1e-9, "{env}: {n:?}");
        }
        let cart = resolve("CartPole-v1", &none).unwrap();
        assert_eq!(cart.reference, 500.0);
        assert!(cart.source.contains("rl-baselines3-zoo"));
    }

    #[test]
    fn unknown_envs_are_refused_with_how_to_supply_one() {
        let err = resolve("pendulum:discrete=5", &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("'pendulum:discrete=5'") && err.contains("[normalization.\"pendulum:discrete=5\"]"), "{err}");
        let given = BTreeMap::from([("pendulum:discrete=5".to_string(), GivenNormalization { random: -1200.0, reference: -150.0 })]);
        let n = resolve("pendulum:discrete=5", &given).unwrap();
        assert_eq!((n.random, n.reference, n.source.as_str()), (-1200.0, -150.0, "sweep file"));
        let same = BTreeMap::from([("x".to_string(), GivenNormalization { random: 1.0, reference: 1.0 })]);
        assert!(resolve("x", &same).unwrap_err().to_string().contains("two different"));
    }

    #[test]
    fn documented_random_returns_agree_with_a_fresh_measurement() {
        // Another seed and 2,000 episodes: within 4 standard errors of the documented figure.
        for (env, _, random, ..) in CLASSIC {
            let (mean, se) = random_policy_return(env, 2000, 99).unwrap();
            assert!((mean - random).abs() < 4.0 * se + 1e-9, "{env}: measured {mean} ± {se}, documented {random}");
        }
    }
}
