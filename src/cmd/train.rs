//! `tame train`: one training run into a fresh run directory (config, TensorBoard events,
//! checkpoints, summary.json), with a progress bar; `--resume` continues a stopped or killed
//! run from its newest good checkpoint, bit for bit.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tame_agents::checkpoint;
use tame_agents::policy::Policy;
use tame_agents::run::{Learner, Progress, RunCtx, RunState, Schedule, Tau};

use crate::cli_values as cv;
use crate::run_dir::{create_exact_run_dir, create_run_dir, AgentKind, Resolved, RunConfig, Summary};
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
    #[arg(long, allow_hyphen_values = true, value_parser = cv::tau)]
    tau: Option<Tau>,
    /// Seed of every random draw in the run [default: 1].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::seed)]
    seed: Option<u64>,
    /// Environment steps to train for [default: 10000 for sac, 2000000 for es].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::steps)]
    steps: Option<u64>,
    /// TOML config file (e.g. configs/sac-pendulum.toml); flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory under which the run directory is created [default: runs].
    #[arg(long)]
    logdir: Option<PathBuf>,
    /// Use exactly this run directory instead of a new one under --logdir (it must not exist
    /// yet, or be empty). `tame sweep` names its runs this way.
    #[arg(long, conflicts_with = "logdir")]
    run_dir: Option<PathBuf>,
    /// Print `progress <step> <total>` lines on stdout as training goes (for `tame sweep` and
    /// other scripts).
    #[arg(long)]
    progress_lines: bool,
    /// Environment steps between deterministic evaluations [default: steps / 10].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::steps)]
    eval_every: Option<u64>,
    /// Episodes per evaluation [default: 10].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::episodes)]
    eval_episodes: Option<usize>,
    /// Steps after which an evaluation episode is cut and counted as truncated (summary.json's
    /// final_eval_truncated, TensorBoard's eval/truncated) [default: the env's time limit, or
    /// 10000 for an env without one, such as cliffwalking].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::steps)]
    eval_max_episode_steps: Option<u64>,
    /// Threads: SAC runs its update's two workers (one per critic) side by side (from 0.1
    /// GFLOP per update; smaller networks run on one) and gives libtorch the rest; ES spreads its
    /// population over them. Results do not depend on it [default: all cores].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::threads)]
    threads: Option<usize>,
    /// ES only: width σ of the Gaussian parameter noise (overrides `sigma` in the [es]
    /// section) [default: 0.1].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::finite)]
    sigma: Option<f64>,
    /// No progress bar and no closing report (for scripts); the run directory's path is
    /// still printed.
    #[arg(long)]
    quiet: bool,
    /// Record the first evaluation episode at every evaluation: `videos/step<N>.gif` in the
    /// run directory and a TensorBoard image (config key `capture_video`).
    #[arg(long)]
    capture_video: bool,
    /// Env steps between full checkpoints (weights, optimiser state, replay buffer,
    /// generators, the env in mid-episode) [default: at each evaluation]. The last two are
    /// kept; a stop (Ctrl-C, SIGTERM) writes one too.
    #[arg(long, allow_hyphen_values = true, value_parser = cv::steps)]
    checkpoint_every: Option<u64>,
    /// Continue a stopped or killed run from its newest good checkpoint, with the run's own
    /// config.toml; it ends with the same numbers as a run never stopped. Only --threads, --redis,
    /// --quiet, --progress-lines and --steps may be given with it. --steps N beyond the
    /// run's steps extends a run, finished or not; what depends on the total then differs
    /// from a run planned for N from the start: the ε-greedy schedule of τ = 0 discrete SAC
    /// (a fraction of the total), and the evaluation and checkpoint steps (kept from the
    /// original, plus one evaluation at its old end; they change logs, not training).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// ES only: evaluate each generation's population on `tame worker` processes (any number,
    /// on any machines, joining or leaving at any time) through this Redis:
    /// redis://[user[:password]@]host[:port][/db], or rediss:// for TLS. The run, its logs and
    /// checkpoints stay here and equal a local run's bit for bit; the password is never
    /// printed or stored. Allowed with --resume. Given alone, the URL is read from
    /// TAME_REDIS_URL, which keeps a password out of `ps`.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    redis: Option<String>,
    /// With --redis: trust the CA certificate(s) in this PEM file for a rediss:// server (a
    /// private CA), instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "redis")]
    redis_ca: Option<PathBuf>,
    /// With --redis: how long a part of a generation may go without its worker's renewal
    /// before another worker takes it over.
    #[arg(long, value_parser = crate::cluster::parse_lease, default_value = "10s", requires = "redis")]
    lease: std::time::Duration,
    /// With --redis: how long Redis may stay unreachable before the run stops with an error
    /// (it retries meanwhile; `--resume` continues from the last checkpoint).
    #[arg(long, value_parser = crate::cluster::parse_duration, default_value = "60s", requires = "redis")]
    redis_timeout: std::time::Duration,
}

/// Where an ES run's generations are evaluated, when not on this process's threads.
struct Remote {
    url: crate::cluster::RedisUrl,
    lease: std::time::Duration,
    timeout: std::time::Duration,
}

impl TrainArgs {
    fn remote(&self) -> anyhow::Result<Option<Remote>> {
        let Some(url) = &self.redis else { return Ok(None) };
        let url = crate::cluster::url_from(Some(url), self.redis_ca.as_deref())?;
        Ok(Some(Remote { url, lease: self.lease, timeout: self.redis_timeout }))
    }
}

/// The population `cfg`'s learner evaluates its generations with: workers on Redis with
/// `--redis` (ES only), else its own threads.
fn population(
    cfg: &Resolved,
    label: &str,
    remote: Option<&Remote>,
    quiet: bool,
) -> anyhow::Result<Option<Box<dyn tame_agents::es::Population>>> {
    let Some(r) = remote else { return Ok(None) };
    if cfg.agent != AgentKind::Es {
        bail!(
            "--redis distributes ES generations; a {} run is one process (to spread SAC runs over \
             machines, use tame sweep --redis)",
            cfg.agent.name()
        );
    }
    let opts = crate::cluster::EsJobOpts { url: r.url.clone(), lease: r.lease, timeout: r.timeout, parts: None, quiet };
    Ok(Some(Box::new(crate::cluster::EsJob::start(cfg, label, opts)?)))
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.resume.clone() {
        let dir = resume(&args, &dir)?;
        return report(&dir, args.quiet);
    }
    let cfg = resolve(&args)?;
    let logdir = args.logdir.clone().unwrap_or_else(|| PathBuf::from("runs"));
    let place = match &args.run_dir {
        Some(dir) => RunPlace::Exact(dir),
        None => RunPlace::Under(&logdir),
    };
    let dir = train(&cfg, place, args.quiet, args.progress_lines, args.remote()?.as_ref())?;
    report(&dir, args.quiet)
}

/// The run's resolved config from the flags and the --config file (not for --resume).
fn resolve(args: &TrainArgs) -> anyhow::Result<Resolved> {
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
        eval_max_episode_steps: args.eval_max_episode_steps,
        checkpoint_every: args.checkpoint_every,
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
    merged.resolve()
}

/// The resolved config that `tame train ARGS` (fresh, not --resume) would run, by the same
/// parsing and validation: `tame sweep --redis` ships it to workers.
pub fn resolve_argv(argv: &[std::ffi::OsString]) -> anyhow::Result<Resolved> {
    #[derive(clap::Parser)]
    struct Train {
        #[command(flatten)]
        args: TrainArgs,
    }
    let parsed = <Train as clap::Parser>::try_parse_from(std::iter::once("train".into()).chain(argv.iter().cloned()))
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim()))?;
    resolve(&parsed.args)
}

/// The closing line (or, with `--quiet`, the run directory's path).
fn report(dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let summary: Summary = serde_json::from_slice(&std::fs::read(dir.join("summary.json"))?)?;
    if quiet {
        println!("{}", dir.display());
    } else {
        // Episodes cut by the env's own time limit are routine (Pendulum's all are); those cut
        // at a shorter evaluation bound, or on an env without a limit, are news.
        let bound = summary.eval_max_episode_steps.filter(|&m| {
            tame_envs::time_limit(&summary.env).ok().flatten().is_none_or(|limit| m < u64::from(limit))
        });
        let cut = match bound {
            Some(m) if summary.final_eval_truncated > 0 => {
                format!(" [{} of them cut at eval_max_episode_steps = {m}]", summary.final_eval_truncated)
            }
            _ => String::new(),
        };
        println!(
            "{}: final eval return {:.2} ± {:.2} over {} episodes{cut} after {} steps ({:.1} s){}",
            dir.display(),
            summary.final_eval_return_mean,
            summary.final_eval_return_std,
            summary.eval_episodes,
            summary.steps,
            summary.wall_seconds,
            if summary.interrupted { " [interrupted: continue with tame train --resume DIR]" } else { "" }
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

/// What a run records in each checkpoint, to check a resume against.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunMeta {
    /// The resolved config as `config.toml` held it.
    config: String,
    tame_version: String,
}

/// Runs one resolved config into its run directory; returns the directory's path.
/// `summary.json` is written last, so its presence marks a finished (or stopped) run.
/// Everything that can be refused is checked before the directory is created, and a
/// directory whose start failed is removed again.
fn train(cfg: &Resolved, place: RunPlace<'_>, quiet: bool, progress_lines: bool, remote: Option<&Remote>) -> anyhow::Result<PathBuf> {
    tch::set_num_threads(cfg.threads as i32);
    let toml = cfg.to_toml()?;
    let label = match place {
        RunPlace::Under(logdir) => logdir.join(cfg.run_name()).display().to_string(),
        RunPlace::Exact(dir) => dir.display().to_string(),
    };
    let mut learner = crate::agent::learner(cfg, population(cfg, &label, remote, quiet)?)?;
    let dir = match place {
        RunPlace::Under(logdir) => create_run_dir(logdir, &cfg.run_name())?,
        RunPlace::Exact(dir) => create_exact_run_dir(dir)?,
    };
    let start = || -> anyhow::Result<(crate::lock::DirLock, EventWriter)> {
        // Held until this function returns: no second process writes into this run.
        let lock = crate::lock::lock_dir(&dir)?;
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
        Ok((lock, writer))
    };
    let (_lock, mut writer) = match start() {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.context(format!("starting run {} (its directory was removed)", dir.display())));
        }
    };
    let meta = RunMeta { config: toml, tame_version: env!("CARGO_PKG_VERSION").into() };
    let state = RunState { wall_seconds: 0.0, meta: serde_json::to_value(&meta)?, logged_through: None };
    session(cfg, &dir, learner.as_mut(), &mut writer, &state, quiet, progress_lines)?;
    Ok(dir)
}

/// `tame train --resume DIR`: continues the run from its newest good checkpoint.
fn resume(args: &TrainArgs, dir: &Path) -> anyhow::Result<PathBuf> {
    let fixed = [
        ("--agent", args.agent.is_some()),
        ("--env", args.env.is_some()),
        ("--tau", args.tau.is_some()),
        ("--seed", args.seed.is_some()),
        ("--config", args.config.is_some()),
        ("--logdir", args.logdir.is_some()),
        ("--run-dir", args.run_dir.is_some()),
        ("--eval-every", args.eval_every.is_some()),
        ("--eval-episodes", args.eval_episodes.is_some()),
        ("--eval-max-episode-steps", args.eval_max_episode_steps.is_some()),
        ("--sigma", args.sigma.is_some()),
        ("--checkpoint-every", args.checkpoint_every.is_some()),
        ("--capture-video", args.capture_video),
    ];
    if let Some((flag, _)) = fixed.iter().find(|(_, given)| *given) {
        bail!(
            "{flag} cannot be given with --resume: a resumed run continues with its own {}; \
             accepted with --resume: --threads, --steps (to extend the run), --quiet, --progress-lines, \
             --redis (with --lease, --redis-timeout)",
            dir.join("config.toml").display()
        );
    }
    crate::run_dir::check_run_dir(dir)?;
    let config_path = dir.join("config.toml");
    // Held until this function returns: the run may not be running elsewhere.
    let _lock = crate::lock::lock_dir(dir)?;
    let mut file = RunConfig::from_file(&config_path)?;
    let (ckpt, run) = choose_checkpoint(dir)?;
    let meta: RunMeta = serde_json::from_value(run.meta.clone())
        .with_context(|| format!("checkpoint {} was not written by tame train", ckpt.dir.display()))?;
    let saved: RunConfig = toml::from_str(&meta.config)
        .with_context(|| format!("checkpoint {}: its config cannot be read by this tame {} (written by {})", ckpt.dir.display(), env!("CARGO_PKG_VERSION"), meta.tame_version))?;
    if let Some(edit) = first_edit(&saved, &file)? {
        bail!(
            "{} was edited since the run started: {edit}; a resumed run must keep the config it started with \
             (restore the file, or start a new run with the new config)",
            config_path.display()
        );
    }
    let planned = file.steps.context("config.toml has no steps")?;
    let steps = args.steps.unwrap_or(planned);
    let finished = dir.join("summary.json").is_file() && crate::sweep::is_finished(dir);
    if !finished && steps < planned && ckpt.step < planned {
        bail!(
            "--steps {steps} is below the {planned} steps run {} is planned for (its config.toml), and the run \
             is not finished (checkpoint at step {}); a resume does not shorten a run: leave out --steps to \
             finish it at {planned}, or pass --steps N with N > {planned} to extend it",
            dir.display(),
            ckpt.step
        );
    }
    if ckpt.step >= steps {
        if finished && args.steps.is_none() {
            bail!("run {} is finished ({} steps); to train it further, pass --steps N with N > {}", dir.display(), ckpt.step, ckpt.step);
        }
        if finished || args.steps.is_some() {
            bail!("--steps {steps} does not go beyond the run's checkpoint at step {}; accepted: more than {}", ckpt.step, ckpt.step);
        }
        // Killed after its final checkpoint but before its summary: the resumed session only
        // evaluates and writes the summary.
    }
    let mut meta = meta;
    if steps != planned {
        file.steps = Some(steps);
        meta.config = toml::to_string(&file).context("writing the config as TOML")?;
        crate::fsutil::write_atomic(&config_path, meta.config.as_bytes())?;
    }
    let mut cfg = file;
    if let Some(t) = args.threads {
        cfg.threads = Some(t);
    }
    let cfg = cfg.resolve()?;
    tch::set_num_threads(cfg.threads as i32);
    let remote = args.remote()?;
    let mut learner = crate::agent::learner(&cfg, population(&cfg, &dir.display().to_string(), remote.as_ref(), args.quiet)?)?;
    learner.restore(&ckpt).with_context(|| format!("restoring checkpoint {}", ckpt.dir.display()))?;
    // The run is in progress again: its old summary (stopped, or finished before an
    // extension) no longer describes it.
    match std::fs::remove_file(dir.join("summary.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", dir.join("summary.json").display()))
        }
        _ => {}
    }
    // The dead process may have logged past its checkpoint: TensorBoard purges those points
    // on the START event at the first step this session logs.
    let mut writer = EventWriter::resume(dir, ckpt.step + 1)?;
    let state = RunState { wall_seconds: run.wall_seconds, meta: serde_json::to_value(&meta)?, logged_through: run.logged_through };
    if !args.quiet {
        eprintln!("tame: resuming {} from step {} of {}", dir.display(), ckpt.step, cfg.steps);
    }
    session(&cfg, dir, learner.as_mut(), &mut writer, &state, args.quiet, args.progress_lines)?;
    Ok(dir.to_path_buf())
}

/// The checkpoint `tame train --resume` continues `dir` from, with its run state: the newest
/// that verifies and that the run's durable logs reach. Entries that are no checkpoint, and
/// checkpoints that fail to load, are set aside (`checkpoints/set-aside/`), each with a warning.
/// When the logs end before the newest checkpoint's last logged step (a truncated event file),
/// an older checkpoint they reach is preferred, so that no step goes missing from the curves,
/// and the newer one is set aside; if none is left, the run continues from the newest with a
/// warning naming the missing steps.
fn choose_checkpoint(dir: &Path) -> anyhow::Result<(checkpoint::Checkpoint, RunState)> {
    let checkpoints = dir.join("checkpoints");
    for note in checkpoint::set_aside_incomplete(&checkpoints)? {
        eprintln!("warning: {note}");
    }
    let mut failed: Vec<(PathBuf, String)> = Vec::new();
    // The newest loadable checkpoint the logs do not reach, with its last logged step.
    let mut beyond: Option<(checkpoint::Checkpoint, RunState, u64)> = None;
    let mut logs: Option<(Option<u64>, String)> = None;
    let mut chosen = None;
    for (_, path) in checkpoint::list(&checkpoints)? {
        let ckpt = match checkpoint::read(&path) {
            Ok(c) => c,
            Err(e) => {
                failed.push((path, format!("{e:#}")));
                continue;
            }
        };
        let run: RunState = ckpt.get("run")?;
        let Some(through) = run.logged_through else {
            // Written before checkpoints recorded it: nothing to check the logs against.
            chosen = Some((ckpt, run));
            break;
        };
        let (end, _) = match &logs {
            Some(l) => l,
            None => logs.insert(durable_logs_end(dir)?),
        };
        if end.is_some_and(|end| end >= through) {
            chosen = Some((ckpt, run));
            break;
        }
        if beyond.is_none() {
            beyond = Some((ckpt, run, through));
        }
    }
    let (end, damage) = logs.unwrap_or((None, String::new()));
    let ends = match end {
        Some(end) => format!("end at step {end}"),
        None => "hold no points".to_string(),
    };
    let (ckpt, run) = match (chosen, beyond) {
        (Some(chosen), None) => chosen,
        (Some((ckpt, run)), Some((newer, _, through))) => {
            let to = checkpoint::set_aside(&checkpoints, &newer.dir)?;
            eprintln!(
                "warning: the durable event files of {} {ends}{damage}, before step {through}, the last one logged \
                 before the checkpoint at step {}; resuming from the older checkpoint at step {}, which they cover, \
                 so that no step is missing from the curves (the newer one is set aside as {})",
                dir.display(),
                newer.step,
                ckpt.step,
                to.display()
            );
            (ckpt, run)
        }
        (None, Some((ckpt, run, through))) => {
            let from = end.map_or(0, |e| e + 1);
            eprintln!(
                "warning: the durable event files of {} {ends}{damage}, but the checkpoint at step {} was taken \
                 after logging through step {through}, and no older checkpoint they cover is left: continuing from \
                 step {}, the curves will have no points from step {from} to step {through}",
                dir.display(),
                ckpt.step,
                ckpt.step
            );
            (ckpt, run)
        }
        (None, None) => {
            let why = if failed.is_empty() {
                format!("{} holds no checkpoint yet", checkpoints.display())
            } else {
                let notes: Vec<&str> = failed.iter().map(|(_, why)| why.as_str()).collect();
                format!("no checkpoint under {} can be loaded: {}", checkpoints.display(), notes.join("; "))
            };
            bail!(
                "cannot resume {}: it has no loadable checkpoint (a run stopped before its first one starts afresh \
                 with a new tame train): {why}",
                dir.display()
            );
        }
    };
    for (path, why) in failed {
        let to = checkpoint::set_aside(&checkpoints, &path)?;
        let newer = path.file_name() > ckpt.dir.file_name();
        let then = if newer { format!("; falling back to the older checkpoint at step {}", ckpt.step) } else { String::new() };
        eprintln!("warning: {why}; set aside as {}{then}", to.display());
    }
    Ok((ckpt, run))
}

/// The largest step of any point in `dir`'s event files as TensorBoard reads them (after its
/// restart rule), and a note on the first damage found, if any.
fn durable_logs_end(dir: &Path) -> anyhow::Result<(Option<u64>, String)> {
    let events = crate::tensorboard::read_events(dir).with_context(|| format!("reading the event files of {}", dir.display()))?;
    let damage = events.problems.first().map(|p| format!(" ({p})")).unwrap_or_default();
    Ok((events.last_step(), damage))
}

/// The first key (as `section.key`) whose value differs between the config a run started
/// with and its `config.toml` now, ignoring `steps` (extending is allowed) and `threads`
/// (results do not depend on it).
fn first_edit(saved: &RunConfig, now: &RunConfig) -> anyhow::Result<Option<String>> {
    fn flatten(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let keys = |c: &RunConfig| -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        flatten("", &toml::Value::try_from(c).context("reading the config as TOML")?, &mut out);
        out.remove("steps");
        out.remove("threads");
        Ok(out)
    };
    let (a, b) = (keys(saved)?, keys(now)?);
    let all: std::collections::BTreeSet<String> = a.keys().chain(b.keys()).cloned().collect();
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "absent".into());
    let edit = all.into_iter().find(|k| a.get(k) != b.get(k));
    Ok(edit.map(|k| format!("{k} was {}, is now {}", show(a.get(&k)), show(b.get(&k)))))
}

/// Trains `learner` in `dir` to `cfg.steps`, with a progress bar, then writes the summary
/// and closes the TensorBoard session.
fn session(
    cfg: &Resolved,
    dir: &Path,
    learner: &mut dyn Learner,
    writer: &mut EventWriter,
    state: &RunState,
    quiet: bool,
    progress_lines: bool,
) -> anyhow::Result<()> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(cfg.steps) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} {wide_bar} {human_pos}/{human_len} steps {per_sec} {msg}")
            .context("progress bar template")?,
    );
    bar.set_position(learner.env_steps());
    bar.reset_eta();
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
        if let Some(e) = p.last_eval {
            bar.set_message(format!("eval {e:.1}"));
        }
    };
    let schedule = Schedule {
        total_steps: cfg.steps,
        eval_every: cfg.eval_every,
        eval_episodes: cfg.eval_episodes,
        checkpoint_every: cfg.checkpoint_every,
    };
    let checkpoints = dir.join("checkpoints");
    // The video hook logs images through the same writer the training loop logs to. A
    // resumed run records again because `capture_video` is part of its config.toml.
    let writer = RefCell::new(writer);
    let mut capture = match cfg.file.capture_video {
        Some(true) => Some(crate::video::VideoCapture::new(dir, &cfg.env)?),
        _ => None,
    };
    let capturing = capture.is_some();
    let mut on_eval = |step: u64, policy: &mut dyn Policy| -> anyhow::Result<()> {
        match capture.as_mut() {
            Some(c) => c
                .capture(step, policy, &mut writer.borrow_mut())
                .with_context(|| format!("capturing the video at step {step}")),
            None => Ok(()),
        }
    };
    let result = {
        let mut ctx = RunCtx {
            logger: &mut SharedLog(&writer),
            checkpoint_dir: Some(&checkpoints),
            progress: &mut on_progress,
            on_eval: capturing.then_some(&mut on_eval as _),
        };
        tame_agents::run::train(learner, &schedule, state, &mut ctx)
    };
    bar.finish_and_clear();
    let writer = writer.into_inner();
    let outcome = match result {
        Ok(summary) => summary,
        Err(e) => {
            // Keep what was logged: close the session as failed, flushed, then report.
            let _ = writer.finish(SessionStatus::Failure);
            return Err(e).with_context(|| format!("run {}", dir.display()));
        }
    };
    let summary = Summary::new(cfg, &outcome, outcome.wall_seconds);
    let status = if outcome.interrupted { SessionStatus::Interrupted } else { SessionStatus::Success };
    writer.finish(status)?;
    summary.write(dir)
}

/// The run's event writer as the training loop's logger, shared with the video hook.
struct SharedLog<'a, 'w>(&'a RefCell<&'w mut EventWriter>);

impl tame_agents::Logger for SharedLog<'_, '_> {
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
