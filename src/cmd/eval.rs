//! `tame eval RUN_DIR`: reloads a run's latest checkpoint and evaluates it deterministically
//! on the run's env with the fixed evaluation seeds.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tame_agents::{es, sac};

use crate::run_dir::{make_env, AgentKind, RunConfig};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory written by `tame train` (holds config.toml and checkpoints/).
    run_dir: PathBuf,
    /// Evaluation episodes [default: the run's eval_episodes].
    #[arg(long)]
    episodes: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if !args.run_dir.is_dir() {
        anyhow::bail!("run directory {} does not exist", args.run_dir.display());
    }
    let config_path = args.run_dir.join("config.toml");
    if !config_path.exists() {
        anyhow::bail!("{} is not a run directory: it has no config.toml", args.run_dir.display());
    }
    let cfg = RunConfig::from_file(&config_path)?.resolve()?;
    let episodes = args.episodes.unwrap_or(cfg.eval_episodes);
    if episodes == 0 {
        anyhow::bail!("--episodes 0 is out of range; accepted: >= 1");
    }
    tch::set_num_threads(cfg.threads as i32);
    let checkpoint = crate::run_dir::policy_weights(&args.run_dir)?;
    let mut env = make_env(&cfg.env)?;
    let (stats, step, entropies) = match cfg.agent {
        AgentKind::Sac => {
            let config = cfg.file.sac.clone().unwrap_or_default();
            let mut agent = sac::SacAgent::new(
                &config,
                cfg.tau,
                &env.observation_space(),
                &env.action_space(),
                rand::SeedableRng::seed_from_u64(cfg.seed),
            )?;
            let step = agent.load(&checkpoint).with_context(|| format!("run {}", args.run_dir.display()))?;
            let mut entropies = Vec::new();
            let stats = sac::eval_agent(&agent, env.as_mut(), episodes, &mut entropies)?;
            (stats, step, entropies)
        }
        AgentKind::Es => {
            let es_cfg = cfg.file.es.clone().unwrap_or_default();
            let policy = es::EsPolicy::load(&checkpoint, &env.observation_space(), &env.action_space())
                .with_context(|| format!("run {}", args.run_dir.display()))?;
            let name = cfg.env.clone();
            let factory: es::EnvFactory = std::sync::Arc::new(move || tame_envs::make(&name));
            let report = policy.evaluate(&factory, episodes, es_cfg.tau)?;
            (report.stats, policy.env_steps, report.policy_entropy.into_iter().collect())
        }
    };
    let entropy = (!entropies.is_empty()).then(|| entropies.iter().sum::<f64>() / entropies.len() as f64);
    let success = stats.success_rate();
    if args.json {
        let out = serde_json::json!({
            "run_dir": args.run_dir,
            "checkpoint_step": step,
            "episodes": episodes,
            "mean_return": stats.mean_return(),
            "std_return": stats.std_return(),
            "returns": stats.returns,
            "policy_entropy": entropy,
            "success_rate": success,
        });
        println!("{out}");
    } else {
        print!(
            "{} ({} on {}, tau {}, checkpoint at step {step}): eval return {:.2} ± {:.2} over {episodes} episodes",
            args.run_dir.display(), cfg.agent.name(), cfg.env, cfg.tau, stats.mean_return(), stats.std_return()
        );
        if let Some(s) = success {
            print!(", success rate {s:.2}");
        }
        println!();
    }
    Ok(())
}
