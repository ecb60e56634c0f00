//! `tame env`: list environments, replay Gymnasium traces, benchmark stepping.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;
use tame_envs::{Action, Space, VecActions};

use crate::cli_values as cv;
use crate::exit::check_interrupt;

/// Most copies in the vectorized env of `tame env bench` (about 100 MB of states and
/// observations for the largest built-in env).
const MAX_COPIES: u64 = 1 << 20;

/// Steps between two looks at Ctrl-C in the single-env loop (well under a millisecond).
const POLL_EVERY: usize = 1 << 16;

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Each env with its observation and action spaces and its time limit, and the name syntax
    /// (Gymnasium ids, map files, options such as :slippery=false or :discrete=5).
    List {
        /// Print one JSON object per env instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replay every trace (or transition table) of a Gymnasium fixture file and print the
    /// largest deviation per trace; exits non-zero if any is outside the tolerances
    /// (observations 1e-5 absolute, rewards 1e-5 relative, identical flags, equal tables).
    CheckTrace {
        /// A file in the format of tests/fixtures/gymnasium/README.md.
        file: PathBuf,
        /// Print one JSON object per trace instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Steps per second of single envs and of the vectorized env (actions come from a
    /// pre-drawn deterministic pool, so the figure is the env's own cost).
    Bench {
        /// Env names to measure (repeat the flag or separate with commas).
        #[arg(long = "env", value_delimiter = ',', default_values_t = ["cartpole".to_string(), "pendulum".to_string()])]
        envs: Vec<String>,
        /// Copies in the vectorized env.
        #[arg(long, default_value_t = 1024, allow_hyphen_values = true, value_parser = cv::count::<1, MAX_COPIES>)]
        num_envs: usize,
        /// Env steps per measurement (summed over copies).
        #[arg(long, default_value_t = 20_000_000, allow_hyphen_values = true, value_parser = cv::steps)]
        steps: u64,
        /// Thread counts to measure (comma-separated); each single-env run uses one env per
        /// thread, each vectorized run splits the copies across the threads.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2], allow_hyphen_values = true,
              value_parser = cv::threads)]
        threads: Vec<usize>,
        /// Print one JSON object per measurement (env, mode, num_envs, threads, steps,
        /// seconds, steps_per_sec, cpu_seconds, steps_per_cpu_sec).
        #[arg(long)]
        json: bool,
    },
    /// Mean return of uniform random actions (Box: uniform in [low, high]) over the
    /// evaluation's episodes, with its standard error: the "random" end of score
    /// normalization (`tame sweep`, `tame report`).
    RandomReturn {
        /// Env name (see `tame env list`).
        env: String,
        /// Episodes (episode i is reset with the evaluation seed 1,000,000 + i).
        #[arg(long, default_value_t = 10_000)]
        episodes: usize,
        /// Seed of the action draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

pub fn run(command: EnvCommand) -> anyhow::Result<()> {
    match command {
        EnvCommand::List { json } => list(json),
        EnvCommand::CheckTrace { file, json } => check_trace(&file, json),
        EnvCommand::Bench { envs, num_envs, steps, threads, json } => {
            bench(&envs, num_envs, steps, &threads, json)
        }
        EnvCommand::RandomReturn { env, episodes, seed } => {
            let (mean, se) = crate::sweep::random_policy_return(&env, episodes, seed)?;
            println!("{env}: random-policy return {mean:.4} ± {se:.4} (standard error, {episodes} episodes, seed {seed})");
            Ok(())
        }
    }
}

fn limit_text(limit: Option<u32>) -> String {
    limit.map_or("none".to_string(), |l| l.to_string())
}

fn list(as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let specs = tame_envs::builtin_specs();
    if as_json {
        for s in &specs {
            let o = json!({
                "name": s.name,
                "gymnasium_id": s.gymnasium_id,
                "observation_space": s.observation_space.to_string(),
                "action_space": s.action_space.to_string(),
                "time_limit": s.time_limit,
            });
            writeln!(out, "{o}")?;
        }
        return Ok(());
    }
    for s in &specs {
        writeln!(out, "{:<22} {}", s.name, s.description)?;
        if let Some(id) = s.gymnasium_id {
            writeln!(out, "    gymnasium id:  {id}")?;
        }
        writeln!(out, "    observations:  {}", s.observation_space)?;
        writeln!(out, "    actions:       {}", s.action_space)?;
        writeln!(out, "    time limit:    {}", limit_text(s.time_limit))?;
    }
    writeln!(out)?;
    writeln!(out, "{}", tame_envs::NAME_SYNTAX)?;
    Ok(())
}

fn check_trace(file: &std::path::Path, as_json: bool) -> anyhow::Result<()> {
    let reports = tame_envs::parity::check_file(file)?;
    let mut out = std::io::stdout().lock();
    if reports.is_empty() {
        bail!("{} holds no traces", file.display());
    }
    if !as_json {
        writeln!(out, 
            "{:<24} {:<26} {:>6} {:>12} {:>12} {:>10} {:>6}",
            "trace", "env", "steps", "max |dobs|", "max rel dr", "flags", "result"
        )?;
    }
    for r in &reports {
        if as_json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
            continue;
        }
        let flags = match r.first_flag_mismatch {
            Some(k) => format!("step {k}"),
            None => "same".to_string(),
        };
        let (obs_col, rew_col) = match r.max_prob_dev {
            Some(p) => (format!("p {p:.1e}"), "-".to_string()),
            None => (format!("{:.1e}", r.max_obs_dev), format!("{:.1e}", r.max_reward_rel_dev)),
        };
        writeln!(out, 
            "{:<24} {:<26} {:>6} {:>12} {:>12} {:>10} {:>6}",
            r.name,
            r.env,
            r.steps,
            obs_col,
            rew_col,
            flags,
            if r.ok { "ok" } else { "FAIL" }
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "    error: {e}")?;
        }
    }
    let failed: Vec<&str> = reports.iter().filter(|r| !r.ok).map(|r| r.name.as_str()).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} traces in {} are outside the tolerances: {}",
            failed.len(),
            reports.len(),
            file.display(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// A pre-drawn pool of valid actions; each step reads a window of it at a moving offset.
struct ActionPool {
    discrete: Vec<usize>,
    continuous: Vec<f32>,
    is_discrete: bool,
}

/// Pool length beyond one window; a prime, so windows do not repeat in step with episodes.
const POOL_EXTRA: usize = 4099;

impl ActionPool {
    fn new(space: &Space, len: usize) -> anyhow::Result<Self> {
        // xorshift64*: deterministic and cheap, used only to fill the pool.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        Ok(match space {
            Space::Discrete(n) => ActionPool {
                discrete: (0..len).map(|_| (next() % *n as u64) as usize).collect(),
                continuous: Vec::new(),
                is_discrete: true,
            },
            Space::Box { low, high } if low.len() == 1 => ActionPool {
                discrete: Vec::new(),
                continuous: (0..len)
                    .map(|_| {
                        let u = (next() >> 40) as f32 / (1u64 << 24) as f32;
                        low[0] + (high[0] - low[0]) * u
                    })
                    .collect(),
                is_discrete: false,
            },
            other => bail!("bench supports Discrete and 1-D Box action spaces, not {other}"),
        })
    }
    fn window(&self, offset: usize, n: usize) -> VecActions<'_> {
        if self.is_discrete {
            VecActions::Discrete(&self.discrete[offset..offset + n])
        } else {
            VecActions::Continuous(&self.continuous[offset..offset + n])
        }
    }
}

struct Measurement {
    env: String,
    mode: &'static str,
    num_envs: usize,
    threads: usize,
    steps: u64,
    seconds: f64,
    /// CPU time all threads of this process spent during the measurement (Linux only).
    cpu_seconds: Option<f64>,
}

/// User + system CPU seconds of this process so far, from /proc/self/stat (Linux; the
/// kernel counts in ticks of 1/100 s). On a shared machine, steps per CPU-second shows
/// what the env costs when other processes take the wall clock.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Runs `f`, returning its result with the wall and CPU seconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, Option<f64>) {
    let cpu0 = process_cpu_seconds();
    let start = Instant::now();
    let out = f();
    let seconds = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    (out, seconds, cpu)
}

/// One `Box<dyn Env>` per thread, each stepped `steps / threads` times.
fn bench_single(name: &str, steps: u64, threads: usize) -> anyhow::Result<Measurement> {
    let per_thread = (steps / threads as u64).max(1);
    let probe = tame_envs::make(name)?;
    let pool = ActionPool::new(&probe.action_space(), POOL_EXTRA + 1)?;
    let (results, seconds, cpu_seconds) = timed(|| -> Vec<anyhow::Result<()>> { std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let pool = &pool;
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut env = tame_envs::make(name)?;
                    let mut obs = vec![0.0f32; env.observation_space().dim()];
                    env.reset(Some(t as u64), &mut obs);
                    let mut value = [0.0f64];
                    for k in 0..per_thread as usize {
                        if k % POLL_EVERY == 0 {
                            check_interrupt("tame env bench")?;
                        }
                        let i = k % POOL_EXTRA;
                        let action = if pool.is_discrete {
                            Action::Discrete(pool.discrete[i])
                        } else {
                            value[0] = pool.continuous[i] as f64;
                            Action::Continuous(&value)
                        };
                        let r = env.step(action, &mut obs)?;
                        if r.terminated || r.truncated {
                            env.reset(None, &mut obs);
                        }
                    }
                    std::hint::black_box(&obs);
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("bench thread panicked"))).collect()
    })});
    for r in results {
        r?;
    }
    Ok(Measurement {
        env: name.to_string(),
        mode: "single",
        num_envs: threads,
        threads,
        steps: per_thread * threads as u64,
        seconds,
        cpu_seconds,
    })
}

/// The vectorized env with `num_envs` copies on a rayon pool of `threads` threads.
fn bench_vector(name: &str, num_envs: usize, steps: u64, threads: usize) -> anyhow::Result<Measurement> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the rayon thread pool")?;
    let mut venv = tame_envs::make_vec(name, num_envs, 0)?;
    let actions = ActionPool::new(&venv.action_space(), num_envs + POOL_EXTRA)?;
    let iters = (steps / num_envs as u64).max(1);
    pool.install(|| -> anyhow::Result<Measurement> {
        // Warm-up: page in the arrays and spin up the workers.
        for k in 0..10 {
            venv.step(actions.window(k, num_envs))?;
        }
        let (stepped, seconds, cpu_seconds) = timed(|| -> anyhow::Result<()> {
            for k in 0..iters as usize {
                check_interrupt("tame env bench")?;
                venv.step(actions.window((k * 7) % POOL_EXTRA, num_envs))?;
            }
            Ok(())
        });
        stepped?;
        std::hint::black_box(venv.obs());
        Ok(Measurement {
            env: name.to_string(),
            mode: "vector",
            num_envs,
            threads,
            steps: iters * num_envs as u64,
            seconds,
            cpu_seconds,
        })
    })
}

fn bench(envs: &[String], num_envs: usize, steps: u64, threads: &[usize], as_json: bool) -> anyhow::Result<()> {
    if num_envs == 0 {
        bail!("--num-envs 0: the vectorized env needs at least 1 copy");
    }
    if steps == 0 {
        bail!("--steps 0: give a positive number of steps");
    }
    if let Some(t) = threads.iter().find(|&&t| t == 0) {
        bail!("--threads {t}: thread counts must be at least 1");
    }
    let mut out = std::io::stdout().lock();
    for name in envs {
        tame_envs::make(name).with_context(|| format!("--env {name}"))?;
        for &t in threads {
            for m in [bench_single(name, steps, t)?, bench_vector(name, num_envs, steps, t)?] {
                let sps = m.steps as f64 / m.seconds;
                let per_cpu = m.cpu_seconds.filter(|c| *c > 0.0).map(|c| m.steps as f64 / c);
                if as_json {
                    let o = json!({
                        "env": m.env, "mode": m.mode, "num_envs": m.num_envs, "threads": m.threads,
                        "steps": m.steps, "seconds": m.seconds, "steps_per_sec": sps,
                        "cpu_seconds": m.cpu_seconds, "steps_per_cpu_sec": per_cpu,
                    });
                    writeln!(out, "{o}")?;
                } else {
                    let cpu = per_cpu.map_or(String::new(), |c| format!("  ({:.2} M per CPU-second)", c / 1e6));
                    writeln!(out, 
                        "{:<14} {:<7} num_envs={:<6} threads={:<3} {:>8.2} M steps/s{cpu}",
                        m.env,
                        m.mode,
                        m.num_envs,
                        m.threads,
                        sps / 1e6
                    )?;
                }
            }
        }
    }
    Ok(())
}
