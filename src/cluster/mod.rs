//! Distributed work on Redis: `tame sweep --redis` queues its runs as tasks, `tame worker`
//! processes on any machine serve them, and the run's artifacts travel back through Redis into
//! the sweep's out directory, so that the result equals a local sweep bit for bit.
//!
//! Protocol (every key of a job under `tame:<job>:`, so jobs share one Redis):
//! - `tame:jobs`: the set of live job ids; `tame:<job>:meta` their kind and lease.
//! - `tame:<job>:tasks`: a stream of tasks (field `task`: a [`Task`] as JSON) read by the
//!   consumer group `workers`. A worker re-claims its entry every lease/3 so that its idle time
//!   stays low; an entry idle past the lease (its worker died) is taken over with XAUTOCLAIM.
//!   A worker that is stopped hands its task back (XACK and a new entry, atomically).
//! - `tame:<job>:attempt:<run>`: INCR'd by each worker starting a run; every result carries its
//!   attempt, and the coordinator ignores results of an older attempt than one it has seen.
//! - `tame:<job>:results`: a stream from workers to the coordinator: `started`, `config`,
//!   `events` (bytes at an offset of an event file: duplicates rewrite the same bytes),
//!   `ckpt` (a completed `step-*` directory), `summary`, `failed`.
//! - `tame:<job>:ckpt:<run>` (the run's latest checkpoint and config.toml) and
//!   `tame:<job>:ev:<run>:<file>` (event files, by SETRANGE): what a worker taking a run over
//!   starts from, written in the same transaction as the matching result.
//! - `tame:<job>:errors`: malformed tasks, as text. `tame:workers:<name>`: a worker's
//!   heartbeat (what it does), expiring when it stops beating.
//!
//! A finished job deletes its keys; each also expires after [`KEY_TTL_S`] as a backstop.
//!
//! ES runs (`tame train --agent es --redis`, job `es-…`, see [`es`]) use the same stream and
//! group for the parts of each generation (θ and the normalisation as raw little-endian f32
//! fields beside the task), and their results stream carries `generation`, `part`, `worker`,
//! `seconds` and the episodes as JSON (`data`) or the reason a part failed (`failed`).
//! Workers delete a part's entry once its result is in; the coordinator trims the results it
//! has read.

mod conn;
mod coord;
mod es;
mod worker;

pub use conn::{parse_duration, Redis, RedisUrl};
pub use coord::{count_workers as live_workers, run_sweep, ClusterOpts};
pub use es::{EsJob, EsJobOpts};
pub use worker::{list_workers, serve, WorkerOpts};

use serde::{Deserialize, Serialize};

/// Expiry of every job key, renewed while the job runs: a crashed coordinator's keys go away.
const KEY_TTL_S: u64 = 7 * 24 * 3600;
/// The consumer group of every task stream.
const GROUP: &str = "workers";
/// The set of live job ids.
const JOBS: &str = "tame:jobs";

/// A key of job `job`.
fn key(job: &str, part: &str) -> String {
    format!("tame:{job}:{part}")
}

/// A worker's heartbeat key.
fn worker_key(name: &str) -> String {
    format!("tame:workers:{name}")
}

/// One unit of work, tagged by `kind`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Task {
    SweepRun(SweepRun),
    EsPart(EsPart),
}

/// Part of one ES generation: whole chunks of mirrored pairs and everything needed to evaluate
/// them but θ and the observation normalisation, which travel beside it as raw f32 fields.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EsPart {
    /// The part's index in its generation: its result is keyed by (generation, part).
    part: usize,
    /// The generation's index of the part's first pair (for messages).
    first_pair: usize,
    /// The run's resolved config, as its `config.toml` holds it.
    config: String,
    /// The text of the env's map file when the env is `map:PATH`.
    #[serde(default)]
    map: Option<MapFile>,
    /// σ and the draws of the part's pairs.
    generation: tame_agents::es::Generation,
}

/// One run of a sweep: everything a worker needs, no shared filesystem.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepRun {
    /// The run's directory name under `runs/`.
    run: String,
    /// The resolved config, as `config.toml` of a local run holds it.
    config: String,
    /// The text of the env's map file when the env is `map:PATH`.
    #[serde(default)]
    map: Option<MapFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    /// File name only; the worker writes it into its scratch directory.
    name: String,
    text: String,
}

/// Whether `name` is a plain file name (no directory part): names in messages come from a
/// shared server, and must not reach outside the directory they are written into.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// `step-<12 digits>`: the name of a completed checkpoint directory.
fn checkpoint_step(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}
