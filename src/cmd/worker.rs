//! `tame worker` (serve the tasks of distributed sweeps queued on Redis) and `tame workers`
//! (list the live workers and each job's queue).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::cluster::{parse_duration, RedisUrl, WorkerOpts};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Redis to take tasks from: redis://[user[:password]@]host[:port][/db], or rediss:// for
    /// TLS. The password is never printed.
    #[arg(long, value_name = "URL")]
    redis: String,
    /// Threads of each run this worker trains [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Name shown by `tame workers` and used as its consumer name; unique per Redis
    /// [default: <hostname>-<pid>].
    #[arg(long)]
    name: Option<String>,
    /// The only directory this worker writes into [default: a directory under the system's
    /// temporary directory].
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// How long Redis may stay unreachable before the worker gives up (it retries meanwhile).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    redis_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Redis to inspect (as for `tame worker`).
    #[arg(long, value_name = "URL")]
    redis: String,
    /// How long Redis may stay unreachable before giving up.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    redis_timeout: Duration,
}

pub fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let url = RedisUrl::parse(&args.redis)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = args.threads.unwrap_or(cores);
    if threads == 0 {
        bail!("--threads 0: accepted: 1 or more");
    }
    let name = args.name.unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
        bail!("worker name '{name}' is not accepted: give letters, digits, '-', '_' or '.', without spaces or '/'");
    }
    let scratch = args.scratch.unwrap_or_else(|| std::env::temp_dir().join(format!("tame-worker-{name}")));
    crate::cluster::serve(WorkerOpts { url, threads, name, scratch, timeout: args.redis_timeout })
}

pub fn run_workers(args: WorkersArgs) -> anyhow::Result<()> {
    let url = RedisUrl::parse(&args.redis)?;
    crate::cluster::list_workers(&url, args.redis_timeout)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
