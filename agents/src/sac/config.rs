//! SAC's hyper-parameters, their checks against the env's action space and τ, and one run's
//! settings.

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tame_envs::Space;

use crate::run::Tau;
use crate::soft::Regularizer;

/// SAC hyper-parameters. Defaults follow Stable-Baselines3 2.x `SAC` and CleanRL's
/// `sac_continuous_action.py` unless a field says otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    /// Hidden layer widths of actor and critics (SB3/CleanRL: 256, 256; ReLU).
    pub hidden: Vec<usize>,
    /// Adam learning rate of actor, critics and temperature (SB3: 3e-4).
    pub learning_rate: f64,
    /// Minibatch size (SB3: 256).
    pub batch_size: usize,
    /// Replay capacity in transitions (SB3: 1,000,000).
    pub buffer_size: usize,
    /// Discount γ (0.99).
    pub gamma: f64,
    /// Target-network averaging rate ρ (SB3's `tau`: 0.005).
    pub polyak: f64,
    /// Env steps of uniformly random actions before learning starts (SB3: 100).
    pub learning_starts: u64,
    /// Gradient steps per env step (SB3: train_freq 1, gradient_steps 1).
    pub gradient_steps: usize,
    /// Starting temperature for `--tau auto` (SB3: "auto" starts at 1.0).
    pub initial_tau: f64,
    /// Target entropy for `--tau auto`; unset: −dim(A) continuous (SB3, Haarnoja et al.),
    /// `target_entropy_scale`·log|A| discrete.
    pub target_entropy: Option<f64>,
    /// Discrete only: target entropy as a fraction of the maximum log|A| (CleanRL's
    /// `sac_atari.py`: 0.89; Christodoulou 2019 used 0.98, which CleanRL found too high).
    pub target_entropy_scale: Option<f64>,
    /// Continuous τ = 0 only: std of the Gaussian exploration noise on actions in [-1, 1]
    /// (CleanRL DDPG/TD3 `exploration_noise`: 0.1).
    pub exploration_noise: Option<f64>,
    /// Discrete τ = 0 only: ε-greedy schedule, linear from `epsilon_start` to `epsilon_end`
    /// over `epsilon_fraction` of the run (CleanRL DQN: 1.0 → 0.05 over 0.5).
    pub epsilon_start: Option<f64>,
    pub epsilon_end: Option<f64>,
    pub epsilon_fraction: Option<f64>,
    /// What the soft bonus measures (default: entropy, as in the papers).
    pub regularizer: Regularizer,
    /// Env steps between loss/SPS logs (CleanRL: 100).
    pub log_every: u64,
}

impl Default for SacConfig {
    fn default() -> Self {
        SacConfig {
            hidden: vec![256, 256],
            learning_rate: 3e-4,
            batch_size: 256,
            buffer_size: 1_000_000,
            gamma: 0.99,
            polyak: 0.005,
            learning_starts: 100,
            gradient_steps: 1,
            initial_tau: 1.0,
            target_entropy: None,
            target_entropy_scale: None,
            exploration_noise: None,
            epsilon_start: None,
            epsilon_end: None,
            epsilon_fraction: None,
            regularizer: Regularizer::Entropy,
            log_every: 100,
        }
    }
}

pub(super) const DEFAULT_TARGET_ENTROPY_SCALE: f64 = 0.89;
pub(super) const DEFAULT_EXPLORATION_NOISE: f64 = 0.1;
pub(super) const DEFAULT_EPSILON: (f64, f64, f64) = (1.0, 0.05, 0.5);

impl SacConfig {
    /// Checks ranges and that variant-specific options fit the env's action space and τ, then
    /// fills in the defaults of the options that apply, so the saved config shows them.
    pub fn resolve(&mut self, action_space: &Space, tau: Tau) -> anyhow::Result<()> {
        fn check(ok: bool, what: &str, value: impl std::fmt::Display, accepted: &str) -> anyhow::Result<()> {
            if !ok {
                bail!("sac.{what} = {value} is out of range; accepted: {accepted}");
            }
            Ok(())
        }
        use crate::limits::{check_hidden, MAX_CONFIG_INT, MAX_TAU};
        use crate::numfmt::compact;
        let int_max = format!("{MAX_CONFIG_INT} (the largest integer a TOML config can hold)");
        let fits = |v: u64| v <= MAX_CONFIG_INT;
        check_hidden("sac.hidden", &self.hidden).map_err(anyhow::Error::msg)?;
        check(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            "learning_rate", compact(self.learning_rate), "0 < learning_rate <= 1 (Adam steps beyond 1 diverge)")?;
        check(self.batch_size > 0 && self.batch_size <= 65_536, "batch_size", self.batch_size,
            "1 to 65536 (one batch of 65536 already spans 256 MiB of activations per layer of 1024)")?;
        check(self.buffer_size > 0 && fits(self.buffer_size as u64), "buffer_size", self.buffer_size,
            &format!("1 to {int_max}; its memory is checked against the env's sizes"))?;
        check((0.0..=1.0).contains(&self.gamma), "gamma", compact(self.gamma), "0 <= gamma <= 1")?;
        check(self.polyak > 0.0 && self.polyak <= 1.0, "polyak", compact(self.polyak), "0 < polyak <= 1")?;
        check(fits(self.learning_starts), "learning_starts", self.learning_starts, &format!("0 to {int_max}"))?;
        check(self.gradient_steps > 0 && self.gradient_steps <= 1000, "gradient_steps", self.gradient_steps, "1 to 1000")?;
        check(self.initial_tau.is_finite() && self.initial_tau > 0.0 && self.initial_tau <= MAX_TAU, "initial_tau",
            compact(self.initial_tau), "0 < initial_tau <= 1e6 (beyond it τ·log π and the squared TD error overflow f32)")?;
        if let Tau::Fixed(t) = tau {
            if t > MAX_TAU {
                bail!("tau = {} is out of range; accepted: 0 <= tau <= 1e6 or auto (beyond 1e6 τ·log π and \
                       the squared TD error overflow f32)", compact(t));
            }
        }
        check(self.log_every > 0 && fits(self.log_every), "log_every", self.log_every, &format!("1 to {int_max}"))?;
        if let Some(h) = self.target_entropy {
            check(h.is_finite() && h.abs() <= 1e6, "target_entropy", compact(h), "a number from -1e6 to 1e6")?;
        }
        let discrete = matches!(action_space, Space::Discrete(_));
        let (kind, other) = if discrete { ("discrete", "continuous") } else { ("continuous", "discrete") };
        let misplaced = |name: &str, set: bool, for_discrete: bool| -> anyhow::Result<()> {
            if set && for_discrete != discrete {
                bail!("sac.{name} applies to {other} action spaces only, but this env's action \
                       space is {action_space} ({kind})");
            }
            Ok(())
        };
        misplaced("exploration_noise", self.exploration_noise.is_some(), false)?;
        misplaced("target_entropy_scale", self.target_entropy_scale.is_some(), true)?;
        for (name, v) in [("epsilon_start", self.epsilon_start), ("epsilon_end", self.epsilon_end),
            ("epsilon_fraction", self.epsilon_fraction)] {
            misplaced(name, v.is_some(), true)?;
        }
        if discrete {
            let scale = self.target_entropy_scale.get_or_insert(DEFAULT_TARGET_ENTROPY_SCALE);
            check(*scale > 0.0 && *scale <= 1.0, "target_entropy_scale", compact(*scale), "0 < scale <= 1")?;
            if tau.is_hard() {
                let (s, e, f) = DEFAULT_EPSILON;
                let s = *self.epsilon_start.get_or_insert(s);
                let e = *self.epsilon_end.get_or_insert(e);
                let f = *self.epsilon_fraction.get_or_insert(f);
                check((0.0..=1.0).contains(&s), "epsilon_start", compact(s), "0..=1")?;
                check((0.0..=1.0).contains(&e), "epsilon_end", compact(e), "0..=1")?;
                check(f > 0.0 && f <= 1.0, "epsilon_fraction", compact(f), "0 < fraction <= 1")?;
            }
        } else if tau.is_hard() {
            let n = *self.exploration_noise.get_or_insert(DEFAULT_EXPLORATION_NOISE);
            check(n.is_finite() && (0.0..=100.0).contains(&n), "exploration_noise", compact(n),
                "0 <= noise <= 100 (actions live in [-1, 1])")?;
        }
        Ok(())
    }
}

/// One SAC run: the hyper-parameters plus what every agent's run has.
#[derive(Clone, Debug)]
pub struct SacRun {
    pub config: SacConfig,
    pub tau: Tau,
    pub seed: u64,
    /// Env steps to train for.
    pub steps: u64,
    /// Env steps between evaluations (0: only the final one).
    pub eval_every: u64,
    pub eval_episodes: usize,
    /// Steps after which an evaluation episode is cut (counted as truncated).
    pub eval_max_episode_steps: u64,
    /// Threads for the updates (see [`super::Trainer::new`]).
    pub threads: usize,
}
