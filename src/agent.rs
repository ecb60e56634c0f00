//! The one place the binary names its agents: a resolved config becomes a [`Learner`], the
//! interface that train, resume, sweeps and workers drive without matching on the agent kind,
//! and a run directory's checkpoint becomes a trained policy (`tame eval`, `tame render`,
//! policy maps). Adding an agent means a `tame_agents` learner and one arm in each match here.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use tame_agents::eval::EvalStats;
use tame_agents::es::EsActor;
use tame_agents::policy::Policy;
use tame_agents::run::Learner;
use tame_agents::{es, sac};

use crate::run_dir::{make_env, AgentKind, Resolved, RunConfig};

/// A fresh learner for `cfg`, its generators seeded from the run's seed. A resumed run builds
/// the same learner and then restores a checkpoint into it. With `population`, an ES learner
/// evaluates its generations there (`tame train --redis`); the numbers do not change.
pub fn learner(cfg: &Resolved, population: Option<Box<dyn es::Population>>) -> anyhow::Result<Box<dyn Learner>> {
    Ok(match cfg.agent {
        AgentKind::Sac => {
            if population.is_some() {
                bail!(
                    "--redis distributes ES generations; a SAC run is one process (to spread SAC runs \
                     over machines, use tame sweep --redis)"
                );
            }
            let run = sac::SacRun {
                config: cfg.file.sac.clone().unwrap_or_default(),
                tau: cfg.tau,
                seed: cfg.seed,
                steps: cfg.steps,
                eval_every: cfg.eval_every,
                eval_episodes: cfg.eval_episodes,
                eval_max_episode_steps: cfg.eval_max_episode_steps,
                threads: cfg.threads,
            };
            Box::new(sac::SacLearner::new(&run, make_env(&cfg.env)?, make_env(&cfg.env)?)?)
        }
        AgentKind::Es => {
            let (config, factory) = es_setup(cfg, cfg.threads)?;
            let learner = es::EsLearner::new(config, factory)?;
            match population {
                Some(p) => Box::new(learner.with_population(p)),
                None => Box::new(learner),
            }
        }
    })
}

/// An ES run's config (on `threads` threads) and its env factory: what the learner and a
/// distributed worker evaluating its pairs both build from the resolved config.
pub fn es_setup(cfg: &Resolved, threads: usize) -> anyhow::Result<(es::EsConfig, es::EnvFactory)> {
    if cfg.agent != AgentKind::Es {
        bail!("the config's agent is {}; accepted here: es", cfg.agent.name());
    }
    let config = es::EsConfig { threads, ..cfg.file.es.clone().unwrap_or_default() };
    let name = cfg.env.clone();
    let factory: es::EnvFactory = Arc::new(move || tame_envs::make(&name));
    Ok((config, factory))
}

/// A run's trained policy as the agent that wrote it reads its checkpoint.
pub enum Trained {
    Sac(sac::SacAgent),
    /// ES weights and the run's τ (the temperature of π(·|s); evaluation acts at τ = 0).
    Es { policy: es::EsPolicy, tau: f64 },
}

/// Reads the newest verified policy weights of `run_dir` (resolved as `cfg`) into the agent
/// that wrote them; also returns the training env step they were written at.
pub fn load_trained(run_dir: &Path, cfg: &Resolved) -> anyhow::Result<(Trained, u64)> {
    let weights = crate::run_dir::policy_weights(run_dir)?;
    let env = make_env(&cfg.env)?;
    let context = || format!("run {}", run_dir.display());
    Ok(match cfg.agent {
        AgentKind::Sac => {
            let config = cfg.file.sac.clone().unwrap_or_default();
            let seed = rand::SeedableRng::seed_from_u64(cfg.seed);
            let mut agent = sac::SacAgent::new(&config, cfg.tau, &env.observation_space(), &env.action_space(), seed)
                .with_context(context)?;
            let step = agent.load(&weights).with_context(context)?;
            (Trained::Sac(agent), step)
        }
        AgentKind::Es => {
            let tau = cfg.file.es.clone().unwrap_or_default().tau;
            let policy = es::EsPolicy::load(&weights, &env.observation_space(), &env.action_space()).with_context(context)?;
            let step = policy.env_steps;
            (Trained::Es { policy, tau }, step)
        }
    })
}

impl Trained {
    /// The deterministic evaluation of `tame eval`: `episodes` episodes on fresh `env_name`
    /// envs from the fixed evaluation seeds, each cut after `max_steps` steps, with the policy
    /// entropies it measured (SAC: one per visited state; ES: the mean at the run's τ).
    pub fn evaluate(&self, env_name: &str, episodes: usize, max_steps: u64) -> anyhow::Result<(EvalStats, Vec<f64>)> {
        match self {
            Trained::Sac(agent) => {
                let mut entropies = Vec::new();
                let stats = sac::eval_agent(agent, make_env(env_name)?.as_mut(), episodes, max_steps, &mut entropies)?;
                Ok((stats, entropies))
            }
            Trained::Es { policy, tau } => {
                let name = env_name.to_string();
                let factory: es::EnvFactory = Arc::new(move || tame_envs::make(&name));
                let report = policy.evaluate(&factory, episodes, *tau, max_steps)?;
                Ok((report.stats, report.policy_entropy.into_iter().collect()))
            }
        }
    }

    /// The trained policy behind the one policy interface (rendering, policy maps).
    pub fn into_policy(self) -> Box<dyn Policy> {
        match self {
            Trained::Sac(agent) => Box::new(agent),
            Trained::Es { policy, tau } => Box::new(EsActor::new(policy, tau)),
        }
    }
}

/// A run's newest verified checkpoint, loaded behind the one policy interface.
pub struct LoadedPolicy {
    pub config: Resolved,
    pub policy: Box<dyn Policy>,
    /// Training env steps when the checkpoint was written.
    pub step: u64,
}

/// Reloads `run_dir`'s config and newest checkpoint (SAC or ES) as a [`Policy`].
pub fn load_policy(run_dir: &Path) -> anyhow::Result<LoadedPolicy> {
    crate::run_dir::check_run_dir(run_dir)?;
    let config_path = run_dir.join("config.toml");
    let config = RunConfig::from_file(&config_path)?.resolve()?;
    let (trained, step) = load_trained(run_dir, &config)?;
    Ok(LoadedPolicy { config, policy: trained.into_policy(), step })
}
