//! `tame train`: one training run into a fresh run directory (config, TensorBoard events,
//! checkpoints, summary.json), with a progress bar.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tame_agents::policy::Policy;
use tame_agents::run::{Progress, RunCtx, Tau, TrainSummary};
use tame_agents::{es, sac};

use crate::run_dir::{create_exact_run_dir, create_run_dir, make_env, AgentKind, Resolved, RunConfig, Summary};
use crate::tensorboard::{config_markdown, EventWriter, HParams, SessionStatus};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Agent to train [default: sac].
    #[arg(long, value_enum)]
    agent: Option<AgentKind>,
    /// Environment, by CLI or Gymnasium name (see `tame env list`) [default: pendulum].
    #[arg(long)]
    env: Option<String>,
    /// Temperature τ: a number >= 0 (0 = the hard-argmax limit) or `auto` (tuned to a target
    /// entropy; SAC only) [default: auto for sac, 0 for es].
    #[arg(long, allow_hyphen_values = true)]
    tau: Option<Tau>,
    /// Seed of every random draw in the run [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Environment steps to train for [default: 10000 for sac, 2000000 for es].
    #[arg(long)]
    steps: Option<u64>,
    /// TOML config file (e.g. configs/sac-pendulum.toml); flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory under which the run directory is created.
    #[arg(long, default_value = "runs")]
    logdir: PathBuf,
    /// Use exactly this run directory instead of a new one under --logdir (it must not exist
    /// yet, or be empty). `tame sweep` names its runs this way.
    #[arg(long, conflicts_with = "logdir")]
    run_dir: Option<PathBuf>,
    /// Print `progress <step> <total>` lines on stdout as training goes (for `tame sweep` and
    /// other scripts).
    #[arg(long)]
    progress_lines: bool,
    /// Environment steps between deterministic evaluations [default: steps / 10].
    #[arg(long)]
    eval_every: Option<u64>,
    /// Episodes per evaluation [default: 10].
    #[arg(long)]
    eval_episodes: Option<usize>,
    /// Threads: SAC runs its update's two workers (one per critic) side by side (from 0.1
    /// GFLOP per update; smaller networks run on one) and gives libtorch the rest; ES spreads its
    /// population over them. Results do not depend on it [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// ES only: width σ of the Gaussian parameter noise (overrides `sigma` in the [es]
    /// section) [default: 0.1].
    #[arg(long, allow_hyphen_values = true)]
    sigma: Option<f64>,
    /// No progress bar and no closing report (for scripts); the run directory's path is
    /// still printed.
    #[arg(long)]
    quiet: bool,
    /// Record the first evaluation episode at every evaluation: `videos/step<N>.gif` in the
    /// run directory and a TensorBoard image (config key `capture_video`).
    #[arg(long)]
    capture_video: bool,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    let flags = RunConfig {
        agent: args.agent,
        env: args.env.clone(),
        tau: args.tau,
        seed: args.seed,
        steps: args.steps,
        eval_every: args.eval_every,
        eval_episodes: args.eval_episodes,
        threads: args.threads,
        capture_video: args.capture_video.then_some(true),
        ..Default::default()
    };
    let mut merged = file.overridden_by(flags);
    if let Some(sigma) = args.sigma {
        if merged.agent != Some(crate::run_dir::AgentKind::Es) {
            anyhow::bail!("--sigma is an ES setting; use it with --agent es");
        }
        merged.es.get_or_insert_with(Default::default).sigma = sigma;
    }
    let cfg = merged.resolve()?;
    let place = match &args.run_dir {
        Some(dir) => RunPlace::Exact(dir),
        None => RunPlace::Under(&args.logdir),
    };
    let dir = train(&cfg, place, args.quiet, args.progress_lines)?;
    let summary: Summary = serde_json::from_slice(&std::fs::read(dir.join("summary.json"))?)?;
    if args.quiet {
        println!("{}", dir.display());
    } else {
        println!(
            "{}: final eval return {:.2} ± {:.2} over {} episodes after {} steps ({:.1} s){}",
            dir.display(),
            summary.final_eval_return_mean,
            summary.final_eval_return_std,
            summary.eval_episodes,
            summary.steps,
            summary.wall_seconds,
            if summary.interrupted { " [interrupted]" } else { "" }
        );
    }
    Ok(())
}

/// Where a run's directory goes.
#[derive(Clone, Copy, Debug)]
pub enum RunPlace<'a> {
    /// A new `<name>__<time>` directory under this one.
    Under(&'a Path),
    /// Exactly this directory (absent or empty).
    Exact(&'a Path),
}

/// Runs one resolved config into its run directory; returns the directory's path.
/// `summary.json` is written last, so its presence marks a finished run.
pub fn train(cfg: &Resolved, place: RunPlace<'_>, quiet: bool, progress_lines: bool) -> anyhow::Result<PathBuf> {
    tch::set_num_threads(cfg.threads as i32);
    let dir = match place {
        RunPlace::Under(logdir) => create_run_dir(logdir, &cfg.run_name())?,
        RunPlace::Exact(dir) => create_exact_run_dir(dir)?,
    };
    let toml = cfg.to_toml()?;
    crate::fsutil::write_atomic(&dir.join("config.toml"), toml.as_bytes())?;

    let mut writer = EventWriter::create(&dir)?;
    writer.add_text("config", 0, &config_markdown(&cfg.file)?)?;
    let mut hparams = HParams::new()
        .with("agent", cfg.agent.name())
        .with("env", cfg.env.as_str())
        .with("tau", cfg.tau.to_string().as_str())
        .with("seed", cfg.seed as f64);
    if let Some(es) = cfg.file.es.as_ref().filter(|_| cfg.agent == AgentKind::Es) {
        hparams = hparams.with("sigma", es.sigma);
    }
    let hparams = hparams.metric("eval/mean_return").metric("charts/episodic_return");
    writer.write_hparams(&hparams)?;
    writer.flush()?;

    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(cfg.steps) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} {wide_bar} {human_pos}/{human_len} steps {per_sec} {msg}")
            .context("progress bar template")?,
    );
    // Progress lines at most once per percent of the run, so a script's pipe stays quiet.
    let line_every = (cfg.steps / 100).max(1);
    let mut last_line: Option<u64> = None;
    let mut on_progress = |p: &Progress| {
        if progress_lines && last_line.is_none_or(|l| p.step >= l + line_every || p.step >= p.total) {
            last_line = Some(p.step);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "progress {} {}", p.step, p.total).and_then(|_| out.flush());
        }
        bar.set_position(p.step);
        let mut msg = String::new();
        if let Some(r) = p.last_return {
            msg.push_str(&format!("return {r:.1}"));
        }
        if let Some(e) = p.last_eval {
            msg.push_str(&format!("  eval {e:.1}"));
        }
        bar.set_message(msg);
    };

    // The video hook logs images through the same writer the training loop logs to.
    let writer = RefCell::new(writer);
    let mut capture = match cfg.file.capture_video {
        Some(true) => Some(crate::video::VideoCapture::new(&dir, &cfg.env)?),
        _ => None,
    };
    let capturing = capture.is_some();
    let mut on_eval = |step: u64, policy: &mut dyn Policy| -> anyhow::Result<()> {
        match capture.as_mut() {
            Some(c) => c.capture(step, policy, &mut writer.borrow_mut()).with_context(|| format!("capturing the video at step {step}")),
            None => Ok(()),
        }
    };
    let start = Instant::now();
    let result = {
        let mut ctx = RunCtx {
            logger: &mut SharedLog(&writer),
            checkpoint_dir: Some(&dir.join("checkpoints")),
            progress: &mut on_progress,
            on_eval: capturing.then_some(&mut on_eval as _),
        };
        train_agent(cfg, &mut ctx)
    };
    bar.finish_and_clear();
    let mut writer = writer.into_inner();
    let outcome = match result {
        Ok(summary) => summary,
        Err(e) => {
            // Keep what was logged: close the session as failed, flushed, then report.
            let _ = writer.finish(SessionStatus::Failure);
            return Err(e).with_context(|| format!("run {}", dir.display()));
        }
    };
    let summary = Summary::new(cfg, &outcome, start.elapsed().as_secs_f64());
    let status = if outcome.interrupted { SessionStatus::Unknown } else { SessionStatus::Success };
    writer.finish(status)?;
    summary.write(&dir)?;
    Ok(dir)
}

/// The run's event writer as the training loop's logger, shared with the video hook.
struct SharedLog<'a>(&'a RefCell<EventWriter>);

impl tame_agents::Logger for SharedLog<'_> {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> anyhow::Result<()> {
        self.0.borrow_mut().add_scalar(tag, step, value)
    }
    fn histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> anyhow::Result<()> {
        self.0.borrow_mut().add_histogram(tag, step, values)
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        self.0.borrow_mut().flush()
    }
}

fn train_agent(cfg: &Resolved, ctx: &mut RunCtx) -> anyhow::Result<TrainSummary> {
    let env = make_env(&cfg.env)?;
    let eval_env = make_env(&cfg.env)?;
    match cfg.agent {
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
            sac::train(&run, env, eval_env, ctx)
        }
        AgentKind::Es => {
            let config = es::EsConfig { threads: cfg.threads, ..cfg.file.es.clone().unwrap_or_default() };
            let name = cfg.env.clone();
            let factory: es::EnvFactory = std::sync::Arc::new(move || tame_envs::make(&name));
            drop((env, eval_env));
            es::train(&config, factory, cfg.steps, cfg.eval_every, ctx)
        }
    }
}
