//! Soft Actor-Critic with temperature τ, for continuous (`Box`) and discrete action spaces,
//! down to the hard-argmax limit τ = 0.
//!
//! Read top to bottom: configuration, the agent (networks and the three losses), then the
//! training loop. The env's action space picks the variant:
//!
//! * continuous: squashed-Gaussian actor, twin critics Q(s, a) (Haarnoja et al. 2018,
//!   "Soft Actor-Critic Algorithms and Applications");
//! * discrete: categorical actor and critics Q(s, ·) over all actions, with every expectation
//!   over actions computed exactly (Christodoulou 2019, "Soft Actor-Critic for Discrete
//!   Action Settings").
//!
//! The temperature τ (the papers' α) weights the entropy bonus. `--tau auto` tunes it to a
//! target entropy; `--tau 0` is the hard limit, run by the same losses: as τ → 0 the soft
//! policy π ∝ exp(Q/τ) concentrates on argmax Q and every τ·log π term vanishes (τ log τ → 0).
//! So at τ = 0 the policy is taken as that limit: discrete, the greedy argmax of the min twin
//! Q (clipped double Q, ε-greedy exploration as in DQN); continuous, the deterministic actor
//! tanh(μ(s)) trained to maximise min Q (as in DDPG/TD3, with Gaussian exploration noise).
//!
//! Gradients are written out from each loss by hand (the derivation sits next to the code)
//! rather than taken by autograd, whose bookkeeping cost as much as the arithmetic at these
//! sizes; a test checks every variant against autograd on the losses as the papers write them.
//! Each update cuts its minibatch into two fixed halves that are computed side by side, the
//! second on a helper thread, and sums their gradients, so the numbers do not depend on the
//! thread count.
//!
//! Randomness: every draw comes from `ChaCha8Rng`s seeded with the run's seed (one stream for
//! replay sampling, warm-up and exploration; one for initial weights and the
//! reparameterisation noise of updates), never from tch's process-global generator, so that
//! runs in one process do not disturb each other.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use tame_envs::{Env, Space};
use tch::{Kind, Tensor};

use crate::eval::{evaluate, log_eval, EvalStats, PolicyAction};
use crate::helper::Helper;
use crate::nets::{AdamSlice, GradViews, Mlp, ParamSet};
use crate::replay::{Batch, ReplayBuffer};
use crate::run::{stop_requested, Progress, RunCtx, Tau, TrainSummary};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

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

const DEFAULT_TARGET_ENTROPY_SCALE: f64 = 0.89;
const DEFAULT_EXPLORATION_NOISE: f64 = 0.1;
const DEFAULT_EPSILON: (f64, f64, f64) = (1.0, 0.05, 0.5);

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
        check(!self.hidden.is_empty() && self.hidden.iter().all(|&h| h > 0), "hidden",
            format!("{:?}", self.hidden), "one or more positive layer widths")?;
        check(self.learning_rate.is_finite() && self.learning_rate > 0.0, "learning_rate", self.learning_rate, "> 0")?;
        check(self.batch_size > 0, "batch_size", self.batch_size, ">= 1")?;
        check(self.buffer_size > 0, "buffer_size", self.buffer_size, ">= 1")?;
        check((0.0..=1.0).contains(&self.gamma), "gamma", self.gamma, "0 <= gamma <= 1")?;
        check(self.polyak > 0.0 && self.polyak <= 1.0, "polyak", self.polyak, "0 < polyak <= 1")?;
        check(self.gradient_steps > 0, "gradient_steps", self.gradient_steps, ">= 1")?;
        check(self.initial_tau.is_finite() && self.initial_tau > 0.0, "initial_tau", self.initial_tau, "> 0")?;
        check(self.log_every > 0, "log_every", self.log_every, ">= 1")?;
        if let Some(h) = self.target_entropy {
            check(h.is_finite(), "target_entropy", h, "a finite number")?;
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
            check(*scale > 0.0 && *scale <= 1.0, "target_entropy_scale", *scale, "0 < scale <= 1")?;
            if tau.is_hard() {
                let (s, e, f) = DEFAULT_EPSILON;
                let s = *self.epsilon_start.get_or_insert(s);
                let e = *self.epsilon_end.get_or_insert(e);
                let f = *self.epsilon_fraction.get_or_insert(f);
                check((0.0..=1.0).contains(&s), "epsilon_start", s, "0..=1")?;
                check((0.0..=1.0).contains(&e), "epsilon_end", e, "0..=1")?;
                check(f > 0.0 && f <= 1.0, "epsilon_fraction", f, "0 < fraction <= 1")?;
            }
        } else if tau.is_hard() {
            let n = *self.exploration_noise.get_or_insert(DEFAULT_EXPLORATION_NOISE);
            check(n.is_finite() && n >= 0.0, "exploration_noise", n, ">= 0")?;
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
    /// Threads for the updates (see [`Trainer::new`]).
    pub threads: usize,
}

// ---------------------------------------------------------------------------------------------
// The agent: networks and losses
// ---------------------------------------------------------------------------------------------

/// Bounds of log σ of the Gaussian actor (SB3: [-20, 2]).
const LOG_STD_MIN: f64 = -20.0;
const LOG_STD_MAX: f64 = 2.0;

/// The action head, picked by the env's action space.
#[derive(Clone, Debug)]
enum Head {
    /// Actions live in [-1, 1]^dim inside the agent; the env gets `bias + scale · a`.
    Continuous { scale: Vec<f64>, bias: Vec<f64> },
    Discrete { n: usize },
}

/// How an observation becomes network input: `Discrete(n)` observations become one-hot.
#[derive(Clone, Copy, Debug)]
enum ObsEncoding {
    Raw(usize),
    OneHot(usize),
}

impl ObsEncoding {
    fn dim(&self) -> usize {
        match *self {
            ObsEncoding::Raw(d) | ObsEncoding::OneHot(d) => d,
        }
    }
    fn encode(&self, raw: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match *self {
            ObsEncoding::Raw(_) => out.extend_from_slice(raw),
            ObsEncoding::OneHot(n) => {
                out.resize(n, 0.0);
                out[(raw[0] as usize).min(n - 1)] = 1.0;
            }
        }
    }
}

/// How the temperature is set.
enum Temperature {
    Fixed(f64),
    /// log τ, trained by its own scalar Adam to hold the policy's entropy at `target_entropy`.
    Auto { log_tau: f64, opt: ScalarAdam, target_entropy: f64 },
}

/// Adam on one host-side scalar (log τ): its gradient is a batch mean read off anyway, so
/// stepping it in plain Rust costs no tensor ops. Same update as [`AdamSlice`].
struct ScalarAdam {
    lr: f64,
    m: f64,
    v: f64,
    t: i32,
}

impl ScalarAdam {
    fn step(&mut self, x: &mut f64, grad: f64) {
        const BETA1: f64 = 0.9;
        const BETA2: f64 = 0.999;
        self.t += 1;
        self.m = BETA1 * self.m + (1.0 - BETA1) * grad;
        self.v = BETA2 * self.v + (1.0 - BETA2) * grad * grad;
        let m_hat = self.m / (1.0 - BETA1.powi(self.t));
        let v_hat = self.v / (1.0 - BETA2.powi(self.t));
        *x -= self.lr * m_hat / (v_hat.sqrt() + 1e-8);
    }
}

/// Networks, optimisers and temperature of a SAC agent.
pub struct SacAgent {
    obs: ObsEncoding,
    head: Head,
    hard: bool,
    gamma: f64,
    /// c in every τ·(log π + c) of the soft value: 0 (entropy) or log|A| (KL to uniform).
    log_reference: f64,
    actor_params: ParamSet,
    actor: Mlp,
    /// Twin critics Q_1, Q_2, both in one parameter buffer (one Adam step for the pair).
    critic_params: ParamSet,
    critics: [Mlp; 2],
    target_params: ParamSet,
    /// The update's two shards: the first runs on the calling thread, the second on a helper
    /// thread once [`SacAgent::use_helper`] has started one, else here too.
    first: Shard,
    second: Second,
    temperature: Temperature,
    /// Reparameterisation noise ε of the updates.
    noise_rng: ChaCha8Rng,
}

/// Losses of the latest update, as read for the NaN check (no extra host reads to log them).
pub struct UpdateLosses {
    pub qf1: f64,
    pub qf2: f64,
    /// Mean Q_i(s, a) over the minibatch (CleanRL's `qf1_values`), to watch for divergence.
    pub qf1_values: f64,
    pub qf2_values: f64,
    pub actor: Option<f64>,
    pub tau: f64,
    pub tau_loss: Option<f64>,
    pub entropy: Option<f64>,
}

/// Reparameterisation noise ε, row-major `[rows, d]`, and per row its standard-normal
/// log-density Σ_j log N(ε_j; 0, 1), drawn on the host.
#[derive(Clone, Debug, Default)]
struct Noise {
    d: usize,
    eps: Vec<f32>,
    log_density: Vec<f32>,
}

impl Noise {
    /// Standard normal noise for `rows` rows of `d` dimensions from `rng`.
    fn draw(rows: usize, d: usize, rng: &mut ChaCha8Rng) -> Noise {
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let eps: Vec<f32> = (0..rows * d).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
        let log_density = eps
            .chunks(d)
            .map(|row| row.iter().map(|&e| -0.5 * (e as f64) * (e as f64) - half_log_2pi).sum::<f64>() as f32)
            .collect();
        Noise { d, eps, log_density }
    }

    /// No noise (discrete and τ = 0 updates draw none).
    fn none() -> Noise {
        Noise::default()
    }

    /// Rows `start..start + len`.
    fn rows(&self, start: usize, len: usize) -> Noise {
        if self.eps.is_empty() {
            return Noise::none();
        }
        let d = self.d;
        Noise { d, eps: self.eps[start * d..(start + len) * d].to_vec(), log_density: self.log_density[start..start + len].to_vec() }
    }
}

impl SacAgent {
    /// Builds the networks for the given spaces; initial weights and update noise come from
    /// `rng`.
    pub fn new(config: &SacConfig, tau: Tau, obs_space: &Space, action_space: &Space, mut rng: ChaCha8Rng) -> anyhow::Result<Self> {
        let obs = match obs_space {
            Space::Discrete(n) => ObsEncoding::OneHot(*n),
            Space::Box { low, .. } => ObsEncoding::Raw(low.len()),
        };
        let (head, action_dim, log_volume) = match action_space {
            Space::Discrete(n) => (Head::Discrete { n: *n }, *n, (*n as f64).ln()),
            Space::Box { low, high } => {
                if let Some(i) = (0..low.len()).find(|&i| !(low[i].is_finite() && high[i].is_finite())) {
                    bail!("SAC needs a bounded action space, but component {i} of {action_space} is unbounded");
                }
                let scale = low.iter().zip(high).map(|(l, h)| (*h as f64 - *l as f64) / 2.0).collect();
                let bias = low.iter().zip(high).map(|(l, h)| (*h as f64 + *l as f64) / 2.0).collect();
                // The agent's actions live in [-1, 1]^d, of log-volume d·log 2.
                (Head::Continuous { scale, bias }, low.len(), low.len() as f64 * 2f64.ln())
            }
        };
        let discrete = matches!(head, Head::Discrete { .. });
        let obs_dim = obs.dim();
        let hidden = &config.hidden;
        let layer_sizes = |input: usize, output: usize| {
            let mut s = vec![input];
            s.extend(hidden);
            s.push(output);
            s
        };
        // Continuous actor outputs μ and log σ; discrete actor outputs logits.
        let actor_sizes = layer_sizes(obs_dim, if discrete { action_dim } else { 2 * action_dim });
        // Continuous critic: Q(s, a) from [s, a]; discrete critic: Q(s, ·) from s.
        let critic_sizes =
            if discrete { layer_sizes(obs_dim, action_dim) } else { layer_sizes(obs_dim + action_dim, 1) };

        let (actor_params, mut actors) = ParamSet::new(&[("actor", &actor_sizes)], &mut rng);
        let actor = actors.remove(0);
        let (critic_params, critics) = ParamSet::new(&[("critic1", &critic_sizes), ("critic2", &critic_sizes)], &mut rng);
        let critics: [Mlp; 2] = critics.try_into().map_err(|_| anyhow::anyhow!("expected two critics"))?;
        let (target_params, critic_targets) = critic_params.copy("_target");
        let critic_targets: [Mlp; 2] =
            critic_targets.try_into().map_err(|_| anyhow::anyhow!("expected two target critics"))?;

        let temperature = match tau {
            Tau::Fixed(t) => Temperature::Fixed(t),
            Tau::Auto => {
                let target_entropy = config.target_entropy.unwrap_or(if discrete {
                    config.target_entropy_scale.unwrap_or(DEFAULT_TARGET_ENTROPY_SCALE) * log_volume
                } else {
                    -(action_dim as f64)
                });
                let opt = ScalarAdam { lr: config.learning_rate, m: 0.0, v: 0.0, t: 0 };
                Temperature::Auto { log_tau: config.initial_tau.ln(), opt, target_entropy }
            }
        };
        // Each shard writes its own gradient buffers and steps its slice of each optimiser,
        // which sums both shards' gradients over that slice.
        let critic_grads: [Tensor; SHARDS] = std::array::from_fn(|_| critic_params.grad_buffer());
        let actor_grads: [Tensor; SHARDS] = std::array::from_fn(|_| actor_params.grad_buffer());
        let lr = config.learning_rate;
        let mut critic_adam = AdamSlice::split(&critic_params, lr, &critic_grads, Some((&target_params, config.polyak)), SHARDS);
        let mut actor_adam = AdamSlice::split(&actor_params, lr, &actor_grads, None, SHARDS);
        let mut shard = |i: usize| Shard {
            actor: actor.handle(),
            critics: [critics[0].handle(), critics[1].handle()],
            targets: [critic_targets[0].handle(), critic_targets[1].handle()],
            critic_grad: [critics[0].grad_views(&critic_grads[i]), critics[1].grad_views(&critic_grads[i])],
            actor_grad: actor.grad_views(&actor_grads[i]),
            critic_adam: critic_adam.remove(0),
            actor_adam: actor_adam.remove(0),
            rows: None,
        };
        let (first, second) = (shard(0), shard(1));
        let log_reference = match config.regularizer {
            Regularizer::Entropy => 0.0,
            Regularizer::KlUniform => log_volume,
        };
        Ok(SacAgent {
            obs,
            head,
            hard: tau.is_hard(),
            gamma: config.gamma,
            log_reference,
            actor_params,
            actor,
            critic_params,
            critics,
            target_params,
            first,
            second: Second::Here(Box::new(second)),
            temperature,
            noise_rng: rng,
        })
    }

    fn discrete(&self) -> bool {
        matches!(self.head, Head::Discrete { .. })
    }

    /// Floats per stored action: the index for discrete, the [-1, 1] vector for continuous.
    fn stored_action_dim(&self) -> usize {
        match &self.head {
            Head::Discrete { .. } => 1,
            Head::Continuous { scale, .. } => scale.len(),
        }
    }

    /// Current τ (a constant in the actor and critic losses).
    pub fn tau_value(&self) -> f64 {
        match &self.temperature {
            Temperature::Fixed(t) => *t,
            Temperature::Auto { log_tau, .. } => log_tau.exp(),
        }
    }

    /// Continuous policy at `obs`: per row an action a ∈ [-1, 1]^d and its log-density (see
    /// [`squash`]).
    fn continuous_sample(&self, obs: &Tensor, noise: &Noise) -> Squashed {
        squash(&host(&self.actor.forward(obs)), self.stored_action_dim(), noise, self.hard)
    }

    /// Discrete policy: probabilities and log-probabilities over all actions, `[B, n]` (see
    /// [`discrete_policy`]).
    fn discrete_policy(&self, obs: &Tensor) -> (Tensor, Tensor) {
        discrete_policy(&self.actor, &self.critics, obs, self.hard)
    }

    /// Standard normal noise ε for `rows` rows of the action's dimensions, from `rng`.
    fn normal_noise(&self, rows: usize, rng: &mut ChaCha8Rng) -> Noise {
        Noise::draw(rows, self.stored_action_dim(), rng)
    }

    /// One gradient step on critics, actor and temperature, then the Polyak update.
    /// Returns `None`, skipping the optimiser step of that loss, if a loss is NaN or infinite.
    ///
    /// The minibatch's rows are cut into [`SHARDS`] halves whose gradients are computed side
    /// by side (see [`SacAgent::use_helper`]) and summed by the Adam steps, each shard stepping
    /// half of the parameters: critics first, then the actor against the updated critics (as
    /// SB3 and CleanRL order them). The halves do not depend on the thread count, so neither
    /// do the numbers.
    pub fn update(&mut self, batch: &Batch) -> Option<UpdateLosses> {
        let rows = batch.obs.size()[0];
        let k = self.loss_consts(rows);
        // ε for the target's a' and for the actor loss's a, drawn up front (continuous soft only).
        let (noise_next, noise_now) = if k.discrete || k.hard {
            (Noise::none(), Noise::none())
        } else {
            let (rows, d) = (rows as usize, k.action_dim);
            (Noise::draw(rows, d, &mut self.noise_rng), Noise::draw(rows, d, &mut self.noise_rng))
        };
        let [rows0, rows1] = std::array::from_fn(|i| {
            let start = rows * i as i64 / SHARDS as i64;
            let len = rows * (i as i64 + 1) / SHARDS as i64 - start;
            let (first, count) = (start as usize, len as usize);
            ShardRows { batch: batch.rows(start, len), noise_next: noise_next.rows(first, count), noise_now: noise_now.rows(first, count) }
        });

        let sums = self.on_shards(move |s| s.critic_grads(rows0, &k), move |s| s.critic_grads(rows1, &k));
        let mean = |f: fn(&CriticSums) -> f64| sums.iter().map(f).sum::<f64>() / k.batch;
        let (qf1, qf2) = (mean(|c| c.sse[0]), mean(|c| c.sse[1]));
        if !(qf1 + qf2).is_finite() {
            return None;
        }
        // ∇(J_Q1 + J_Q2) over both critics' parameters, one Adam step for the pair, then the
        // target networks in the same pass: θ̄ ← (1 − ρ)θ̄ + ρθ.
        self.on_shards(|s| s.critic_adam.step(), |s| s.critic_adam.step());

        let sums = self.on_shards(move |s| s.actor_grads(&k), move |s| s.actor_grads(&k));
        let mut actor_value = None;
        let mut mean_log_pi = None;
        if sums.iter().all(Option::is_some) {
            let loss = sums.iter().flatten().map(|s| s.loss).sum::<f64>() / k.batch;
            if !loss.is_finite() {
                return None;
            }
            actor_value = Some(loss);
            if let Some(lp) = sums.iter().flatten().map(|s| s.log_pi).sum::<Option<f64>>() {
                mean_log_pi = Some(lp / k.batch);
            }
            self.on_shards(|s| s.actor_adam.step(), |s| s.actor_adam.step());
        }

        // Temperature loss (Haarnoja et al. 2018, eq. 18), on log τ as SB3 does:
        //   J(τ) = E_s E_{a~π}[−log τ · (log π(a|s) + H̄)],  ∂J/∂log τ = −E[log π + H̄],
        // which raises τ when the entropy is below the target H̄ and lowers it above.
        let mut tau_loss = None;
        if let (Temperature::Auto { log_tau, opt, target_entropy }, Some(lp)) = (&mut self.temperature, mean_log_pi) {
            tau_loss = Some(-*log_tau * (lp + *target_entropy));
            opt.step(log_tau, -(lp + *target_entropy));
        }

        Some(UpdateLosses {
            qf1,
            qf2,
            qf1_values: mean(|c| c.q[0]),
            qf2_values: mean(|c| c.q[1]),
            actor: actor_value,
            tau: k.tau,
            tau_loss,
            // Policy entropy H = −E[log π], exact for discrete, one sample per state continuous.
            entropy: mean_log_pi.map(|lp| -lp),
        })
    }

    /// The constants of an update's losses over a minibatch of `rows` rows.
    fn loss_consts(&self, rows: i64) -> LossConsts {
        LossConsts {
            tau: self.tau_value(),
            gamma: self.gamma,
            log_reference: self.log_reference,
            hard: self.hard,
            discrete: self.discrete(),
            obs_dim: self.obs.dim() as i64,
            action_dim: self.stored_action_dim(),
            batch: rows as f64,
        }
    }

    /// Runs `first` and `second` on the two shards, side by side when the second lives on a
    /// helper thread; results in shard order.
    fn on_shards<R: Send + 'static>(
        &mut self,
        first: impl FnOnce(&mut Shard) -> R,
        second: impl FnOnce(&mut Shard) -> R + Send + 'static,
    ) -> [R; SHARDS] {
        match &mut self.second {
            Second::Here(shard) => [first(&mut self.first), second(shard)],
            Second::Helper(helper) => {
                let (a, b) = helper.join(|| first(&mut self.first), second);
                [a, b]
            }
            Second::Starting => unreachable!("the second shard is only in transit inside use_helper"),
        }
    }

    /// Moves the second shard of every update onto a helper thread of its own, so that the
    /// two halves of each minibatch are computed side by side.
    pub fn use_helper(&mut self) -> anyhow::Result<()> {
        if let Second::Here(_) = self.second {
            let Second::Here(shard) = std::mem::replace(&mut self.second, Second::Starting) else { unreachable!() };
            let helper = Helper::spawn("sac-shard-1", *shard).context("starting the SAC update's helper thread")?;
            self.second = Second::Helper(helper);
        }
        Ok(())
    }

    fn obs_tensor(&self, raw: &[f32]) -> Tensor {
        let mut enc = Vec::with_capacity(self.obs.dim());
        self.obs.encode(raw, &mut enc);
        Tensor::from_slice(&enc).unsqueeze(0)
    }

    fn to_env_action(&self, a: &[f32]) -> PolicyAction {
        match &self.head {
            Head::Discrete { .. } => PolicyAction::Discrete(a[0] as usize),
            Head::Continuous { scale, bias } => PolicyAction::Continuous(
                a.iter().zip(scale.iter().zip(bias)).map(|(&a, (s, b))| b + s * a as f64).collect(),
            ),
        }
    }

    /// The deterministic evaluation action: tanh(μ(s)) continuous, the most probable action
    /// (argmax min Q at τ = 0) discrete. Also returns the policy's entropy at `obs` where it
    /// has one (exact for discrete; a one-sample estimate for continuous).
    pub fn act_deterministic(&self, raw_obs: &[f32]) -> (PolicyAction, Option<f64>) {
        tch::no_grad(|| {
            let obs = self.obs_tensor(raw_obs);
            match self.head {
                Head::Discrete { .. } => {
                    let (probs, log_probs) = self.discrete_policy(&obs);
                    let a = probs.argmax(-1, false).int64_value(&[0]) as usize;
                    // + 0.0 turns the −0.0 of a one-hot policy into 0.
                    let h = -(probs * log_probs).sum(Kind::Float).double_value(&[]) + 0.0;
                    (PolicyAction::Discrete(a), Some(h))
                }
                Head::Continuous { .. } => {
                    let out = self.actor.forward(&obs);
                    let mean = Vec::<f32>::try_from(out.chunk(2, -1)[0].tanh().flatten(0, -1)).unwrap_or_default();
                    // One-sample entropy estimate with fixed noise, so evaluation stays a
                    // deterministic function of the weights.
                    let h = (!self.hard).then(|| {
                        let noise = self.normal_noise(1, &mut ChaCha8Rng::seed_from_u64(0));
                        -self.continuous_sample(&obs, &noise).log_pi[0]
                    });
                    (self.to_env_action(&mean), h)
                }
            }
        })
    }

    /// An exploration action, as stored in the replay buffer (index, or a ∈ [-1, 1]^d):
    /// a sample from π when soft; ε-greedy (discrete) or Gaussian noise (continuous) at τ = 0.
    fn act_explore(&self, raw_obs: &[f32], rng: &mut ChaCha8Rng, epsilon: f64, noise: f64, out: &mut Vec<f32>) {
        out.clear();
        tch::no_grad(|| {
            let obs = self.obs_tensor(raw_obs);
            match self.head {
                Head::Discrete { n } => {
                    let (probs, _) = self.discrete_policy(&obs);
                    let probs = Vec::<f32>::try_from(probs.flatten(0, -1)).unwrap_or_default();
                    let a = if self.hard {
                        if rng.random::<f64>() < epsilon {
                            rng.random_range(0..n)
                        } else {
                            argmax(&probs)
                        }
                    } else {
                        sample_categorical(&probs, rng)
                    };
                    out.push(a as f32);
                }
                Head::Continuous { .. } => {
                    let params = Vec::<f32>::try_from(self.actor.forward(&obs).flatten(0, -1)).unwrap_or_default();
                    let d = params.len() / 2;
                    for j in 0..d {
                        let z: f64 = rng.sample(StandardNormal);
                        let mean = params[j] as f64;
                        let a = if self.hard {
                            (mean.tanh() + noise * z).clamp(-1.0, 1.0)
                        } else {
                            let log_std = (params[d + j] as f64).clamp(LOG_STD_MIN, LOG_STD_MAX);
                            (mean + log_std.exp() * z).tanh()
                        };
                        out.push(a as f32);
                    }
                }
            }
        });
    }

    /// Multiply-adds of one update's matrix products over a batch (elementwise work and
    /// Adam are left out: they are O(parameters), not O(batch × parameters)). A layer's
    /// backward pass costs its forward twice over (input gradient + weight gradient),
    /// except that no input gradient is formed for the first layer of a network whose input
    /// needs none.
    pub fn update_macs(&self, batch: usize) -> f64 {
        let a_fwd = self.actor.forward_macs(batch);
        let c_fwd: f64 = self.critics.iter().map(|c| c.forward_macs(batch)).sum();
        let a_first = self.actor.first_layer_macs(batch);
        let c_first: f64 = self.critics.iter().map(|c| c.first_layer_macs(batch)).sum();
        let critic_step = c_fwd + c_fwd + (c_fwd - c_first);
        if self.discrete() {
            // target: actor (or online critic when hard) + target critic; critic step;
            // actor step: actor fwd + bwd, critic fwd without grad.
            let target = if self.hard { 2.0 * c_fwd } else { a_fwd + c_fwd };
            let actor_step = if self.hard { 0.0 } else { a_fwd + a_fwd + (a_fwd - a_first) + c_fwd };
            target + critic_step + actor_step
        } else {
            // actor step: actor fwd, critic fwd, critic input-gradient (all layers), actor bwd.
            let target = a_fwd + c_fwd;
            let actor_step = a_fwd + c_fwd + c_fwd + a_fwd + (a_fwd - a_first);
            target + critic_step + actor_step
        }
    }

    /// Every network parameter by checkpoint name, plus log τ when it is learned.
    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named = Vec::new();
        for set in [&self.actor_params, &self.critic_params, &self.target_params] {
            named.extend(set.named());
        }
        if let Temperature::Auto { log_tau, .. } = &self.temperature {
            named.push(("temperature.log_tau".into(), Tensor::from_slice(&[*log_tau])));
        }
        named
    }

    /// Writes every network and the temperature to `path` as safetensors, atomically
    /// (temp file in the same directory, fsync, rename).
    pub fn save(&self, path: &Path, step: u64) -> anyhow::Result<()> {
        let mut named = self.named_tensors();
        named.push(("step".into(), Tensor::from(step as i64)));
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let tmp = path.with_extension("safetensors.tmp");
        Tensor::write_safetensors(&named, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
        }
        Ok(())
    }

    /// Loads weights written by [`SacAgent::save`]; returns the step they were saved at.
    pub fn load(&mut self, path: &Path) -> anyhow::Result<u64> {
        let stored = Tensor::read_safetensors(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
        let stored: std::collections::HashMap<String, Tensor> = stored.into_iter().collect();
        let targets = self.named_tensors();
        tch::no_grad(|| -> anyhow::Result<()> {
            for (name, mut var) in targets {
                let src = stored.get(&name).with_context(|| {
                    format!("checkpoint {} has no tensor '{name}': it was written by a different configuration", path.display())
                })?;
                if src.size() != var.size() {
                    bail!("checkpoint {} tensor '{name}' has shape {:?}, the configured network {:?}",
                        path.display(), src.size(), var.size());
                }
                var.copy_(src);
            }
            Ok(())
        })?;
        if let (Temperature::Auto { log_tau, .. }, Some(t)) = (&mut self.temperature, stored.get("temperature.log_tau")) {
            *log_tau = t.double_value(&[0]);
        }
        Ok(stored.get("step").map(|t| t.int64_value(&[]) as u64).unwrap_or(0))
    }
}

/// Slices of the minibatch whose gradients an update computes in parallel (and then sums):
/// two, for the two cores this toolkit is tuned on. Fixed, so the result does not depend on
/// how many threads run them.
const SHARDS: usize = 2;

/// Matrix work per update below which a helper thread costs more than it saves (measured:
/// 64-64 networks, 0.036 GFLOP, ran 15% slower with it; 128-128, 0.14 GFLOP, about even;
/// 256-256, 0.55 GFLOP, 1.8x faster).
const HELPER_MIN_GFLOP: f64 = 0.1;

/// The constants of one update's losses, shared by its shards.
#[derive(Clone, Copy, Debug)]
struct LossConsts {
    tau: f64,
    gamma: f64,
    /// c of the soft term τ·(log π + c).
    log_reference: f64,
    hard: bool,
    discrete: bool,
    /// Observation columns of a continuous critic's input `[s, a]`.
    obs_dim: i64,
    /// Floats per stored action (the dimension d of a continuous action).
    action_dim: usize,
    /// Rows of the whole minibatch: every loss is a mean over them.
    batch: f64,
}

/// One shard of an update: a slice of the minibatch's rows and of the noise, its own handles
/// on the shared weights (tch tensors are not `Sync`), and the buffers its gradients go to.
struct Shard {
    actor: Mlp,
    critics: [Mlp; 2],
    targets: [Mlp; 2],
    /// Where the critics' and the actor's backward passes write this shard's gradients.
    critic_grad: [GradViews; 2],
    actor_grad: GradViews,
    /// This shard's slices of the critics' and the actor's optimiser.
    critic_adam: AdamSlice,
    actor_adam: AdamSlice,
    /// This update's rows (set by the critic phase, read by the actor phase).
    rows: Option<ShardRows>,
}

/// A shard's slice of one update's minibatch and noise.
struct ShardRows {
    batch: Batch,
    noise_next: Noise,
    noise_now: Noise,
}

/// Where the second shard lives.
enum Second {
    Here(Box<Shard>),
    Helper(Helper<Shard>),
    /// Only while [`SacAgent::use_helper`] moves it.
    Starting,
}

/// A shard's sums over its rows of each critic's squared error and Q-value.
struct CriticSums {
    sse: [f64; 2],
    q: [f64; 2],
}

/// A shard's sums over its rows of the actor loss and of log π (E_a[log π] when discrete;
/// none at τ = 0).
struct ActorSums {
    loss: f64,
    log_pi: Option<f64>,
}

impl Shard {
    /// Critic loss (Haarnoja et al. 2018, eq. 5 with the twin-min target of eq. 7):
    ///   J_Q = E[(Q_i(s, a) − y)²],  y = r + γ(1 − d)·V̄(s'),
    ///   V̄(s') = E_{a'~π}[min_i Q̄_i(s', a') − τ·(log π(a'|s') + c)]
    /// (c = 0 for entropy, log|A| for KL to uniform). Discrete: E_{a'} is the exact sum over
    /// actions, and Q_i(s, a) is read off Q_i(s, ·) at the stored action.
    ///
    /// On this shard's rows: writes ∂J_Q/∂θ_i = (2/B)·Σ (Q_i − y)·∂Q_i/∂θ_i into
    /// `critic_grad` and returns Σ (Q_i − y)² and Σ Q_i per critic.
    fn critic_grads(&mut self, rows: ShardRows, k: &LossConsts) -> CriticSums {
        let rows = self.rows.insert(rows);
        let b = &rows.batch;
        let v_next = if k.discrete {
            let (probs, log_probs) = discrete_policy(&self.actor, &self.critics, &b.next_obs, k.hard);
            let q_next = min_q(&self.targets, &b.next_obs);
            let soft_q = if k.hard { q_next } else { q_next - soft_term(log_probs, k) };
            (probs * soft_q).sum_dim_intlist(-1, true, Kind::Float)
        } else {
            // Row by row on the host: these tensors are [B, d] and [B, 1], too small for
            // libtorch's per-op cost to pay.
            let s = squash(&host(&self.actor.forward(&b.next_obs)), k.action_dim, &rows.noise_next, k.hard);
            let input = Tensor::cat(&[&b.next_obs, &s.action_tensor()], -1);
            let (q1, q2) = (host(&self.targets[0].forward(&input)), host(&self.targets[1].forward(&input)));
            let v: Vec<f32> = (0..q1.len())
                .map(|r| {
                    let q = q1[r].min(q2[r]) as f64;
                    (if k.hard { q } else { q - k.tau * (s.log_pi[r] + k.log_reference) }) as f32
                })
                .collect();
            Tensor::from_slice(&v).unsqueeze(-1)
        };
        let not_done: Tensor = 1.0 - &b.terminated;
        let y = b.rewards.unsqueeze(-1) + not_done.unsqueeze(-1) * k.gamma * v_next;

        let taken = k.discrete.then(|| b.actions.to_kind(Kind::Int64));
        let input = if k.discrete { &b.obs } else { &b.obs_actions };
        let mut sums = CriticSums { sse: [0.0; 2], q: [0.0; 2] };
        for (i, critic) in self.critics.iter().enumerate() {
            let (q_all, tape) = critic.forward_taped(input);
            let q = match &taken {
                Some(a) => q_all.gather(-1, a, false),
                None => q_all.shallow_clone(),
            };
            let err = &q - &y;
            sums.sse[i] = err.square().sum(Kind::Float).double_value(&[]);
            sums.q[i] = q.sum(Kind::Float).double_value(&[]);
            let dq = match &taken {
                Some(a) => q_all.zeros_like().scatter(-1, a, &(err * (2.0 / k.batch))),
                None => err * (2.0 / k.batch),
            };
            critic.backward(&tape, &dq, Some(&self.critic_grad[i]), false);
        }
        sums
    }

    /// Actor loss (Haarnoja et al. 2018, eq. 7; Christodoulou 2019, eq. 12 for discrete):
    ///   J_π = E_s E_{a~π}[τ·log π(a|s) − min_i Q_i(s, a)],
    /// reparameterised through a = tanh(μ + σε) when continuous, an exact sum when discrete.
    /// At τ = 0 continuous this is DDPG's −Q(s, tanh μ(s)); at τ = 0 discrete the policy is
    /// the argmax of Q itself and has no parameters to train (returns `None`). The critics
    /// pass gradients to the action only, not to their weights.
    ///
    /// On this shard's rows: writes ∂J_π/∂θ_π into `actor_grad` and returns the sums.
    fn actor_grads(&mut self, k: &LossConsts) -> Option<ActorSums> {
        let rows = self.rows.as_ref()?;
        let b = &rows.batch;
        if k.discrete {
            if k.hard {
                return None;
            }
            let (logits, tape) = self.actor.forward_taped(&b.obs);
            let log_probs = logits.log_softmax(-1, Kind::Float);
            let probs = log_probs.exp();
            // Per state J = Σ_a π_a·f_a with f = τ·log π − Q. Through the softmax,
            // ∂J/∂z_k = π_k·(f_k − J) (the τ·Σ_a π_a·∂log π_a/∂z_k part sums to zero).
            let f = &log_probs * k.tau - min_q(&self.critics, &b.obs);
            let j = (&probs * &f).sum_dim_intlist(-1, true, Kind::Float);
            let dz = &probs * (f - &j) * (1.0 / k.batch);
            self.actor.backward(&tape, &dz, Some(&self.actor_grad), false);
            let log_pi = (probs * log_probs).sum(Kind::Float).double_value(&[]);
            return Some(ActorSums { loss: j.sum(Kind::Float).double_value(&[]), log_pi: Some(log_pi) });
        }
        let (out, tape) = self.actor.forward_taped(&b.obs);
        let s = squash(&host(&out), k.action_dim, &rows.noise_now, k.hard);
        let input = Tensor::cat(&[&b.obs, &s.action_tensor()], -1);
        let (q1, tape1) = self.critics[0].forward_taped(&input);
        let (q2, tape2) = self.critics[1].forward_taped(&input);
        let (q1, q2) = (host(&q1), host(&q2));
        let n = q1.len();
        // ∂J/∂Q_i = −1/B on the rows where Q_i is the minimum, then back to the action a.
        let scale = 1.0 / k.batch as f32;
        let dq1: Vec<f32> = (0..n).map(|r| if q1[r] <= q2[r] { -scale } else { 0.0 }).collect();
        let dq2: Vec<f32> = (0..n).map(|r| if q1[r] <= q2[r] { 0.0 } else { -scale }).collect();
        let column = |v: &[f32]| Tensor::from_slice(v).unsqueeze(-1);
        let dx = self.critics[0].backward(&tape1, &column(&dq1), None, true)?
            + self.critics[1].backward(&tape2, &column(&dq2), None, true)?;
        let dx = host(&dx);
        // Through a = tanh(u): ∂a/∂u = 1 − a². With u = μ + σε and
        // log π = Σ_j [log N(ε_j) − log σ_j − log(1 − a_j²)]: ∂log π/∂u = 2a and
        // ∂log π/∂log σ = −1 besides the path through u (∂u/∂log σ = σε). log σ's clamp
        // passes no gradient where it binds. At τ = 0, J = −Q(s, tanh μ) and log σ is unused.
        let (d, width, b_inv) = (s.d, k.obs_dim as usize + s.d, 1.0 / k.batch);
        let mut d_out = vec![0f32; n * 2 * d];
        let (mut loss, mut log_pi) = (0.0, 0.0);
        for r in 0..n {
            let q = q1[r].min(q2[r]) as f64;
            loss += if k.hard { -q } else { k.tau * s.log_pi[r] - q };
            if !k.hard {
                log_pi += s.log_pi[r];
            }
            for j in 0..d {
                let a = s.action[r * d + j] as f64;
                let da = dx[r * width + k.obs_dim as usize + j] as f64;
                let mut d_u = da * (1.0 - a * a);
                if !k.hard {
                    d_u += 2.0 * k.tau * a * b_inv;
                    if s.clamp_open[r * d + j] {
                        d_out[r * 2 * d + d + j] = (d_u * s.std_eps[r * d + j] as f64 - k.tau * b_inv) as f32;
                    }
                }
                d_out[r * 2 * d + j] = d_u as f32;
            }
        }
        let d_out = Tensor::from_slice(&d_out).view([n as i64, 2 * d as i64]);
        self.actor.backward(&tape, &d_out, Some(&self.actor_grad), false);
        Some(ActorSums { loss, log_pi: (!k.hard).then_some(log_pi) })
    }
}

/// min(Q_1, Q_2) of the given twin (online or target), `[B, out]`.
fn min_q(twin: &[Mlp; 2], input: &Tensor) -> Tensor {
    twin[0].forward(input).minimum(&twin[1].forward(input))
}

/// τ·(log π + c) of the soft value (c = 0 for entropy, log|A| for KL to uniform).
fn soft_term(log_pi: Tensor, k: &LossConsts) -> Tensor {
    if k.log_reference == 0.0 {
        log_pi * k.tau
    } else {
        (log_pi + k.log_reference) * k.tau
    }
}

/// The elements of a tensor, copied to the host.
fn host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.reshape([-1])).expect("an f32 tensor")
}

/// A continuous policy's actions at the actor's outputs, with what its backward pass needs.
struct Squashed {
    d: usize,
    /// a ∈ [-1, 1]^d, row-major `[rows, d]`.
    action: Vec<f32>,
    /// log π(a|s) per row; empty at τ = 0.
    log_pi: Vec<f64>,
    /// σ·ε and whether log σ was inside its clamp, `[rows, d]`; empty at τ = 0.
    std_eps: Vec<f32>,
    clamp_open: Vec<bool>,
}

impl Squashed {
    fn action_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.action).view([-1, self.d as i64])
    }
}

/// The continuous policy at actor outputs `out` = `[μ | log σ]` (row-major `[rows, 2d]`),
/// row by row on the host.
///
/// Reparameterised squashed Gaussian (Haarnoja et al. 2018, appendix C):
///   u = μ(s) + σ(s)·ε, ε ~ N(0, I);  a = tanh(u);
///   log π(a|s) = Σ_j [log N(u_j; μ_j, σ_j) − log(1 − tanh²(u_j))]
///              = Σ_j [log N(ε_j; 0, 1) − log σ_j − 2(log 2 − u_j − softplus(−2u_j))],
/// using log(1 − tanh² u) = 2(log 2 − u − softplus(−2u)) for stability; the ε-only terms
/// come precomputed with the noise. At τ = 0 the policy is its σ → 0 limit a = tanh(μ(s)),
/// whose τ·log π term is zero.
fn squash(out: &[f32], d: usize, noise: &Noise, hard: bool) -> Squashed {
    let rows = out.len() / (2 * d);
    let mut s = Squashed { d, action: Vec::with_capacity(rows * d), log_pi: Vec::new(), std_eps: Vec::new(), clamp_open: Vec::new() };
    for r in 0..rows {
        let (mean, raw_log_std) = out[r * 2 * d..(r + 1) * 2 * d].split_at(d);
        if hard {
            s.action.extend(mean.iter().map(|m| m.tanh()));
            continue;
        }
        let mut log_pi = noise.log_density[r] as f64;
        for j in 0..d {
            let log_std = (raw_log_std[j] as f64).clamp(LOG_STD_MIN, LOG_STD_MAX);
            let std_eps = log_std.exp() * noise.eps[r * d + j] as f64;
            let u = mean[j] as f64 + std_eps;
            log_pi -= log_std + 2.0 * (std::f64::consts::LN_2 - u - softplus(-2.0 * u));
            s.action.push(u.tanh() as f32);
            s.std_eps.push(std_eps as f32);
            s.clamp_open.push((LOG_STD_MIN..=LOG_STD_MAX).contains(&(raw_log_std[j] as f64)));
        }
        s.log_pi.push(log_pi);
    }
    s
}

/// softplus(x) = log(1 + eˣ), without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Discrete policy: probabilities and log-probabilities over all actions, `[B, n]`.
/// At τ = 0 this is the limit of softmax(Q/τ): one-hot on argmax_a min(Q_1, Q_2)(s, a),
/// with log π set to 0 (π·log π → 0).
fn discrete_policy(actor: &Mlp, critics: &[Mlp; 2], obs: &Tensor, hard: bool) -> (Tensor, Tensor) {
    if hard {
        let q = min_q(critics, obs);
        let n = q.size()[1];
        let probs = q.argmax(-1, false).one_hot(n).to_kind(Kind::Float);
        return (probs, q.zeros_like());
    }
    let log_probs = actor.forward(obs).log_softmax(-1, Kind::Float);
    (log_probs.exp(), log_probs)
}

fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

fn sample_categorical(probs: &[f32], rng: &mut ChaCha8Rng) -> usize {
    let u: f32 = rng.random::<f32>() * probs.iter().sum::<f32>();
    let mut acc = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1
}

// ---------------------------------------------------------------------------------------------
// Training loop
// ---------------------------------------------------------------------------------------------

/// Interaction state: the agent, its replay buffer and the running training episode.
/// `train` and the `tame bench sac` benchmark both drive it.
pub struct Trainer {
    pub agent: SacAgent,
    config: SacConfig,
    replay: ReplayBuffer,
    rng: ChaCha8Rng,
    env: Box<dyn Env>,
    raw_obs: Vec<f32>,
    next_raw_obs: Vec<f32>,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    action: Vec<f32>,
    total_steps: u64,
    episode_return: f64,
    episode_length: u64,
    /// Env steps taken so far.
    pub step: u64,
}

/// One training episode that just ended.
pub struct EpisodeEnd {
    pub episode_return: f64,
    pub length: u64,
}

impl Trainer {
    /// Seeds the run's generators with `seed` and builds the agent for `env`. Of `threads`,
    /// up to [`SHARDS`] run an update's shards side by side (when an update has at least
    /// [`HELPER_MIN_GFLOP`] of matrix work) and libtorch gets the rest within each
    /// (`threads / SHARDS`, at least 1); the numbers do not depend on it.
    pub fn new(config: &SacConfig, tau: Tau, seed: u64, total_steps: u64, threads: usize, mut env: Box<dyn Env>) -> anyhow::Result<Self> {
        let mut config = config.clone();
        config.resolve(&env.action_space(), tau)?;
        // Stream 0: replay, warm-up, exploration; stream 1: weights and update noise.
        let mut agent_rng = ChaCha8Rng::seed_from_u64(seed);
        agent_rng.set_stream(1);
        let mut agent = SacAgent::new(&config, tau, &env.observation_space(), &env.action_space(), agent_rng)?;
        let threads = threads.max(1);
        let gflop = 2.0 * agent.update_macs(config.batch_size) / 1e9;
        if threads >= SHARDS && gflop >= HELPER_MIN_GFLOP {
            agent.use_helper()?;
        }
        tch::set_num_threads((threads / SHARDS).max(1) as i32);
        let capacity = config.buffer_size.min(total_steps.max(1) as usize);
        let replay = ReplayBuffer::new(capacity, agent.obs.dim(), agent.stored_action_dim());
        let mut raw_obs = vec![0.0; env.observation_space().dim()];
        env.reset(Some(seed), &mut raw_obs);
        let mut obs = Vec::new();
        agent.obs.encode(&raw_obs, &mut obs);
        Ok(Trainer {
            agent,
            config,
            replay,
            rng: ChaCha8Rng::seed_from_u64(seed),
            env,
            next_raw_obs: raw_obs.clone(),
            raw_obs,
            next_obs: obs.clone(),
            obs,
            action: Vec::new(),
            total_steps,
            episode_return: 0.0,
            episode_length: 0,
            step: 0,
        })
    }

    /// The resolved configuration (variant-specific defaults filled in).
    pub fn config(&self) -> &SacConfig {
        &self.config
    }

    fn epsilon(&self) -> f64 {
        let (s, e, f) = (
            self.config.epsilon_start.unwrap_or(DEFAULT_EPSILON.0),
            self.config.epsilon_end.unwrap_or(DEFAULT_EPSILON.1),
            self.config.epsilon_fraction.unwrap_or(DEFAULT_EPSILON.2),
        );
        let progress = self.step as f64 / (f * self.total_steps as f64).max(1.0);
        (s + (e - s) * progress).max(e.min(s))
    }

    /// Takes one env step (uniformly random during warm-up) and stores the transition.
    pub fn env_step(&mut self) -> anyhow::Result<Option<EpisodeEnd>> {
        self.action.clear();
        if self.step < self.config.learning_starts {
            match &self.agent.head {
                Head::Discrete { n } => self.action.push(self.rng.random_range(0..*n) as f32),
                Head::Continuous { scale, .. } => {
                    for _ in 0..scale.len() {
                        self.action.push(self.rng.random_range(-1.0f32..=1.0));
                    }
                }
            }
        } else {
            let eps = self.epsilon();
            let noise = self.config.exploration_noise.unwrap_or(DEFAULT_EXPLORATION_NOISE);
            let mut action = std::mem::take(&mut self.action);
            self.agent.act_explore(&self.raw_obs, &mut self.rng, eps, noise, &mut action);
            self.action = action;
        }
        let env_action = self.agent.to_env_action(&self.action);
        let result = self
            .env
            .step(env_action.as_action(), &mut self.next_raw_obs)
            .with_context(|| format!("env step {}", self.step))?;
        self.agent.obs.encode(&self.next_raw_obs, &mut self.next_obs);
        self.replay.push(&self.obs, &self.action, result.reward as f32, &self.next_obs, result.terminated);
        self.step += 1;
        self.episode_return += result.reward;
        self.episode_length += 1;
        if result.terminated || result.truncated {
            let end = EpisodeEnd { episode_return: self.episode_return, length: self.episode_length };
            self.episode_return = 0.0;
            self.episode_length = 0;
            self.env.reset(None, &mut self.raw_obs);
            self.agent.obs.encode(&self.raw_obs, &mut self.obs);
            return Ok(Some(end));
        }
        std::mem::swap(&mut self.raw_obs, &mut self.next_raw_obs);
        std::mem::swap(&mut self.obs, &mut self.next_obs);
        Ok(None)
    }

    /// The configured number of gradient steps, once warm-up is over. Errors, naming the
    /// step, if a loss is not finite.
    pub fn train_step(&mut self) -> anyhow::Result<Option<UpdateLosses>> {
        if self.step < self.config.learning_starts.max(1) {
            return Ok(None);
        }
        let mut last = None;
        for _ in 0..self.config.gradient_steps {
            let batch = self.replay.sample(self.config.batch_size, &mut self.rng);
            match self.agent.update(&batch) {
                Some(l) => last = Some(l),
                None => bail!("a loss became NaN or infinite at step {}; training stopped", self.step),
            }
        }
        Ok(last)
    }
}

/// Trains SAC on `env`, evaluating on `eval_env` every `eval_every` steps and at the end.
pub fn train(run: &SacRun, env: Box<dyn Env>, mut eval_env: Box<dyn Env>, ctx: &mut RunCtx) -> anyhow::Result<TrainSummary> {
    let mut trainer = Trainer::new(&run.config, run.tau, run.seed, run.steps, run.threads, env)?;
    let checkpoint = ctx.checkpoint_dir.map(|d| d.join("latest.safetensors"));
    let log_every = trainer.config.log_every;
    let mut progress = Progress { step: 0, total: run.steps, last_return: None, last_eval: None };
    let mut sps_clock = (Instant::now(), 0u64);
    let mut last_losses = None;
    let mut interrupted = false;
    let mut last_checkpoint = None;

    while trainer.step < run.steps {
        if stop_requested() {
            interrupted = true;
            break;
        }
        let ended = trainer.env_step()?;
        let step = trainer.step;
        if let Some(end) = ended {
            ctx.logger.scalar("charts/episodic_return", step, end.episode_return)?;
            ctx.logger.scalar("charts/episodic_length", step, end.length as f64)?;
            progress.last_return = Some(end.episode_return);
        }
        match trainer.train_step() {
            Ok(Some(l)) => last_losses = Some(l),
            Ok(None) => {}
            Err(e) => {
                ctx.logger.flush()?;
                let kept = match (&checkpoint, last_checkpoint) {
                    (Some(path), Some(at)) => format!("the last good checkpoint, from step {at}, is intact at {}", path.display()),
                    _ => "no checkpoint had been written yet".to_string(),
                };
                return Err(anyhow::anyhow!("{e:#}; {kept}"));
            }
        }
        if step % log_every == 0 {
            if let Some(l) = &last_losses {
                log_losses(ctx, step, l)?;
            }
            let elapsed = sps_clock.0.elapsed().as_secs_f64();
            ctx.logger.scalar("charts/SPS", step, (step - sps_clock.1) as f64 / elapsed.max(1e-9))?;
            sps_clock = (Instant::now(), step);
            progress.step = step;
            (ctx.progress)(&progress);
        }
        if run.eval_every > 0 && step % run.eval_every == 0 && step < run.steps {
            let stats = eval_agent(&trainer.agent, eval_env.as_mut(), run.eval_episodes, &mut Vec::new())?;
            log_eval(ctx.logger, step, &stats)?;
            progress.last_eval = Some(stats.mean_return());
            if let Some(path) = &checkpoint {
                trainer.agent.save(path, step)?;
                last_checkpoint = Some(step);
            }
            ctx.logger.flush()?;
        }
    }

    let step = trainer.step;
    let mut entropies = Vec::new();
    let stats = eval_agent(&trainer.agent, eval_env.as_mut(), run.eval_episodes, &mut entropies)?;
    log_eval(ctx.logger, step, &stats)?;
    if !entropies.is_empty() {
        // Entropy of π(·|s) at every state the final evaluation visited.
        ctx.logger.histogram("eval/policy_entropy", step, &entropies)?;
    }
    progress.step = step;
    progress.last_eval = Some(stats.mean_return());
    (ctx.progress)(&progress);
    if let Some(path) = &checkpoint {
        trainer.agent.save(path, step)?;
    }
    ctx.logger.flush()?;
    Ok(TrainSummary {
        steps: step,
        final_eval_returns: stats.returns.clone(),
        final_policy_entropy: (!entropies.is_empty())
            .then(|| entropies.iter().sum::<f64>() / entropies.len() as f64),
        success_rate: stats.success_rate(),
        interrupted,
    })
}

fn log_losses(ctx: &mut RunCtx, step: u64, l: &UpdateLosses) -> anyhow::Result<()> {
    ctx.logger.scalar("losses/qf1_loss", step, l.qf1)?;
    ctx.logger.scalar("losses/qf2_loss", step, l.qf2)?;
    ctx.logger.scalar("losses/qf1_values", step, l.qf1_values)?;
    ctx.logger.scalar("losses/qf2_values", step, l.qf2_values)?;
    if let Some(a) = l.actor {
        ctx.logger.scalar("losses/actor_loss", step, a)?;
    }
    ctx.logger.scalar("losses/alpha", step, l.tau)?;
    if let Some(a) = l.tau_loss {
        ctx.logger.scalar("losses/alpha_loss", step, a)?;
    }
    if let Some(h) = l.entropy {
        ctx.logger.scalar("charts/policy_entropy", step, h)?;
    }
    Ok(())
}

/// Deterministic evaluation of `agent`, collecting the policy's entropy at visited states.
pub fn eval_agent(agent: &SacAgent, env: &mut dyn Env, episodes: usize, entropies: &mut Vec<f64>) -> anyhow::Result<EvalStats> {
    let mut policy = |obs: &[f32]| {
        let (a, h) = agent.act_deterministic(obs);
        if let Some(h) = h {
            entropies.push(h);
        }
        a
    };
    Ok(evaluate(env, episodes, &mut policy)?)
}

/// Result of [`bench`]: full training steps (env step, action, one update) per second.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub updates: u64,
    pub seconds: f64,
    pub updates_per_sec: f64,
    /// Steps per second at the median step time: the machine's rate when nothing else
    /// interrupts it (on a shared virtual machine the mean swings by a quarter run to run).
    pub median_updates_per_sec: f64,
    pub gflop_per_update: f64,
}

/// Times `updates` training steps after a warm-up that fills the batch, with logging off.
pub fn bench(config: &SacConfig, tau: Tau, env: Box<dyn Env>, updates: u64, threads: usize) -> anyhow::Result<BenchResult> {
    let mut config = config.clone();
    config.learning_starts = config.batch_size as u64;
    let warm = config.learning_starts + 20;
    let mut trainer = Trainer::new(&config, tau, 0, warm + updates, threads, env)?;
    while trainer.step < warm {
        trainer.env_step()?;
        trainer.train_step()?;
    }
    let mut step_seconds = Vec::with_capacity(updates as usize);
    let start = Instant::now();
    while trainer.step < warm + updates {
        let step_start = Instant::now();
        trainer.env_step()?;
        trainer.train_step()?;
        step_seconds.push(step_start.elapsed().as_secs_f64());
    }
    let seconds = start.elapsed().as_secs_f64();
    step_seconds.sort_by(f64::total_cmp);
    let median = step_seconds[step_seconds.len() / 2];
    Ok(BenchResult {
        updates,
        seconds,
        updates_per_sec: updates as f64 / seconds,
        median_updates_per_sec: 1.0 / median,
        gflop_per_update: 2.0 * trainer.agent.update_macs(config.batch_size) * config.gradient_steps as f64 / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::reference::{autograd_forward, autograd_net};
    use crate::NullLogger;
    use tame_envs::{Action, EnvError, StepResult};

    /// A corridor of `n` cells: start at 0, actions left/right, reward 1 and termination at
    /// the right end, truncation after `limit` steps.
    struct Corridor {
        n: usize,
        pos: usize,
        t: usize,
        limit: usize,
    }

    impl Env for Corridor {
        fn observation_space(&self) -> Space {
            Space::Discrete(self.n)
        }
        fn action_space(&self) -> Space {
            Space::Discrete(2)
        }
        fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
            self.pos = 0;
            self.t = 0;
            obs[0] = 0.0;
        }
        fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
            let Action::Discrete(a) = action else { panic!("discrete env") };
            self.pos = if a == 1 { (self.pos + 1).min(self.n - 1) } else { self.pos.saturating_sub(1) };
            self.t += 1;
            obs[0] = self.pos as f32;
            let done = self.pos == self.n - 1;
            Ok(StepResult { reward: if done { 1.0 } else { 0.0 }, terminated: done, truncated: !done && self.t >= self.limit })
        }
        fn state(&self) -> Vec<f64> {
            vec![self.pos as f64]
        }
        fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
            self.pos = state[0] as usize;
            obs[0] = self.pos as f32;
            Ok(())
        }
        fn success(&self) -> Option<bool> {
            Some(self.pos == self.n - 1)
        }
    }

    /// A point on a line steered toward 0: x' = clip(x + a/4, ±2), reward −x'², 30 steps.
    struct Seek {
        x: f64,
        t: usize,
        rng: ChaCha8Rng,
    }

    impl Env for Seek {
        fn observation_space(&self) -> Space {
            Space::Box { low: vec![-2.0], high: vec![2.0] }
        }
        fn action_space(&self) -> Space {
            Space::Box { low: vec![-1.0], high: vec![1.0] }
        }
        fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
            if let Some(s) = seed {
                self.rng = ChaCha8Rng::seed_from_u64(s);
            }
            self.x = self.rng.random_range(-1.5..1.5);
            self.t = 0;
            obs[0] = self.x as f32;
        }
        fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
            let Action::Continuous(a) = action else { panic!("continuous env") };
            self.x = (self.x + a[0].clamp(-1.0, 1.0) / 4.0).clamp(-2.0, 2.0);
            self.t += 1;
            obs[0] = self.x as f32;
            Ok(StepResult { reward: -self.x * self.x, terminated: false, truncated: self.t >= 30 })
        }
        fn state(&self) -> Vec<f64> {
            vec![self.x]
        }
        fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
            self.x = state[0];
            obs[0] = self.x as f32;
            Ok(())
        }
    }

    fn corridor() -> Box<dyn Env> {
        Box::new(Corridor { n: 6, pos: 0, t: 0, limit: 30 })
    }

    fn seek() -> Box<dyn Env> {
        Box::new(Seek { x: 0.0, t: 0, rng: ChaCha8Rng::seed_from_u64(0) })
    }

    fn small(regularizer: Regularizer) -> SacConfig {
        SacConfig { hidden: vec![32, 32], batch_size: 64, learning_rate: 1e-3, learning_starts: 200, regularizer, ..Default::default() }
    }

    fn run(config: SacConfig, tau: Tau, steps: u64, env: fn() -> Box<dyn Env>) -> TrainSummary {
        // Tiny networks: one thread is fastest, and immune to a busy second core.
        run_on(config, tau, steps, env, 1)
    }

    fn run_on(config: SacConfig, tau: Tau, steps: u64, env: fn() -> Box<dyn Env>, threads: usize) -> TrainSummary {
        let run = SacRun { config, tau, seed: 3, steps, eval_every: 0, eval_episodes: 5, threads };
        let mut logger = NullLogger;
        let mut progress = |_: &Progress| {};
        let mut ctx = RunCtx { logger: &mut logger, checkpoint_dir: None, progress: &mut progress };
        train(&run, env(), env(), &mut ctx).unwrap()
    }

    #[test]
    fn discrete_soft_and_hard_reach_the_corridor_end() {
        for tau in [Tau::Fixed(0.05), Tau::Fixed(0.0), Tau::Auto] {
            let s = run(small(Regularizer::KlUniform), tau, 1500, corridor);
            assert_eq!(s.success_rate, Some(1.0), "tau {tau}: {s:?}");
        }
    }

    #[test]
    fn continuous_soft_and_hard_beat_random_on_seek() {
        let mut random = Vec::new();
        let stats = {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let mut env = seek();
            evaluate(env.as_mut(), 5, &mut |_| PolicyAction::Continuous(vec![rng.random_range(-1.0..1.0)])).unwrap()
        };
        random.extend(stats.returns);
        let random_mean = random.iter().sum::<f64>() / random.len() as f64;
        for tau in [Tau::Auto, Tau::Fixed(0.0)] {
            let s = run(small(Regularizer::Entropy), tau, 1500, seek);
            let mean = s.final_eval_returns.iter().sum::<f64>() / s.final_eval_returns.len() as f64;
            assert!(mean > 0.3 * random_mean && mean > -3.0, "tau {tau}: {mean} vs random {random_mean}");
        }
    }

    #[test]
    fn same_seed_gives_identical_runs() {
        let a = run(small(Regularizer::Entropy), Tau::Auto, 400, seek);
        let b = run(small(Regularizer::Entropy), Tau::Auto, 400, seek);
        assert_eq!(a.final_eval_returns, b.final_eval_returns);
        assert_eq!(a.final_policy_entropy, b.final_policy_entropy);
    }

    #[test]
    fn thread_count_does_not_change_the_numbers() {
        // The second half of each minibatch on a helper thread or on this one: same halves,
        // same sums, same numbers. (Trainer::new skips the helper for networks this small, so
        // it is started by hand.)
        type MakeEnv = fn() -> Box<dyn Env>;
        let cases: [(Tau, MakeEnv, f32); 2] = [(Tau::Auto, seek, 0.3), (Tau::Fixed(0.1), corridor, 2.0)];
        for (tau, env, probe) in cases {
            let config = SacConfig { regularizer: Regularizer::KlUniform, ..small(Regularizer::Entropy) };
            let drive = |helper: bool| {
                let mut t = Trainer::new(&config, tau, 5, 400, 1, env()).unwrap();
                if helper {
                    t.agent.use_helper().unwrap();
                }
                let mut losses = Vec::new();
                while t.step < 400 {
                    t.env_step().unwrap();
                    if let Some(l) = t.train_step().unwrap() {
                        losses.push((l.qf1, l.qf2, l.actor, l.tau));
                    }
                }
                (losses, t.agent.act_deterministic(&[probe]))
            };
            let (here, helped) = (drive(false), drive(true));
            assert!(here.0.len() > 100, "tau {tau}: trained");
            assert_eq!(here, helped, "tau {tau}");
        }
        // And through `train` with more threads than shards.
        let one = run_on(small(Regularizer::Entropy), Tau::Auto, 300, seek, 1);
        let three = run_on(small(Regularizer::Entropy), Tau::Auto, 300, seek, 3);
        assert_eq!(one.final_eval_returns, three.final_eval_returns);
    }

    #[test]
    fn checkpoint_round_trips() {
        let dir = std::env::temp_dir().join(format!("tame-sac-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = small(Regularizer::Entropy);
        let mut t = Trainer::new(&config, Tau::Auto, 1, 300, 1, seek()).unwrap();
        while t.step < 300 {
            t.env_step().unwrap();
            t.train_step().unwrap();
        }
        let path = dir.join("latest.safetensors");
        t.agent.save(&path, 300).unwrap();
        let mut fresh = Trainer::new(&config, Tau::Auto, 2, 10, 1, seek()).unwrap().agent;
        assert_ne!(fresh.act_deterministic(&[0.3]).0, t.agent.act_deterministic(&[0.3]).0);
        assert_eq!(fresh.load(&path).unwrap(), 300);
        for x in [-1.0f32, 0.3] {
            assert_eq!(fresh.act_deterministic(&[x]).0, t.agent.act_deterministic(&[x]).0);
        }
        assert_eq!(fresh.tau_value(), t.agent.tau_value());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_of_the_other_variant_are_rejected() {
        let mut c = SacConfig { exploration_noise: Some(0.2), ..Default::default() };
        let err = c.resolve(&Space::Discrete(4), Tau::Fixed(0.0)).unwrap_err().to_string();
        assert!(err.contains("exploration_noise") && err.contains("continuous"), "{err}");
        let mut c = SacConfig { epsilon_end: Some(0.1), ..Default::default() };
        let boxed = Space::Box { low: vec![-1.0], high: vec![1.0] };
        assert!(c.resolve(&boxed, Tau::Fixed(0.0)).is_err());
        let mut c = SacConfig { gamma: 1.5, ..Default::default() };
        assert!(c.resolve(&boxed, Tau::Auto).unwrap_err().to_string().contains("gamma"));
    }

    /// Autograd's gradient of `loss` with respect to `leaves`, flattened in buffer order.
    fn flat_grad(loss: &Tensor, leaves: &[Tensor]) -> Tensor {
        let grads = Tensor::run_backward(&[loss], leaves, false, false);
        Tensor::cat(&grads.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(), 0)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// The squashed Gaussian as the paper writes it, with tensor ops autograd can follow:
    /// a = tanh(μ + σε), log π = Σ_j [log N(u_j; μ_j, σ_j) − log(1 − tanh² u_j)].
    fn reference_squash(out: &Tensor, noise: &Noise, hard: bool) -> (Tensor, Tensor) {
        let parts = out.chunk(2, -1);
        if hard {
            return (parts[0].tanh(), Tensor::new());
        }
        let eps = Tensor::from_slice(&noise.eps).view([-1, noise.d as i64]);
        let log_std = parts[1].clamp(LOG_STD_MIN, LOG_STD_MAX);
        let u = &parts[0] + log_std.exp() * &eps;
        let a = u.tanh();
        let log_normal = eps.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let one_minus_a2: Tensor = 1.0 - a.square();
        let log_pi = (log_normal - one_minus_a2.log()).sum_dim_intlist(-1, true, Kind::Float);
        (a, log_pi)
    }

    /// The hand-written critic and actor gradients of one shard equal autograd's gradients of
    /// the losses as the papers write them, for every variant.
    #[test]
    fn hand_written_gradients_match_autograd_on_the_papers_losses() {
        let boxed = |d: usize| Space::Box { low: vec![-1.0; d], high: vec![1.0; d] };
        let cases = [
            ("continuous soft", boxed(3), boxed(2), Tau::Fixed(0.3), Regularizer::Entropy),
            ("continuous soft, KL", boxed(3), boxed(2), Tau::Fixed(0.3), Regularizer::KlUniform),
            ("continuous hard", boxed(3), boxed(2), Tau::Fixed(0.0), Regularizer::Entropy),
            ("discrete soft", boxed(3), Space::Discrete(4), Tau::Fixed(0.3), Regularizer::KlUniform),
            ("discrete hard", boxed(3), Space::Discrete(4), Tau::Fixed(0.0), Regularizer::Entropy),
        ];
        for (name, obs_space, action_space, tau, regularizer) in cases {
            let mut config = SacConfig { hidden: vec![16, 8], regularizer, ..Default::default() };
            config.resolve(&action_space, tau).unwrap();
            let mut agent = SacAgent::new(&config, tau, &obs_space, &action_space, ChaCha8Rng::seed_from_u64(7)).unwrap();
            // Move the targets off the online critics, so that a mix-up would show.
            for (_, mut t) in agent.target_params.named() {
                let _ = t.g_add_scalar_(0.05);
            }
            let rows = 12i64;
            let obs = Tensor::randn([rows, 3], (Kind::Float, tch::Device::Cpu));
            let next_obs = Tensor::randn([rows, 3], (Kind::Float, tch::Device::Cpu));
            let actions = match action_space {
                Space::Discrete(n) => Tensor::randint(n as i64, [rows, 1], (Kind::Float, tch::Device::Cpu)),
                _ => Tensor::rand([rows, 2], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0,
            };
            let rewards = Tensor::randn([rows], (Kind::Float, tch::Device::Cpu));
            let terminated = Tensor::from_slice(&[0.0f32, 1.0]).repeat([rows / 2]);
            let batch = Batch {
                obs_actions: Tensor::cat(&[&obs, &actions], -1),
                obs: obs.shallow_clone(),
                actions: actions.shallow_clone(),
                rewards: rewards.shallow_clone(),
                next_obs: next_obs.shallow_clone(),
                terminated: terminated.shallow_clone(),
            };
            let k = agent.loss_consts(rows);
            let discrete = k.discrete;
            let (noise_next, noise_now) = if discrete || k.hard {
                (Noise::none(), Noise::none())
            } else {
                let mut rng = ChaCha8Rng::seed_from_u64(3);
                (agent.normal_noise(rows as usize, &mut rng), agent.normal_noise(rows as usize, &mut rng))
            };
            let shard_rows = ShardRows { batch: batch.rows(0, rows), noise_next: noise_next.clone(), noise_now: noise_now.clone() };

            // Critics: J_Q = Σ_i mean((Q_i(s, a) − y)²), y = r + γ(1 − d)·V̄(s') without grad.
            let sums = agent.first.critic_grads(shard_rows, &k);
            let critic_leaves: Vec<Vec<Tensor>> =
                ["critic1", "critic2"].iter().map(|n| autograd_net(&agent.critic_params, n, true)).collect();
            let targets: Vec<Vec<Tensor>> =
                ["critic1_target", "critic2_target"].iter().map(|n| autograd_net(&agent.target_params, n, false)).collect();
            let actor = autograd_net(&agent.actor_params, "actor", false);
            let min_target = |x: &Tensor| autograd_forward(&targets[0], x).minimum(&autograd_forward(&targets[1], x));
            // log|A| = log 4 discrete; log-volume of [-1, 1]² = 2·log 2 continuous.
            let c = if regularizer == Regularizer::KlUniform { 4f64.ln() } else { 0.0 };
            let tau_v = k.tau;
            let v_next = if discrete {
                let q = min_target(&next_obs);
                if k.hard {
                    let online = autograd_forward(&critic_leaves[0], &next_obs).minimum(&autograd_forward(&critic_leaves[1], &next_obs));
                    q.gather(-1, &online.argmax(-1, true), false)
                } else {
                    let logp = autograd_forward(&actor, &next_obs).log_softmax(-1, Kind::Float);
                    (logp.exp() * (q - (&logp + c) * tau_v)).sum_dim_intlist(-1, true, Kind::Float)
                }
            } else {
                let (a, log_pi) = reference_squash(&autograd_forward(&actor, &next_obs), &noise_next, k.hard);
                let q = min_target(&Tensor::cat(&[&next_obs, &a], -1));
                if k.hard { q } else { q - (log_pi + c) * tau_v }
            }
            .detach();
            let not_done: Tensor = 1.0 - &terminated;
            let y = rewards.unsqueeze(-1) + not_done.unsqueeze(-1) * k.gamma * v_next;
            let q_taken = |leaves: &[Tensor]| {
                if discrete {
                    autograd_forward(leaves, &obs).gather(-1, &actions.to_kind(Kind::Int64), false)
                } else {
                    autograd_forward(leaves, &Tensor::cat(&[&obs, &actions], -1))
                }
            };
            let losses: Vec<Tensor> = critic_leaves.iter().map(|l| (q_taken(l) - &y).square().mean(Kind::Float)).collect();
            for (i, loss) in losses.iter().enumerate() {
                let ours = sums.sse[i] / rows as f64;
                assert!((ours - loss.double_value(&[])).abs() < 1e-4 * (1.0 + ours.abs()), "{name}: critic {i} loss {ours}");
                let mean_q = q_taken(&critic_leaves[i]).mean(Kind::Float).double_value(&[]);
                let ours = sums.q[i] / rows as f64;
                assert!((ours - mean_q).abs() < 1e-4 * (1.0 + mean_q.abs()), "{name}: critic {i} mean Q {ours} vs {mean_q}");
            }
            let all: Vec<Tensor> = critic_leaves.iter().flatten().map(Tensor::shallow_clone).collect();
            let want = flat_grad(&(&losses[0] + &losses[1]), &all);
            let diff = max_diff(agent.first.critic_grad[0].buffer(), &want);
            assert!(diff < 1e-4, "{name}: critic gradient differs by {diff}");

            // Actor: J_π = mean(E_{a~π}[τ·(log π(a|s)) − min_i Q_i(s, a)]), critics constant.
            let sums = agent.first.actor_grads(&k);
            if discrete && k.hard {
                assert!(sums.is_none(), "{name}: the hard discrete policy has no actor step");
                continue;
            }
            let sums = sums.unwrap();
            let actor = autograd_net(&agent.actor_params, "actor", true);
            let critics: Vec<Vec<Tensor>> =
                ["critic1", "critic2"].iter().map(|n| autograd_net(&agent.critic_params, n, false)).collect();
            let min_q = |x: &Tensor| autograd_forward(&critics[0], x).minimum(&autograd_forward(&critics[1], x));
            let loss = if discrete {
                let logp = autograd_forward(&actor, &obs).log_softmax(-1, Kind::Float);
                (logp.exp() * (&logp * tau_v - min_q(&obs))).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float)
            } else {
                let (a, log_pi) = reference_squash(&autograd_forward(&actor, &obs), &noise_now, k.hard);
                let q = min_q(&Tensor::cat(&[&obs, &a], -1));
                if k.hard { (-q).mean(Kind::Float) } else { (log_pi * tau_v - q).mean(Kind::Float) }
            };
            let ours = sums.loss / rows as f64;
            assert!((ours - loss.double_value(&[])).abs() < 1e-4 * (1.0 + ours.abs()), "{name}: actor loss {ours}");
            let want = flat_grad(&loss, &actor);
            let diff = max_diff(agent.first.actor_grad.buffer(), &want);
            assert!(diff < 1e-4, "{name}: actor gradient differs by {diff}");
            assert!(want.abs().max().double_value(&[]) > 1e-3, "{name}: a vanishing gradient proves nothing");
        }
    }

    #[test]
    fn squashed_gaussian_log_prob_matches_change_of_variables() {
        let config = small(Regularizer::Entropy);
        let agent = SacAgent::new(&config, Tau::Fixed(0.2), &Space::Box { low: vec![0.0], high: vec![1.0] },
            &Space::Box { low: vec![-1.0], high: vec![1.0] }, ChaCha8Rng::seed_from_u64(0)).unwrap();
        let obs = Tensor::from_slice(&[0.5f32]).view([1, 1]).repeat([4, 1]);
        let noise = agent.normal_noise(4, &mut ChaCha8Rng::seed_from_u64(1));
        let s = agent.continuous_sample(&obs, &noise);
        let a = Tensor::from_slice(&s.action).view([4, 1]);
        let log_pi = Tensor::from_slice(&s.log_pi).view([4, 1]);
        let out = agent.actor.forward(&obs);
        let parts = out.chunk(2, -1);
        let (mean, std) = (&parts[0], parts[1].clamp(LOG_STD_MIN, LOG_STD_MAX).exp());
        let u = a.atanh();
        let gauss = ((&u - mean) / &std).square() * -0.5 - std.log() - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let want = gauss - (-a.square() + 1.0).log();
        let diff = (log_pi - want).abs().max().double_value(&[]);
        assert!(diff < 1e-3, "log-prob differs by {diff}");
    }
}
