//! SAC's training loop: the env steps and their exploration, the replay buffer, the updates
//! once warm-up is over, logging, checkpoints of the whole loop, and the `tame bench sac`
//! timing.

use std::time::Instant;

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tame_envs::Env;

use super::config::{DEFAULT_EPSILON, DEFAULT_EXPLORATION_NOISE};
use super::update::{HELPER_MIN_GFLOP, WORKERS};
use super::{Head, NonFinite, SacAgent, SacConfig, SacRun, UpdateLosses};
use crate::checkpoint::{Checkpoint, CheckpointWriter};
use crate::eval::{evaluate, EvalReport, EvalStats};
use crate::policy::Policy;
use crate::replay::ReplayBuffer;
use crate::run::{Learner, RunCtx, Schedule, Tau, TrainSummary};
use crate::Logger;

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
