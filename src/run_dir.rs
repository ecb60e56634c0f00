//! Run configuration and run directories, shared by every agent `tame train` runs.
//!
//! A run is described by a [`RunConfig`]: the common fields (agent, env, τ, seed, steps,
//! evaluation, threads) and one section per agent (`[sac]`, ...), each the agent's own serde
//! struct. Precedence: built-in defaults < `--config FILE` (TOML) < command-line flags. The
//! resolved config is saved as `config.toml` in the run directory:
//!
//! ```text
//! runs/<env>__<agent>__tau<τ>__seed<S>__<YYYYmmdd-HHMMSS>/
//!     events.out.tfevents.*       TensorBoard
//!     config.toml                 the resolved config; `tame eval` rebuilds the agent from it
//!     checkpoints/step-<12 digits>/  the last two full checkpoints (older runs:
//!                                 checkpoints/latest.safetensors, weights only)
//!     videos/step<N>.gif          with capture_video: the first evaluation episode at step N
//!     summary.json                written atomically at the end
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tame_agents::eval::DEFAULT_EVAL_MAX_EPISODE_STEPS;
use tame_agents::run::{Tau, TrainSummary};
use tame_agents::es::EsConfig;
use tame_agents::sac::SacConfig;
use tame_agents::limits::{mlp_params, MAX_CONFIG_INT, MAX_NETWORK_PARAMS, MAX_TAU};
use tame_agents::numfmt::compact;
use tame_envs::Env;

use crate::cli_values::MAX_EVAL_EPISODES;

/// The agents `tame train` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Soft Actor-Critic (continuous or discrete, by the env's action space).
    Sac,
    /// OpenAI evolution strategies: Gaussian smoothing (σ) in parameter space.
    Es,
}

impl AgentKind {
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Sac => "sac",
            AgentKind::Es => "es",
        }
    }

    /// τ when neither file nor flag sets it: SAC tunes it (SB3's `ent_coef="auto"`).
    fn default_tau(self) -> Tau {
        match self {
            AgentKind::Sac => Tau::Auto,
            // ES explores in parameter space; its policies act deterministically by default.
            AgentKind::Es => Tau::Fixed(0.0),
        }
    }

    /// Env steps when neither file nor flag sets them.
    fn default_steps(self) -> u64 {
        match self {
            AgentKind::Sac => 10_000,
            // About 10 s at ES speeds; solves CartPole (configs/es-*.toml set more where needed).
            AgentKind::Es => 2_000_000,
        }
    }
}

/// A run's configuration as a TOML file gives it: every field optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// `sac` (default) or `es`.
    pub agent: Option<AgentKind>,
    /// Env name (`tame env list`); default `pendulum`.
    pub env: Option<String>,
    /// Temperature: a number >= 0 (0 = hard argmax) or "auto".
    pub tau: Option<Tau>,
    /// Seed of every random draw of the run (default 1).
    pub seed: Option<u64>,
    /// Env steps to train for.
    pub steps: Option<u64>,
    /// Env steps between evaluations (default: a tenth of the run).
    pub eval_every: Option<u64>,
    /// Episodes per evaluation (default 10).
    pub eval_episodes: Option<usize>,
    /// Steps after which an evaluation episode is cut and counted as truncated (default: the
    /// env's time limit, or 10,000 for an env without one).
    pub eval_max_episode_steps: Option<u64>,
    /// Env steps between full checkpoints (default: eval_every, so one at each
    /// evaluation); one is also written at the end and when the run is stopped.
    pub checkpoint_every: Option<u64>,
    /// Intra-op threads for tch (default: the machine's cores). Results depend only on seed
    /// and config, but are compared bit for bit at equal thread counts.
    pub threads: Option<usize>,
    /// SAC hyper-parameters (`[sac]` section).
    pub sac: Option<SacConfig>,
    /// ES hyper-parameters (`[es]` section).
    pub es: Option<EsConfig>,
    /// Record the first evaluation episode at every evaluation as `videos/step<N>.gif` and
    /// a TensorBoard image (default false; `tame train --capture-video`).
    pub capture_video: Option<bool>,
}

/// A fully resolved configuration: every common field set, the agent's section filled.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub agent: AgentKind,
    pub env: String,
    pub tau: Tau,
    pub seed: u64,
    pub steps: u64,
    pub eval_every: u64,
    pub eval_episodes: usize,
    pub eval_max_episode_steps: u64,
    pub checkpoint_every: u64,
    pub threads: usize,
    pub file: RunConfig,
}

impl RunConfig {
    /// Reads a TOML config; unknown keys are errors that list the accepted ones.
    pub fn from_file(path: &Path) -> anyhow::Result<RunConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {}", path.display(), e.to_string().trim_end()))
    }

    /// Fields set in `over` replace those in `self` (flags over file). Agent sections are
    /// replaced whole; flags never set them.
    pub fn overridden_by(mut self, over: RunConfig) -> RunConfig {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            agent, env, tau, seed, steps, eval_every, eval_episodes, eval_max_episode_steps, checkpoint_every, threads,
            sac, es, capture_video
        );
        self
    }

    /// Fills defaults, checks ranges, and checks the agent's section against the env.
    pub fn resolve(mut self) -> anyhow::Result<Resolved> {
        let agent = *self.agent.get_or_insert(AgentKind::Sac);
        let env_name = self.env.get_or_insert_with(|| "pendulum".into()).clone();
        let tau = *self.tau.get_or_insert(agent.default_tau());
        if let Tau::Fixed(t) = tau {
            if t > MAX_TAU {
                bail!(
                    "tau = {} is out of range; accepted: 0 <= tau <= 1e6 or auto (beyond 1e6, τ·log π \
                     and the squared TD error overflow f32 in the update)",
                    compact(t)
                );
            }
        }
        // Every integer here goes into config.toml, whose integers are signed 64-bit.
        let int_max = format!("{MAX_CONFIG_INT} (the largest integer a TOML config can hold)");
        let seed = *self.seed.get_or_insert(1);
        if seed > MAX_CONFIG_INT {
            bail!("seed = {seed} is out of range; accepted: 0 to {int_max}");
        }
        let steps = *self.steps.get_or_insert(agent.default_steps());
        if !(1..=MAX_CONFIG_INT).contains(&steps) {
            bail!("steps = {steps} is out of range; accepted: 1 to {int_max}");
        }
        let eval_every = *self.eval_every.get_or_insert(steps.div_ceil(10));
        if !(1..=MAX_CONFIG_INT).contains(&eval_every) {
            bail!(
                "eval_every = {eval_every} is out of range; accepted: 1 to {int_max} (env steps between \
                 evaluations; the final evaluation always runs)"
            );
        }
        let checkpoint_every = *self.checkpoint_every.get_or_insert(eval_every);
        if !(1..=MAX_CONFIG_INT).contains(&checkpoint_every) {
            bail!(
                "checkpoint_every = {checkpoint_every} is out of range; accepted: 1 to {int_max} (env steps \
                 between checkpoints)"
            );
        }
        let eval_episodes = *self.eval_episodes.get_or_insert(10);
        if !(1..=MAX_EVAL_EPISODES as usize).contains(&eval_episodes) {
            bail!("eval_episodes = {eval_episodes} is out of range; accepted: 1 to {MAX_EVAL_EPISODES}");
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = *self.threads.get_or_insert(cores);
        if threads == 0 || threads > 1024 {
            bail!("threads = {threads} is out of range; accepted: 1..=1024");
        }
        let env = make_env(&env_name)?;
        let env_limit = tame_envs::time_limit(&env_name)?;
        let eval_max_episode_steps = *self
            .eval_max_episode_steps
            .get_or_insert(env_limit.map_or(DEFAULT_EVAL_MAX_EPISODE_STEPS, u64::from));
        if !(1..=MAX_CONFIG_INT).contains(&eval_max_episode_steps) {
            bail!(
                "eval_max_episode_steps = {eval_max_episode_steps} is out of range; accepted: 1 to {int_max}                  (steps after which an evaluation episode is cut; default: the env's time limit, or                  {DEFAULT_EVAL_MAX_EPISODE_STEPS} for an env without one)"
            );
        }
        if agent != AgentKind::Es && self.es.is_some() {
            bail!("the config has an [es] section but the agent is {}; use agent = \"es\"", agent.name());
        }
        if agent == AgentKind::Es && self.sac.is_some() {
            bail!("the config has a [sac] section but the agent is es; use agent = \"sac\"");
        }
        match agent {
            AgentKind::Sac => {
                let sac = self.sac.get_or_insert_with(SacConfig::default);
                sac.resolve(&env.action_space(), tau).with_context(|| format!("env {env_name}"))?;
                check_sac_memory(sac, &env.observation_space(), &env.action_space(), steps)
                    .with_context(|| format!("env {env_name}"))?;
            }
            AgentKind::Es => {
                let es = self.es.get_or_insert_with(EsConfig::default);
                es.tau = match tau {
                    Tau::Fixed(t) => t,
                    Tau::Auto => bail!(
                        "tau = auto is not supported by the es agent (it has no target entropy to \
                         tune to); accepted: a number >= 0 (0 = hard argmax / deterministic)"
                    ),
                };
                es.seed = seed;
                es.eval_episodes = eval_episodes;
                es.eval_max_episode_steps = eval_max_episode_steps;
                es.validate()?;
                tame_agents::es::check_spaces(&env.observation_space(), &env.action_space(), &es.hidden)
                    .with_context(|| format!("env {env_name}"))?;
                let (input, output) = (encoded_width(&env.observation_space()), encoded_width(&env.action_space()));
                check_params("es.hidden", mlp_params(input, &es.hidden, output), input)
                    .with_context(|| format!("env {env_name}"))?;
            }
        }
        Ok(Resolved {
            agent,
            env: env_name,
            tau,
            seed,
            steps,
            eval_every,
            eval_episodes,
            eval_max_episode_steps,
            checkpoint_every,
            threads,
            file: self,
        })
    }
}

impl Resolved {
    /// The resolved config as TOML, as saved in `config.toml`.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(&self.file).context("writing the config as TOML")
    }

    /// `<env>__<agent>__tau<τ>__seed<S>`: the run directory's name before its time stamp.
    /// τ is written exactly but short (1e-300, not 300 digits) and the env part is cut to 64
    /// characters, so the name stays far below the file systems' 255-byte limit.
    pub fn run_name(&self) -> String {
        let env: String =
            self.env.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect();
        let tau = match self.tau {
            Tau::Fixed(t) => tame_agents::numfmt::exact_short(t),
            Tau::Auto => "auto".into(),
        };
        format!("{env}__{}__tau{tau}__seed{}", self.agent.name(), self.seed)
    }
}

/// Most bytes a replay buffer may take (8 GiB); more is refused before the run starts.
const MAX_REPLAY_BYTES: u64 = 8 << 30;

/// Width of a space as a network sees it: one-hot for `Discrete(n)`, the dimension for a Box.
fn encoded_width(space: &tame_envs::Space) -> usize {
    match space {
        tame_envs::Space::Discrete(n) => *n,
        other => other.dim(),
    }
}

/// Refuses a network of more than [`MAX_NETWORK_PARAMS`] parameters, naming its size.
fn check_params(what: &str, params: usize, input: usize) -> anyhow::Result<()> {
    if params > MAX_NETWORK_PARAMS {
        bail!(
            "{what}: a network with input width {input} would have {params} parameters ({:.1} MiB in f32); \
             accepted: at most {MAX_NETWORK_PARAMS} parameters ({} MiB) per network; use narrower layers \
             or a smaller env (discrete observations are one-hot, one input per state)",
            params as f64 * 4.0 / (1 << 20) as f64,
            MAX_NETWORK_PARAMS * 4 >> 20
        );
    }
    Ok(())
}

/// SAC's memory before anything is allocated: its largest network and the replay buffer,
/// which holds min(buffer_size, steps) rows of f32 (obs, next obs, action, reward, done).
fn check_sac_memory(sac: &SacConfig, obs: &tame_envs::Space, act: &tame_envs::Space, steps: u64) -> anyhow::Result<()> {
    let input = encoded_width(obs);
    let actions = encoded_width(act);
    let (actor_out, critic_in, critic_out) = match act {
        tame_envs::Space::Discrete(_) => (actions, input, actions),
        _ => (2 * actions, input.saturating_add(actions), 1),
    };
    let params = mlp_params(input, &sac.hidden, actor_out).max(mlp_params(critic_in, &sac.hidden, critic_out));
    check_params("sac.hidden", params, input)?;
    let rows = (sac.buffer_size as u64).min(steps);
    let row_bytes = 4 * (2 * input as u64 + act.dim() as u64 + 2);
    let bytes = rows.saturating_mul(row_bytes);
    if bytes > MAX_REPLAY_BYTES {
        bail!(
            "sac.buffer_size = {}: the replay buffer would hold {rows} transitions of {row_bytes} bytes = \
             {:.1} GiB; accepted: at most {} GiB (lower buffer_size or steps; discrete observations \
             are stored one-hot)",
            sac.buffer_size,
            bytes as f64 / (1u64 << 30) as f64,
            MAX_REPLAY_BYTES >> 30
        );
    }
    Ok(())
}

/// Builds an env by name, with its time limit.
pub fn make_env(name: &str) -> anyhow::Result<Box<dyn Env>> {
    Ok(tame_envs::make(name)?)
}

/// Refuses `dir` as a run directory, naming the real reason: it does not exist, it is not a
/// directory, it cannot be read, or it holds no config.toml.
pub fn check_run_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("run directory {} does not exist", dir.display()),
        Err(e) => return Err(tame_agents::fsutil::friendly_io(e, "reading run directory", dir)),
        Ok(m) if !m.is_dir() => bail!(
            "{} is not a directory; accepted: a run directory written by tame train (it holds config.toml \
             and checkpoints/)",
            dir.display()
        ),
        Ok(_) => {}
    }
    let config = dir.join("config.toml");
    if !config.is_file() {
        bail!("{} is not a run directory: it has no config.toml (tame train writes one)", dir.display());
    }
    Ok(())
}

/// Creates a fresh run directory `<logdir>/<run_name>__<UTC time>` (suffixed `-2`, `-3`, ...
/// if that exists already) with its `checkpoints/` folder.
pub fn create_run_dir(logdir: &Path, run_name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(logdir).with_context(|| format!("creating log directory {}", logdir.display()))?;
    let stamp = utc_stamp(std::time::SystemTime::now());
    for n in 1.. {
        let name = if n == 1 { format!("{run_name}__{stamp}") } else { format!("{run_name}__{stamp}-{n}") };
        let dir = logdir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::create_dir(dir.join("checkpoints"))
                    .with_context(|| format!("creating {}", dir.join("checkpoints").display()))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating run directory {}", dir.display())),
        }
    }
    unreachable!("the suffix loop only ends by returning")
}

/// Creates the run directory `dir` itself (and its parents) with its `checkpoints/` folder;
/// `dir` may exist only if empty (a left-over `.lock` file aside), so that one directory
/// never mixes two runs.
pub fn create_exact_run_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("run directory {} exists and cannot be listed", dir.display()))?;
        let empty = entries.all(|e| e.is_ok_and(|e| e.file_name() == crate::lock::LOCK_FILE));
        if !empty {
            bail!("run directory {} already holds files; choose a new --run-dir", dir.display());
        }
    }
    std::fs::create_dir_all(dir.join("checkpoints"))
        .with_context(|| format!("creating run directory {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// The safetensors file holding a run's newest policy weights: the tensors of its newest
/// checkpoint that verifies, or `checkpoints/latest.safetensors` of runs written before full
/// checkpoints existed.
pub fn policy_weights(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let checkpoints = run_dir.join("checkpoints");
    if !tame_agents::checkpoint::list(&checkpoints)?.is_empty() {
        let (ckpt, skipped) = tame_agents::checkpoint::read_newest(&checkpoints)?;
        for (_, why) in skipped {
            eprintln!("warning: {why}; using the older checkpoint at step {}", ckpt.step);
        }
        return Ok(ckpt.tensors_path());
    }
    let legacy = checkpoints.join("latest.safetensors");
    if legacy.is_file() {
        return Ok(legacy);
    }
    bail!("run {} has no checkpoint yet (nothing under {})", run_dir.display(), checkpoints.display())
}

/// `YYYYmmdd-HHMMSS` in UTC (civil-from-days, Howard Hinnant's algorithm).
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `summary.json`: what a finished run reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub env: String,
    pub agent: String,
    pub tau: Tau,
    pub seed: u64,
    pub steps: u64,
    pub eval_episodes: usize,
    pub final_eval_return_mean: f64,
    pub final_eval_return_std: f64,
    pub final_eval_returns: Vec<f64>,
    pub final_policy_entropy: Option<f64>,
    pub success_rate: Option<f64>,
    /// Final evaluation episodes cut before a terminal state: by the env's time limit or at
    /// `eval_max_episode_steps` (0 in runs written before it was counted).
    #[serde(default)]
    pub final_eval_truncated: usize,
    /// The bound evaluation episodes were cut at (absent in runs written before it existed).
    #[serde(default)]
    pub eval_max_episode_steps: Option<u64>,
    pub interrupted: bool,
    /// Training time over every session of the run (a resumed run adds its sessions).
    pub wall_seconds: f64,
    /// Seconds of the last session spent writing checkpoints.
    #[serde(default)]
    pub checkpoint_seconds: f64,
}

impl Summary {
    pub fn new(cfg: &Resolved, train: &TrainSummary, wall_seconds: f64) -> Summary {
        let r = &train.final_eval_returns;
        let mean = crate::stats::mean(r).unwrap_or(0.0);
        let std = crate::stats::std(r).unwrap_or(0.0);
        Summary {
            env: cfg.env.clone(),
            agent: cfg.agent.name().into(),
            tau: cfg.tau,
            seed: cfg.seed,
            steps: train.steps,
            eval_episodes: r.len(),
            final_eval_return_mean: mean,
            final_eval_return_std: std,
            final_eval_returns: r.clone(),
            final_policy_entropy: train.final_policy_entropy,
            success_rate: train.success_rate,
            final_eval_truncated: train.final_eval_truncated,
            eval_max_episode_steps: Some(cfg.eval_max_episode_steps),
            interrupted: train.interrupted,
            wall_seconds,
            checkpoint_seconds: train.checkpoint_seconds,
        }
    }

    /// Writes `dir/summary.json` atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self).context("serialising summary.json")?;
        crate::fsutil::write_atomic(&dir.join("summary.json"), json.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_matches_known_dates() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(utc_stamp(at(0)), "19700101-000000");
        assert_eq!(utc_stamp(at(951_782_400 + 3661)), "20000229-010101");
        assert_eq!(utc_stamp(at(1_767_225_599)), "20251231-235959");
    }

    #[test]
    fn unknown_keys_list_the_accepted_ones() {
        let err = toml::from_str::<RunConfig>("seeds = 3").unwrap_err().to_string();
        assert!(err.contains("seeds") && err.contains("eval_every"), "{err}");
        let err = toml::from_str::<RunConfig>("[sac]\nlr = 1e-3").unwrap_err().to_string();
        assert!(err.contains("lr") && err.contains("learning_rate"), "{err}");
        let err = toml::from_str::<RunConfig>("tau = -1").unwrap_err().to_string();
        assert!(err.contains("-1") && err.contains("auto"), "{err}");
    }

    #[test]
    fn an_exact_run_dir_may_hold_only_a_lock_file() {
        let root = std::env::temp_dir().join(format!("tame-exact-run-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let only_lock = root.join("only-lock");
        std::fs::create_dir_all(&only_lock).unwrap();
        std::fs::write(only_lock.join(crate::lock::LOCK_FILE), "1\n").unwrap();
        create_exact_run_dir(&only_lock).unwrap();
        assert!(only_lock.join("checkpoints").is_dir());
        let used = root.join("used");
        std::fs::create_dir_all(&used).unwrap();
        std::fs::write(used.join(crate::lock::LOCK_FILE), "1\n").unwrap();
        std::fs::write(used.join("config.toml"), "").unwrap();
        let err = create_exact_run_dir(&used).unwrap_err().to_string();
        assert!(err.contains("already holds files"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn flags_override_file_fields() {
        let file: RunConfig = toml::from_str("seed = 4\nsteps = 50\n[sac]\nlearning_rate = 0.001").unwrap();
        let flags = RunConfig { seed: Some(7), tau: Some(Tau::Fixed(0.1)), ..Default::default() };
        let merged = file.overridden_by(flags);
        assert_eq!((merged.seed, merged.steps, merged.tau), (Some(7), Some(50), Some(Tau::Fixed(0.1))));
        assert_eq!(merged.sac.unwrap().learning_rate, 1e-3);
    }
}
