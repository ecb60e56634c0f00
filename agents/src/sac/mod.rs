//! Soft Actor-Critic with temperature τ, for continuous (`Box`) and discrete action spaces,
//! down to the hard-argmax limit τ = 0.
//!
//! The files, in reading order: `config` (hyper-parameters), this module (the agent: networks,
//! acting, checkpoints), `losses` (the critic, actor and temperature losses, each with its
//! equation), `update` (one gradient step on two workers, calling the losses) and `trainer`
//! (the env loop and exploration). The env's action space picks the variant:
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
//! sizes; unit tests check each loss, and a whole update of every variant, against autograd
//! on the losses as the papers write them.
//! Each update is shared by two fixed workers, the second on a helper thread: worker i trains
//! critic i, and the two take half of the actor's rows each. Every large matrix product spans
//! the whole minibatch, and what a worker computes does not depend on the thread that runs it,
//! so neither do the numbers.
//!
//! Randomness: every draw comes from `ChaCha8Rng`s seeded with the run's seed (one stream for
//! replay sampling, warm-up and exploration; one for initial weights and the
//! reparameterisation noise of updates), never from tch's process-global generator, so that
//! runs in one process do not disturb each other.

mod config;
mod losses;
mod trainer;
mod update;

use std::path::Path;

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Deserialize;
use tame_envs::Space;
use tch::{Kind, Tensor};

pub use config::{SacConfig, SacRun};
pub use trainer::{bench, eval_agent, train, BenchResult, EpisodeEnd, SacLearner, Trainer};

use crate::checkpoint::{Checkpoint, CheckpointWriter};
use crate::eval::PolicyAction;
use crate::math::argmax;
use crate::nets::{AdamMoments, AdamSlice, Mlp, ParamSet};
use crate::policy::Policy;
use crate::run::Tau;
use config::DEFAULT_TARGET_ENTROPY_SCALE;
use losses::{squash, Squashed, LOG_STD_MAX, LOG_STD_MIN};
use update::{Second, Worker, WORKERS};

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

/// min(Q_1, Q_2) of the given twin (online or target), `[B, out]`.
fn min_q(twin: &[Mlp; 2], input: &Tensor) -> Tensor {
    twin[0].forward(input).minimum(&twin[1].forward(input))
}

/// The elements of a tensor, copied to the host.
fn host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.reshape([-1])).expect("an f32 tensor")
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::losses::{LOG_STD_MAX, LOG_STD_MIN};
    use crate::eval::evaluate;
    use crate::run::{RunCtx, TrainSummary};
    use crate::soft::Regularizer;
    use tame_envs::Env;
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
