//! `tame eval RUN_DIR`: reloads a run's newest verified checkpoint and evaluates it
//! deterministically on the run's env with the fixed evaluation seeds.

use std::path::PathBuf;

use clap::Args;

use crate::run_dir::RunConfig;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory written by `tame train` (holds config.toml and checkpoints/).
    run_dir: PathBuf,
    /// Evaluation episodes [default: the run's eval_episodes].
    #[arg(long, allow_hyphen_values = true, value_parser = crate::cli_values::episodes)]
    episodes: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    crate::run_dir::check_run_dir(&args.run_dir)?;
    let config_path = args.run_dir.join("config.toml");
    let cfg = RunConfig::from_file(&config_path)?.resolve()?;
    let episodes = args.episodes.unwrap_or(cfg.eval_episodes);
    if episodes == 0 {
        anyhow::bail!("--episodes 0 is out of range; accepted: >= 1");
    }
    tch::set_num_threads(cfg.threads as i32);
    let (trained, step) = crate::agent::load_trained(&args.run_dir, &cfg)?;
    let (stats, entropies) = trained.evaluate(&cfg.env, episodes, cfg.eval_max_episode_steps)?;
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
            "truncated": stats.truncated_count(),
            "max_episode_steps": cfg.eval_max_episode_steps,
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
        let truncated = stats.truncated_count();
        if truncated > 0 {
            print!(
                ", {truncated} truncated (cut by the env's time limit or at eval_max_episode_steps = {})",
                cfg.eval_max_episode_steps
            );
        }
        println!();
    }
    Ok(())
}
