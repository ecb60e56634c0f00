//! `tame worker` (serve the tasks of distributed sweeps queued on Redis) and `tame workers`
//! (list the live workers and each job's queue).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::cluster::{parse_duration, url_from, WorkerOpts};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Redis to take tasks from: redis://[user[:password]@]host[:port][/db], or rediss:// for
    /// TLS. The password is never printed. Left out (or given alone), the URL is read from
    /// TAME_REDIS_URL, which keeps a password out of `ps`.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    redis: Option<String>,
    /// Trust the CA certificate(s) in this PEM file for a rediss:// server (a private CA),
    /// instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    redis_ca: Option<PathBuf>,
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
    /// Redis to inspect (as for `tame worker`; left out, TAME_REDIS_URL).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    redis: Option<String>,
    /// Trust the CA certificate(s) in this PEM file for a rediss:// server (a private CA),
    /// instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    redis_ca: Option<PathBuf>,
    /// How long Redis may stay unreachable before giving up.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    redis_timeout: Duration,
}

pub fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let url = url_from(args.redis.as_deref(), args.redis_ca.as_deref())?;
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
    let url = url_from(args.redis.as_deref(), args.redis_ca.as_deref())?;
    crate::cluster::list_workers(&url, args.redis_timeout)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
