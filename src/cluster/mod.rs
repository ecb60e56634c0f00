//! Distributed work on Redis: `tame sweep --redis` queues its runs as tasks, `tame worker`
//! processes on any machine serve them, and the run's artifacts travel back through Redis into
//! the sweep's out directory, so that the result equals a local sweep bit for bit.
//!
//! Protocol [`PROTOCOL`] (every key of a job under `tame:<job>:`, so jobs share one Redis):
//! - `tame:jobs`: the set of live job ids; `tame:<job>:meta` their kind, lease, protocol and
//!   the coordinator's [`fingerprint`]. A worker serves only jobs of its own protocol and
//!   fingerprint; it says why it refuses one in `tame:<job>:refused`, which the coordinator shows.
//! - `tame:<job>:tasks`: a stream of tasks read by the consumer group `workers`; each entry has
//!   `task` (a [`Task`] as JSON) and, readable when the JSON is not, `run` (sweeps) or
//!   `generation` and `part` (ES), so that even a malformed task is answered. A worker
//!   re-claims its entry every lease/3 so that its idle time stays low; an entry idle past the
//!   lease (its worker died or hangs) is taken over with XAUTOCLAIM, and one delivered more
//!   than [`MAX_DELIVERIES`] times goes to `tame:<job>:dead` with its reason.
//! - `tame:<job>:entries`: run → the id of its one live task entry, kept by the scripts that
//!   add and remove entries; the coordinator audits it and queues again what is lost.
//! - Fencing ([`fence`]): a worker owns a run once a script has checked that the entry is
//!   pending to it and set `tame:<job>:owner:<run>` to its token (attempt, worker, entry).
//!   Every later write of that worker (results, artifacts, the final ack, a hand-back) is a
//!   script that first checks both; a superseded worker's write is refused (`FENCED`), and it
//!   stops its child and lets go.
//! - `tame:<job>:results`: a stream from workers to the coordinator: `started`, `config`,
//!   `events` (bytes at an offset of an event file: duplicates rewrite the same bytes),
//!   `ckpt` (a completed `step-*` directory, stored only in `ckpt:<run>`), `summary`, `failed`.
//!   The coordinator trims what it has read.
//! - `tame:<job>:ckpt:<run>` (the run's latest checkpoint and config.toml) and
//!   `tame:<job>:ev:<run>:<file>` (event files, by SETRANGE): what a worker taking a run over
//!   starts from, written in the same script as the matching result; deleted once the run ends.
//! - `tame:<job>:errors`: malformed tasks, as text. `tame:workers:<name>`: a worker's
//!   heartbeat (what it does, its protocol and fingerprint), expiring when it stops beating.
//!
//! Everything read from Redis is input from a stranger: job ids, run names and file names must
//! match [`safe_name`] before they name a path, and paths are only built under the worker's
//! scratch directory. A finished job deletes its keys; each also expires after [`KEY_TTL_S`]
//! unless its coordinator renews it.
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
mod fence;
mod fingerprint;
mod worker;

pub use conn::{parse_duration, parse_lease, url_from, Redis, RedisUrl, URL_ENV};
pub use coord::{count_workers as live_workers, run_sweep, ClusterOpts};
pub use es::{EsJob, EsJobOpts};
pub use worker::{list_workers, serve, WorkerOpts};

use serde::{Deserialize, Serialize};

/// Expiry of every job key, renewed while the job runs: a crashed coordinator's keys go away.
const KEY_TTL_S: u64 = 7 * 24 * 3600;
/// How often a coordinator renews its job's keys (far below [`KEY_TTL_S`]).
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// The protocol this build speaks; a coordinator and worker of different protocols refuse
/// each other's jobs, naming both numbers, instead of misreading each other.
const PROTOCOL: u64 = 2;
/// Deliveries of one task entry (workers that took it) before it is set aside as poisoned.
const MAX_DELIVERIES: u64 = 8;
/// The largest checkpoint a run may move through Redis (its bulk strings stop at 512 MB).
const MAX_CHECKPOINT_BYTES: u64 = 256 << 20;
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

/// Whether `id` has the form of a job id this build makes: `sweep-` or `es-` and 16 hex
/// digits. Ids come from a shared server and become directory names on workers.
fn job_id_ok(id: &str) -> bool {
    let hex = id.strip_prefix("sweep-").or_else(|| id.strip_prefix("es-"));
    hex.is_some_and(|h| h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A new job id: `<kind>-` and 64 random bits. Not a draw of any run (no result depends on
/// it), so it comes from the OS rather than a seeded generator: two coordinators anywhere,
/// or a rerun into a wiped directory, never share a job.
fn new_job_id(kind: &str) -> String {
    use rand::TryRngCore;
    let bits = rand::rngs::OsRng.try_next_u64().unwrap_or_else(|_| {
        // No OS randomness: time and pid still make a collision unlikely.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 32)
    });
    format!("{kind}-{bits:016x}")
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

/// Whether `name` may name a file or directory: 1 to 200 of `A-Z a-z 0-9 . _ + = -`, not
/// starting with `.` or `-`. Names in messages come from a shared server and must not reach
/// outside the directory they are written into, nor be hidden or read as flags.
fn safe_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+=-".contains(&b))
}

/// What [`safe_name`] accepts, for messages.
const SAFE_NAME: &str = "1 to 200 of A-Z a-z 0-9 . _ + = -, not starting with . or -";

/// `step-<12 digits>`: the name of a completed checkpoint directory.
fn checkpoint_step(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}
