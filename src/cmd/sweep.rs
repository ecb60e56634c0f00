//! `tame sweep`: soft against hard-argmax policies across temperatures τ (and ES widths σ),
//! several seeds each, on one env or several, in one command; then the report (per-env
//! tables, normalized aggregates with stratified bootstrap CIs) and plots.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use crate::cli_values as cv;
use crate::run_dir::{AgentKind, RunConfig};
use crate::sweep::{self, SweepFile, SweepPlan, TauSpec};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Agent to train. [default: sac]
    #[arg(long, value_enum)]
    agent: Option<AgentKind>,
    /// Environment (see `tame env list`). [default: the base config's, else frozenlake]
    #[arg(long, conflicts_with = "envs")]
    env: Option<String>,
    /// Several environments, comma-separated: the grid runs on each and the report aggregates
    /// normalized scores across them (e.g. --envs frozenlake-noslip,cliffwalking:limit=100,pendulum).
    #[arg(long, value_delimiter = ',')]
    envs: Option<Vec<String>>,
    /// Comma-separated temperatures; 0 is the hard argmax, `auto` tunes τ to a target entropy.
    /// [default: 0,0.01,0.1,0.5,auto]
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    taus: Option<Vec<String>>,
    /// Comma-separated ES parameter-noise widths σ (es only).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, value_parser = cv::sigma)]
    sigmas: Option<Vec<f64>>,
    /// Number of seeds per grid point (seeds 0..N). [default: 3]
    #[arg(long, allow_hyphen_values = true, value_parser = cv::whole::<1, { cv::MAX_SWEEP_SEEDS }>)]
    seeds: Option<u64>,
    /// Environment steps per run. [default: the agent's, or the base config's]
    #[arg(long, allow_hyphen_values = true, value_parser = cv::steps)]
    steps: Option<u64>,
    /// Evaluation period in env steps, for every run.
    #[arg(long, allow_hyphen_values = true, value_parser = cv::steps)]
    eval_every: Option<u64>,
    /// Base config (TOML) for every run, as `tame train --config`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A sweep described in TOML (keys: agent, env or envs, taus, sigmas, seeds, steps,
    /// eval_every, config, threshold, jobs, out, and the tables [configs] (env = base config),
    /// [thresholds] (env = return) and [normalization."ENV"] (random = R, reference = S));
    /// flags override it.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Return counted as "solved" for the steps-to-threshold column (one env only; with
    /// several use the sweep file's [thresholds]). [default: per env]
    #[arg(long, allow_hyphen_values = true, value_parser = cv::finite)]
    threshold: Option<f64>,
    /// Runs at a time; the cores are divided among them. [default: number of cores]
    #[arg(long, allow_hyphen_values = true, value_parser = cv::threads)]
    jobs: Option<usize>,
    /// Sweep directory. Rerunning with the same directory skips finished runs and resumes
    /// interrupted ones from their checkpoints; one sweep at a time may use it (locked).
    /// [default: sweeps/<env>__<agent>]
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Queue the runs on this Redis for `tame worker` processes instead of running them here:
    /// redis://[user[:password]@]host[:port][/db] or rediss:// (TLS). The out directory fills
    /// in as the workers go, as a local sweep's does. Given alone, the URL is read from
    /// TAME_REDIS_URL, which keeps a password out of `ps`.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    redis: Option<String>,
    /// With --redis: trust the CA certificate(s) in this PEM file for a rediss:// server (a
    /// private CA), instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "redis")]
    redis_ca: Option<PathBuf>,
    /// With --redis: a run whose worker has not renewed its task for this long (it died) is
    /// taken over by another worker, from its last checkpoint.
    #[arg(long, value_parser = crate::cluster::parse_lease, default_value = "30s", requires = "redis")]
    lease: std::time::Duration,
    /// With --redis: how long Redis may stay unreachable before the sweep gives up (it
    /// retries meanwhile).
    #[arg(long, value_parser = crate::cluster::parse_duration, default_value = "60s", requires = "redis")]
    redis_timeout: std::time::Duration,
}

const DEFAULT_TAUS: &str = "0,0.01,0.1,0.5,auto";
const DEFAULT_SEEDS: u64 = 3;

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let file: SweepFile = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading sweep file {}", path.display()))?;
            SweepFile::from_toml(&text).with_context(|| format!("parsing sweep file {}", path.display()))?
        }
        None => SweepFile::default(),
    };
    let config = args.config.or(file.config);
    // The base config's agent and env count too, below flags and the sweep file.
    let base = match &config {
        Some(path) => RunConfig::from_file(path)?,
        None => RunConfig::default(),
    };
    let agent = args.agent.or(file.agent).or(base.agent).unwrap_or(AgentKind::Sac);
    if file.env.is_some() && file.envs.is_some() {
        bail!("the sweep file gives both env and envs; keep one (envs = [..] for several)");
    }
    let envs: Vec<String> = match (args.envs, args.env, file.envs, file.env) {
        (Some(list), ..) => list,
        (None, Some(one), ..) => vec![one],
        (None, None, Some(list), _) => list,
        (None, None, None, Some(one)) => vec![one],
        (None, None, None, None) => vec![base.env.clone().unwrap_or_else(|| "frozenlake".into())],
    };
    let envs: Vec<String> = envs.into_iter().map(|e| e.trim().to_string()).collect();
    if let Some(blank) = envs.iter().position(String::is_empty) {
        bail!("env #{} of the list is empty; accepted: env names separated by commas", blank + 1);
    }
    let taus: Vec<TauSpec> = match (args.taus, file.taus) {
        (Some(t), _) => t.iter().map(|s| TauSpec::parse(s)).collect::<anyhow::Result<_>>()?,
        (None, Some(t)) => SweepFile::tau_specs(&t)?,
        (None, None) => DEFAULT_TAUS.split(',').map(TauSpec::parse).collect::<anyhow::Result<_>>()?,
    };
    // Checked before anything is written: a bad URL leaves no out directory behind.
    let cluster = match &args.redis {
        Some(url) => Some(crate::cluster::ClusterOpts {
            url: crate::cluster::url_from(Some(url), args.redis_ca.as_deref())?,
            lease: args.lease,
            timeout: args.redis_timeout,
        }),
        None => None,
    };
    let n_seeds = args.seeds.or(file.seeds).unwrap_or(DEFAULT_SEEDS);
    if !(1..=cv::MAX_SWEEP_SEEDS).contains(&n_seeds) {
        bail!("seeds = {n_seeds} is out of range; accepted: 1 to {} seeds per grid point", cv::MAX_SWEEP_SEEDS);
    }
    let mut thresholds = file.thresholds;
    match args.threshold.or(file.threshold) {
        Some(t) if envs.len() == 1 => {
            thresholds.insert(envs[0].clone(), t);
        }
        Some(t) => bail!(
            "threshold {t} with {} envs: a return threshold belongs to one env; give them per env in \
             the sweep file's [thresholds] table",
            envs.len()
        ),
        None => {}
    }
    for env in &envs {
        if let Some(t) = default_threshold(env) {
            thresholds.entry(env.clone()).or_insert(t);
        }
    }
    let plan = SweepPlan {
        thresholds,
        agent,
        envs,
        taus,
        sigmas: args.sigmas.or(file.sigmas).unwrap_or_default(),
        seeds: (0..n_seeds).collect(),
        steps: args.steps.or(file.steps),
        config,
        configs: file.configs,
        eval_every: args.eval_every.or(file.eval_every),
        normalization: file.normalization,
    };
    plan.validate()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = args.jobs.or(file.jobs).unwrap_or(cores);
    if !(1..=cv::MAX_THREADS as usize).contains(&jobs) {
        bail!("jobs = {jobs} is out of range; accepted: 1 to {} runs at a time", cv::MAX_THREADS);
    }
    let threads = (cores / jobs).max(1);
    check_runs_resolve(&plan, threads)?;
    let out = args.out.or(file.out).unwrap_or_else(|| {
        let envs = match plan.envs.as_slice() {
            [one] => sweep::env_slug(one),
            many => format!("{}envs", many.len()),
        };
        PathBuf::from("sweeps").join(format!("{envs}__{}", plan.agent.name()))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating sweep directory {}", out.display()))?;
    // Held for the whole sweep: a second sweep here would take our runs in progress for
    // unfinished ones and restart them.
    let _lock = crate::lock::lock_dir(&out)?;
    check_or_record_plan(&plan, &out)?;

    let outcomes = match &cluster {
        Some(opts) => crate::cluster::run_sweep(&plan, &out, opts, args.quiet)?,
        None => sweep::execute(&plan, &out, jobs, threads, args.quiet)?,
    };
    // The runs have stopped; what they wrote is summarised even after a stop request.
    tame_agents::run::clear_stop();
    let summary = sweep::summarize(&plan, &out, &outcomes)?;
    sweep::write_reports(&summary, &out)?;
    sweep::write_plots(&summary, &out)?;
    crate::policy_map::write_sweep_policy_maps(&plan, &out)?;
    println!("{}", sweep::to_markdown(&summary));
    println!("Wrote {}/summary.{{csv,md,json}} and plots.", out.display());
    if let Some(signal) = crate::interrupt::received() {
        let count = |o: &str| summary.runs.iter().filter(|r| r.outcome == o).count();
        bail!(
            "sweep stopped by {}: {} of {} runs finished, {} interrupted, {} not started; run the \
             same command again to resume them",
            crate::interrupt::signal_name(signal),
            count("finished") + count("skipped"),
            summary.runs.len(),
            count("interrupted"),
            count("not started")
        );
    }
    let failed: Vec<&str> = summary
        .runs
        .iter()
        .filter(|r| r.outcome.starts_with("failed"))
        .map(|r| r.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} runs failed ({}); the others finished and are summarised in {}",
            failed.len(),
            summary.runs.len(),
            failed.join(", "),
            out.display()
        );
    }
    Ok(())
}

/// Resolves each distinct (env, τ, σ) run's config as its child `tame train` will, so that a
/// bad base config or grid value is refused before the sweep directory exists.
fn check_runs_resolve(plan: &SweepPlan, threads: usize) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for run in plan.runs() {
        if !seen.insert((run.env.clone(), run.tau.to_string(), run.sigma.map(f64::to_bits))) {
            continue;
        }
        let base = match &run.config {
            Some(path) => RunConfig::from_file(path)?,
            None => RunConfig::default(),
        };
        let flags = RunConfig {
            agent: Some(plan.agent),
            env: Some(run.env.clone()),
            tau: Some(match run.tau {
                TauSpec::Fixed(v) => tame_agents::run::Tau::Fixed(v),
                TauSpec::Auto => tame_agents::run::Tau::Auto,
            }),
            seed: plan.seeds.iter().max().copied(),
            steps: plan.steps,
            eval_every: plan.eval_every,
            threads: Some(threads),
            ..Default::default()
        };
        let mut cfg = base.overridden_by(flags);
        if let Some(s) = run.sigma {
            cfg.es.get_or_insert_with(Default::default).sigma = s;
        }
        let sigma_part = run.sigma.map(|s| format!(", σ = {}", tame_agents::numfmt::compact(s))).unwrap_or_default();
        cfg.resolve().with_context(|| format!("the sweep's runs on {} at τ = {}{sigma_part}", run.env, run.tau))?;
    }
    Ok(())
}

/// Per-env eval return that counts as "solved": Gymnasium's `reward_threshold` where it has
/// one (CartPole 475, MountainCarContinuous 90, FrozenLake 0.70 / 8x8 0.85), else the
/// optimum or near it (CliffWalking −13, Pendulum −200). Env options (`:slip=...`,
/// `-noslip`) keep their base's threshold.
fn default_threshold(env: &str) -> Option<f64> {
    let base = env.split(':').next().unwrap_or(env).to_ascii_lowercase();
    match base.trim_end_matches("-noslip") {
        "cartpole" | "cartpole-v1" => Some(475.0),
        "mountaincar" | "mountaincarcontinuous-v0" => Some(90.0),
        "pendulum" | "pendulum-v1" => Some(-200.0),
        "frozenlake" | "frozenlake-v1" => Some(0.7),
        "frozenlake8x8" => Some(0.85),
        "cliffwalking" | "cliffwalking-v1" => Some(-13.0),
        _ => None,
    }
}

/// A sweep directory belongs to one plan: resuming with another would mix runs.
fn check_or_record_plan(plan: &SweepPlan, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating sweep directory {}", out.display()))?;
    let path = out.join("sweep.json");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let earlier: SweepPlan =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let same_runs = earlier.agent == plan.agent
            && earlier.envs == plan.envs
            && earlier.steps == plan.steps
            && earlier.config == plan.config
            && earlier.configs == plan.configs
            && earlier.eval_every == plan.eval_every;
        if !same_runs {
            bail!(
                "{} holds a sweep of {} on {} (steps {:?}, config {:?}, per-env configs {:?}, eval every \
                 {:?}); this one is {} on {} (steps {:?}, config {:?}, per-env configs {:?}, eval every \
                 {:?}). Choose another --out, or delete that directory",
                out.display(),
                earlier.agent.name(),
                earlier.envs.join(", "),
                earlier.steps,
                earlier.config,
                earlier.configs,
                earlier.eval_every,
                plan.agent.name(),
                plan.envs.join(", "),
                plan.steps,
                plan.config,
                plan.configs,
                plan.eval_every
            );
        }
    }
    let json = serde_json::to_string_pretty(plan).context("serializing the sweep plan")?;
    crate::fsutil::write_atomic(&path, json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sweep_files_parse_and_name_existing_configs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for entry in std::fs::read_dir(root.join("configs")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("sweep-") {
                continue;
            }
            let file: SweepFile = toml::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let config = file.config.unwrap_or_else(|| panic!("{name} names no base config"));
            RunConfig::from_file(&root.join(config)).unwrap();
            for (env, c) in &file.configs {
                assert!(file.envs.as_ref().is_some_and(|e| e.contains(env)), "{name}: [configs] {env} is not in envs");
                RunConfig::from_file(&root.join(c)).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            for tau in file.taus.unwrap() {
                let text = match tau {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                TauSpec::parse(&text).unwrap();
            }
            seen += 1;
        }
        assert!(seen >= 2, "expected the shipped sweep files");
    }

    #[test]
    fn thresholds_follow_the_base_env() {
        assert_eq!(default_threshold("frozenlake-noslip"), Some(0.7));
        assert_eq!(default_threshold("frozenlake8x8:slippery=false"), Some(0.85));
        assert_eq!(default_threshold("CartPole-v1"), Some(475.0));
        assert_eq!(default_threshold("pendulum:discrete=5"), Some(-200.0));
        assert_eq!(default_threshold("map:configs/maps/rooms.txt"), None);
    }

    #[test]
    fn unknown_sweep_file_keys_are_refused_with_the_accepted_ones() {
        let err = toml::from_str::<SweepFile>("taus = [0]\nsigma = 0.1\n").unwrap_err().to_string();
        assert!(err.contains("sigma") && err.contains("sigmas"), "{err}");
    }
}
