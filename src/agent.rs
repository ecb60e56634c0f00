//! The one place the binary names its agents: a resolved config becomes a [`Learner`], the
//! interface that train, resume, sweeps and workers drive without matching on the agent kind.
//! Adding an agent means a `tame_agents` learner and one arm here.

use std::sync::Arc;

use tame_agents::run::Learner;
use tame_agents::{es, sac};

use crate::run_dir::{make_env, AgentKind, Resolved};

/// A fresh learner for `cfg`, its generators seeded from the run's seed. A resumed run builds
/// the same learner and then restores a checkpoint into it.
pub fn learner(cfg: &Resolved) -> anyhow::Result<Box<dyn Learner>> {
    Ok(match cfg.agent {
        AgentKind::Sac => {
            let run = sac::SacRun {
                config: cfg.file.sac.clone().unwrap_or_default(),
                tau: cfg.tau,
                seed: cfg.seed,
                steps: cfg.steps,
                eval_every: cfg.eval_every,
                eval_episodes: cfg.eval_episodes,
                threads: cfg.threads,
            };
            Box::new(sac::SacLearner::new(&run, make_env(&cfg.env)?, make_env(&cfg.env)?)?)
        }
        AgentKind::Es => {
            let config = es::EsConfig { threads: cfg.threads, ..cfg.file.es.clone().unwrap_or_default() };
            let name = cfg.env.clone();
            let factory: es::EnvFactory = Arc::new(move || tame_envs::make(&name));
            Box::new(es::EsLearner::new(config, factory)?)
        }
    })
}
