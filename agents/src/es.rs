//! OpenAI evolution strategies (Salimans et al. 2017): Gaussian smoothing in parameter space.
//!
//! ES maximises the smoothed objective J_σ(θ) = E_{ε∼N(0,I)}[F(θ + σε)], where F is an
//! episode's return. Smoothing makes J_σ differentiable even where F is not, and its gradient
//! needs only function values (the Gaussian score-function identity):
//!
//! ```text
//!     ∇_θ J_σ(θ) = (1/σ) E[F(θ + σε) ε]
//! ```
//!
//! One generation:
//! 1. draw n/2 pair seeds; pair k's noise ε_k is regenerated from its seed by the chunk of
//!    lanes (the worker) that evaluates the pair, and kept there until the update: no noise
//!    table is shared, only seeds go out and fitnesses come back;
//! 2. evaluate the mirrored (antithetic) members θ + σε_k and θ − σε_k, one episode each, in
//!    lock-step chunks on all cores (`es_rollout`);
//! 3. replace fitnesses by centred ranks u_i ∈ [−½, ½] (invariant to the reward scale, robust
//!    to outliers);
//! 4. estimate the gradient ĝ = 1/(nσ) Σ_i u_i ε_i = 1/(nσ) Σ_k (u_k⁺ − u_k⁻) ε_k;
//! 5. ascend with Adam or SGD on ĝ − λθ (L2 weight decay λ);
//! 6. update the running observation statistics from a fraction of the episodes.
//!
//! The 1/σ convention: ĝ keeps the 1/σ of the identity above, so it estimates ∇J_σ of the
//! rank-shaped objective itself (as evosax does). OpenAI's starter code drops it and folds it
//! into the learning rate; with Adam the difference only rescales ĝ against the weight decay.
//!
//! Every random number comes from the master seed through explicitly seeded generators, and
//! every sum over members runs in a fixed order, so a run is the same on any thread count.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tame_envs::{Env, EnvError, Space};

use crate::es_policy::{forward, scatter_lane, tanh_lanes, Activations, LANES};
use crate::es_rollout::{spec_for, ActSettings, Chunk, Head, LaneTask, ObsEncoding, PolicySpec};
pub use crate::es_rollout::{Episode, ObsNorm};
use crate::checkpoint::{Checkpoint, CheckpointWriter};
use crate::eval::{EvalStats, PolicyAction, EVAL_SEED_BASE};
use crate::policy::Policy;
use crate::run::Learner;
use crate::Logger;

/// Makes a fresh environment; called once per lane.
pub type EnvFactory = Arc<dyn Fn() -> Result<Box<dyn Env>, EnvError> + Send + Sync>;

/// Optimiser applied to the ascent direction ĝ − λθ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EsOptimizer {
    /// Adam (Kingma & Ba 2015), β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    Adam,
    /// SGD with heavy-ball momentum: v ← μv + d, θ ← θ + lr·v.
    Sgd,
}

/// Hyperparameters of an ES run. Defaults solve CartPole in a few generations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EsConfig {
    /// Members per generation; even (mirrored pairs), at least 2.
    pub population: usize,
    /// Initial smoothing width σ of the parameter noise.
    pub sigma: f64,
    /// σ is multiplied by this after every generation (1 keeps it fixed).
    pub sigma_decay: f64,
    /// σ never decays below this.
    pub sigma_min: f64,
    /// Step size of the optimiser.
    pub lr: f64,
    pub optimizer: EsOptimizer,
    /// Momentum μ of SGD (ignored by Adam).
    pub momentum: f64,
    /// L2 weight decay λ: the ascent direction is ĝ − λθ.
    pub weight_decay: f64,
    /// Hidden layer widths of the tanh MLP policy.
    pub hidden: Vec<usize>,
    /// Action temperature τ: softmax(logits/τ) for discrete actions, tanh mean + τ·N(0,1)
    /// for continuous ones; 0 is the hard argmax / deterministic policy. Not read from a
    /// config section: `tame train` sets it from the run's `tau`.
    #[serde(skip)]
    pub tau: f64,
    /// Normalise observations by running mean and std.
    pub obs_norm: bool,
    /// Fraction of episodes whose observations update the running statistics.
    pub obs_norm_fraction: f64,
    /// Episodes averaged into each member's fitness.
    pub episodes_per_member: usize,
    /// Episodes of each evaluation (deterministic policy, fixed seeds); set from the run's
    /// `eval_episodes` by `tame train`.
    #[serde(skip)]
    pub eval_episodes: usize,
    /// Cap on training episodes' length for envs without a time limit.
    pub max_episode_steps: u64,
    /// Cap on evaluation episodes' length (an episode cut there counts as truncated); set
    /// from the run's `eval_max_episode_steps` by `tame train`.
    #[serde(skip)]
    pub eval_max_episode_steps: u64,
    /// Worker threads; 0 runs on the caller's rayon pool. Results do not depend on it.
    #[serde(skip)]
    pub threads: usize,
    /// Master seed of every random draw; set from the run's `seed` by `tame train`.
    #[serde(skip)]
    pub seed: u64,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            population: 256,
            sigma: 0.1,
            sigma_decay: 1.0,
            sigma_min: 0.0,
            lr: 0.03,
            optimizer: EsOptimizer::Adam,
            momentum: 0.9,
            weight_decay: 0.005,
            hidden: vec![32, 32],
            tau: 0.0,
            obs_norm: true,
            obs_norm_fraction: 0.05,
            episodes_per_member: 1,
            eval_episodes: 10,
            max_episode_steps: 100_000,
            eval_max_episode_steps: crate::eval::DEFAULT_EVAL_MAX_EPISODE_STEPS,
            threads: 0,
            seed: 0,
        }
    }
}

/// Errors of ES: each names the bad value and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    #[error("{0}")]
    Config(String),
    #[error("ES policy cannot act in this env: {0}")]
    UnsupportedSpace(String),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("ES parameters became non-finite (NaN or infinite) at generation {0}")]
    NonFinite(u64),
    #[error("checkpoint {path}: {why}")]
    Checkpoint { path: String, why: String },
    #[error("evaluating the generation elsewhere failed: {0}")]
    Remote(String),
    #[error("stopped before the generation's episodes came back")]
    Stopped,
}

impl EsConfig {
    /// Rejects settings ES cannot run with, naming the value and the accepted range.
    pub fn validate(&self) -> Result<(), EsError> {
        use crate::limits::{check_hidden, MAX_CONFIG_INT, MAX_EPISODES, MAX_POPULATION, MAX_TAU};
        use crate::numfmt::compact as c;
        let bad = |msg: String| Err(EsError::Config(msg));
        if self.population < 2 || self.population % 2 == 1 || self.population > MAX_POPULATION {
            return bad(format!(
                "population {} is not allowed: mirrored sampling evaluates θ+σε and θ−σε in \
                 pairs; accepted: an even number from 2 to {MAX_POPULATION}",
                self.population
            ));
        }
        if !(self.sigma > 0.0 && self.sigma <= 1e3) {
            return bad(format!(
                "sigma {} is not allowed; accepted: a number > 0 and <= 1000 (parameters are f32; wider \
                 noise only measures noise)",
                c(self.sigma)
            ));
        }
        if !(self.tau >= 0.0 && self.tau <= MAX_TAU) {
            return bad(format!("tau {} is not allowed; accepted: 0 ≤ tau ≤ 1e6", c(self.tau)));
        }
        if !(self.sigma_decay > 0.0 && self.sigma_decay <= 1.0) {
            return bad(format!(
                "sigma_decay {} is not allowed; accepted: 0 < sigma_decay ≤ 1",
                c(self.sigma_decay)
            ));
        }
        if !(self.sigma_min >= 0.0 && self.sigma_min <= self.sigma) {
            return bad(format!(
                "sigma_min {} is not allowed; accepted: 0 ≤ sigma_min ≤ sigma ({})",
                c(self.sigma_min), c(self.sigma)
            ));
        }
        if !(self.lr > 0.0 && self.lr <= 10.0) {
            return bad(format!("lr {} is not allowed; accepted: 0 < lr ≤ 10", c(self.lr)));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "momentum {} is not allowed; accepted: 0 ≤ momentum < 1",
                c(self.momentum)
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay <= 100.0) {
            return bad(format!(
                "weight_decay {} is not allowed; accepted: 0 ≤ weight_decay ≤ 100",
                c(self.weight_decay)
            ));
        }
        if let Err(e) = check_hidden("es.hidden", &self.hidden) {
            return bad(e);
        }
        if !(0.0..=1.0).contains(&self.obs_norm_fraction) {
            return bad(format!(
                "obs_norm_fraction {} is not allowed; accepted: 0 ≤ fraction ≤ 1",
                c(self.obs_norm_fraction)
            ));
        }
        if !(1..=MAX_EPISODES).contains(&self.episodes_per_member) {
            return bad(format!(
                "episodes_per_member {} is not allowed; accepted: 1 to {MAX_EPISODES}",
                self.episodes_per_member
            ));
        }
        if !(1..=MAX_EPISODES).contains(&self.eval_episodes) {
            return bad(format!("eval_episodes {} is not allowed; accepted: 1 to {MAX_EPISODES}", self.eval_episodes));
        }
        if !(1..=MAX_CONFIG_INT).contains(&self.max_episode_steps) {
            return bad(format!(
                "max_episode_steps {} is not allowed; accepted: 1 to {MAX_CONFIG_INT} (the largest \
                 integer a TOML config can hold)",
                self.max_episode_steps
            ));
        }
        Ok(())
    }

    /// σ at generation g: σ_g = max(σ₀·decay^g, σ_min).
    pub fn sigma_at(&self, generation: u64) -> f64 {
        (self.sigma * self.sigma_decay.powf(generation as f64)).max(self.sigma_min)
    }
}

/// Checks that an ES policy with these hidden layers can act in an env with these spaces.
pub fn check_spaces(
    observation_space: &Space,
    action_space: &Space,
    hidden: &[usize],
) -> Result<(), EsError> {
    spec_for(observation_space, action_space, hidden)
        .map(|_| ())
        .map_err(EsError::UnsupportedSpace)
}

/// What one generation measured.
#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    /// Generations finished, this one included.
    pub generation: u64,
    /// Env steps taken by this generation's members.
    pub env_steps: u64,
    pub mean_fitness: f64,
    pub max_fitness: f64,
    pub mean_episode_length: f64,
    /// σ used by this generation.
    pub sigma: f64,
    /// ‖ĝ‖, the ES gradient estimate before weight decay.
    pub grad_norm: f64,
    /// ‖θ‖ after the update.
    pub param_norm: f64,
}

pub use crate::eval::EvalReport;

/// Running Σ obs, Σ obs², count: the statistics behind observation normalisation.
#[derive(Clone, Debug)]
struct ObsStats {
    sum: Vec<f64>,
    sumsq: Vec<f64>,
    count: u64,
}

impl ObsStats {
    /// mean = Σobs/N, std = √max(Σobs²/N − mean², 1e-4); identity until the first data.
    fn snapshot(&self) -> ObsNorm {
        if self.count == 0 {
            return ObsNorm::identity(self.sum.len());
        }
        let n = self.count as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let inv_std = self
            .sumsq
            .iter()
            .zip(&mean)
            .map(|(sq, m)| (1.0 / (sq / n - m * m).max(1e-4).sqrt()) as f32)
            .collect();
        ObsNorm {
            mean: mean.iter().map(|&m| m as f32).collect(),
            inv_std,
        }
    }
}

/// Pairs of one chunk of lanes: the unit a generation's pairs are split into, on this
/// learner's threads and on distributed workers alike, so that every sum over members runs
/// in the same order wherever the members were evaluated.
pub const PAIRS_PER_CHUNK: usize = LANES / 2;

/// One generation's random draws: σ, each mirrored pair's seed (its noise ε_k, env seeds and
/// action seeds all derive from it) and which members record observations. A contiguous
/// range of its pairs is itself a `Generation`, which is what a distributed worker evaluates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Generations finished before this one.
    pub index: u64,
    pub sigma: f64,
    pub pair_seeds: Vec<u64>,
    /// Two flags per pair: member 2k is θ + σε_k, member 2k+1 is θ − σε_k.
    pub recorded: Vec<bool>,
}

impl Generation {
    /// Pairs `pairs` of this generation, on their own.
    pub fn pairs(&self, pairs: std::ops::Range<usize>) -> Generation {
        Generation {
            index: self.index,
            sigma: self.sigma,
            recorded: self.recorded[2 * pairs.start..2 * pairs.end].to_vec(),
            pair_seeds: self.pair_seeds[pairs].to_vec(),
        }
    }
}

/// Evaluates whole generations somewhere other than on the learner's own lanes: `tame train
/// --redis` sends them to workers. An implementation splits the pairs at multiples of
/// [`PAIRS_PER_CHUNK`] and evaluates each part with a [`PairEvaluator`] built from the same
/// config, so the episodes, and with them the run, equal the local ones bit for bit.
pub trait Population: Send {
    /// One episode per member (summed over `episodes_per_member`), in member order; `None`
    /// when a stop was requested before every part came back.
    fn evaluate(&mut self, generation: &Generation, theta: &[f32], norm: &ObsNorm) -> anyhow::Result<Option<Vec<Episode>>>;
}

/// The lanes that evaluate mirrored pairs: the policy's layout, one [`Chunk`] of envs per
/// [`PAIRS_PER_CHUNK`] pairs, and the threads they run on. [`Es`] evaluates its generations
/// with one; a distributed worker evaluates its share of another process's generation with
/// one built from the same config.
pub struct PairEvaluator {
    cfg: EsConfig,
    spec: PolicySpec,
    make_env: EnvFactory,
    chunks: Vec<Chunk>,
    /// Worker threads, or `None` to run on the caller's rayon pool.
    pool: Option<rayon::ThreadPool>,
}

/// Runs `f` on `pool`'s threads, or on the current rayon pool.
fn in_pool<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

impl PairEvaluator {
    /// Validates the config and builds the policy layout for the env's spaces; chunks of
    /// envs are made as pairs arrive.
    pub fn new(cfg: EsConfig, make_env: EnvFactory) -> Result<Self, EsError> {
        cfg.validate()?;
        let probe = make_env()?;
        let spec = spec_for(&probe.observation_space(), &probe.action_space(), &cfg.hidden)
            .map_err(EsError::UnsupportedSpace)?;
        drop(probe);
        let pool = match cfg.threads {
            0 => None,
            t => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .map_err(|e| EsError::Config(format!("cannot start {t} worker threads: {e}")))?,
            ),
        };
        Ok(PairEvaluator { cfg, spec, make_env, chunks: Vec::new(), pool })
    }

    /// Number of policy parameters, the length of θ.
    pub fn num_params(&self) -> usize {
        self.spec.shape.num_params()
    }

    /// Observation features, the length of the normalisation's mean and 1/std.
    pub fn obs_features(&self) -> usize {
        self.spec.obs.features()
    }

    /// Chunks for `pairs` pairs, made when missing.
    fn ensure_chunks(&mut self, pairs: usize) -> Result<(), EsError> {
        let need = pairs.div_ceil(PAIRS_PER_CHUNK);
        while self.chunks.len() < need {
            self.chunks.push(Chunk::new(&self.spec, &*self.make_env)?);
        }
        Ok(())
    }

    /// Evaluates every member θ ± σε_k of `generation`'s pairs, one episode per
    /// `episodes_per_member` each (summed), and returns them in member order. Each chunk
    /// keeps its pairs' ε for [`weighted_noise_sum`](Self::weighted_noise_sum). The inputs
    /// may come from another process, so their sizes are checked first.
    pub fn evaluate(&mut self, generation: &Generation, theta: &[f32], norm: &ObsNorm) -> Result<Vec<Episode>, EsError> {
        let pairs = generation.pair_seeds.len();
        let (dim, features) = (self.num_params(), self.obs_features());
        let bad = |what: String| Err(EsError::Config(what));
        if theta.len() != dim {
            return bad(format!("θ has {} parameters; this policy has {dim}", theta.len()));
        }
        if norm.mean.len() != features || norm.inv_std.len() != features {
            return bad(format!(
                "the observation normalisation has {} means and {} scales; this env has {features} features",
                norm.mean.len(),
                norm.inv_std.len()
            ));
        }
        if generation.recorded.len() != 2 * pairs {
            return bad(format!("{} recording flags for {pairs} pairs; accepted: two per pair", generation.recorded.len()));
        }
        if !(generation.sigma > 0.0 && generation.sigma.is_finite()) {
            return bad(format!("sigma {} is not allowed; accepted: a finite number > 0", generation.sigma));
        }
        if pairs == 0 || 2 * pairs > crate::limits::MAX_POPULATION {
            return bad(format!("{pairs} pairs; accepted: 1 to {}", crate::limits::MAX_POPULATION / 2));
        }
        self.ensure_chunks(pairs)?;
        let chunks = &mut self.chunks[..pairs.div_ceil(PAIRS_PER_CHUNK)];
        let (spec, cfg) = (&self.spec, &self.cfg);
        let per_chunk = in_pool(self.pool.as_ref(), || rollout_pairs(chunks, spec, cfg, generation, theta, norm));
        let mut episodes = Vec::with_capacity(2 * pairs);
        for chunk in per_chunk {
            episodes.extend(chunk?);
        }
        episodes.truncate(2 * pairs);
        Ok(episodes)
    }

    /// Regenerates each pair's ε_k into its chunk, as [`evaluate`](Self::evaluate) would,
    /// while `work` runs on the calling thread: what a coordinator does while its workers
    /// evaluate, to form ĝ from seeds alone. The evaluator's threads take chunks in turn, and
    /// what they have not done once `work` returns, the calling thread joins in. (At the
    /// lowest priority, SCHED_IDLE, so as to leave a machine shared with workers to them,
    /// `tame bench es --redis` measured 62.5% and 64.5% of the local speed against 66.7% and
    /// 68.4% without.)
    pub fn fill_noise_during<R>(&mut self, pair_seeds: &[u64], work: impl FnOnce() -> R) -> Result<R, EsError> {
        self.ensure_chunks(pair_seeds.len())?;
        let threads = match self.cfg.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        };
        let dim = self.num_params();
        let todo = std::sync::Mutex::new(self.chunks.iter_mut().zip(pair_seeds.chunks(PAIRS_PER_CHUNK)));
        let fill = || {
            while let Some((chunk, seeds)) = todo.lock().expect("no panics while held").next() {
                regenerate_noise(&mut chunk.noise, seeds, dim);
            }
        };
        Ok(std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(fill);
            }
            let got = work();
            fill();
            got
        }))
    }

    /// Σ_k w_k ε_k over the pairs last evaluated or filled: each chunk sums its own pairs,
    /// then the chunks' sums are added in chunk order.
    fn weighted_noise_sum(&mut self, weights: &[f32]) -> Vec<f32> {
        let dim = self.num_params();
        let chunks = &mut self.chunks;
        let partials: Vec<Vec<f32>> = in_pool(self.pool.as_ref(), || {
            // Mutable only because an env is `Send` but not `Sync`; nothing is written.
            chunks
                .par_iter_mut()
                .zip(weights.par_chunks(PAIRS_PER_CHUNK))
                .map(|(chunk, ws)| {
                    let mut acc = vec![0.0f32; dim];
                    for (eps, &w) in chunk.noise.chunks_exact(dim).zip(ws) {
                        acc.iter_mut().zip(eps).for_each(|(a, e)| *a += w * e);
                    }
                    acc
                })
                .collect()
        });
        let mut sum = vec![0.0f32; dim];
        for partial in &partials {
            sum.iter_mut().zip(partial).for_each(|(g, p)| *g += p);
        }
        sum
    }
}

/// Step 2 on `chunks`, chunk c holding pairs c·P … (c+1)·P − 1 of `generation` in lanes 2p
/// and 2p+1: regenerate ε_k from its seed, perturb θ both ways, run the episodes.
fn rollout_pairs(
    chunks: &mut [Chunk],
    spec: &PolicySpec,
    cfg: &EsConfig,
    generation: &Generation,
    theta: &[f32],
    norm: &ObsNorm,
) -> Vec<Result<Vec<Episode>, EnvError>> {
    let (pairs, sigma) = (generation.pair_seeds.len(), generation.sigma);
    let (pair_seeds, recorded) = (&generation.pair_seeds, &generation.recorded);
    let settings = ActSettings { tau: cfg.tau, entropy_tau: None, max_steps: cfg.max_episode_steps };
    chunks
        .par_iter_mut()
        .enumerate()
        .map(|(c, chunk)| {
            let dim = theta.len();
            let first = (c * PAIRS_PER_CHUNK).min(pairs);
            regenerate_noise(&mut chunk.noise, &pair_seeds[first..(first + PAIRS_PER_CHUNK).min(pairs)], dim);
            let mut tasks = [LaneTask::default(); LANES];
            for p in 0..PAIRS_PER_CHUNK {
                let k = c * PAIRS_PER_CHUNK + p;
                if k >= pairs {
                    break;
                }
                let eps = &chunk.noise[p * dim..(p + 1) * dim];
                let (plus, minus) = (2 * p, 2 * p + 1);
                for (i, (&t, &e)) in theta.iter().zip(eps.iter()).enumerate() {
                    chunk.params[i * LANES + plus] = t + sigma as f32 * e;
                    chunk.params[i * LANES + minus] = t - sigma as f32 * e;
                }
                tasks[plus] = LaneTask { active: true, record_obs: recorded[2 * k], ..LaneTask::default() };
                tasks[minus] = LaneTask { active: true, record_obs: recorded[2 * k + 1], ..LaneTask::default() };
            }
            let mut total: Vec<Episode> = Vec::new();
            for e in 0..cfg.episodes_per_member {
                // A mirrored pair shares its env seed and action noise (common random
                // numbers), so that F⁺ − F⁻ reflects ±σε rather than luck.
                for p in 0..PAIRS_PER_CHUNK {
                    let k = c * PAIRS_PER_CHUNK + p;
                    if k < pairs {
                        let env_seed = mix(pair_seeds[k], 2 + e as u64);
                        tasks[2 * p].env_seed = env_seed;
                        tasks[2 * p + 1].env_seed = env_seed;
                        let action_seed = mix(pair_seeds[k], 1000 + e as u64);
                        tasks[2 * p].action_seed = action_seed;
                        tasks[2 * p + 1].action_seed = action_seed;
                    }
                }
                let episodes = chunk.rollout(spec, norm, settings, &tasks)?;
                if total.is_empty() {
                    total = episodes;
                } else {
                    for (t, ep) in total.iter_mut().zip(episodes) {
                        merge_episode(t, ep);
                    }
                }
            }
            Ok(total)
        })
        .collect()
}

/// An evolution-strategies learner: parameters, optimiser state, and the lanes it runs on.
pub struct Es {
    cfg: EsConfig,
    spec: PolicySpec,
    /// The lanes of the training population.
    lanes: PairEvaluator,
    /// Where generations are evaluated instead of on `lanes` (distributed runs).
    remote: Option<Box<dyn Population>>,
    /// The centre θ of the search distribution.
    theta: Vec<f32>,
    /// First and second Adam moments, or the SGD velocity in `m`.
    m: Vec<f32>,
    v: Vec<f32>,
    rng: ChaCha8Rng,
    obs_stats: ObsStats,
    norm: ObsNorm,
    eval_chunks: Vec<Chunk>,
    generation: u64,
    env_steps: u64,
}

impl Es {
    /// Validates the config, builds the policy for the env's spaces and one env per lane.
    pub fn new(cfg: EsConfig, make_env: EnvFactory) -> Result<Self, EsError> {
        let mut lanes = PairEvaluator::new(cfg.clone(), make_env)?;
        lanes.ensure_chunks(cfg.population / 2)?;
        let spec = lanes.spec.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let theta = spec.shape.init(&mut rng);
        let dim = theta.len();
        let obs_features = spec.obs.features();
        Ok(Es {
            spec,
            lanes,
            remote: None,
            theta,
            m: vec![0.0; dim],
            v: vec![0.0; dim],
            rng,
            obs_stats: ObsStats {
                sum: vec![0.0; obs_features],
                sumsq: vec![0.0; obs_features],
                count: 0,
            },
            norm: ObsNorm::identity(obs_features),
            eval_chunks: Vec::new(),
            generation: 0,
            env_steps: 0,
            cfg,
        })
    }

    /// Evaluates every generation with `remote` instead of on this learner's lanes; the
    /// gradient, update and statistics stay here.
    pub fn set_population(&mut self, remote: Box<dyn Population>) {
        self.remote = Some(remote);
    }

    pub fn config(&self) -> &EsConfig {
        &self.cfg
    }

    /// Env steps taken by all generations so far (evaluations not counted).
    pub fn env_steps(&self) -> u64 {
        self.env_steps
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of policy parameters.
    pub fn num_params(&self) -> usize {
        self.theta.len()
    }

    /// θ, the centre of the search distribution.
    pub fn theta(&self) -> &[f32] {
        &self.theta
    }

    /// Step 1: the next generation's σ, pair seeds and recording flags, drawn from `rng`.
    fn draw(&self, rng: &mut ChaCha8Rng) -> Generation {
        let n = self.cfg.population;
        let record_obs = self.cfg.obs_norm && matches!(self.spec.obs, ObsEncoding::Box(_));
        let pair_seeds = (0..n / 2).map(|_| rng.random()).collect();
        let recorded = (0..n).map(|_| record_obs && rng.random::<f64>() < self.cfg.obs_norm_fraction).collect();
        Generation { index: self.generation, sigma: self.cfg.sigma_at(self.generation), pair_seeds, recorded }
    }

    /// Runs one generation: perturb, evaluate, rank, estimate ĝ, update θ. A distributed
    /// generation stopped before its episodes came back is [`EsError::Stopped`], and leaves
    /// the learner as it was.
    pub fn step(&mut self) -> Result<GenerationStats, EsError> {
        let n = self.cfg.population;
        let pairs = n / 2;
        // Drawn from a copy that is kept once the generation is complete.
        let mut rng = self.rng.clone();
        let generation = self.draw(&mut rng);
        let sigma = generation.sigma;
        let Es { lanes, remote, theta, norm, .. } = self;
        let episodes = match remote {
            None => lanes.evaluate(&generation, theta, norm)?,
            Some(remote) => {
                // The ε_k for ĝ are regenerated here while the workers evaluate.
                let got = lanes.fill_noise_during(&generation.pair_seeds, || remote.evaluate(&generation, theta, norm))?;
                match got.map_err(|e| EsError::Remote(format!("{e:#}")))? {
                    Some(episodes) if episodes.len() == n => episodes,
                    Some(episodes) => {
                        return Err(EsError::Remote(format!("{} episodes came back for a population of {n}", episodes.len())))
                    }
                    None => return Err(EsError::Stopped),
                }
            }
        };

        let per_member = self.cfg.episodes_per_member as f64;
        let fitness: Vec<f64> = episodes.iter().map(|e| e.ret / per_member).collect();
        let steps: u64 = episodes.iter().map(|e| e.len).sum();

        // Steps 3-4: ĝ = 1/(nσ) Σ_k (u_k⁺ − u_k⁻) ε_k, summed chunk by chunk in chunk order.
        let u = centered_ranks(&fitness);
        let weights: Vec<f32> = (0..pairs)
            .map(|k| (u[2 * k] - u[2 * k + 1]) as f32)
            .collect();
        let mut grad = self.lanes.weighted_noise_sum(&weights);
        let scale = 1.0 / (n as f64 * sigma);
        grad.iter_mut()
            .for_each(|g| *g = (*g as f64 * scale) as f32);
        let grad_norm = norm2(&grad);

        // Step 5: ascend on d = ĝ − λθ.
        self.apply_update(&grad);
        if self.theta.iter().any(|t| !t.is_finite()) {
            return Err(EsError::NonFinite(self.generation + 1));
        }

        // Step 6: merge the recorded episodes' observations, in member order.
        for ep in episodes.iter().filter(|e| e.obs_count > 0) {
            let stats = &mut self.obs_stats;
            stats
                .sum
                .iter_mut()
                .zip(&ep.obs_sum)
                .for_each(|(s, v)| *s += v);
            stats
                .sumsq
                .iter_mut()
                .zip(&ep.obs_sumsq)
                .for_each(|(s, v)| *s += v);
            stats.count += ep.obs_count;
        }
        if self.cfg.obs_norm && matches!(self.spec.obs, ObsEncoding::Box(_)) {
            self.norm = self.obs_stats.snapshot();
        }

        self.rng = rng;
        self.generation += 1;
        self.env_steps += steps;
        Ok(GenerationStats {
            generation: self.generation,
            env_steps: steps,
            mean_fitness: fitness.iter().sum::<f64>() / n as f64,
            max_fitness: fitness.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean_episode_length: steps as f64 / (n as f64 * per_member),
            sigma,
            grad_norm,
            param_norm: norm2(&self.theta),
        })
    }

    /// Adam: m ← β₁m + (1−β₁)d, v ← β₂v + (1−β₂)d², θ ← θ + lr·m̂/(√v̂ + ε);
    /// SGD: m ← μm + d, θ ← θ + lr·m; with d = ĝ − λθ in both.
    fn apply_update(&mut self, grad: &[f32]) {
        let lr = self.cfg.lr as f32;
        let wd = self.cfg.weight_decay as f32;
        match self.cfg.optimizer {
            EsOptimizer::Adam => {
                let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
                let t = (self.generation + 1) as i32;
                let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
                for (((th, m), v), g) in self
                    .theta
                    .iter_mut()
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                    .zip(grad)
                {
                    let d = g - wd * *th;
                    *m = b1 * *m + (1.0 - b1) * d;
                    *v = b2 * *v + (1.0 - b2) * d * d;
                    *th += lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
            EsOptimizer::Sgd => {
                let mu = self.cfg.momentum as f32;
                for ((th, m), g) in self.theta.iter_mut().zip(&mut self.m).zip(grad) {
                    let d = g - wd * *th;
                    *m = mu * *m + d;
                    *th += lr * *m;
                }
            }
        }
    }

    /// Evaluates θ itself: `eval_episodes` episodes, episode i from env seed
    /// `EVAL_SEED_BASE + i` as for every agent, acting deterministically (argmax / tanh mean,
    /// i.e. τ = 0), in parallel.
    pub fn evaluate(&mut self) -> Result<EvalReport, EsError> {
        let policy = self.policy();
        if self.eval_chunks.is_empty() {
            let n = self.cfg.eval_episodes.div_ceil(LANES);
            self.eval_chunks = (0..n)
                .map(|_| Chunk::new(&self.spec, &*self.lanes.make_env))
                .collect::<Result<_, _>>()?;
        }
        let (chunks, cfg) = (&mut self.eval_chunks, &self.cfg);
        in_pool(self.lanes.pool.as_ref(), || {
            evaluate_in(
                &policy,
                chunks,
                cfg.eval_episodes,
                cfg.tau,
                cfg.eval_max_episode_steps,
            )
        })
    }

    /// The current policy: θ with the observation normalisation it is used with.
    pub fn policy(&self) -> EsPolicy {
        EsPolicy {
            spec: self.spec.clone(),
            theta: self.theta.clone(),
            norm: self.norm.clone(),
            env_steps: self.env_steps,
        }
    }
}

/// Runs `episodes` deterministic episodes of `policy` on the given chunks, in parallel.
fn evaluate_in(
    policy: &EsPolicy,
    chunks: &mut [Chunk],
    episodes: usize,
    entropy_tau: f64,
    max_steps: u64,
) -> Result<EvalReport, EsError> {
    let discrete = matches!(policy.spec.head, Head::Discrete(_));
    let settings = ActSettings {
        tau: 0.0,
        entropy_tau: discrete.then_some(entropy_tau),
        max_steps,
    };
    let results: Vec<Result<Vec<Episode>, EnvError>> = chunks
        .par_iter_mut()
        .enumerate()
        .map(|(c, chunk)| {
            let mut tasks = [LaneTask::default(); LANES];
            for (l, task) in tasks.iter_mut().enumerate() {
                let i = c * LANES + l;
                scatter_lane(&policy.theta, &mut chunk.params, l);
                *task = LaneTask {
                    active: i < episodes,
                    env_seed: EVAL_SEED_BASE + i as u64,
                    action_seed: 0,
                    record_obs: false,
                };
            }
            chunk.rollout(&policy.spec, &policy.norm, settings, &tasks)
        })
        .collect();
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.truncate(episodes);
    let steps: u64 = all.iter().map(|e| e.len).sum();
    Ok(EvalReport {
        stats: EvalStats {
            returns: all.iter().map(|e| e.ret).collect(),
            lengths: all.iter().map(|e| e.len).collect(),
            success: all.iter().map(|e| e.success).collect(),
            truncated: all.iter().map(|e| e.truncated).collect(),
        },
        policy_entropy: discrete
            .then(|| all.iter().map(|e| e.entropy_sum).sum::<f64>() / steps.max(1) as f64),
    })
}

/// A trained ES policy: parameters, layer sizes and observation normalisation.
#[derive(Clone, Debug)]
pub struct EsPolicy {
    spec: PolicySpec,
    theta: Vec<f32>,
    norm: ObsNorm,
    /// Training env steps when this policy was taken.
    pub env_steps: u64,
}

impl EsPolicy {
    /// Writes the policy as safetensors (`theta`, `obs_mean`, `obs_inv_std`, `sizes`,
    /// `env_steps`), atomically: a temporary file in the same directory, then a rename.
    pub fn save(&self, path: &Path) -> Result<(), EsError> {
        let fail = |why: String| EsError::Checkpoint {
            path: path.display().to_string(),
            why,
        };
        let sizes: Vec<i64> = self.spec.shape.sizes.iter().map(|&s| s as i64).collect();
        let tensors = [
            ("theta", tch::Tensor::from_slice(&self.theta)),
            ("obs_mean", tch::Tensor::from_slice(&self.norm.mean)),
            ("obs_inv_std", tch::Tensor::from_slice(&self.norm.inv_std)),
            ("sizes", tch::Tensor::from_slice(&sizes)),
            (
                "env_steps",
                tch::Tensor::from_slice(&[self.env_steps as i64]),
            ),
        ];
        let name = path
            .file_name()
            .ok_or_else(|| fail("no file name".into()))?
            .to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        tch::Tensor::write_safetensors(&tensors, &tmp).map_err(|e| fail(e.to_string()))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e.to_string())
        })
    }

    /// Layer sizes and heads, θ and the observation normalisation, for [`EsActor`].
    pub(crate) fn parts(&self) -> (&PolicySpec, &[f32], &ObsNorm) {
        (&self.spec, &self.theta, &self.norm)
    }

    /// Reads a policy written by [`EsPolicy::save`] for an env with these spaces.
    pub fn load(
        path: &Path,
        observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self, EsError> {
        let fail = |why: String| EsError::Checkpoint {
            path: path.display().to_string(),
            why,
        };
        let tensors = tch::Tensor::read_safetensors(path)
            .map_err(|e| fail(format!("truncated or not a safetensors checkpoint ({e}); train the run again")))?;
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| fail(format!("no tensor `{name}`")))
        };
        let to_f32 = |t: &tch::Tensor| Vec::<f32>::try_from(t).map_err(|e| fail(e.to_string()));
        let sizes = Vec::<i64>::try_from(get("sizes")?).map_err(|e| fail(e.to_string()))?;
        let sizes: Vec<usize> = sizes.iter().map(|&s| s as usize).collect();
        if sizes.len() < 2 {
            return Err(fail(format!("layer sizes {sizes:?} describe no network")));
        }
        let spec = spec_for(observation_space, action_space, &sizes[1..sizes.len() - 1])
            .map_err(EsError::UnsupportedSpace)?;
        if spec.shape.sizes != sizes {
            return Err(fail(format!(
                "network sizes {sizes:?} do not fit this env (it needs {:?})",
                spec.shape.sizes
            )));
        }
        let theta = to_f32(get("theta")?)?;
        let norm = ObsNorm {
            mean: to_f32(get("obs_mean")?)?,
            inv_std: to_f32(get("obs_inv_std")?)?,
        };
        if theta.len() != spec.shape.num_params() || norm.mean.len() != spec.obs.features() {
            return Err(fail("tensor lengths do not match the layer sizes".into()));
        }
        let env_steps = Vec::<i64>::try_from(get("env_steps")?).map_err(|e| fail(e.to_string()))?;
        Ok(EsPolicy {
            spec,
            theta,
            norm,
            env_steps: env_steps.first().map_or(0, |&s| s as u64),
        })
    }

    /// Deterministic evaluation on fresh envs from `make_env`, episode i from seed
    /// `EVAL_SEED_BASE + i` and cut after `max_steps` steps; entropy reported at temperature
    /// `tau`.
    pub fn evaluate(
        &self,
        make_env: &EnvFactory,
        episodes: usize,
        tau: f64,
        max_steps: u64,
    ) -> Result<EvalReport, EsError> {
        let mut chunks = (0..episodes.div_ceil(LANES))
            .map(|_| Chunk::new(&self.spec, &**make_env))
            .collect::<Result<Vec<_>, _>>()?;
        evaluate_in(
            self,
            &mut chunks,
            episodes,
            tau,
            max_steps,
        )
    }
}

/// An ES parameter vector played one observation at a time: the argmax logit or the tanh
/// mean, and π(·|s) = softmax(logits/τ) at the run's τ (one-hot at τ = 0).
pub struct EsActor {
    policy: EsPolicy,
    tau: f64,
    /// θ in lane 0 of the interleaved layout the batched forward pass reads.
    params: Vec<f32>,
    x: Vec<f32>,
    out: Vec<f32>,
    act: Activations,
}

impl EsActor {
    pub fn new(policy: EsPolicy, tau: f64) -> Self {
        let (spec, theta, _) = policy.parts();
        let mut params = vec![0.0; spec.shape.num_params() * LANES];
        scatter_lane(theta, &mut params, 0);
        let x = vec![0.0; spec.shape.inputs() * LANES];
        let out = vec![0.0; spec.shape.outputs() * LANES];
        let act = Activations::new(&spec.shape);
        EsActor { policy, tau, params, x, out, act }
    }

    /// The network's outputs at `obs` (logits, or the pre-tanh mean).
    fn outputs(&mut self, obs: &[f32]) -> Vec<f64> {
        let (spec, _, norm) = self.policy.parts();
        match spec.obs {
            ObsEncoding::Box(dim) => {
                for i in 0..dim {
                    self.x[i * LANES] = ((obs[i] - norm.mean[i]) * norm.inv_std[i]).clamp(-5.0, 5.0);
                }
            }
            ObsEncoding::OneHot(n) => {
                for i in 0..n {
                    self.x[i * LANES] = if i == obs[0] as usize { 1.0 } else { 0.0 };
                }
            }
        }
        forward(&spec.shape, &self.params, &self.x, &mut self.act, &mut self.out);
        (0..spec.shape.outputs()).map(|j| self.out[j * LANES] as f64).collect()
    }
}

impl Policy for EsActor {
    fn act(&mut self, obs: &[f32]) -> PolicyAction {
        let out = self.outputs(obs);
        match &self.policy.parts().0.head {
            Head::Discrete(_) => PolicyAction::Discrete(crate::math::argmax(&out)),
            Head::Continuous { center, half_width } => {
                // The same squashing tanh as the batched evaluation, so episodes match it.
                self.out.as_chunks_mut::<LANES>().0.iter_mut().for_each(tanh_lanes);
                let mean = |d: usize| self.out[d * LANES] as f64;
                PolicyAction::Continuous((0..center.len()).map(|d| center[d] + half_width[d] * mean(d).clamp(-1.0, 1.0)).collect())
            }
        }
    }
    fn action_probs(&mut self, obs: &[f32]) -> Option<Vec<f64>> {
        if !matches!(self.policy.parts().0.head, Head::Discrete(_)) {
            return None;
        }
        let logits = self.outputs(obs);
        Some(crate::math::softmax_or_argmax(&logits, self.tau))
    }
}

/// ES behind the [`Learner`] interface: one generation per [`Learner::advance`], logged at
/// the env steps reached (`es/*`, CleanRL's `charts/*`).
pub struct EsLearner {
    es: Es,
    start: Instant,
}

impl EsLearner {
    pub fn new(cfg: EsConfig, make_env: EnvFactory) -> Result<Self, EsError> {
        Ok(EsLearner { es: Es::new(cfg, make_env)?, start: Instant::now() })
    }

    /// Evaluates the generations with `remote` (see [`Es::set_population`]).
    pub fn with_population(mut self, remote: Box<dyn Population>) -> Self {
        self.es.set_population(remote);
        self
    }
}

impl Learner for EsLearner {
    fn env_steps(&self) -> u64 {
        self.es.env_steps()
    }

    fn advance(&mut self, log: &mut dyn Logger) -> anyhow::Result<()> {
        let (before, generation) = (self.es.env_steps(), self.es.generation() + 1);
        let g = match self.es.step() {
            Ok(g) => g,
            // A stop request came while workers evaluated: nothing changed, and the training
            // loop, seeing the request, checkpoints the state before this generation.
            Err(EsError::Stopped) => return Ok(()),
            Err(e) => anyhow::bail!("{e} (env steps from {before}); training stopped"),
        };
        let step = self.es.env_steps();
        let quantities = [
            ("es/sigma", g.sigma),
            ("es/grad_norm", g.grad_norm),
            ("es/param_norm", g.param_norm),
            ("es/mean_fitness", g.mean_fitness),
            ("es/max_fitness", g.max_fitness),
        ];
        if let Some((name, value)) = quantities.iter().find(|(_, v)| !v.is_finite()) {
            anyhow::bail!(
                "{name} = {value} is not finite at generation {generation} (env steps {before}..{step}); training stopped"
            );
        }
        for (name, value) in quantities {
            log.scalar(name, step, value)?;
        }
        log.scalar("charts/episodic_return", step, g.mean_fitness)?;
        log.scalar("charts/episodic_length", step, g.mean_episode_length)?;
        log.scalar("charts/SPS", step, g.env_steps as f64 / self.start.elapsed().as_secs_f64().max(1e-9))?;
        self.start = Instant::now();
        Ok(())
    }

    fn evaluate(&mut self, log: &mut dyn Logger, _last: bool) -> anyhow::Result<EvalReport> {
        let report = self.es.evaluate()?;
        if let Some(h) = report.policy_entropy {
            log.scalar("charts/policy_entropy", self.es.env_steps(), h)?;
        }
        Ok(report)
    }

    /// θ, the optimiser's moments, the observation statistics, the generator and the
    /// counters; under the names [`EsPolicy::load`] reads too, so `tame eval` can score it.
    fn save(&mut self, out: &mut CheckpointWriter) -> anyhow::Result<()> {
        let es = &self.es;
        out.f32s("theta", &es.theta);
        out.f32s("obs_mean", &es.norm.mean);
        out.f32s("obs_inv_std", &es.norm.inv_std);
        out.i64s("sizes", &es.spec.shape.sizes.iter().map(|&s| s as i64).collect::<Vec<_>>());
        out.i64s("env_steps", &[es.env_steps as i64]);
        out.f32s("optimizer.m", &es.m);
        out.f32s("optimizer.v", &es.v);
        out.f64s("obs_stats.sum", &es.obs_stats.sum);
        out.f64s("obs_stats.sumsq", &es.obs_stats.sumsq);
        out.put("es", &EsState {
            generation: es.generation,
            env_steps: es.env_steps,
            obs_count: es.obs_stats.count,
            rng: tame_envs::RngState::of(&es.rng),
        })
    }

    fn restore(&mut self, ckpt: &Checkpoint) -> anyhow::Result<()> {
        let es = &mut self.es;
        let state: EsState = ckpt.get("es")?;
        let (dim, features) = (es.theta.len(), es.obs_stats.sum.len());
        es.theta = ckpt.f32s("theta", dim)?;
        es.m = ckpt.f32s("optimizer.m", dim)?;
        es.v = ckpt.f32s("optimizer.v", dim)?;
        es.norm = ObsNorm { mean: ckpt.f32s("obs_mean", features)?, inv_std: ckpt.f32s("obs_inv_std", features)? };
        es.obs_stats = ObsStats {
            sum: ckpt.f64s("obs_stats.sum", features)?,
            sumsq: ckpt.f64s("obs_stats.sumsq", features)?,
            count: state.obs_count,
        };
        es.rng = state.rng.restore().map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", ckpt.dir.display()))?;
        es.generation = state.generation;
        es.env_steps = state.env_steps;
        Ok(())
    }

    fn policy(&mut self) -> Box<dyn Policy + '_> {
        Box::new(EsActor::new(self.es.policy(), self.es.config().tau))
    }
}

/// Trains for at least `total_steps` env steps (whole generations) with the shared training
/// loop, evaluating every `eval_every` env steps and at the end.
pub fn train(
    cfg: &EsConfig,
    make_env: EnvFactory,
    total_steps: u64,
    eval_every: u64,
    ctx: &mut crate::run::RunCtx<'_>,
) -> anyhow::Result<crate::run::TrainSummary> {
    let mut learner = EsLearner::new(cfg.clone(), make_env)?;
    let every = eval_every.max(1);
    let schedule = crate::run::Schedule {
        total_steps,
        eval_every: every,
        eval_episodes: cfg.eval_episodes,
        checkpoint_every: every,
    };
    crate::run::train(&mut learner, &schedule, &Default::default(), ctx)
}

/// The scalars of an ES checkpoint (`state.json` → `es`).
#[derive(Serialize, Deserialize)]
struct EsState {
    generation: u64,
    env_steps: u64,
    obs_count: u64,
    rng: tame_envs::RngState,
}

/// The ε_k of a chunk's pairs, one row of `dim` floats per seed of `seeds`: how the lanes and a
/// coordinator both regenerate the noise.
fn regenerate_noise(rows: &mut [f32], seeds: &[u64], dim: usize) {
    for (eps, &seed) in rows.chunks_exact_mut(dim).zip(seeds) {
        noise(seed, eps);
    }
}

/// Pair k's perturbation ε_k ∼ N(0, I), regenerated from its seed alone.
fn noise(seed: u64, eps: &mut [f32]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    eps.iter_mut().for_each(|e| *e = rng.sample(StandardNormal));
}

/// Centred ranks: the i-th smallest fitness gets i/(n−1) − ½, so the weights lie in [−½, ½]
/// and sum to 0. Ties are broken by member index, deterministically.
fn centered_ranks(fitness: &[f64]) -> Vec<f64> {
    let n = fitness.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| fitness[a].total_cmp(&fitness[b]).then(a.cmp(&b)));
    let mut u = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        u[i] = rank as f64 / (n - 1).max(1) as f64 - 0.5;
    }
    u
}

/// Derives an independent stream seed from a seed and a stream number (SplitMix64 finaliser).
fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn norm2(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt()
}

fn merge_episode(total: &mut Episode, ep: Episode) {
    total.ret += ep.ret;
    total.len += ep.len;
    total.entropy_sum += ep.entropy_sum;
    total.obs_count += ep.obs_count;
    if total.obs_sum.is_empty() {
        total.obs_sum = ep.obs_sum;
        total.obs_sumsq = ep.obs_sumsq;
    } else if !ep.obs_sum.is_empty() {
        total
            .obs_sum
            .iter_mut()
            .zip(&ep.obs_sum)
            .for_each(|(s, v)| *s += v);
        total
            .obs_sumsq
            .iter_mut()
            .zip(&ep.obs_sumsq)
            .for_each(|(s, v)| *s += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tame_envs::{Action, StepResult};

    /// A tiny task: observe x ∈ [−1, 1], be paid −(a − c·x)² for action a, for 20 steps.
    /// Continuous with `Box` actions and c = ½, or discrete with actions {−1, 0, 1} and c = 1.
    struct Track {
        discrete: bool,
        x: f64,
        t: u32,
        rng: ChaCha8Rng,
    }

    impl Track {
        fn factory(discrete: bool) -> EnvFactory {
            Arc::new(move || {
                Ok(Box::new(Track {
                    discrete,
                    x: 0.0,
                    t: 0,
                    rng: ChaCha8Rng::seed_from_u64(0),
                }) as Box<dyn Env>)
            })
        }
    }

    impl Env for Track {
        fn observation_space(&self) -> Space {
            Space::Box {
                low: vec![-1.0],
                high: vec![1.0],
            }
        }
        fn action_space(&self) -> Space {
            if self.discrete {
                Space::Discrete(3)
            } else {
                Space::Box {
                    low: vec![-1.0],
                    high: vec![1.0],
                }
            }
        }
        fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
            if let Some(s) = seed {
                self.rng = ChaCha8Rng::seed_from_u64(s);
            }
            self.t = 0;
            self.x = self.rng.random_range(-1.0..1.0);
            obs[0] = self.x as f32;
        }
        fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
            let a = match action {
                Action::Discrete(i) => i as f64 - 1.0,
                Action::Continuous(a) => a[0],
            };
            let c = if self.discrete { 1.0 } else { 0.5 };
            let reward = -(a - c * self.x).powi(2);
            self.t += 1;
            self.x = self.rng.random_range(-1.0..1.0);
            obs[0] = self.x as f32;
            Ok(StepResult {
                reward,
                terminated: false,
                truncated: self.t >= 20,
            })
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

    fn small(seed: u64) -> EsConfig {
        EsConfig {
            population: 20,
            hidden: vec![8],
            seed,
            eval_episodes: 9,
            ..EsConfig::default()
        }
    }

    #[test]
    fn es_improves_a_continuous_policy() {
        let mut es = Es::new(small(3), Track::factory(false)).unwrap();
        let before = es.evaluate().unwrap().mean_return();
        for _ in 0..60 {
            es.step().unwrap();
        }
        let after = es.evaluate().unwrap();
        assert_eq!(after.stats.returns.len(), 9);
        assert!(after.policy_entropy.is_none());
        // A zero policy earns −Σ(0.5x)² ≈ −20/12 ≈ −1.7; tracking 0.5·x earns 0.
        assert!(
            after.mean_return() > -0.1 && after.mean_return() > before,
            "{before} -> {}",
            after.mean_return()
        );
        assert_eq!(es.env_steps(), 60 * 20 * 20);
    }

    #[test]
    fn es_improves_a_discrete_policy_and_reports_entropy() {
        let cfg = EsConfig {
            tau: 0.5,
            ..small(4)
        };
        let mut es = Es::new(cfg, Track::factory(true)).unwrap();
        let before = es.evaluate().unwrap();
        // Near-uniform logits at the start: entropy close to log 3.
        assert!(before.policy_entropy.unwrap() > 1.0);
        for _ in 0..100 {
            es.step().unwrap();
        }
        let after = es.evaluate().unwrap();
        // Always a = 0 earns 20·E[−x²] ≈ −6.7; rounding x to {−1, 0, 1} earns 20·(−1/12) ≈ −1.7.
        assert!(after.mean_return() > -2.5, "{}", after.mean_return());
        assert!(after.policy_entropy.unwrap() < before.policy_entropy.unwrap());
    }

    #[test]
    fn same_seed_same_run_on_any_thread_count() {
        let run = |threads: usize, seed: u64| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut es = Es::new(
                    EsConfig {
                        tau: 0.3,
                        ..small(seed)
                    },
                    Track::factory(false),
                )
                .unwrap();
                let stats: Vec<(f64, f64)> = (0..5)
                    .map(|_| es.step().unwrap())
                    .map(|g| (g.mean_fitness, g.grad_norm))
                    .collect();
                (
                    stats,
                    es.policy().theta,
                    es.evaluate().unwrap().stats.returns,
                )
            })
        };
        let one = run(1, 11);
        assert_eq!(one, run(3, 11));
        assert_ne!(one.1, run(1, 12).1);
    }

    #[test]
    fn unsupported_action_space_is_an_error() {
        struct Unbounded;
        impl Env for Unbounded {
            fn observation_space(&self) -> Space {
                Space::Box {
                    low: vec![-1.0],
                    high: vec![1.0],
                }
            }
            fn action_space(&self) -> Space {
                Space::Box {
                    low: vec![f32::NEG_INFINITY],
                    high: vec![f32::INFINITY],
                }
            }
            fn reset(&mut self, _: Option<u64>, _: &mut [f32]) {}
            fn step(&mut self, _: Action<'_>, _: &mut [f32]) -> Result<StepResult, EnvError> {
                Err(EnvError::StepBeforeReset)
            }
            fn state(&self) -> Vec<f64> {
                vec![]
            }
            fn set_state(&mut self, _: &[f64], _: &mut [f32]) -> Result<(), EnvError> {
                Ok(())
            }
        }
        let factory: EnvFactory = Arc::new(|| Ok(Box::new(Unbounded) as Box<dyn Env>));
        let err = Es::new(EsConfig::default(), factory)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("action space") && err.contains("not supported"),
            "{err}"
        );
    }

    #[test]
    fn checkpoint_round_trip_gives_the_same_evaluation() {
        let mut es = Es::new(small(5), Track::factory(false)).unwrap();
        for _ in 0..3 {
            es.step().unwrap();
        }
        let dir = std::env::temp_dir().join(format!("tame-es-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("es.safetensors");
        es.policy().save(&path).unwrap();
        let probe = Track::factory(false)().unwrap();
        let loaded =
            EsPolicy::load(&path, &probe.observation_space(), &probe.action_space()).unwrap();
        let want = es.evaluate().unwrap().stats.returns;
        assert_eq!(
            loaded
                .evaluate(&Track::factory(false), 9, 0.0, crate::eval::DEFAULT_EVAL_MAX_EPISODE_STEPS)
                .unwrap()
                .stats
                .returns,
            want
        );
        assert_eq!(loaded.env_steps, es.env_steps());
        let wrong = Space::Discrete(3);
        assert!(EsPolicy::load(&path, &probe.observation_space(), &wrong).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn centered_ranks_are_uniform_on_half_interval() {
        let u = centered_ranks(&[3.0, -1.0, 10.0, 3.0]);
        assert_eq!(u, vec![-0.5 + 1.0 / 3.0, -0.5, 0.5, -0.5 + 2.0 / 3.0]);
        assert!(u.iter().sum::<f64>().abs() < 1e-12);
        // Invariant to monotone transformations of the fitness.
        let v = centered_ranks(&[3f64.exp(), -1f64.exp(), 10f64.exp(), 3f64.exp()]);
        assert_eq!(u, v);
    }

    #[test]
    fn noise_is_a_function_of_the_seed() {
        let (mut a, mut b, mut c) = (vec![0.0; 1000], vec![0.0; 1000], vec![0.0; 1000]);
        noise(5, &mut a);
        noise(5, &mut b);
        noise(6, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mean = a.iter().map(|&x| x as f64).sum::<f64>() / 1000.0;
        let var = a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / 1000.0;
        assert!(
            mean.abs() < 0.15 && (var - 1.0).abs() < 0.15,
            "mean {mean} var {var}"
        );
    }

    #[test]
    fn bad_settings_are_rejected_with_the_value() {
        let check = |cfg: EsConfig, needle: &str| {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        };
        check(
            EsConfig {
                population: 7,
                ..EsConfig::default()
            },
            "population 7",
        );
        check(
            EsConfig {
                population: 0,
                ..EsConfig::default()
            },
            "population 0",
        );
        check(
            EsConfig {
                sigma: 0.0,
                ..EsConfig::default()
            },
            "sigma 0",
        );
        check(
            EsConfig {
                sigma: -0.1,
                ..EsConfig::default()
            },
            "sigma -0.1",
        );
        check(
            EsConfig {
                tau: -1.0,
                ..EsConfig::default()
            },
            "tau -1",
        );
        check(
            EsConfig {
                tau: f64::NAN,
                ..EsConfig::default()
            },
            "tau NaN",
        );
        assert!(EsConfig::default().validate().is_ok());
    }

    #[test]
    fn sigma_schedule_decays_to_its_floor() {
        let cfg = EsConfig {
            sigma: 0.1,
            sigma_decay: 0.5,
            sigma_min: 0.02,
            ..EsConfig::default()
        };
        assert_eq!(cfg.sigma_at(0), 0.1);
        assert_eq!(cfg.sigma_at(1), 0.05);
        assert_eq!(cfg.sigma_at(10), 0.02);
    }
}
