//! Run configuration and run directories, shared by every agent `tame train` runs.
//!
//! A run is described by a [`RunConfig`]: the common fields (agent, env, τ, seed, steps,
//! evaluation, threads) and one section per agent (`[sac]`, ...), each the agent's own serde
//! struct. Precedence: built-in defaults < `--config FILE` (TOML) < command-line flags. The
//! resolved config is saved as `config.toml` in the run directory:
//!
//! ```text
//! runs/<env>__<agent>__tau<τ>__seed<S>__<YYYYmmdd-HHMMSS>/
//!     events.out.tfevents.*   TensorBoard
//!     config.toml             the resolved config; `tame eval` rebuilds the agent from it
//!     checkpoints/latest.safetensors
//!     videos/step<N>.gif      with capture_video: the first evaluation episode at step N
//!     summary.json            written atomically at the end
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tame_agents::run::{Tau, TrainSummary};
use tame_agents::es::EsConfig;
use tame_agents::sac::SacConfig;
use tame_envs::Env;

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
        take!(agent, env, tau, seed, steps, eval_every, eval_episodes, threads, sac, es, capture_video);
        self
    }

    /// Fills defaults, checks ranges, and checks the agent's section against the env.
    pub fn resolve(mut self) -> anyhow::Result<Resolved> {
        let agent = *self.agent.get_or_insert(AgentKind::Sac);
        let env_name = self.env.get_or_insert_with(|| "pendulum".into()).clone();
        let tau = *self.tau.get_or_insert(agent.default_tau());
        let seed = *self.seed.get_or_insert(1);
        let steps = *self.steps.get_or_insert(agent.default_steps());
        if steps == 0 {
            bail!("steps = 0 is out of range; accepted: >= 1");
        }
        let eval_every = *self.eval_every.get_or_insert(steps.div_ceil(10));
        let eval_episodes = *self.eval_episodes.get_or_insert(10);
        if eval_episodes == 0 {
            bail!("eval_episodes = 0 is out of range; accepted: >= 1");
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = *self.threads.get_or_insert(cores);
        if threads == 0 || threads > 1024 {
            bail!("threads = {threads} is out of range; accepted: 1..=1024");
        }
        let env = make_env(&env_name)?;
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
                es.validate()?;
                tame_agents::es::check_spaces(&env.observation_space(), &env.action_space(), &es.hidden)
                    .with_context(|| format!("env {env_name}"))?;
            }
        }
        Ok(Resolved { agent, env: env_name, tau, seed, steps, eval_every, eval_episodes, threads, file: self })
    }
}

impl Resolved {
    /// The resolved config as TOML, as saved in `config.toml`.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(&self.file).context("writing the config as TOML")
    }

    /// `<env>__<agent>__tau<τ>__seed<S>`: the run directory's name before its time stamp.
    pub fn run_name(&self) -> String {
        let env: String = self.env.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        format!("{env}__{}__tau{}__seed{}", self.agent.name(), self.tau, self.seed)
    }
}

/// Builds an env by name, with its time limit.
pub fn make_env(name: &str) -> anyhow::Result<Box<dyn Env>> {
    Ok(tame_envs::make(name)?)
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
/// `dir` may exist only if empty, so that one directory never mixes two runs.
pub fn create_exact_run_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("run directory {} exists and cannot be listed", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!("run directory {} already holds files; choose a new --run-dir", dir.display());
        }
    }
    std::fs::create_dir_all(dir.join("checkpoints"))
        .with_context(|| format!("creating run directory {}", dir.display()))?;
    Ok(dir.to_path_buf())
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
    pub interrupted: bool,
    pub wall_seconds: f64,
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
            interrupted: train.interrupted,
            wall_seconds,
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
    fn flags_override_file_fields() {
        let file: RunConfig = toml::from_str("seed = 4\nsteps = 50\n[sac]\nlearning_rate = 0.001").unwrap();
        let flags = RunConfig { seed: Some(7), tau: Some(Tau::Fixed(0.1)), ..Default::default() };
        let merged = file.overridden_by(flags);
        assert_eq!((merged.seed, merged.steps, merged.tau), (Some(7), Some(50), Some(Tau::Fixed(0.1))));
        assert_eq!(merged.sac.unwrap().learning_rate, 1e-3);
    }
}

/// A run's latest checkpoint, loaded behind the one policy interface.
pub struct LoadedPolicy {
    pub config: Resolved,
    pub policy: Box<dyn tame_agents::policy::Policy>,
    /// Training env steps when the checkpoint was written.
    pub step: u64,
}

/// Reloads `run_dir`'s config and latest checkpoint (SAC or ES) as a [`tame_agents::policy::Policy`].
pub fn load_policy(run_dir: &Path) -> anyhow::Result<LoadedPolicy> {
    let config_path = run_dir.join("config.toml");
    if !config_path.is_file() {
        bail!("{} is not a run directory: it has no config.toml (tame train writes one)", run_dir.display());
    }
    let cfg = RunConfig::from_file(&config_path)?.resolve()?;
    let checkpoint = run_dir.join("checkpoints").join("latest.safetensors");
    if !checkpoint.is_file() {
        bail!(
            "run {} has no checkpoint {}: it is written at the run's first evaluation; \
             train longer or with a smaller --eval-every",
            run_dir.display(),
            checkpoint.display()
        );
    }
    let env = make_env(&cfg.env)?;
    let context = || format!("run {}", run_dir.display());
    let (policy, step): (Box<dyn tame_agents::policy::Policy>, u64) = match cfg.agent {
        AgentKind::Sac => {
            let mut agent = tame_agents::sac::SacAgent::new(
                cfg.file.sac.as_ref().unwrap_or(&SacConfig::default()),
                cfg.tau,
                &env.observation_space(),
                &env.action_space(),
                rand::SeedableRng::seed_from_u64(cfg.seed),
            )
            .with_context(context)?;
            let step = agent.load(&checkpoint).with_context(context)?;
            (Box::new(agent), step)
        }
        AgentKind::Es => {
            let es = cfg.file.es.clone().unwrap_or_default();
            let policy = tame_agents::es::EsPolicy::load(&checkpoint, &env.observation_space(), &env.action_space())
                .with_context(context)?;
            let step = policy.env_steps;
            (Box::new(tame_agents::policy::EsActor::new(policy, es.tau)), step)
        }
    };
    Ok(LoadedPolicy { config: cfg, policy, step })
}
