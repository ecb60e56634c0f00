//! `tame bench ...`: speed measurements that print figures (never timed tests).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::cli_values as cv;
use crate::exit::check_interrupt;
use crate::tensorboard::{read_events, EventWriter};

/// Most scalars of `bench tb` (about 2.5 GB of events at ~25 bytes each).
const MAX_SCALARS: u64 = 100_000_000;
/// Most timed updates or generations of one benchmark.
const MAX_BENCH_ITERATIONS: u64 = 1_000_000;

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
    /// Sweep statistics: stratified bootstrap CIs of the four aggregates (final return and
    /// AUC), performance profiles, probability of improvement of every pair and IQM curves,
    /// on synthetic scores; beside rliable's time for the same work when it is installed.
    Stats(StatsBenchArgs),
    /// Full SAC checkpoints: time to write (and to read back and restore) the whole training
    /// state with a replay buffer of N transitions, beside this disk's plain write + fsync
    /// of the same bytes measured in the same run.
    Checkpoint(CheckpointArgs),
    /// Sweep overhead on Redis: the same sweep of short runs locally (`--jobs W`) and on W
    /// local `tame worker` processes of one thread each, timed in one invocation.
    Sweep(SweepBenchArgs),
    /// The cluster under a seeded schedule of faults (workers killed, stopped past their lease
    /// and joining; redis-server restarted from its AOF; the coordinator killed and resumed;
    /// connections stalled): each round's sweep and ES run must equal the local runs bit for
    /// bit, leave no process and end within a bound.
    Chaos(super::chaos::ChaosArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Tb(args) => bench_tb(args),
        BenchCommand::Sac(args) => bench_sac(args),
        BenchCommand::TbDurabilityChild { dir, scalars } => durability_child(&dir, scalars),
        BenchCommand::Es(args) => bench_es(args),
        BenchCommand::Render(args) => bench_render(args),
        BenchCommand::Stats(args) => bench_stats(args),
        BenchCommand::Checkpoint(args) => bench_checkpoint(args),
        BenchCommand::Sweep(args) => bench_sweep(args),
        BenchCommand::Chaos(args) => super::chaos::bench_chaos(args),
    }
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Transitions in the replay buffer, comma separated (Pendulum: 36 bytes each).
    #[arg(long, default_value = "10000,1000000", value_delimiter = ',', allow_hyphen_values = true,
          value_parser = cv::whole::<1, 10_000_000>)]
    transitions: Vec<u64>,
    /// Environment whose SAC trainer is checkpointed.
    #[arg(long, default_value = "pendulum")]
    env: String,
    /// Where the checkpoints are written [default: a temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Timed repetitions per size (the median is reported).
    #[arg(long, default_value_t = 5, allow_hyphen_values = true, value_parser = cv::count::<1, 1000>)]
    repeats: usize,
}

fn bench_checkpoint(args: CheckpointArgs) -> anyhow::Result<()> {
    use tame_agents::checkpoint;
    use tame_agents::run::Tau;
    if args.repeats == 0 || args.transitions.contains(&0) {
        bail!("--repeats and every --transitions value must be at least 1");
    }
    let root = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("tame-bench-ckpt-{}", std::process::id())));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for &n in &args.transitions {
        // SB3's defaults (256-256 networks, buffer 1e6); warm-up actions fill the buffer fast.
        let config = tame_agents::sac::SacConfig { learning_starts: n, ..Default::default() };
        let env = crate::run_dir::make_env(&args.env)?;
        let mut trainer = tame_agents::sac::Trainer::new(&config, Tau::Auto, 0, n, 1, env)?;
        while trainer.step < n {
            if trainer.step % 4096 == 0 {
                check_interrupt("tame bench checkpoint")?;
            }
            trainer.env_step()?;
        }
        let dir = root.join(format!("n{n}"));
        let (mut copy, mut write, mut read, mut raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut bytes = 0;
        for r in 0..args.repeats {
            check_interrupt("tame bench checkpoint")?;
            let start = Instant::now();
            let mut out = checkpoint::CheckpointWriter::default();
            trainer.save(&mut out)?;
            copy.push(start.elapsed().as_secs_f64());
            let path = checkpoint::write(&dir, r as u64, out)?;
            write.push(start.elapsed().as_secs_f64());
            bytes = std::fs::read_dir(&path)?.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
            let start = Instant::now();
            let ckpt = checkpoint::read(&path)?;
            trainer.restore(&ckpt)?;
            read.push(start.elapsed().as_secs_f64());
            // The reference: the same number of bytes written and fsynced as one plain file.
            let plain = dir.join("plain.bin");
            let data = vec![0x5au8; bytes as usize];
            let start = Instant::now();
            crate::fsutil::write_atomic(&plain, &data)?;
            raw.push(start.elapsed().as_secs_f64());
            std::fs::remove_file(&plain).ok();
        }
        let (c, w, rd, p) = (median(copy), median(write), median(read), median(raw));
        println!(
            "checkpoint of SAC on {} with {n} transitions: {:.1} MB; training pauses {:.3} s to copy the state, \
             the writer thread then takes {:.3} s in all ({:.0} MB/s); read + restore {:.3} s; \
             plain write + fsync of the same bytes {:.3} s ({:.0} MB/s); medians of {}",
            args.env, bytes as f64 / 1e6, c, w, bytes as f64 / 1e6 / w, rd, p, bytes as f64 / 1e6 / p, args.repeats
        );
    }
    if args.dir.is_none() {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(())
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
    #[arg(long, default_value_t = 1_000_000, allow_hyphen_values = true, value_parser = cv::whole::<1, MAX_SCALARS>)]
    scalars: u64,
    /// Distinct tags the scalars cycle through (like an agent's losses and returns).
    #[arg(long, default_value_t = 8, allow_hyphen_values = true, value_parser = cv::whole::<1, 10_000>)]
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
        if i % (1 << 16) == 0 {
            if let Err(e) = check_interrupt("tame bench tb") {
                drop(writer);
                if remove_after {
                    std::fs::remove_dir_all(&dir).ok();
                }
                return Err(e.into());
            }
        }
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
    #[arg(long, default_value = "256,256", value_delimiter = ',', allow_hyphen_values = true, value_parser = cv::width)]
    hidden: Vec<usize>,
    /// Minibatch size (1 to 65536).
    #[arg(long, default_value_t = 256, allow_hyphen_values = true, value_parser = cv::count::<1, 65_536>)]
    batch: usize,
    /// Timed training steps, each with one gradient update (after a warm-up that fills one
    /// batch and runs 20 updates).
    #[arg(long, default_value_t = 2000, allow_hyphen_values = true, value_parser = cv::whole::<1, MAX_BENCH_ITERATIONS>)]
    updates: u64,
    /// Threads: the update's two workers (one per critic) side by side (from 0.1 GFLOP per
    /// update; smaller networks run on one), libtorch gets the rest [default: all cores].
    #[arg(long, allow_hyphen_values = true, value_parser = cv::threads)]
    threads: Option<usize>,
    /// Temperature: a number >= 0 or `auto` (auto is the most work: it adds the τ update).
    #[arg(long, default_value = "auto", allow_hyphen_values = true, value_parser = cv::tau)]
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

/// An env that fails its next step once Ctrl-C was pressed: the SAC benchmark's loop lives in
/// the agent, and every one of its steps goes through the env.
struct StopOnCtrlC(Box<dyn tame_envs::Env>);

impl tame_envs::Env for StopOnCtrlC {
    fn observation_space(&self) -> tame_envs::Space {
        self.0.observation_space()
    }
    fn action_space(&self) -> tame_envs::Space {
        self.0.action_space()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.0.reset(seed, obs)
    }
    fn step(&mut self, action: tame_envs::Action<'_>, obs: &mut [f32]) -> Result<tame_envs::StepResult, tame_envs::EnvError> {
        if tame_agents::run::stop_requested() {
            return Err(tame_envs::EnvError::Other("interrupted by Ctrl-C".into()));
        }
        self.0.step(action, obs)
    }
    fn state(&self) -> Vec<f64> {
        self.0.state()
    }
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), tame_envs::EnvError> {
        self.0.set_state(state, obs)
    }
    fn success(&self) -> Option<bool> {
        self.0.success()
    }
}

fn bench_sac(args: SacBenchArgs) -> anyhow::Result<()> {
    tame_agents::limits::check_hidden("--hidden", &args.hidden).map_err(anyhow::Error::msg)?;
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
    let r = match tame_agents::sac::bench(&config, args.tau, Box::new(StopOnCtrlC(env)), args.updates, threads) {
        Ok(r) => r,
        Err(e) => {
            check_interrupt("tame bench sac")?;
            return Err(e);
        }
    };
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
    #[arg(long, default_value_t = 256, allow_hyphen_values = true,
          value_parser = cv::count::<0, { tame_agents::limits::MAX_POPULATION as u64 }>)]
    pop: usize,
    /// Hidden layer widths of the tanh MLP policy, comma separated.
    #[arg(long, default_value = "32,32", value_delimiter = ',', allow_hyphen_values = true, value_parser = cv::width)]
    hidden: Vec<usize>,
    /// Generations timed, after one untimed warm-up generation.
    #[arg(long, default_value_t = 50, allow_hyphen_values = true, value_parser = cv::whole::<1, MAX_BENCH_ITERATIONS>)]
    generations: u64,
    /// Thread counts to measure, comma separated [default: 1 and the number of cores].
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, value_parser = cv::threads, conflicts_with = "redis")]
    threads: Vec<usize>,
    /// Print one JSON object per thread count instead of text.
    #[arg(long, conflicts_with = "redis")]
    json: bool,
    /// A running Redis (e.g. `redis-server --port 6390 --save ''`): instead of the thread
    /// counts, time the generations evaluated by --workers local `tame worker` processes
    /// through it against the local run on as many threads in all, and report what each
    /// generation costs. Given alone, the URL is read from TAME_REDIS_URL.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    redis: Option<String>,
    /// With --redis: worker processes started for the measurement.
    #[arg(long, default_value_t = 2, requires = "redis", allow_hyphen_values = true, value_parser = cv::count::<1, 256>)]
    workers: usize,
    /// With --redis: threads of each worker.
    #[arg(long, default_value_t = 1, requires = "redis", allow_hyphen_values = true, value_parser = cv::threads)]
    worker_threads: usize,
    /// With --redis: rounds, each timing --generations locally and then distributed.
    #[arg(long, default_value_t = 3, requires = "redis", allow_hyphen_values = true, value_parser = cv::count::<1, 1000>)]
    rounds: usize,
    /// With --redis: parts each generation is split into [default: one per live worker].
    #[arg(long, requires = "redis", allow_hyphen_values = true, value_parser = cv::count::<1, 100_000>)]
    parts: Option<usize>,
}

fn bench_es(args: EsArgs) -> anyhow::Result<()> {
    if args.redis.is_some() {
        return bench_es_redis(&args);
    }
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
            check_interrupt("tame bench es")?;
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

/// The local run on workers × worker-threads threads against the same generations on
/// `tame worker` processes through Redis, in one invocation; θ must come out the same.
fn bench_es_redis(args: &EsArgs) -> anyhow::Result<()> {
    use tame_agents::es::Es;
    let url = crate::cluster::url_from(args.redis.as_deref(), None)?;
    let (n, wt) = (args.workers, args.worker_threads);
    let file = crate::run_dir::RunConfig {
        agent: Some(crate::run_dir::AgentKind::Es),
        env: Some(args.env.clone()),
        tau: Some(tame_agents::run::Tau::Fixed(0.0)),
        seed: Some(0),
        es: Some(tame_agents::es::EsConfig { population: args.pop, hidden: args.hidden.clone(), ..Default::default() }),
        ..Default::default()
    };
    let cfg = file.resolve()?;
    let root = std::env::temp_dir().join(format!("tame-bench-es-{}", std::process::id()));
    let workers = BenchWorkers::start(&url, n, wt, &root)?;
    let result = (|| -> anyhow::Result<()> {
        // The workers start (and load their libraries) before anything is timed.
        let mut redis = crate::cluster::Redis::connect(&url, std::time::Duration::from_secs(10))?;
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while crate::cluster::live_workers(&mut redis)? < n {
            if Instant::now() > deadline {
                bail!("the {n} tame worker processes did not report in within 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Rounds alternate the local and the distributed run, each continuing its own
        // generations, so that a drift of the shared machine hits both alike.
        let run = |es: &mut Es| -> anyhow::Result<(u64, f64, f64)> {
            let (before, cpu) = (es.env_steps(), process_cpu_seconds());
            let start = Instant::now();
            for _ in 0..args.generations {
                check_interrupt("tame bench es")?;
                es.step()?;
            }
            Ok((es.env_steps() - before, start.elapsed().as_secs_f64(), process_cpu_seconds() - cpu))
        };
        let (config, factory) = crate::agent::es_setup(&cfg, n * wt)?;
        let mut local = Es::new(config, factory)?;
        local.step()?;
        let opts = crate::cluster::EsJobOpts {
            url: url.clone(),
            lease: std::time::Duration::from_secs(10),
            timeout: std::time::Duration::from_secs(60),
            parts: args.parts,
            quiet: true,
        };
        let job = crate::cluster::EsJob::start(&cfg, "tame bench es", opts)?;
        let stats = job.stats();
        let (config, factory) = crate::agent::es_setup(&cfg, 1)?;
        let mut dist = Es::new(config, factory)?;
        dist.set_population(Box::new(job));
        dist.step()?;
        let before = stats.lock().expect("stats").clone();
        let (mut steps, mut local_secs, mut dist_steps, mut dist_secs, mut coord_cpu, mut server_cpu) = (0, 0.0, 0, 0.0, 0.0, 0.0);
        let mut shares = Vec::new();
        for _ in 0..args.rounds {
            let (s, t, _) = run(&mut local)?;
            let server = redis_cpu_seconds(&mut redis)?;
            stats.lock().expect("stats").returned = None;
            let (ds, dt, cpu) = run(&mut dist)?;
            server_cpu += redis_cpu_seconds(&mut redis)? - server;
            shares.push((ds as f64 / dt) / (s as f64 / t));
            (steps, local_secs, dist_steps, dist_secs, coord_cpu) = (steps + s, local_secs + t, dist_steps + ds, dist_secs + dt, coord_cpu + cpu);
        }
        let after = stats.lock().expect("stats").clone();
        let same = dist.theta() == local.theta() && dist_steps == steps;
        drop(dist);
        shares.sort_by(f64::total_cmp);
        let shares: Vec<String> = shares.iter().map(|s| format!("{:.1}%", 100.0 * s)).collect();

        let g = (args.generations * args.rounds as u64) as f64;
        let (local_rate, dist_rate) = (steps as f64 / local_secs, dist_steps as f64 / dist_secs);
        let per = |a: f64, b: f64| (a - b) / g;
        let wall_ms = 1e3 * dist_secs / g;
        let critical_ms = 1e3 * per(after.critical_seconds, before.critical_seconds);
        let worker_ms = 1e3 * per(after.worker_seconds, before.worker_seconds);
        let coord_ms = 1e3 * coord_cpu / g;
        let server_ms = 1e3 * server_cpu / g;
        println!(
            "es {} pop {} hidden {:?} ({} params), {} rounds of {} generations each way, {:.0} env steps per generation:",
            args.env, args.pop, args.hidden, local.num_params(), args.rounds, args.generations, steps as f64 / g
        );
        println!("  local, {} threads:                  {:.2} M env steps/s ({:.2} ms per generation)", n * wt, local_rate / 1e6, 1e3 * local_secs / g);
        println!(
            "  {n} workers × {wt} thread(s) on {}: {:.2} M env steps/s ({wall_ms:.2} ms per generation) = {:.1}% of local \
             (rounds, sorted: {}); θ identical: {}",
            url.shown(),
            dist_rate / 1e6,
            100.0 * dist_rate / local_rate,
            shares.join(", "),
            if same { "yes" } else { "NO" }
        );
        println!(
            "  per generation: {:.1} parts, {:.1} coordinator round trips, {:.1} kB queued, {:.1} kB of episodes back; \
             coordinator CPU {coord_ms:.2} ms, redis-server CPU {server_ms:.2} ms, workers' evaluation {worker_ms:.2} ms in all \
             ({critical_ms:.2} ms on the busiest); added latency {:.2} ms (wall − busiest worker): the coordinator \
             between generations {:.2} ms (ranks, ĝ, update, draws), queueing {:.2} ms, the rest waiting for workers",
            per(after.parts as f64, before.parts as f64),
            per(after.round_trips as f64, before.round_trips as f64),
            per(after.bytes_sent as f64, before.bytes_sent as f64) / 1e3,
            per(after.bytes_received as f64, before.bytes_received as f64) / 1e3,
            wall_ms - critical_ms,
            1e3 * per(after.between_seconds, before.between_seconds),
            1e3 * per(after.publish_seconds, before.publish_seconds),
        );
        let bound = |cpu_ms: f64| if cpu_ms > 0.0 { format!("{:.0}", worker_ms / cpu_ms) } else { "∞".into() };
        println!(
            "  projection: one coordinator keeps up with about {} workers of this speed (workers' evaluation ÷ its CPU \
             per generation); one redis-server with about {}",
            bound(coord_ms),
            bound(server_ms)
        );
        if !same {
            bail!("the distributed run's θ differs from the local run's");
        }
        Ok(())
    })();
    drop(workers);
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// Local `tame worker` processes for a benchmark, stopped (SIGTERM, then reaped) on drop.
struct BenchWorkers(Vec<std::process::Child>);

impl BenchWorkers {
    /// `n` workers of `threads` threads each on `url`, their scratch directories under `root`.
    fn start(url: &crate::cluster::RedisUrl, n: usize, threads: usize, root: &std::path::Path) -> anyhow::Result<BenchWorkers> {
        let exe = std::env::current_exe().context("locating the tame executable")?;
        let mut workers = BenchWorkers(Vec::new());
        for i in 0..n {
            let name = format!("bench-{}-{i}", std::process::id());
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["worker", "--threads", &threads.to_string(), "--name", &name]);
            url.pass_to(&mut cmd);
            workers.0.push(
                cmd.arg("--scratch")
                    .arg(root.join(&name))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .context("starting tame worker")?,
            );
        }
        Ok(workers)
    }
}

impl Drop for BenchWorkers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            if let Ok(pid) = libc::pid_t::try_from(w.id()) {
                // SAFETY: our child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let _ = w.wait();
        }
    }
}

/// CPU seconds (user + system) of this process so far, all threads.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds redis-server has used (INFO cpu: used_cpu_user + used_cpu_sys).
fn redis_cpu_seconds(redis: &mut crate::cluster::Redis) -> anyhow::Result<f64> {
    let info: String = redis.call(|c| redis::cmd("INFO").arg("cpu").query(c))?;
    Ok(info
        .lines()
        .filter_map(|l| l.strip_prefix("used_cpu_user:").or_else(|| l.strip_prefix("used_cpu_sys:")))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum())
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

#[derive(Debug, Args)]
pub struct StatsBenchArgs {
    /// Methods (τ values of a sweep).
    #[arg(long, default_value_t = 5)]
    methods: usize,
    /// Envs (strata of the bootstrap).
    #[arg(long, default_value_t = 6)]
    envs: usize,
    /// Seeds (runs) per env and method.
    #[arg(long, default_value_t = 10)]
    seeds: usize,
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = crate::stats::DEFAULT_RESAMPLES)]
    resamples: usize,
    /// Timed repetitions of the whole analysis (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Skip the rliable reference (.venv/bin/python with rliable).
    #[arg(long)]
    no_python: bool,
}

/// The median of some timings, in seconds.
fn median_secs(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn bench_stats(args: StatsBenchArgs) -> anyhow::Result<()> {
    use crate::stats::{self, Bootstrap};
    use crate::sweep::{analyze, Method};
    use rand::{Rng, SeedableRng};

    if args.methods < 2 || args.envs == 0 || args.seeds == 0 || args.repeats == 0 || args.resamples < 100 {
        bail!(
            "--methods {} --envs {} --seeds {} --repeats {} --resamples {}: accepted: methods >= 2, envs, seeds \
             and repeats >= 1, resamples >= 100",
            args.methods,
            args.envs,
            args.seeds,
            args.repeats,
            args.resamples
        );
    }
    let points = crate::sweep::CURVE_POINTS;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    // Normalized scores around a method- and env-dependent level, learning curves rising to it.
    let methods: Vec<Method> = (0..args.methods)
        .map(|i| {
            let mut m = Method { label: format!("τ={i}"), ..Method::default() };
            for e in 0..args.envs {
                let level = 0.3 + 0.1 * i as f64 - 0.05 * e as f64;
                let runs: Vec<f64> = (0..args.seeds).map(|_| level + 0.3 * (rng.random::<f64>() - 0.5)).collect();
                m.curves.push(
                    runs.iter().map(|&f| (0..points).map(|t| f * t as f64 / (points - 1) as f64).collect()).collect(),
                );
                m.auc_scores.push(runs.iter().map(|f| f / 2.0).collect());
                m.final_scores.push(runs);
            }
            m
        })
        .collect();
    let envs: Vec<String> = (0..args.envs).map(|e| format!("env{e}")).collect();
    let lead: Vec<(usize, usize)> = (1..args.methods).map(|i| (i, 0)).collect();
    let grid: Vec<f64> = (0..points).map(|t| t as f64).collect();
    let boot = Bootstrap { resamples: args.resamples, ..Bootstrap::default() };

    let mut total = Vec::new();
    for _ in 0..args.repeats {
        let start = Instant::now();
        let a = analyze(&envs, &methods, &lead, (grid.clone(), "steps".into()), boot, "bench");
        total.push(start.elapsed().as_secs_f64());
        std::hint::black_box(a);
    }
    // The parts, once each, in the order the report computes them.
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    let thresholds: Vec<f64> = (0..101).map(|k| -0.2 + 1.4 * k as f64 / 100.0).collect();
    let t_agg = time(&mut || {
        for (i, m) in methods.iter().enumerate() {
            std::hint::black_box(stats::aggregates(&m.final_scores, boot, i as u64));
            std::hint::black_box(stats::aggregates(&m.auc_scores, boot, 100 + i as u64));
        }
    });
    let t_prof = time(&mut || {
        for (i, m) in methods.iter().enumerate() {
            std::hint::black_box(stats::run_score_distribution_ci(&m.final_scores, &thresholds, boot, i as u64));
        }
    });
    let pairs = args.methods * (args.methods - 1) / 2;
    let t_poi = time(&mut || {
        for i in 0..args.methods {
            for j in i + 1..args.methods {
                let (x, y) = (&methods[i].final_scores, &methods[j].final_scores);
                std::hint::black_box(stats::probability_of_improvement_ci(x, y, boot, (i * 100 + j) as u64));
            }
        }
    });
    let t_curves = time(&mut || {
        for (i, m) in methods.iter().enumerate() {
            std::hint::black_box(stats::iqm_curve(&m.curves, points, boot, i as u64));
        }
    });
    let runs = args.envs * args.seeds;
    // Resampled runs per analysis: every resample draws all runs once for each method's
    // final-return, AUC, profile and curve bootstrap, and those of both sides for each pair.
    let draws = (args.resamples * runs * (4 * args.methods + 2 * pairs)) as f64;
    let t = median_secs(total);
    println!(
        "stats: {} methods × {} envs × {} seeds, {} resamples (stratified bootstrap, ChaCha8, 1 thread)",
        args.methods, args.envs, args.seeds, args.resamples
    );
    println!(
        "  whole analysis (aggregates of final return and AUC, profiles at 101 thresholds, P(X > Y) for {} pairs, \
         IQM curves at {points} points): {:.1} ms (median of {})",
        pairs,
        1e3 * t,
        args.repeats
    );
    println!(
        "  parts: aggregates {:.1} ms, profiles {:.1} ms, probability of improvement {:.1} ms, IQM curves {:.1} ms",
        1e3 * t_agg,
        1e3 * t_prof,
        1e3 * t_poi,
        1e3 * t_curves
    );
    println!(
        "  bootstrap + profiles alone: {:.1} ms; {:.1} M resampled runs/s over the whole analysis",
        1e3 * (t_agg + t_prof),
        draws / t / 1e6
    );
    if args.no_python {
        return Ok(());
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (python, script) = (root.join(".venv/bin/python"), root.join("tests/python/rliable_aggregates.py"));
    if !python.exists() || !script.exists() {
        println!("  rliable reference: not available ({} or {} missing)", python.display(), script.display());
        return Ok(());
    }
    // The same scores in rliable's layout ([run][task]); its P(X > Y) only for the pairs
    // against the first method (it takes seconds per pair), scaled to every pair below.
    let spec = serde_json::json!({
        "methods": methods.iter().map(|m| {
            let by_run: Vec<Vec<f64>> = (0..args.seeds).map(|n| m.final_scores.iter().map(|e| e[n]).collect()).collect();
            (m.label.clone(), serde_json::json!(by_run))
        }).collect::<serde_json::Map<_, _>>(),
        "pairs": (1..args.methods).map(|i| [methods[i].label.clone(), methods[0].label.clone()]).collect::<Vec<_>>(),
        "thresholds": thresholds,
        "reps": args.resamples,
        "seed": 0,
    });
    let input = std::env::temp_dir().join(format!("tame-bench-stats-{}.json", std::process::id()));
    std::fs::write(&input, spec.to_string()).with_context(|| format!("writing {}", input.display()))?;
    let out = std::process::Command::new(&python).arg(&script).arg(&input).output();
    std::fs::remove_file(&input).ok();
    match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("parsing rliable's output")?;
            let sec = |k: &str| v["seconds"][k].as_f64().unwrap_or(f64::NAN);
            let poi_all = sec("improvement") * pairs as f64 / (args.methods - 1) as f64;
            println!(
                "  rliable 1.2 (numpy, same machine, same scores, same resamples): aggregates of the final return {:.0} ms \
                 (ours for final + AUC above), profiles {:.0} ms, P(X > Y) {:.0} ms for {} pairs (≈ {:.0} ms for {pairs})",
                1e3 * sec("aggregates"),
                1e3 * sec("profiles"),
                1e3 * sec("improvement"),
                args.methods - 1,
                1e3 * poi_all
            );
        }
        Ok(o) => println!("  rliable reference: failed ({})", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")),
        Err(e) => println!("  rliable reference: could not start {}: {e}", python.display()),
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SweepBenchArgs {
    /// A running Redis for the distributed sweep (e.g. `redis-server --port 6390 --save ''`);
    /// left out or given alone, the URL is read from TAME_REDIS_URL.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    redis: Option<String>,
    /// Workers (one thread each), and runs at a time of the local sweep.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Seeds per τ (the τ grid is 0, 0.1): runs = 2 × seeds.
    #[arg(long, default_value_t = 4)]
    seeds: u64,
    /// Env steps per run (discrete SAC on FrozenLake, 16-16 networks).
    #[arg(long, default_value_t = 1000)]
    steps: u64,
}

/// Times a local sweep and the same sweep on Redis workers; checks that their summaries agree.
fn bench_sweep(args: SweepBenchArgs) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let url = crate::cluster::url_from(args.redis.as_deref(), None)?;
    if args.workers == 0 {
        bail!("--workers 0: accepted: 1 or more");
    }
    let root = std::env::temp_dir().join(format!("tame-bench-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let cfg = root.join("tiny.toml");
    std::fs::write(
        &cfg,
        "agent = \"sac\"\nenv = \"frozenlake\"\neval_episodes = 5\n[sac]\nhidden = [16, 16]\nbatch_size = 32\nlearning_starts = 100\n",
    )?;
    let exe = std::env::current_exe().context("locating the tame executable")?;
    let sweep = |out: &str, on_redis: bool| -> anyhow::Result<f64> {
        let start = Instant::now();
        let mut cmd = Command::new(&exe);
        cmd.args(["sweep", "--quiet", "--taus", "0,0.1", "--seeds", &args.seeds.to_string(), "--steps", &args.steps.to_string()])
            .args(["--jobs", &args.workers.to_string()])
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(root.join(out))
            .stdout(Stdio::null());
        if on_redis {
            url.pass_to(&mut cmd);
        }
        let status = cmd.status().context("running tame sweep")?;
        if !status.success() {
            bail!("tame sweep --out {out} failed: {status}");
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let local = sweep("local", false)?;
    let workers = BenchWorkers::start(&url, args.workers, 1, &root)?;
    let dist = sweep("dist", true);
    drop(workers);
    let dist = dist?;
    let same = std::fs::read(root.join("local/summary.csv"))? == std::fs::read(root.join("dist/summary.csv"))?;
    let runs = 2 * args.seeds;
    println!(
        "sweep of {runs} runs × {} steps (discrete SAC, FrozenLake): local --jobs {w}: {local:.2} s; \
         {w} workers × 1 thread on {}: {dist:.2} s ({:+.1}% wall time, {:.2} s per run); summaries identical: {}",
        args.steps,
        url.shown(),
        100.0 * (dist / local - 1.0),
        (dist - local) / runs as f64,
        if same { "yes" } else { "NO" },
        w = args.workers,
    );
    std::fs::remove_dir_all(&root).ok();
    if !same {
        bail!("the distributed sweep's summary.csv differs from the local one");
    }
    Ok(())
}
