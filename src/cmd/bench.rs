//! `tame bench ...`: speed measurements that print figures (never timed tests).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::tensorboard::{read_events, EventWriter};

/// One subcommand per thing measured.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// TensorBoard writer: time to log N scalars, flush them durably and read them back.
    Tb(TbArgs),
    /// SAC: training steps per second (env step + action + one gradient update), FLOPs per
    /// update, and this machine's sgemm rate measured in the same run.
    Sac(SacBenchArgs),
    /// Test helper (tests/tensorboard_durability.rs): logs N scalars, flushes, prints
    /// "flushed", then keeps logging like a training loop until killed or interrupted
    /// (Ctrl-C: flushes and prints "stopped after M").
    #[command(hide = true)]
    TbDurabilityChild { dir: PathBuf, scalars: u64 },
    /// Evolution strategies: env steps and generations per second of a full ES generation
    /// (perturb, lock-step rollouts, ranks, gradient, update), on 1 and on all cores.
    Es(EsArgs),
    /// Rendering: microseconds per RGB frame, per gridworld text frame and per GIF frame for
    /// every built-in env, beside the cost of a step.
    Render(RenderBenchArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Tb(args) => bench_tb(args),
        BenchCommand::Sac(args) => bench_sac(args),
        BenchCommand::TbDurabilityChild { dir, scalars } => durability_child(&dir, scalars),
        BenchCommand::Es(args) => bench_es(args),
        BenchCommand::Render(args) => bench_render(args),
    }
}

fn durability_child(dir: &std::path::Path, scalars: u64) -> anyhow::Result<()> {
    let mut writer = EventWriter::create(dir)?;
    for step in 0..scalars {
        writer.add_scalar("durable/x", step, step as f64)?;
    }
    writer.flush()?;
    println!("flushed");
    std::io::Write::flush(&mut std::io::stdout())?;
    // Bounded, so a parent that never kills us does not leave us running.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let mut step = 0;
    while Instant::now() < deadline && !tame_agents::run::stop_requested() {
        writer.add_scalar("unflushed/y", step, 0.0)?;
        step += 1;
        if step % 100 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    // What a training loop does when it sees the stop: end the run and flush.
    writer.flush()?;
    println!("stopped after {step}");
    Ok(())
}

#[derive(Debug, Args)]
pub struct TbArgs {
    /// Scalars to log in total.
    #[arg(long, default_value_t = 1_000_000)]
    scalars: u64,
    /// Distinct tags the scalars cycle through (like an agent's losses and returns).
    #[arg(long, default_value_t = 8)]
    tags: u64,
    /// Directory for the event file; a fresh temporary directory (removed after) if absent.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn bench_tb(args: TbArgs) -> anyhow::Result<()> {
    if args.tags == 0 {
        bail!("--tags must be at least 1, got 0");
    }
    let (dir, remove_after) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => {
            let d = std::env::temp_dir().join(format!("tame-bench-tb-{}", std::process::id()));
            (d, true)
        }
    };
    let tags: Vec<String> = (0..args.tags).map(|i| format!("bench/metric_{i}")).collect();
    let mut writer = EventWriter::create(&dir)?;
    let path = writer.path().to_path_buf();

    let start = Instant::now();
    for i in 0..args.scalars {
        let tag = &tags[(i % args.tags) as usize];
        writer.add_scalar(tag, i / args.tags, (i as f64).sin())?;
    }
    let log_secs = start.elapsed().as_secs_f64();
    let flush_start = Instant::now();
    writer.flush()?;
    let flush_secs = flush_start.elapsed().as_secs_f64();
    drop(writer);
    let bytes = std::fs::metadata(&path)
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();

    let read_start = Instant::now();
    let events = read_events(&path)?;
    let read_secs = read_start.elapsed().as_secs_f64();
    let read_back: usize = events.scalars.values().map(Vec::len).sum();
    if remove_after {
        std::fs::remove_dir_all(&dir).ok();
    }
    if read_back as u64 != args.scalars || !events.problems.is_empty() {
        bail!("read back {read_back} of {} scalars ({})", args.scalars, events.problems.join("; "));
    }

    let per_sec = args.scalars as f64 / log_secs;
    if args.json {
        let out = serde_json::json!({
            "bench": "tb",
            "scalars": args.scalars,
            "tags": args.tags,
            "log_seconds": log_secs,
            "scalars_per_sec": per_sec,
            "flush_seconds": flush_secs,
            "log_and_flush_seconds": log_secs + flush_secs,
            "file_bytes": bytes,
            "read_seconds": read_secs,
            "scalars_read_back": read_back,
        });
        println!("{out}");
    } else {
        println!(
            "logged {} scalars over {} tags in {:.3} s ({:.2} M scalars/s), durable flush {:.3} s",
            args.scalars,
            args.tags,
            log_secs,
            per_sec / 1e6,
            flush_secs
        );
        println!(
            "file {:.1} MB ({:.1} bytes/scalar); read back all {} in {:.3} s",
            bytes as f64 / 1e6,
            bytes as f64 / args.scalars as f64,
            read_back,
            read_secs
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SacBenchArgs {
    /// Environment (its spaces set the network sizes).
    #[arg(long, default_value = "pendulum")]
    env: String,
    /// Hidden layer widths, comma-separated.
    #[arg(long, default_value = "256,256", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Minibatch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed training steps, each with one gradient update (after a warm-up that fills one
    /// batch and runs 20 updates).
    #[arg(long, default_value_t = 2000)]
    updates: u64,
    /// Threads: the update's two workers (one per critic) side by side (from 0.1 GFLOP per
    /// update; smaller networks run on one), libtorch gets the rest [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Temperature: a number >= 0 or `auto` (auto is the most work: it adds the τ update).
    #[arg(long, default_value = "auto", allow_hyphen_values = true)]
    tau: tame_agents::run::Tau,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// sgemm rate of a square `n`×`n` by `n`×`n` product through tch, in GFLOP/s, timed over
/// about half a second after a warm-up.
fn sgemm_gflops(n: i64) -> f64 {
    let a = tch::Tensor::randn([n, n], (tch::Kind::Float, tch::Device::Cpu));
    let b = tch::Tensor::randn([n, n], (tch::Kind::Float, tch::Device::Cpu));
    let mut c = a.matmul(&b);
    for _ in 0..20 {
        c = a.matmul(&b);
    }
    let flops = 2.0 * (n * n * n) as f64;
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed().as_secs_f64() < 0.5 {
        c = a.matmul(&b);
        iters += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(c);
    flops * iters as f64 / secs / 1e9
}

fn bench_sac(args: SacBenchArgs) -> anyhow::Result<()> {
    if args.hidden.is_empty() || args.hidden.contains(&0) {
        bail!("--hidden {:?}: accepted: one or more positive widths, e.g. 256,256", args.hidden);
    }
    if args.batch == 0 || args.updates == 0 {
        bail!("--batch and --updates must be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores);
    if threads == 0 {
        bail!("--threads 0 is out of range; accepted: >= 1");
    }
    tch::set_num_threads(threads as i32);
    let env = crate::run_dir::make_env(&args.env)?;
    let config = tame_agents::sac::SacConfig {
        hidden: args.hidden.clone(),
        batch_size: args.batch,
        ..Default::default()
    };
    // The machine's speed drifts (a shared virtual machine): the reference rate is the mean
    // of one measurement before the run and one after, both on `threads` threads.
    let sgemm_before = sgemm_gflops(256);
    let r = tame_agents::sac::bench(&config, args.tau, env, args.updates, threads)?;
    tch::set_num_threads(threads as i32);
    let sgemm_after = sgemm_gflops(256);
    let sgemm = (sgemm_before + sgemm_after) / 2.0;
    let achieved = r.updates_per_sec * r.gflop_per_update;
    let hidden = args.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
    if args.json {
        let out = serde_json::json!({
            "bench": "sac",
            "env": args.env,
            "hidden": args.hidden,
            "batch": args.batch,
            "tau": args.tau.to_string(),
            "threads": threads,
            "updates": r.updates,
            "seconds": r.seconds,
            "updates_per_sec": r.updates_per_sec,
            "median_updates_per_sec": r.median_updates_per_sec,
            "gflop_per_update": r.gflop_per_update,
            "achieved_gflops": achieved,
            "sgemm_gflops": sgemm,
            "sgemm_gflops_before": sgemm_before,
            "sgemm_gflops_after": sgemm_after,
            "fraction_of_sgemm": achieved / sgemm,
        });
        println!("{out}");
    } else {
        println!(
            "sac on {} (hidden {hidden}, batch {}, tau {}, {threads} threads): {:.1} steps/s with one update each \
             ({:.1} at the median step time); {:.3} GFLOP/update = {:.1} GFLOP/s, {:.0}% of sgemm ({:.1} GFLOP/s, \
             256^3 matmul, mean of {:.1} before and {:.1} after the run)",
            args.env, args.batch, args.tau, r.updates_per_sec, r.median_updates_per_sec, r.gflop_per_update, achieved,
            100.0 * achieved / sgemm, sgemm, sgemm_before, sgemm_after
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct EsArgs {
    /// Environment, by CLI name or Gymnasium id.
    #[arg(long, default_value = "pendulum")]
    env: String,
    /// Population size: an even number (θ+σε and θ−σε come in pairs).
    #[arg(long, default_value_t = 256)]
    pop: usize,
    /// Hidden layer widths of the tanh MLP policy, comma separated.
    #[arg(long, default_value = "32,32", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Generations timed, after one untimed warm-up generation.
    #[arg(long, default_value_t = 50)]
    generations: u64,
    /// Thread counts to measure, comma separated [default: 1 and the number of cores].
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Print one JSON object per thread count instead of text.
    #[arg(long)]
    json: bool,
}

fn bench_es(args: EsArgs) -> anyhow::Result<()> {
    use tame_agents::es::{Es, EsConfig, EnvFactory};

    if args.generations == 0 {
        bail!("--generations must be at least 1, got 0");
    }
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        threads = if cores > 1 { vec![1, cores] } else { vec![1] };
    }
    if let Some(t) = threads.iter().find(|&&t| t == 0) {
        bail!("--threads {t} is not allowed; accepted: thread counts ≥ 1");
    }
    // Fail on a bad env name before timing anything.
    tame_envs::make(&args.env)?;
    let cfg = EsConfig { population: args.pop, hidden: args.hidden.clone(), ..EsConfig::default() };
    cfg.validate()?;
    for &t in &threads {
        let name = args.env.clone();
        let factory: EnvFactory = std::sync::Arc::new(move || tame_envs::make(&name));
        let mut es = Es::new(EsConfig { threads: t, ..cfg.clone() }, factory)?;
        es.step()?;
        let before = es.env_steps();
        let start = Instant::now();
        for _ in 0..args.generations {
            es.step()?;
        }
        let (steps, secs, params) = (es.env_steps() - before, start.elapsed().as_secs_f64(), es.num_params());
        let steps_per_sec = steps as f64 / secs;
        let gens_per_sec = args.generations as f64 / secs;
        let episode_len = steps as f64 / (args.generations as f64 * args.pop as f64);
        if args.json {
            let out = serde_json::json!({
                "bench": "es",
                "env": args.env,
                "pop": args.pop,
                "hidden": args.hidden,
                "params": params,
                "threads": t,
                "generations": args.generations,
                "env_steps": steps,
                "mean_episode_length": episode_len,
                "seconds": secs,
                "env_steps_per_sec": steps_per_sec,
                "generations_per_sec": gens_per_sec,
            });
            println!("{out}");
        } else {
            println!(
                "es {} pop {} hidden {:?} ({params} params), {t} thread(s): {:.2} M env steps/s, \
                 {:.1} generations/s ({} generations, {steps} steps, mean episode {:.0} steps, {:.2} s)",
                args.env,
                args.pop,
                args.hidden,
                steps_per_sec / 1e6,
                gens_per_sec,
                args.generations,
                episode_len,
                secs
            );
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RenderBenchArgs {
    /// Frames drawn per env.
    #[arg(long, default_value_t = 2000)]
    frames: usize,
    /// Envs to measure [default: every built-in env].
    #[arg(long, value_delimiter = ',')]
    envs: Option<Vec<String>>,
    /// Print one JSON object per env instead of a table.
    #[arg(long)]
    json: bool,
}

/// Gymnasium 1.4.0's frames on this machine, measured once with
/// `scripts/gymnasium_render_bench.py` (pygame, twice tame's frame size in each direction).
const GYMNASIUM_RGB_US: &[(&str, f64)] = &[
    ("CartPole-v1 rgb_array 600x400", 2586.0),
    ("Pendulum-v1 rgb_array 500x500", 5307.0),
    ("MountainCarContinuous-v0 rgb_array 600x400", 2555.0),
    ("FrozenLake-v1 rgb_array 256x256", 1712.0),
    ("FrozenLake-v1 ansi", 5.0),
];

fn bench_render(args: RenderBenchArgs) -> anyhow::Result<()> {
    if args.frames == 0 {
        bail!("--frames 0 is out of range; accepted: >= 1");
    }
    let envs = args.envs.unwrap_or_else(|| {
        tame_envs::builtin_specs().into_iter().map(|s| s.name).filter(|n| !n.ends_with("-noslip")).collect()
    });
    for name in &envs {
        tame_envs::spec(name)?;
    }
    if !args.json {
        println!("{:<14} {:>9} {:>9} {:>12} {:>10} {:>10} {:>12}", "env", "frame", "step us", "rgb us/frame", "ansi us", "gif us", "gif B/frame");
    }
    for name in &envs {
        let c = crate::video::bench_render(name, args.frames, 0)?;
        if args.json {
            println!("{}", serde_json::to_string(&c)?);
        } else {
            let ansi = c.ansi_us.map_or("-".to_string(), |a| format!("{a:.2}"));
            println!(
                "{:<14} {:>9} {:>9.3} {:>12.1} {:>10} {:>10.1} {:>12.0}",
                c.env, format!("{}x{}", c.width, c.height), c.step_us, c.rgb_us, ansi, c.gif_us, c.gif_bytes_per_frame
            );
        }
    }
    if !args.json {
        for (what, us) in GYMNASIUM_RGB_US {
            println!("reference: Gymnasium 1.4.0 {what}: {us:.0} us/frame");
        }
        println!("(this machine is shared with other builds; figures vary from run to run)");
    }
    Ok(())
}
