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
//! Each update is shared by two fixed workers, the second on a helper thread: worker i trains
//! critic i, and the two take half of the actor's rows each. Every large matrix product spans
//! the whole minibatch, and what a worker computes does not depend on the thread that runs it,
//! so neither do the numbers.
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

use crate::checkpoint::{Checkpoint, CheckpointWriter};
use crate::eval::{evaluate, EvalReport, EvalStats, PolicyAction};
use crate::helper::Helper;
use crate::math::{argmax, log_softmax_rows};
use crate::nets::{AdamMoments, AdamSlice, GradViews, Mlp, ParamSet, Tape};
use crate::policy::Policy;
use crate::replay::{Batch, ReplayBuffer};
use crate::run::{Learner, RunCtx, Schedule, Tau, TrainSummary};
use crate::soft::Regularizer;
use crate::Logger;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

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
    /// Twin critics Q_1, Q_2 and their targets Q̄_1, Q̄_2, a parameter set each: critic i's
    /// gradient and Adam step belong to worker i alone.
    critic_params: [ParamSet; 2],
    critics: [Mlp; 2],
    target_params: [ParamSet; 2],
    /// The update's two workers (see [`SacAgent::update`]): the first runs on the calling
    /// thread, the second on a helper thread once [`SacAgent::use_helper`] has started one,
    /// else here too.
    first: Worker,
    second: Second,
    temperature: Temperature,
    /// Reparameterisation noise ε of the updates.
    noise_rng: ChaCha8Rng,
}

/// A quantity of an update that left f32's finite range: the run stops, naming it.
#[derive(Clone, Copy, Debug)]
pub struct NonFinite {
    pub quantity: &'static str,
    pub value: f64,
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
        Noise { eps, log_density }
    }

    /// No noise (discrete and τ = 0 updates draw none).
    fn none() -> Noise {
        Noise::default()
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
        let mut critic = |name: &str| {
            let (params, mut net) = ParamSet::new(&[(name, &critic_sizes)], &mut rng);
            let (target_params, mut target) = params.copy("_target");
            (params, net.remove(0), target_params, target.remove(0))
        };
        let (params1, critic1, target_params1, target1) = critic("critic1");
        let (params2, critic2, target_params2, target2) = critic("critic2");
        let (critic_params, critics, target_params) = ([params1, params2], [critic1, critic2], [target_params1, target_params2]);
        let targets = [target1, target2];

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
        // Worker i owns critic i's gradient and Adam step (with its target's averaging), and
        // half the actor's rows: its own actor gradient buffer and half the actor's Adam
        // step, which sums both buffers.
        let lr = config.learning_rate;
        let actor_grads: [Tensor; WORKERS] = std::array::from_fn(|_| actor_params.grad_buffer());
        let mut actor_adam = AdamSlice::split(&actor_params, lr, &actor_grads, None, WORKERS);
        let mut worker = |i: usize| {
            let critic_grad = critic_params[i].grad_buffer();
            let average = Some((&target_params[i], config.polyak));
            Worker {
                actor: actor.handle(),
                critic: critics[i].handle(),
                target: targets[i].handle(),
                critic_grad: critics[i].grad_views(&critic_grad),
                critic_adam: AdamSlice::split(&critic_params[i], lr, &[critic_grad], average, 1).remove(0),
                actor_grad: actor.grad_views(&actor_grads[i]),
                actor_adam: actor_adam.remove(0),
                tape: None,
            }
        };
        let (first, second) = (worker(0), worker(1));
        let log_reference = config.regularizer.log_reference(log_volume);
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

    /// One gradient step on critics, actor and temperature, with the Polyak update of the
    /// targets. Returns `None`, skipping the optimiser step of that loss, if a loss is NaN or
    /// infinite.
    ///
    /// Two workers share the work by network, so that every large matrix product spans the
    /// whole minibatch: worker i runs critic i and its target, and the two split the actor.
    /// Between the phases the per-row arithmetic of the losses (squashed Gaussian, TD target,
    /// twin minimum) runs here on the host. Critics are stepped first, then the actor against
    /// the updated critics (as SB3 and CleanRL order them). What a worker computes does not
    /// depend on which thread runs it, so neither do the numbers.
    pub fn update(&mut self, batch: &Batch) -> Result<UpdateLosses, NonFinite> {
        // ε for the target's a' and for the actor loss's a (continuous soft only).
        let (noise_next, noise_now) = if self.discrete() || self.hard {
            (Noise::none(), Noise::none())
        } else {
            let d = self.stored_action_dim();
            let mut draw = || Noise::draw(batch.len(), d, &mut self.noise_rng);
            (draw(), draw())
        };
        self.step(batch, &noise_next, &noise_now, true)
    }

    /// [`SacAgent::update`] at the given noise. With `apply` false nothing is stepped and only
    /// the gradient buffers are written (the actor's against the current critics), for tests.
    fn step(&mut self, batch: &Batch, noise_next: &Noise, noise_now: &Noise, apply: bool) -> Result<UpdateLosses, NonFinite> {
        let k = self.loss_consts(batch.len());
        let (rows, b_inv, d, n) = (batch.len(), 1.0 / k.batch, k.action_dim, k.outputs);
        // At τ = 0 discrete the policy is argmax Q itself, with no parameters to train.
        let actor_step = !(k.discrete && k.hard);

        // Phase 1: the actor at s' (for the target) and, taped for its backward pass, at s.
        let (next_out, now_out, actor_tape) = if actor_step {
            let (next_obs, obs) = (batch.next_obs.shallow_clone(), batch.obs.shallow_clone());
            let [(next_out, _), (now_out, tape)] = self.on_workers(
                move |w| (host(&w.actor.forward(&next_obs)), None),
                move |w| {
                    let (out, tape) = w.actor.forward_taped(&obs);
                    (host(&out), Some(tape))
                },
            );
            (next_out, now_out, tape)
        } else {
            (Vec::new(), Vec::new(), None)
        };

        // Phase 2: the target critics at s' and, taped, the critics at the stored (s, a); the
        // hard discrete policy also reads the online critics at s'.
        let policy_next = (!k.discrete).then(|| squash(&next_out, d, noise_next, k.hard));
        let next_input = match &policy_next {
            Some(s) => state_action(batch, true, &s.action, d),
            None => batch.next_obs.shallow_clone(),
        };
        let input = if k.discrete { batch.obs.shallow_clone() } else { batch.obs_actions.shallow_clone() };
        let online = k.discrete && k.hard;
        let (next_input2, input2) = (next_input.shallow_clone(), input.shallow_clone());
        let [c1, c2] = self.on_workers(
            move |w| w.critic_forward(&next_input, &input, online),
            move |w| w.critic_forward(&next_input2, &input2, online),
        );

        // Critic loss (Haarnoja et al. 2018, eq. 5 with the twin-min target of eq. 7):
        //   J_Q = E[(Q_i(s, a) − y)²],  y = r + γ(1 − d)·V̄(s'),
        //   V̄(s') = E_{a'~π}[min_i Q̄_i(s', a') − τ·(log π(a'|s') + c)]
        // (c = 0 for entropy, log|A| for KL to uniform), y without gradient. Discrete: E_{a'}
        // is the exact sum over actions (at τ = 0, one-hot on argmax_a' min_i Q_i(s', a')), and
        // Q_i(s, a) is read off Q_i(s, ·) at the stored action.
        let log_probs_next = if k.discrete && !k.hard { log_softmax_rows(&next_out, n) } else { Vec::new() };
        let online_min: Vec<f32> = c1.online_next.iter().zip(&c2.online_next).map(|(a, b)| a.min(*b)).collect();
        let y: Vec<f64> = (0..rows)
            .map(|r| {
                let min_target = |a: usize| c1.target_next[r * n + a].min(c2.target_next[r * n + a]) as f64;
                let v = match &policy_next {
                    Some(_) if k.hard => min_target(0),
                    Some(s) => min_target(0) - k.tau * (s.log_pi[r] + k.log_reference),
                    None if k.hard => min_target(argmax(&online_min[r * n..(r + 1) * n])),
                    None => (0..n)
                        .map(|a| {
                            let lp = log_probs_next[r * n + a];
                            lp.exp() * (min_target(a) - k.tau * (lp + k.log_reference))
                        })
                        .sum(),
                };
                let not_done = if batch.terminated(r) { 0.0 } else { 1.0 };
                batch.reward(r) as f64 + not_done * k.gamma * v
            })
            .collect();
        // ∂J_Q/∂Q_i = (2/B)·(Q_i − y), at the stored action only when discrete.
        let (mut sums1, mut sums2) = (CriticSums::default(), CriticSums::default());
        let [dq1, dq2] = [(&c1, &mut sums1), (&c2, &mut sums2)].map(|(c, sums)| {
            let mut dq = vec![0f32; rows * n];
            for (r, y) in y.iter().enumerate() {
                let i = r * n + if k.discrete { batch.action_row(r)[0] as usize } else { 0 };
                let err = c.q[i] as f64 - y;
                sums.sse += err * err;
                sums.q += c.q[i] as f64;
                dq[i] = (2.0 * b_inv * err) as f32;
            }
            Tensor::from_slice(&dq).view([rows as i64, n as i64])
        });
        let (qf1, qf2) = (sums1.sse * b_inv, sums2.sse * b_inv);
        // Checked before any parameter moves, so the state stays the last finite one.
        finite(&[("losses/qf1_loss", qf1), ("losses/qf2_loss", qf2), ("losses/qf1_values", sums1.q * b_inv),
            ("losses/qf2_values", sums2.q * b_inv)])?;

        // Phase 3: each critic's backward pass and Adam step, with its target's averaging
        // θ̄ ← (1 − ρ)θ̄ + ρθ in the same pass; then the updated critic where the actor loss
        // reads it.
        let policy_now = (actor_step && !k.discrete).then(|| squash(&now_out, d, noise_now, k.hard));
        let probe_input = match &policy_now {
            Some(s) => Some(state_action(batch, false, &s.action, d)),
            None => actor_step.then(|| batch.obs.shallow_clone()),
        };
        let probe = || match &probe_input {
            None => Probe::Skip,
            Some(x) if k.discrete => Probe::Values(x.shallow_clone()),
            Some(x) => Probe::Gradient(x.shallow_clone(), -b_inv),
        };
        let (probe1, probe2) = (probe(), probe());
        let [(q1, dx1), (q2, dx2)] =
            self.on_workers(move |w| w.critic_step(dq1, apply, probe1), move |w| w.critic_step(dq2, apply, probe2));

        let mut losses = UpdateLosses {
            qf1,
            qf2,
            qf1_values: sums1.q * b_inv,
            qf2_values: sums2.q * b_inv,
            actor: None,
            tau: k.tau,
            tau_loss: None,
            entropy: None,
        };
        if !actor_step {
            return Ok(losses);
        }

        // Actor loss (Haarnoja et al. 2018, eq. 7; Christodoulou 2019, eq. 12 for discrete):
        //   J_π = E_s E_{a~π}[τ·log π(a|s) − min_i Q_i(s, a)],
        // reparameterised through a = tanh(μ + σε) when continuous, an exact sum when
        // discrete. At τ = 0 continuous this is DDPG's −Q(s, tanh μ(s)). The critics pass
        // gradients to the action only, not to their weights.
        let mut d_out = vec![0f32; now_out.len()];
        let (mut loss, mut log_pi) = (0.0, 0.0);
        match &policy_now {
            Some(s) => {
                // ∂J/∂Q_i = −1/B on the rows where Q_i is the minimum, then back to the action
                // a. Each worker formed −(1/B)·∂Q_i/∂[s, a] on every row; rows are independent,
                // so choosing the rows afterwards is the same as masking them before.
                // Through a = tanh(u): ∂a/∂u = 1 − a². With u = μ + σε and
                // log π = Σ_j [log N(ε_j) − log σ_j − log(1 − a_j²)]: ∂log π/∂u = 2a and
                // ∂log π/∂log σ = −1 besides the path through u (∂u/∂log σ = σε). log σ's clamp
                // passes no gradient where it binds. At τ = 0, J = −Q(s, tanh μ), log σ unused.
                let width = k.obs_dim + d;
                for r in 0..rows {
                    let (q, dx) = if q1[r] <= q2[r] { (q1[r], &dx1) } else { (q2[r], &dx2) };
                    let q = q as f64;
                    loss += if k.hard { -q } else { k.tau * s.log_pi[r] - q };
                    if !k.hard {
                        log_pi += s.log_pi[r];
                    }
                    for j in 0..d {
                        let a = s.action[r * d + j] as f64;
                        let mut d_u = dx[r * width + k.obs_dim + j] as f64 * (1.0 - a * a);
                        if !k.hard {
                            d_u += 2.0 * k.tau * a * b_inv;
                            if s.clamp_open[r * d + j] {
                                d_out[r * 2 * d + d + j] = (d_u * s.std_eps[r * d + j] as f64 - k.tau * b_inv) as f32;
                            }
                        }
                        d_out[r * 2 * d + j] = d_u as f32;
                    }
                }
            }
            None => {
                // Per state J = Σ_a π_a·f_a with f = τ·log π − min_i Q_i. Through the softmax,
                // ∂J/∂z_k = π_k·(f_k − J) (the τ·Σ_a π_a·∂log π_a/∂z_k part sums to zero).
                let log_probs = log_softmax_rows(&now_out, n);
                let f: Vec<f64> = (0..rows * n).map(|i| k.tau * log_probs[i] - q1[i].min(q2[i]) as f64).collect();
                for r in 0..rows {
                    let row = r * n..(r + 1) * n;
                    let j: f64 = row.clone().map(|i| log_probs[i].exp() * f[i]).sum();
                    for i in row {
                        let p = log_probs[i].exp();
                        d_out[i] = (p * (f[i] - j) * b_inv) as f32;
                        log_pi += p * log_probs[i];
                    }
                    loss += j;
                }
            }
        }
        let actor_loss = loss * b_inv;
        finite(&[("losses/actor_loss", actor_loss)])?;

        // Phases 4 and 5: the actor's backward pass, half the rows each, then its Adam step,
        // half the parameters each over the sum of both halves' gradients.
        let tape = actor_tape.expect("phase 1 tapes the actor whenever it is trained");
        let d_out = Tensor::from_slice(&d_out).view([rows as i64, (now_out.len() / rows) as i64]);
        let [(tape1, d_out1), (tape2, d_out2)] = std::array::from_fn(|i| {
            let (start, end) = (rows * i / WORKERS, rows * (i + 1) / WORKERS);
            (tape.rows(start as i64, (end - start) as i64), d_out.narrow(0, start as i64, (end - start) as i64))
        });
        self.on_workers(
            move |w| w.actor_backward(&tape1, &d_out1),
            move |w| w.actor_backward(&tape2, &d_out2),
        );
        if apply {
            self.on_workers(|w| w.actor_adam.step(), |w| w.actor_adam.step());
        }
        losses.actor = Some(actor_loss);

        // Temperature loss (Haarnoja et al. 2018, eq. 18), on log τ as SB3 does:
        //   J(τ) = E_s E_{a~π}[−log τ · (log π(a|s) + H̄)],  ∂J/∂log τ = −E[log π + H̄],
        // which raises τ when the entropy is below the target H̄ and lowers it above.
        if !k.hard {
            let mean_log_pi = log_pi * b_inv;
            // Policy entropy H = −E[log π], exact for discrete, one sample per state continuous.
            losses.entropy = Some(-mean_log_pi);
            if let (Temperature::Auto { log_tau, opt, target_entropy }, true) = (&mut self.temperature, apply) {
                losses.tau_loss = Some(-*log_tau * (mean_log_pi + *target_entropy));
                opt.step(log_tau, -(mean_log_pi + *target_entropy));
                finite(&[("losses/alpha_loss", losses.tau_loss.unwrap_or(0.0)), ("losses/alpha", log_tau.exp())])?;
            }
        }
        Ok(losses)
    }

    /// The constants of an update's losses over a minibatch of `rows` rows.
    fn loss_consts(&self, rows: usize) -> LossConsts {
        LossConsts {
            tau: self.tau_value(),
            gamma: self.gamma,
            log_reference: self.log_reference,
            hard: self.hard,
            discrete: self.discrete(),
            obs_dim: self.obs.dim(),
            action_dim: self.stored_action_dim(),
            outputs: match self.head {
                Head::Discrete { n } => n,
                Head::Continuous { .. } => 1,
            },
            batch: rows as f64,
        }
    }

    /// Runs `first` and `second` on the two workers, side by side when the second lives on a
    /// helper thread; results in worker order.
    fn on_workers<R: Send + 'static>(
        &mut self,
        first: impl FnOnce(&mut Worker) -> R,
        second: impl FnOnce(&mut Worker) -> R + Send + 'static,
    ) -> [R; WORKERS] {
        match &mut self.second {
            Second::Here(worker) => [first(&mut self.first), second(worker)],
            Second::Helper(helper) => {
                let (a, b) = helper.join(|| first(&mut self.first), second);
                [a, b]
            }
            Second::Starting => unreachable!("the second worker is only in transit inside use_helper"),
        }
    }

    /// Moves the second worker onto a helper thread of its own, so that the two run side by
    /// side in every update.
    pub fn use_helper(&mut self) -> anyhow::Result<()> {
        if let Second::Here(_) = self.second {
            let Second::Here(worker) = std::mem::replace(&mut self.second, Second::Starting) else { unreachable!() };
            let helper = Helper::spawn("sac-worker-1", *worker).context("starting the SAC update's helper thread")?;
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

    /// π(·|s) of a discrete actor (one-hot argmax min Q at τ = 0); `None` for Box actions.
    pub fn discrete_probs(&self, raw_obs: &[f32]) -> Option<Vec<f64>> {
        let Head::Discrete { .. } = self.head else { return None };
        tch::no_grad(|| {
            let (probs, _) = self.discrete_policy(&self.obs_tensor(raw_obs));
            Vec::<f64>::try_from(probs.flatten(0, -1).to_kind(Kind::Double)).ok()
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
        for set in std::iter::once(&self.actor_params).chain(&self.critic_params).chain(&self.target_params) {
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
        let stored = Tensor::read_safetensors(path).map_err(|e| {
            anyhow::anyhow!("checkpoint {} is truncated or is not a safetensors checkpoint ({e}); train the run again", path.display())
        })?;
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

impl SacAgent {
    fn param_sets(&self) -> impl Iterator<Item = &ParamSet> {
        std::iter::once(&self.actor_params).chain(&self.critic_params).chain(&self.target_params)
    }

    /// Every parameter (under the names [`SacAgent::load`] reads), every Adam moment, the
    /// temperature with its optimiser, and the update noise's generator.
    fn save_state(&mut self, out: &mut CheckpointWriter) -> anyhow::Result<()> {
        for set in self.param_sets() {
            for (name, t) in set.named() {
                let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                out.f32_tensor(&name, &shape, &host(&t));
            }
        }
        let [(c1, a1), (c2, a2)] = self.on_workers(
            |w| (w.critic_adam.moments(), w.actor_adam.moments()),
            |w| (w.critic_adam.moments(), w.actor_adam.moments()),
        );
        let mut steps = std::collections::BTreeMap::new();
        for (name, m) in [("critic1", c1), ("critic2", c2), ("actor.0", a1), ("actor.1", a2)] {
            out.f32s(&format!("adam.{name}.m"), &m.m);
            out.f32s(&format!("adam.{name}.v"), &m.v);
            steps.insert(name.to_string(), m.t);
        }
        out.put("sac_adam_steps", &steps)?;
        if let Temperature::Auto { log_tau, opt, .. } = &self.temperature {
            out.f64s("temperature.log_tau", &[*log_tau]);
            out.put("sac_temperature", &serde_json::json!({ "log_tau": log_tau, "m": opt.m, "v": opt.v, "t": opt.t }))?;
        }
        out.put("sac_noise_rng", &tame_envs::RngState::of(&self.noise_rng))
    }

    /// Overwrites this agent (built from the same config) with [`SacAgent::save_state`].
    fn restore_state(&mut self, ckpt: &Checkpoint) -> anyhow::Result<()> {
        tch::no_grad(|| -> anyhow::Result<()> {
            for set in self.param_sets() {
                for (name, mut t) in set.named() {
                    let values = ckpt.f32s(&name, t.numel())?;
                    t.copy_(&Tensor::from_slice(&values).view(t.size().as_slice()));
                }
            }
            Ok(())
        })?;
        let steps: std::collections::BTreeMap<String, i32> = ckpt.get("sac_adam_steps")?;
        let moments = |name: &str| -> anyhow::Result<AdamMoments> {
            let t = *steps.get(name).with_context(|| format!("checkpoint {} has no Adam step count for {name}", ckpt.dir.display()))?;
            Ok(AdamMoments { t, m: ckpt.f32s_any(&format!("adam.{name}.m"))?, v: ckpt.f32s_any(&format!("adam.{name}.v"))? })
        };
        let (c1, a1, c2, a2) = (moments("critic1")?, moments("actor.0")?, moments("critic2")?, moments("actor.1")?);
        let set = |w: &mut Worker, c: AdamMoments, a: AdamMoments| w.critic_adam.set_moments(c).and_then(|_| w.actor_adam.set_moments(a));
        let [first, second] = self.on_workers(move |w| set(w, c1, a1), move |w| set(w, c2, a2));
        first.and(second).with_context(|| format!("checkpoint {}: Adam state", ckpt.dir.display()))?;
        if let Temperature::Auto { log_tau, opt, .. } = &mut self.temperature {
            #[derive(Deserialize)]
            struct Saved {
                log_tau: f64,
                m: f64,
                v: f64,
                t: i32,
            }
            let saved: Saved = ckpt.get("sac_temperature")?;
            (*log_tau, opt.m, opt.v, opt.t) = (saved.log_tau, saved.m, saved.v, saved.t);
        }
        let rng: tame_envs::RngState = ckpt.get("sac_noise_rng")?;
        self.noise_rng = rng.restore().map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", ckpt.dir.display()))?;
        Ok(())
    }
}

/// The first of `quantities` outside f32's finite range (the networks compute in f32, and a
/// logged f64 beyond it reads back as infinite).
fn finite(quantities: &[(&'static str, f64)]) -> Result<(), NonFinite> {
    match quantities.iter().find(|(_, v)| !(*v as f32).is_finite()) {
        Some(&(quantity, value)) => Err(NonFinite { quantity, value }),
        None => Ok(()),
    }
}

/// Workers of an update: two, for the two cores this toolkit is tuned on, one per critic.
/// Fixed, so the result does not depend on how many threads run them.
const WORKERS: usize = 2;

/// Matrix work per update below which a helper thread costs more than it saves (measured
/// with `tame bench sac`: 64-64 networks, 0.036 GFLOP, ran at 0.7–0.85x with it; 128-128,
/// 0.14 GFLOP, at 1.6–1.9x; 256-256, 0.55 GFLOP, at about 2x).
const HELPER_MIN_GFLOP: f64 = 0.1;

/// The constants of one update's losses.
#[derive(Clone, Copy, Debug)]
struct LossConsts {
    tau: f64,
    gamma: f64,
    /// c of the soft term τ·(log π + c).
    log_reference: f64,
    hard: bool,
    discrete: bool,
    /// Observation columns of a continuous critic's input `[s, a]`.
    obs_dim: usize,
    /// Floats per stored action (the dimension d of a continuous action).
    action_dim: usize,
    /// Outputs of a critic: |A| for Q(s, ·) when discrete, 1 for Q(s, a).
    outputs: usize,
    /// Rows of the minibatch: every loss is a mean over them.
    batch: f64,
}

/// One worker of an update: critic i with its target, its own handles on the actor (tch
/// tensors are not `Sync`), and the buffers its gradients go to.
struct Worker {
    actor: Mlp,
    critic: Mlp,
    target: Mlp,
    /// Where the critic's backward pass writes its gradient, and the critic's optimiser
    /// (which also averages the target).
    critic_grad: GradViews,
    critic_adam: AdamSlice,
    /// Where this worker's rows of the actor's backward pass write, and its half of the
    /// actor's optimiser.
    actor_grad: GradViews,
    actor_adam: AdamSlice,
    /// The critic's taped forward pass at the stored (s, a), kept for its backward pass.
    tape: Option<Tape>,
}

/// Where the second worker lives.
enum Second {
    Here(Box<Worker>),
    Helper(Helper<Worker>),
    /// Only while [`SacAgent::use_helper`] moves it.
    Starting,
}

/// A critic's sums over the minibatch of its squared error and of Q.
#[derive(Default)]
struct CriticSums {
    sse: f64,
    q: f64,
}

/// What a worker's critic read in the target phase, row-major on the host.
struct CriticOut {
    /// Q̄_i at s' (and the policy's a' when continuous).
    target_next: Vec<f32>,
    /// Q_i(s', ·), only for the hard discrete policy.
    online_next: Vec<f32>,
    /// Q_i at the stored s (and a when continuous).
    q: Vec<f32>,
}

/// How the actor loss reads a critic.
enum Probe {
    /// Continuous: Q_i at `[s, a]` and `scale`·∂Q_i/∂[s, a].
    Gradient(Tensor, f64),
    /// Discrete: Q_i(s, ·).
    Values(Tensor),
    /// No actor step (τ = 0 discrete).
    Skip,
}

impl Worker {
    /// Phase 2 of an update: the target critic at `next_input` (and the online one too when
    /// `online_next`), and the critic, taped, at `input`.
    fn critic_forward(&mut self, next_input: &Tensor, input: &Tensor, online_next: bool) -> CriticOut {
        let target_next = host(&self.target.forward(next_input));
        let online_next = if online_next { host(&self.critic.forward(next_input)) } else { Vec::new() };
        let (q, tape) = self.critic.forward_taped(input);
        self.tape = Some(tape);
        CriticOut { target_next, online_next, q: host(&q) }
    }

    /// Phase 3: the critic's backward pass from `dq` = ∂J_Q/∂Q_i and, when `apply`, its Adam
    /// step; then the updated critic read as `probe` says. Returns Q_i and the scaled input
    /// gradient there (empty when not asked for).
    fn critic_step(&mut self, dq: Tensor, apply: bool, probe: Probe) -> (Vec<f32>, Vec<f32>) {
        let tape = self.tape.take().expect("the critic's forward pass comes first");
        self.critic.backward(&tape, &dq, Some(&self.critic_grad), false);
        if apply {
            self.critic_adam.step();
        }
        match probe {
            Probe::Gradient(input, scale) => {
                let (q, tape) = self.critic.forward_taped(&input);
                let dx = self.critic.backward(&tape, &q.full_like(scale), None, true).expect("input gradient asked for");
                (host(&q), host(&dx))
            }
            Probe::Values(input) => (host(&self.critic.forward(&input)), Vec::new()),
            Probe::Skip => (Vec::new(), Vec::new()),
        }
    }

    /// Phase 4: the actor's backward pass over this worker's rows into its gradient buffer.
    fn actor_backward(&mut self, tape: &Tape, d_out: &Tensor) {
        self.actor.backward(tape, d_out, Some(&self.actor_grad), false);
    }
}

/// `[s, a]` per row of `batch` (s' when `next`), a continuous critic's input at the policy's
/// actions `action` (row-major `[rows, d]`).
fn state_action(batch: &Batch, next: bool, action: &[f32], d: usize) -> Tensor {
    let rows = batch.len();
    let width = batch.obs_dim() + d;
    let mut x = Vec::with_capacity(rows * width);
    for r in 0..rows {
        x.extend_from_slice(if next { batch.next_obs_row(r) } else { batch.obs_row(r) });
        x.extend_from_slice(&action[r * d..(r + 1) * d]);
    }
    Tensor::from_slice(&x).view([rows as i64, width as i64])
}

/// min(Q_1, Q_2) of the given twin (online or target), `[B, out]`.
fn min_q(twin: &[Mlp; 2], input: &Tensor) -> Tensor {
    twin[0].forward(input).minimum(&twin[1].forward(input))
}

/// The elements of a tensor, copied to the host.
fn host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.reshape([-1])).expect("an f32 tensor")
}

/// A continuous policy's actions at the actor's outputs, with what its backward pass needs.
struct Squashed {
    /// a ∈ [-1, 1]^d, row-major `[rows, d]`.
    action: Vec<f32>,
    /// log π(a|s) per row; empty at τ = 0.
    log_pi: Vec<f64>,
    /// σ·ε and whether log σ was inside its clamp, `[rows, d]`; empty at τ = 0.
    std_eps: Vec<f32>,
    clamp_open: Vec<bool>,
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
    let mut s = Squashed { action: Vec::with_capacity(rows * d), log_pi: Vec::new(), std_eps: Vec::new(), clamp_open: Vec::new() };
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
    /// up to [`WORKERS`] run an update's workers side by side (when an update has at least
    /// [`HELPER_MIN_GFLOP`] of matrix work) and libtorch gets the rest within each
    /// (`threads / WORKERS`, at least 1); the numbers do not depend on it.
    pub fn new(config: &SacConfig, tau: Tau, seed: u64, total_steps: u64, threads: usize, mut env: Box<dyn Env>) -> anyhow::Result<Self> {
        let mut config = config.clone();
        config.resolve(&env.action_space(), tau)?;
        // Stream 0: replay, warm-up, exploration; stream 1: weights and update noise.
        let mut agent_rng = ChaCha8Rng::seed_from_u64(seed);
        agent_rng.set_stream(1);
        let mut agent = SacAgent::new(&config, tau, &env.observation_space(), &env.action_space(), agent_rng)?;
        let threads = threads.max(1);
        let gflop = 2.0 * agent.update_macs(config.batch_size) / 1e9;
        if threads >= WORKERS && gflop >= HELPER_MIN_GFLOP {
            agent.use_helper()?;
        }
        tch::set_num_threads((threads / WORKERS).max(1) as i32);
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
                Ok(l) => last = Some(l),
                Err(NonFinite { quantity, value }) => {
                    bail!("{quantity} = {value:e} is not a finite f32 at step {}; training stopped", self.step)
                }
            }
        }
        Ok(last)
    }
}

impl Trainer {
    /// The agent, the replay buffer, the training env in mid-episode, the generator and the
    /// counters: everything [`Trainer::restore`] needs to continue bit for bit.
    pub fn save(&mut self, out: &mut CheckpointWriter) -> anyhow::Result<()> {
        self.agent.save_state(out)?;
        self.replay.save(out)?;
        out.f32s("trainer.raw_obs", &self.raw_obs);
        out.i64_scalar("step", self.step as i64);
        let env = self.env.snapshot().context("checkpointing the training env")?;
        let state = TrainerState {
            step: self.step,
            episode_return: self.episode_return,
            episode_length: self.episode_length,
            rng: tame_envs::RngState::of(&self.rng),
            env,
        };
        out.put("sac", &state)
    }

    /// Overwrites a trainer built from the same config with [`Trainer::save`]'s state.
    pub fn restore(&mut self, ckpt: &Checkpoint) -> anyhow::Result<()> {
        self.agent.restore_state(ckpt)?;
        self.replay.restore(ckpt)?;
        let state: TrainerState = ckpt.get("sac")?;
        let context = || format!("checkpoint {}", ckpt.dir.display());
        self.env.restore(&state.env, &mut self.raw_obs).with_context(context)?;
        self.raw_obs = ckpt.f32s("trainer.raw_obs", self.raw_obs.len())?;
        self.agent.obs.encode(&self.raw_obs, &mut self.obs);
        self.rng = state.rng.restore().map_err(|e| anyhow::anyhow!("{}: {e}", context()))?;
        (self.step, self.episode_return, self.episode_length) = (state.step, state.episode_return, state.episode_length);
        Ok(())
    }
}

/// The scalars of a SAC trainer's checkpoint (`state.json` → `sac`).
#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: u64,
    episode_return: f64,
    episode_length: u64,
    rng: tame_envs::RngState,
    env: tame_envs::EnvSnapshot,
}

/// SAC behind the [`Learner`] interface: one env step and its updates per
/// [`Learner::advance`], evaluated greedily on its own env.
pub struct SacLearner {
    trainer: Trainer,
    eval_env: Box<dyn Env>,
    eval_episodes: usize,
    eval_max_steps: u64,
    /// Losses of the latest update, logged every `log_every` steps.
    last_losses: Option<UpdateLosses>,
    sps_clock: (Instant, u64),
}

impl SacLearner {
    pub fn new(run: &SacRun, env: Box<dyn Env>, eval_env: Box<dyn Env>) -> anyhow::Result<Self> {
        let trainer = Trainer::new(&run.config, run.tau, run.seed, run.steps, run.threads, env)?;
        Ok(SacLearner {
            trainer,
            eval_env,
            eval_episodes: run.eval_episodes,
            eval_max_steps: run.eval_max_episode_steps,
            last_losses: None,
            sps_clock: (Instant::now(), 0),
        })
    }

    /// The agent being trained.
    pub fn agent(&self) -> &SacAgent {
        &self.trainer.agent
    }
}

impl Learner for SacLearner {
    fn env_steps(&self) -> u64 {
        self.trainer.step
    }

    fn advance(&mut self, logger: &mut dyn Logger) -> anyhow::Result<()> {
        let ended = self.trainer.env_step()?;
        let step = self.trainer.step;
        if let Some(end) = ended {
            logger.scalar("charts/episodic_return", step, end.episode_return)?;
            logger.scalar("charts/episodic_length", step, end.length as f64)?;
        }
        if let Some(l) = self.trainer.train_step()? {
            self.last_losses = Some(l);
        }
        if step % self.trainer.config.log_every == 0 {
            if let Some(l) = &self.last_losses {
                log_losses(logger, step, l)?;
            }
            let (since, at) = self.sps_clock;
            logger.scalar("charts/SPS", step, (step - at) as f64 / since.elapsed().as_secs_f64().max(1e-9))?;
            self.sps_clock = (Instant::now(), step);
        }
        Ok(())
    }

    fn evaluate(&mut self, logger: &mut dyn Logger, last: bool) -> anyhow::Result<EvalReport> {
        let mut entropies = Vec::new();
        let stats = eval_agent(&self.trainer.agent, self.eval_env.as_mut(), self.eval_episodes, self.eval_max_steps, &mut entropies)?;
        if last && !entropies.is_empty() {
            // Entropy of π(·|s) at every state the final evaluation visited.
            logger.histogram("eval/policy_entropy", self.trainer.step, &entropies)?;
        }
        let policy_entropy = (!entropies.is_empty()).then(|| entropies.iter().sum::<f64>() / entropies.len() as f64);
        Ok(EvalReport { stats, policy_entropy })
    }

    fn save(&mut self, out: &mut CheckpointWriter) -> anyhow::Result<()> {
        self.trainer.save(out)
    }

    fn restore(&mut self, ckpt: &Checkpoint) -> anyhow::Result<()> {
        self.trainer.restore(ckpt)?;
        self.sps_clock = (Instant::now(), self.trainer.step);
        Ok(())
    }

    fn policy(&mut self) -> Box<dyn Policy + '_> {
        Box::new(&mut self.trainer.agent)
    }
}

/// Trains SAC on `env` with the shared training loop, evaluating on `eval_env` every
/// `run.eval_every` steps (0: only at the end).
pub fn train(run: &SacRun, env: Box<dyn Env>, eval_env: Box<dyn Env>, ctx: &mut RunCtx) -> anyhow::Result<TrainSummary> {
    let mut learner = SacLearner::new(run, env, eval_env)?;
    let every = if run.eval_every == 0 { u64::MAX } else { run.eval_every };
    let schedule = Schedule { total_steps: run.steps, eval_every: every, eval_episodes: run.eval_episodes, checkpoint_every: every };
    crate::run::train(&mut learner, &schedule, &Default::default(), ctx)
}

fn log_losses(logger: &mut dyn Logger, step: u64, l: &UpdateLosses) -> anyhow::Result<()> {
    logger.scalar("losses/qf1_loss", step, l.qf1)?;
    logger.scalar("losses/qf2_loss", step, l.qf2)?;
    logger.scalar("losses/qf1_values", step, l.qf1_values)?;
    logger.scalar("losses/qf2_values", step, l.qf2_values)?;
    if let Some(a) = l.actor {
        logger.scalar("losses/actor_loss", step, a)?;
    }
    logger.scalar("losses/alpha", step, l.tau)?;
    if let Some(a) = l.tau_loss {
        logger.scalar("losses/alpha_loss", step, a)?;
    }
    if let Some(h) = l.entropy {
        logger.scalar("charts/policy_entropy", step, h)?;
    }
    Ok(())
}

/// Deterministic evaluation of `agent`, episodes cut after `max_steps` steps, collecting the
/// policy's entropy at visited states.
pub fn eval_agent(
    agent: &SacAgent,
    env: &mut dyn Env,
    episodes: usize,
    max_steps: u64,
    entropies: &mut Vec<f64>,
) -> anyhow::Result<EvalStats> {
    let mut policy = |obs: &[f32]| {
        let (a, h) = agent.act_deterministic(obs);
        if let Some(h) = h {
            entropies.push(h);
        }
        a
    };
    Ok(evaluate(env, episodes, max_steps, &mut policy)?)
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
        let run = SacRun {
            config,
            tau,
            seed: 3,
            steps,
            eval_every: 0,
            eval_episodes: 5,
            eval_max_episode_steps: crate::eval::DEFAULT_EVAL_MAX_EPISODE_STEPS,
            threads,
        };
        let mut logger = NullLogger;
        let mut progress = |_: &crate::run::Progress| {};
        let mut ctx = RunCtx { logger: &mut logger, checkpoint_dir: None, progress: &mut progress, on_eval: None };
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
            evaluate(env.as_mut(), 5, crate::eval::DEFAULT_EVAL_MAX_EPISODE_STEPS, &mut |_| {
                PolicyAction::Continuous(vec![rng.random_range(-1.0..1.0)])
            })
            .unwrap()
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
        // The second worker on a helper thread or on this one: same work, same numbers.
        // (Trainer::new skips the helper for networks this small, so it is started by hand.)
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
        // And through `train` with more threads than workers.
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
        let eps = Tensor::from_slice(&noise.eps).view([-1, out.size()[1] / 2]);
        let log_std = parts[1].clamp(LOG_STD_MIN, LOG_STD_MAX);
        let u = &parts[0] + log_std.exp() * &eps;
        let a = u.tanh();
        let log_normal = eps.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let one_minus_a2: Tensor = 1.0 - a.square();
        let log_pi = (log_normal - one_minus_a2.log()).sum_dim_intlist(-1, true, Kind::Float);
        (a, log_pi)
    }

    /// The hand-written critic and actor gradients of an update equal autograd's gradients of
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
            for (_, mut t) in agent.target_params.iter().flat_map(ParamSet::named) {
                let _ = t.g_add_scalar_(0.05);
            }
            let rows = 12usize;
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let stored_action = |rng: &mut ChaCha8Rng| match action_space {
                Space::Discrete(n) => vec![rng.random_range(0..n) as f32],
                _ => (0..2).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            };
            let mut host_rows = Vec::new();
            for r in 0..rows {
                host_rows.extend((0..3).map(|_| rng.sample::<f32, _>(StandardNormal)));
                host_rows.extend(stored_action(&mut rng));
                host_rows.extend((0..3).map(|_| rng.sample::<f32, _>(StandardNormal)));
                host_rows.push(rng.sample::<f32, _>(StandardNormal));
                host_rows.push((r % 2) as f32);
            }
            let batch = Batch::from_rows(host_rows, 3, agent.stored_action_dim());
            let column = |f: &dyn Fn(usize) -> Vec<f32>| {
                let v: Vec<f32> = (0..rows).flat_map(f).collect();
                Tensor::from_slice(&v).view([rows as i64, -1])
            };
            let obs = column(&|r| batch.obs_row(r).to_vec());
            let next_obs = column(&|r| batch.next_obs_row(r).to_vec());
            let actions = column(&|r| batch.action_row(r).to_vec());
            let rewards = column(&|r| vec![batch.reward(r)]).view([-1]);
            let terminated = column(&|r| vec![batch.terminated(r) as u8 as f32]).view([-1]);
            let k = agent.loss_consts(rows);
            let discrete = k.discrete;
            let (noise_next, noise_now) = if discrete || k.hard {
                (Noise::none(), Noise::none())
            } else {
                (agent.normal_noise(rows, &mut rng), agent.normal_noise(rows, &mut rng))
            };
            let ours = agent.step(&batch, &noise_next, &noise_now, false).ok().expect("finite losses");
            let second = match &agent.second {
                Second::Here(w) => w,
                _ => unreachable!("no helper started"),
            };
            let workers = [&agent.first, second.as_ref()];

            // Critics: J_Q = Σ_i mean((Q_i(s, a) − y)²), y = r + γ(1 − d)·V̄(s') without grad.
            let critic_leaves: Vec<Vec<Tensor>> =
                ["critic1", "critic2"].iter().zip(&agent.critic_params).map(|(n, p)| autograd_net(p, n, true)).collect();
            let targets: Vec<Vec<Tensor>> = ["critic1_target", "critic2_target"]
                .iter()
                .zip(&agent.target_params)
                .map(|(n, p)| autograd_net(p, n, false))
                .collect();
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
            let ours_loss = [ours.qf1, ours.qf2];
            let ours_q = [ours.qf1_values, ours.qf2_values];
            for (i, loss) in losses.iter().enumerate() {
                let (loss, ours_loss) = (loss.double_value(&[]), ours_loss[i]);
                assert!((ours_loss - loss).abs() < 1e-4 * (1.0 + loss.abs()), "{name}: critic {i} loss {ours_loss} vs {loss}");
                let mean_q = q_taken(&critic_leaves[i]).mean(Kind::Float).double_value(&[]);
                assert!((ours_q[i] - mean_q).abs() < 1e-4 * (1.0 + mean_q.abs()), "{name}: critic {i} mean Q {} vs {mean_q}", ours_q[i]);
                let want = flat_grad(&losses[i], &critic_leaves[i]);
                let diff = max_diff(workers[i].critic_grad.buffer(), &want);
                assert!(diff < 1e-4, "{name}: critic {i} gradient differs by {diff}");
            }

            // Actor: J_π = mean(E_{a~π}[τ·(log π(a|s)) − min_i Q_i(s, a)]), critics constant.
            if discrete && k.hard {
                assert!(ours.actor.is_none(), "{name}: the hard discrete policy has no actor step");
                continue;
            }
            let actor = autograd_net(&agent.actor_params, "actor", true);
            let critics: Vec<Vec<Tensor>> =
                ["critic1", "critic2"].iter().zip(&agent.critic_params).map(|(n, p)| autograd_net(p, n, false)).collect();
            let min_q = |x: &Tensor| autograd_forward(&critics[0], x).minimum(&autograd_forward(&critics[1], x));
            let loss = if discrete {
                let logp = autograd_forward(&actor, &obs).log_softmax(-1, Kind::Float);
                (logp.exp() * (&logp * tau_v - min_q(&obs))).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float)
            } else {
                let (a, log_pi) = reference_squash(&autograd_forward(&actor, &obs), &noise_now, k.hard);
                let q = min_q(&Tensor::cat(&[&obs, &a], -1));
                if k.hard { (-q).mean(Kind::Float) } else { (log_pi * tau_v - q).mean(Kind::Float) }
            };
            let ours = ours.actor.expect("an actor step");
            assert!((ours - loss.double_value(&[])).abs() < 1e-4 * (1.0 + ours.abs()), "{name}: actor loss {ours}");
            let want = flat_grad(&loss, &actor);
            // Each worker's gradient covers its half of the rows; Adam sums them.
            let diff = max_diff(&(workers[0].actor_grad.buffer() + workers[1].actor_grad.buffer()), &want);
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
