//! `tame worker`: takes tasks from every live job's stream (first entries whose worker died,
//! then new ones), runs each sweep run as a child `tame train` in its scratch directory and
//! streams the run's artifacts back as they appear. A stop (SIGINT/SIGTERM) stops the child,
//! which checkpoints; the checkpoint is sent and the task handed back for another worker.
//! Every write after a task is taken goes through [`fence`](super::fence): a worker that was
//! superseded finds out there, stops its child and lets go. Everything a task names is checked
//! before it names a path, and paths are built only inside the scratch directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::Value;
use tame_agents::run::stop_requested;

use tame_agents::es::{ObsNorm, PairEvaluator};

use super::conn::LEASE_RANGE;
use super::fence::{self, Fenced, Guard, Writes};
use super::fingerprint::fingerprint;
use super::{
    checkpoint_step, job_id_ok, key, safe_name, worker_key, EsPart, MapFile, Redis, RedisUrl, SweepRun, Task, GROUP, JOBS,
    KEY_TTL_S, MAX_CHECKPOINT_BYTES, MAX_DELIVERIES, PROTOCOL, SAFE_NAME,
};
use crate::run_dir::{Resolved, RunConfig};

/// How long a heartbeat key outlives its last beat.
const HEARTBEAT_TTL_S: u64 = 10;
/// How often a running task's new artifacts are sent.
const SYNC_EVERY: Duration = Duration::from_millis(200);
/// The largest piece of an event file sent in one message.
const CHUNK: usize = 1 << 20;
/// How often an idle or busy worker renews its heartbeat.
const BEAT_EVERY: Duration = Duration::from_secs(2);
/// How often a busy worker reads the job list again and looks for parts of dead workers (an
/// idle one does so after each empty wait).
const SCAN_EVERY: Duration = Duration::from_secs(1);
/// How long one blocking read of the task streams waits (also the longest a stop waits).
const WAIT: Duration = Duration::from_millis(250);
/// XAUTOCLAIM calls per job and scan: each looks at up to 10 pending entries from the saved
/// cursor, so a dead worker's entry behind many live ones is still found within a few scans.
const AUTOCLAIM_CALLS: usize = 4;

pub struct WorkerOpts {
    pub url: RedisUrl,
    pub threads: usize,
    pub name: String,
    pub scratch: PathBuf,
    pub timeout: Duration,
}

/// What the worker does now, for its heartbeat.
#[derive(serde::Serialize, serde::Deserialize)]
struct Beat {
    pid: u32,
    threads: usize,
    doing: String,
    #[serde(default)]
    protocol: u64,
    #[serde(default)]
    fingerprint: String,
}

/// A live job as last scanned: its id, lease, and the XAUTOCLAIM cursor of its stream.
#[derive(Clone)]
struct Job {
    id: String,
    lease: Duration,
}

struct Worker {
    redis: Redis,
    opts: WorkerOpts,
    last_beat: Instant,
    /// Live jobs this worker serves, as last scanned.
    jobs: Vec<Job>,
    scanned: Option<Instant>,
    /// Each job's XAUTOCLAIM cursor.
    cursors: HashMap<String, String>,
    /// Jobs refused (bad id, other protocol or fingerprint, bad lease) or broken (no task
    /// stream), each said once.
    refused: HashSet<String>,
    /// The ES evaluator of the last job served, with the job and config it was built for.
    es_cache: Option<EsEvaluator>,
    /// The last ES part served and when, for the heartbeat between parts.
    serving: Option<(String, Instant)>,
}

/// An ES job's evaluator and the fingerprint (job, config, map) it was built from.
struct EsEvaluator(PairEvaluator, String);

/// A stream entry's task, or why it is malformed.
fn parse_task(entry: &StreamId) -> Result<Task, String> {
    match entry.map.get("task") {
        Some(Value::BulkString(bytes)) => serde_json::from_slice(bytes).map_err(|e| format!("its task is malformed: {e}")),
        Some(Value::SimpleString(text)) => serde_json::from_str(text).map_err(|e| format!("its task is malformed: {e}")),
        _ => Err("it has no `task` field".into()),
    }
}

/// A plain field of an entry, as text.
fn field(entry: &StreamId, name: &str) -> Option<String> {
    match entry.map.get(name)? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(t) => Some(t.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Serves tasks until a stop is requested.
pub fn serve(opts: WorkerOpts) -> anyhow::Result<()> {
    let redis = Redis::connect(&opts.url, opts.timeout)?;
    std::fs::create_dir_all(&opts.scratch)
        .with_context(|| format!("creating scratch directory {}", opts.scratch.display()))?;
    let mut w = Worker {
        redis,
        opts,
        last_beat: Instant::now(),
        jobs: Vec::new(),
        scanned: None,
        cursors: HashMap::new(),
        refused: HashSet::new(),
        es_cache: None,
        serving: None,
    };
    let beat = w.beat_json("idle");
    let name = w.opts.name.clone();
    let fresh: Option<String> = w.redis.call(|c| {
        redis::cmd("SET").arg(worker_key(&name)).arg(&beat).arg("NX").arg("EX").arg(HEARTBEAT_TTL_S).query(c)
    })?;
    if fresh.is_none() {
        bail!(
            "a worker named '{name}' is live already on this Redis (a worker that died frees its name within \
             {HEARTBEAT_TTL_S} s); give another --name"
        );
    }
    eprintln!("tame worker {name}: serving {} with {} threads (protocol {PROTOCOL}, {})", w.opts.url.shown(), w.opts.threads, fingerprint());
    let result = w.serve_loop();
    let _ = w.redis.call(|c| redis::cmd("DEL").arg(worker_key(&name)).query::<()>(c));
    result
}

/// How one task ended, for the scratch clean-up and the log.
enum Served {
    Done,
    /// Another worker owns the task now (or its job is gone): nothing more was written.
    Superseded(String),
}

impl Worker {
    fn beat_json(&self, doing: &str) -> String {
        let beat = Beat {
            pid: std::process::id(),
            threads: self.opts.threads,
            doing: doing.to_string(),
            protocol: PROTOCOL,
            fingerprint: fingerprint().to_string(),
        };
        serde_json::to_string(&beat).expect("plain struct")
    }

    fn beat(&mut self, doing: &str) -> anyhow::Result<()> {
        let json = self.beat_json(doing);
        let k = worker_key(&self.opts.name);
        self.redis.call(|c| redis::cmd("SET").arg(&k).arg(&json).arg("EX").arg(HEARTBEAT_TTL_S).query::<()>(c))?;
        self.last_beat = Instant::now();
        Ok(())
    }

    fn serve_loop(&mut self) -> anyhow::Result<()> {
        while !stop_requested() {
            if self.last_beat.elapsed() >= BEAT_EVERY {
                let doing = match &self.serving {
                    Some((doing, at)) if at.elapsed() < BEAT_EVERY => doing.clone(),
                    _ => "idle".to_string(),
                };
                self.beat(&doing)?;
            }
            let mut entries = self.next_tasks()?;
            // Several jobs may each have given one: ES parts are short, so all are served;
            // of the sweep runs, the first is served and the others handed back at once.
            let is_es = |job: &Job| job.id.starts_with("es-");
            entries.sort_by_key(|(job, _)| !is_es(job));
            let mut runs = 0;
            for (job, entry) in entries {
                let id = entry.id.clone();
                let outcome = if is_es(&job) {
                    self.serve_es_entry(&job, &entry)
                } else if runs > 0 || stop_requested() {
                    let guard = Guard { tasks: key(&job.id, "tasks"), entry: id.clone(), consumer: self.opts.name.clone(), owner: None };
                    let run = field(&entry, "run").filter(|r| safe_name(r)).unwrap_or_default();
                    guard.hand_back(&mut self.redis, &run, &key(&job.id, "entries"), &entry_fields(&entry)).map(|f| match f {
                        Fenced::Done(()) => Served::Done,
                        Fenced::Superseded(why) => Served::Superseded(why),
                    })
                } else {
                    runs += 1;
                    self.serve_sweep_entry(&job, &entry)
                };
                // A task gone wrong (a full disk) is reported; the worker goes on. Redis
                // itself gone past the timeout ends it (beat).
                match outcome {
                    Ok(Served::Done) => {}
                    Ok(Served::Superseded(why)) => {
                        eprintln!("tame worker {}: task {id} of job {} is no longer ours ({why}); let go", self.opts.name, job.id)
                    }
                    Err(e) => eprintln!("tame worker {}: task {id} of job {}: {e:#}", self.opts.name, job.id),
                }
            }
        }
        eprintln!("tame worker {}: stopped", self.opts.name);
        Ok(())
    }

    /// Says once why this worker does not serve `job`.
    fn refuse(&mut self, job: &str, why: &str, tell_coordinator: bool) {
        if !self.refused.insert(job.to_string()) {
            return;
        }
        eprintln!("tame worker {}: job '{}' refused: {why}", self.opts.name, job.escape_debug());
        if tell_coordinator {
            let (refused, me) = (key(job, "refused"), self.opts.name.clone());
            let _ = self.redis.call(|c| {
                let mut p = redis::pipe();
                p.cmd("HSET").arg(&refused).arg(&me).arg(why).ignore();
                p.cmd("EXPIRE").arg(&refused).arg(KEY_TTL_S).ignore();
                p.query::<()>(c)
            });
        }
    }

    /// Every live job this worker may serve, with its lease. Ids that are not job ids are
    /// refused (they would name directories); jobs whose keys expired (a coordinator killed
    /// long ago) are dropped from the job set; jobs of another protocol or build are refused
    /// and the coordinator is told why.
    fn scan_jobs(&mut self) -> anyhow::Result<Vec<Job>> {
        let mut ids: Vec<String> = self.redis.call(|c| redis::cmd("SMEMBERS").arg(JOBS).query(c))?;
        ids.sort();
        let mut valid = Vec::new();
        for id in ids {
            if job_id_ok(&id) {
                valid.push(id);
            } else {
                self.refuse(&id, "not a job id (accepted: sweep- or es- and 16 hex digits)", false);
            }
        }
        self.clean_scratch(&valid);
        if valid.is_empty() {
            return Ok(Vec::new());
        }
        type Meta = (Option<u64>, Option<u64>, Option<String>, bool);
        let metas: Vec<Meta> = self.redis.call(|c| {
            let mut p = redis::pipe();
            for job in &valid {
                p.cmd("HMGET").arg(key(job, "meta")).arg("lease_ms").arg("protocol").arg("fingerprint");
            }
            let fields: Vec<(Option<u64>, Option<u64>, Option<String>)> = p.query(c)?;
            let mut q = redis::pipe();
            for job in &valid {
                q.cmd("EXISTS").arg(key(job, "tasks"));
            }
            let exists: Vec<bool> = q.query(c)?;
            Ok(fields.into_iter().zip(exists).map(|((l, p, f), e)| (l, p, f, e)).collect())
        })?;
        let gone: Vec<&String> = valid.iter().zip(&metas).filter(|(_, m)| m.0.is_none()).map(|(j, _)| j).collect();
        if !gone.is_empty() {
            self.redis.call(|c| redis::cmd("SREM").arg(JOBS).arg(&gone).query::<()>(c))?;
        }
        let mut jobs = Vec::new();
        for (id, (lease, protocol, print, exists)) in valid.iter().zip(metas) {
            let Some(lease_ms) = lease else { continue };
            let lease = Duration::from_millis(lease_ms);
            if protocol != Some(PROTOCOL) {
                let theirs = protocol.map_or("none".to_string(), |p| p.to_string());
                self.refuse(id, &format!("the job speaks protocol {theirs}, this worker {PROTOCOL}: run the same tame on both sides"), true);
            } else if print.as_deref() != Some(fingerprint()) {
                let why = format!(
                    "the coordinator's build computes other bits ({}) than this worker's ({}): same version, libtorch \
                     and libm are needed on both sides for identical results",
                    print.unwrap_or_default(),
                    fingerprint()
                );
                self.refuse(id, &why, true);
            } else if !(LEASE_RANGE.0..=LEASE_RANGE.1).contains(&lease) {
                self.refuse(id, &format!("its lease of {lease_ms} ms is outside 100 ms to 1 day"), true);
            } else if !exists {
                // Its stream is gone (finished, or broken): nothing to read; not a refusal.
                continue;
            } else {
                jobs.push(Job { id: id.clone(), lease });
            }
        }
        Ok(jobs)
    }

    /// Removes the scratch directories of jobs that are no longer live (a long-lived worker's
    /// disk does not grow with every job it served).
    fn clean_scratch(&self, live: &[String]) {
        let Ok(dirs) = std::fs::read_dir(&self.opts.scratch) else { return };
        for d in dirs.filter_map(Result::ok) {
            let name = d.file_name().to_string_lossy().into_owned();
            if job_id_ok(&name) && !live.contains(&name) {
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }

    /// The next entries: one whose worker's lease ran out (looked for every [`SCAN_EVERY`]),
    /// else the new ones of every job, waiting up to [`WAIT`] for one.
    fn next_tasks(&mut self) -> anyhow::Result<Vec<(Job, StreamId)>> {
        let me = self.opts.name.clone();
        if self.scanned.is_none_or(|t| t.elapsed() >= SCAN_EVERY) {
            self.jobs = self.scan_jobs()?;
            self.scanned = Some(Instant::now());
            for job in self.jobs.clone() {
                if let Some(entry) = self.autoclaim(&job)? {
                    eprintln!("tame worker {me}: taking over task {} of job {} (its worker's lease ran out)", entry.id, job.id);
                    return Ok(vec![(job, entry)]);
                }
            }
        }
        if self.jobs.is_empty() {
            let until = Instant::now() + WAIT;
            while Instant::now() < until && !stop_requested() {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.scanned = None;
            return Ok(Vec::new());
        }
        let keys: Vec<String> = self.jobs.iter().map(|job| key(&job.id, "tasks")).collect();
        let read = self.redis.call_raw(|c| {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg(GROUP).arg(&me).arg("COUNT").arg(1).arg("BLOCK").arg(WAIT.as_millis() as u64);
            cmd.arg("STREAMS").arg(&keys);
            for _ in &keys {
                cmd.arg(">");
            }
            cmd.query::<Option<StreamReadReply>>(c)
        })?;
        match read {
            // Idle: look for new jobs (and dead workers' parts) before waiting again.
            Ok(None) => {
                self.scanned = None;
                Ok(Vec::new())
            }
            Ok(reply) => {
                let mut out = Vec::new();
                for k in reply.into_iter().flat_map(|r| r.keys) {
                    let Some(i) = keys.iter().position(|x| *x == k.key) else { continue };
                    out.extend(k.ids.into_iter().map(|entry| (self.jobs[i].clone(), entry)));
                }
                Ok(out)
            }
            Err(e) => {
                // One stream without its group (a job half gone, or forged) fails the whole
                // read: find which, leave it out, and read the others at once.
                let broken = self.broken_streams(&keys, &e.to_string())?;
                if broken.is_empty() {
                    bail!("reading the task streams: {e}");
                }
                for b in &broken {
                    let job = self.jobs[*b].id.clone();
                    self.refuse(&job, "its task stream has no consumer group `workers`", false);
                }
                let mut i = 0;
                self.jobs.retain(|_| {
                    i += 1;
                    !broken.contains(&(i - 1))
                });
                Ok(Vec::new())
            }
        }
    }

    /// Indexes of `keys` whose stream has no `workers` group.
    fn broken_streams(&mut self, keys: &[String], message: &str) -> anyhow::Result<Vec<usize>> {
        if let Some(i) = keys.iter().position(|k| message.contains(&format!("'{k}'"))) {
            return Ok(vec![i]);
        }
        let mut broken = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let groups = self.redis.call_raw(|c| redis::cmd("XINFO").arg("GROUPS").arg(k).query::<Vec<HashMap<String, Value>>>(c))?;
            let ok = groups.is_ok_and(|g| g.iter().any(|g| matches!(g.get("name"), Some(Value::BulkString(n)) if n == GROUP.as_bytes())));
            if !ok {
                broken.push(i);
            }
        }
        Ok(broken)
    }

    /// An entry of `job` whose worker's lease ran out, claimed for this worker: XAUTOCLAIM
    /// from the job's saved cursor, so that every pending entry is looked at in turn.
    fn autoclaim(&mut self, job: &Job) -> anyhow::Result<Option<StreamId>> {
        let tasks = key(&job.id, "tasks");
        let me = self.opts.name.clone();
        for _ in 0..AUTOCLAIM_CALLS {
            let cursor = self.cursors.get(&job.id).cloned().unwrap_or_else(|| "0-0".into());
            let claimed = self.redis.call_raw(|c| {
                redis::cmd("XAUTOCLAIM")
                    .arg(&tasks)
                    .arg(GROUP)
                    .arg(&me)
                    .arg(job.lease.as_millis() as u64)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(1)
                    .query::<StreamAutoClaimReply>(c)
            })?;
            // A job whose stream went away since the scan (it finished): nothing to do.
            let Ok(claimed) = claimed else { return Ok(None) };
            let wrapped = claimed.next_stream_id == "0-0";
            self.cursors.insert(job.id.clone(), claimed.next_stream_id);
            if let Some(entry) = claimed.claimed.into_iter().next() {
                return Ok(Some(entry));
            }
            if wrapped {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// How often the entry `id` of `tasks` was delivered (1 for a first read).
    fn deliveries(&mut self, tasks: &str, id: &str) -> anyhow::Result<u64> {
        let pending: Vec<(String, String, u64, u64)> =
            self.redis.call(|c| redis::cmd("XPENDING").arg(tasks).arg(GROUP).arg(id).arg(id).arg(1).query(c))?;
        Ok(pending.first().map_or(1, |p| p.3))
    }

    /// Evaluates one part of an ES generation with the job's evaluator (built once per job
    /// from the task's config, checked as `tame train` checks it) and sends its episodes,
    /// acknowledging and deleting the part in the same fenced write. The lease is renewed
    /// while it runs; a stop lets it finish first. A malformed part is answered as failed.
    fn serve_es_entry(&mut self, job: &Job, entry: &StreamId) -> anyhow::Result<Served> {
        let guard = Guard { tasks: key(&job.id, "tasks"), entry: entry.id.clone(), consumer: self.opts.name.clone(), owner: None };
        // What identifies the part, readable even when its JSON is not.
        let ids = (field(entry, "generation").and_then(|g| g.parse::<u64>().ok()), field(entry, "part").and_then(|p| p.parse::<usize>().ok()));
        let deliveries = self.deliveries(&guard.tasks, &entry.id)?;
        let task = match parse_task(entry) {
            Ok(Task::EsPart(part)) if ids == (Some(part.generation.index), Some(part.part)) => part,
            Ok(Task::EsPart(_)) => return self.fail_part(&job.id, &guard, ids, "its generation and part fields disagree with its task"),
            Ok(Task::SweepRun(_)) => return self.fail_part(&job.id, &guard, ids, "a sweep run in an ES job"),
            Err(why) => return self.fail_part(&job.id, &guard, ids, &why),
        };
        if deliveries > MAX_DELIVERIES {
            let why = format!("delivered {deliveries} times (every worker that took it died or hung); set aside as poisoned");
            return self.fail_part(&job.id, &guard, ids, &why);
        }
        let floats = |field: &str| -> Result<Vec<f32>, String> {
            match entry.map.get(field) {
                Some(Value::BulkString(b)) if b.len() % 4 == 0 => {
                    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
                }
                Some(Value::BulkString(b)) => Err(format!("its `{field}` field has {} bytes, not whole f32s", b.len())),
                _ => Err(format!("it has no `{field}` field")),
            }
        };
        let inputs = floats("theta").and_then(|t| Ok((t, ObsNorm { mean: floats("obs_mean")?, inv_std: floats("obs_inv_std")? })));
        let (theta, norm) = match inputs {
            Ok(v) => v,
            Err(why) => return self.fail_part(&job.id, &guard, ids, &why),
        };
        let mut evaluator = match self.es_evaluator(&job.id, &task) {
            Ok(e) => e,
            Err(e) => return self.fail_part(&job.id, &guard, ids, &format!("{e:#}")),
        };
        let (g, pairs) = (task.generation.index + 1, task.first_pair..task.first_pair + task.generation.pair_seeds.len());
        let doing = format!("job {} generation {g}, pairs {}..{}", job.id, pairs.start, pairs.end);
        if self.last_beat.elapsed() >= BEAT_EVERY {
            self.beat(&doing)?;
        }
        self.serving = Some((doing, Instant::now()));
        let begun = Instant::now();
        let renew = job.lease / 3;
        let mut keep = Writes::default();
        keep.add(redis::cmd("XCLAIM").arg(&guard.tasks).arg(GROUP).arg(&guard.consumer).arg(0).arg(&entry.id).arg("JUSTID"));
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = std::thread::scope(|s| -> anyhow::Result<_> {
            let generation = &task.generation;
            let evaluator = &mut evaluator;
            let (theta, norm) = (&theta, &norm);
            s.spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| evaluator.0.evaluate(generation, theta, norm)));
                let _ = tx.send(result.map_err(|p| panic_text(&p)));
            });
            loop {
                match rx.recv_timeout(renew) {
                    Ok(result) => return Ok(Some(result)),
                    // The evaluator's thread ended without a word: no busy loop of renewals.
                    Err(RecvTimeoutError::Disconnected) => return Ok(Some(Err("the evaluator thread ended without a result".into()))),
                    Err(RecvTimeoutError::Timeout) => {
                        // Still working: keep the entry's idle time low, while it is ours.
                        if let Fenced::Superseded(_) = guard.write(&mut self.redis, &keep)? {
                            return Ok(None);
                        }
                    }
                }
            }
        });
        let Some(outcome) = outcome? else {
            self.es_cache = None;
            return Ok(Served::Superseded("another worker took the part over".into()));
        };
        let episodes = match outcome {
            Ok(Ok(episodes)) => {
                self.es_cache = Some(evaluator);
                episodes
            }
            Ok(Err(e)) => {
                self.es_cache = Some(evaluator);
                return self.fail_part(&job.id, &guard, ids, &e.to_string());
            }
            // A panicked evaluator may be in any state: not kept.
            Err(panic) => return self.fail_part(&job.id, &guard, ids, &format!("the evaluator panicked: {panic}")),
        };
        let seconds = begun.elapsed().as_secs_f64();
        let data = serde_json::to_vec(&episodes).context("encoding the episodes")?;
        let results = key(&job.id, "results");
        let mut w = Writes::default();
        w.add(
            redis::cmd("XADD")
                .arg(&results)
                .arg("*")
                .arg("generation")
                .arg(task.generation.index)
                .arg("part")
                .arg(task.part)
                .arg("worker")
                .arg(&guard.consumer)
                .arg("seconds")
                .arg(seconds)
                .arg("data")
                .arg(&data),
        );
        w.add(redis::cmd("EXPIRE").arg(&results).arg(KEY_TTL_S));
        w.add(redis::cmd("XACK").arg(&guard.tasks).arg(GROUP).arg(&entry.id));
        w.add(redis::cmd("XDEL").arg(&guard.tasks).arg(&entry.id));
        Ok(served(guard.write(&mut self.redis, &w)?))
    }

    /// The evaluator for `task`'s job and config: the cached one, or a new one (the cache
    /// holds one job's; it is taken out while in use).
    fn es_evaluator(&mut self, job: &str, task: &EsPart) -> anyhow::Result<EsEvaluator> {
        let fingerprint = format!("{job}\n{}\n{:?}", task.config, task.map.as_ref().map(|m| (&m.name, &m.text)));
        if let Some(cached) = self.es_cache.take() {
            if cached.1 == fingerprint {
                return Ok(cached);
            }
        }
        let base = self.opts.scratch.join(job);
        let (_, cfg) = prepare_config(&base, "es", &task.config, task.map.as_ref(), self.opts.threads)?;
        let (config, factory) = crate::agent::es_setup(&cfg, self.opts.threads)?;
        let evaluator = PairEvaluator::new(config, factory)?;
        let map = task.map.as_ref().map_or(String::new(), |m| format!(", map {} ({} bytes) shipped with it", m.name, m.text.len()));
        eprintln!("tame worker {}: job {job}: evaluating ES parts{map}", self.opts.name);
        Ok(EsEvaluator(evaluator, fingerprint))
    }

    /// Answers an ES part as failed (its run stops with the reason: every worker would fail
    /// the same way), records why in the job's error list, and removes the part.
    fn fail_part(&mut self, job: &str, guard: &Guard, ids: (Option<u64>, Option<usize>), why: &str) -> anyhow::Result<Served> {
        let text = format!("worker {}: task {} of job {job} set aside: {why}", self.opts.name, guard.entry);
        eprintln!("tame {text}");
        let (errors, results) = (key(job, "errors"), key(job, "results"));
        let mut w = Writes::default();
        w.add(redis::cmd("RPUSH").arg(&errors).arg(&text));
        w.add(redis::cmd("EXPIRE").arg(&errors).arg(KEY_TTL_S));
        if let (Some(g), Some(part)) = ids {
            w.add(
                redis::cmd("XADD").arg(&results).arg("*").arg("generation").arg(g).arg("part").arg(part).arg("worker").arg(&guard.consumer).arg("failed").arg(why),
            );
        }
        w.add(redis::cmd("XACK").arg(&guard.tasks).arg(GROUP).arg(&guard.entry));
        w.add(redis::cmd("XDEL").arg(&guard.tasks).arg(&guard.entry));
        Ok(served(guard.write(&mut self.redis, &w)?))
    }

    /// Takes a sweep run's entry: claims the run (a new attempt and owner token), checks the
    /// task, and runs it. Whatever is wrong with the task is answered as the run's failure.
    fn serve_sweep_entry(&mut self, job: &Job, entry: &StreamId) -> anyhow::Result<Served> {
        let tasks = key(&job.id, "tasks");
        let me = self.opts.name.clone();
        let Some(run) = field(entry, "run").filter(|r| safe_name(r)) else {
            // No run to answer for: reported, and removed so that no worker takes it again.
            let why = format!("its `run` field is missing or not a run name ({SAFE_NAME})");
            let guard = Guard { tasks, entry: entry.id.clone(), consumer: me, owner: None };
            let text = format!("worker {}: task {} of job {} set aside: {why}", self.opts.name, entry.id, job.id);
            eprintln!("tame {text}");
            let errors = key(&job.id, "errors");
            let mut w = Writes::default();
            w.add(redis::cmd("RPUSH").arg(&errors).arg(&text));
            w.add(redis::cmd("EXPIRE").arg(&errors).arg(KEY_TTL_S));
            w.add(redis::cmd("XACK").arg(&guard.tasks).arg(GROUP).arg(&guard.entry));
            w.add(redis::cmd("XDEL").arg(&guard.tasks).arg(&guard.entry));
            return Ok(served(guard.write(&mut self.redis, &w)?));
        };
        let (attempt_key, owner_key) = (key(&job.id, &format!("attempt:{run}")), key(&job.id, &format!("owner:{run}")));
        let (attempt, token, deliveries) = match fence::claim(&mut self.redis, &tasks, &attempt_key, &owner_key, &entry.id, &me)? {
            Fenced::Done(v) => v,
            Fenced::Superseded(why) => return Ok(Served::Superseded(why)),
        };
        let guard = Guard { tasks, entry: entry.id.clone(), consumer: me, owner: Some((owner_key, token)) };
        let mut stream = Streamer::new(&job.id, &run, attempt, &self.opts.scratch.join(&job.id).join("runs").join(&run));
        let task = match parse_task(entry) {
            Ok(Task::SweepRun(task)) if task.run == run => task,
            Ok(Task::SweepRun(task)) => {
                let why = format!("its task names run '{}', its entry run '{run}'", task.run.escape_debug());
                return self.finish(&guard, &stream, "failed", why.into_bytes());
            }
            Ok(Task::EsPart(_)) => return self.finish(&guard, &stream, "failed", b"an ES part in a sweep job".to_vec()),
            Err(why) => return self.finish(&guard, &stream, "failed", why.into_bytes()),
        };
        if deliveries > MAX_DELIVERIES {
            let why = format!(
                "set aside as poisoned: delivered {deliveries} times, and every worker that took it died or hung"
            );
            let dead = key(&job.id, "dead");
            let mut w = Writes::default();
            w.add(redis::cmd("RPUSH").arg(&dead).arg(format!("{run}: {why}")));
            w.add(redis::cmd("EXPIRE").arg(&dead).arg(KEY_TTL_S));
            if let Fenced::Superseded(why) = guard.write(&mut self.redis, &w)? {
                return Ok(Served::Superseded(why));
            }
            return self.finish(&guard, &stream, "failed", why.into_bytes());
        }
        let served = self.serve_sweep_run(job, &guard, entry, task, &mut stream);
        // The run's files are in Redis or the coordinator's directory by now: the scratch copy
        // goes, so that a long-lived worker's disk does not fill.
        let _ = std::fs::remove_dir_all(&stream.dir);
        let _ = std::fs::remove_file(self.opts.scratch.join(&job.id).join(format!("{run}.toml")));
        served
    }

    /// Sends the run's last result (`summary` or `failed`) and removes its task: the entry
    /// acknowledged and deleted, the run marked done, its owner key gone; one fenced write.
    fn finish(&mut self, guard: &Guard, stream: &Streamer, kind: &str, data: Vec<u8>) -> anyhow::Result<Served> {
        if kind == "failed" {
            eprintln!(
                "tame worker {}: job {} run {} failed: {}",
                self.opts.name,
                stream.job,
                stream.run,
                crate::sweep::tail(&String::from_utf8_lossy(&data), 5)
            );
        }
        let mut w = Writes::default();
        w.add(&stream.message(kind, if kind == "summary" { "summary.json" } else { "" }, 0, &data));
        w.add(redis::cmd("EXPIRE").arg(&stream.key_results).arg(KEY_TTL_S));
        w.add(redis::cmd("XACK").arg(&guard.tasks).arg(GROUP).arg(&guard.entry));
        w.add(redis::cmd("XDEL").arg(&guard.tasks).arg(&guard.entry));
        w.add(redis::cmd("HSET").arg(key(&stream.job, "entries")).arg(&stream.run).arg("done"));
        if let Some((owner, _)) = &guard.owner {
            w.add(redis::cmd("DEL").arg(owner));
        }
        Ok(served(guard.write(&mut self.redis, &w)?))
    }

    fn serve_sweep_run(&mut self, job: &Job, guard: &Guard, entry: &StreamId, task: SweepRun, stream: &mut Streamer) -> anyhow::Result<Served> {
        let (run, attempt) = (stream.run.clone(), stream.attempt);
        let base = self.opts.scratch.join(&job.id);
        let config = match prepare_config(&base, &run, &task.config, task.map.as_ref(), self.opts.threads) {
            Ok((path, _)) => path,
            Err(e) => return self.finish(guard, stream, "failed", format!("{e:#}").into_bytes()),
        };
        let resumed_from = match self.restore(stream) {
            Ok(step) => step,
            Err(e) => return self.finish(guard, stream, "failed", format!("{e:#}").into_bytes()),
        };
        let started = resumed_from.map_or(b"fresh".to_vec(), |s| s.to_string().into_bytes());
        if let Fenced::Superseded(why) = self.send(guard, stream, "started", started)? {
            return Ok(Served::Superseded(why));
        }
        eprintln!(
            "tame worker {}: job {} run {run} (attempt {attempt}){}",
            self.opts.name,
            job.id,
            resumed_from.map_or(String::new(), |s| format!(", resuming from step {s}"))
        );

        let exe = std::env::current_exe().context("locating the tame executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("train").args(["--threads", &self.opts.threads.to_string(), "--quiet", "--progress-lines"]);
        if resumed_from.is_some() {
            cmd.arg("--resume").arg(&stream.dir);
        } else {
            cmd.arg("--config").arg(&config).arg("--run-dir").arg(&stream.dir);
        }
        crate::sweep::as_child_run(&mut cmd);
        let mut child = cmd.spawn().context("starting tame train")?;
        let progress = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let stdout = child.stdout.take().expect("piped");
        let seen = progress.clone();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                if parts.next() == Some("progress") {
                    if let (Some(Ok(step)), Some(Ok(total))) = (parts.next().map(str::parse), parts.next().map(str::parse)) {
                        seen.0.store(step, Ordering::Relaxed);
                        seen.1.store(total, Ordering::Relaxed);
                    }
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped");
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });

        let ended = self.watch(job, guard, &mut child, stream, &progress);
        if !matches!(ended, Ok(Watch::Exited)) {
            // Not left training on its own while nobody streams its artifacts.
            let _ = child.kill();
        }
        let status = child.wait();
        let _ = out_reader.join();
        let err_text = err_reader.join().unwrap_or_default();
        match ended? {
            Watch::Lost(why) => return Ok(Served::Superseded(why)),
            Watch::Exited => {}
        }
        match self.sync_artifacts(guard, stream)? {
            Sync::Sent => {}
            Sync::Superseded(why) => return Ok(Served::Superseded(why)),
            Sync::TooLarge(why) => return self.finish(guard, stream, "failed", why.into_bytes()),
        }
        if crate::sweep::is_finished(&stream.dir) {
            let summary = std::fs::read(stream.dir.join("summary.json")).context("reading the run's summary.json")?;
            self.finish(guard, stream, "summary", summary)
        } else if stop_requested() {
            // Hand the task back at once (no wait for the lease): a new entry, same task.
            let served = served(guard.hand_back(&mut self.redis, &run, &key(&job.id, "entries"), &entry_fields(entry))?);
            eprintln!("tame worker {}: job {} run {run} stopped and handed back", self.opts.name, job.id);
            Ok(served)
        } else {
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let why = format!("tame train ended with {status}: {}", crate::sweep::tail(&err_text, 20));
            self.finish(guard, stream, "failed", why.into_bytes())
        }
    }

    /// Writes what Redis holds of the run (its latest checkpoint, config and event files) into
    /// the scratch run directory; returns the checkpoint's step, or `None` for a fresh start
    /// (whose old event files, from an attempt without checkpoint, are dropped). Every name
    /// read is checked before it names a file.
    fn restore(&mut self, stream: &mut Streamer) -> anyhow::Result<Option<u64>> {
        let dir = stream.dir.clone();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let (ckpt_key, files_key) = (stream.key("ckpt"), stream.key("evfiles"));
        let ckpt: HashMap<String, Vec<u8>> = self.redis.call(|c| redis::cmd("HGETALL").arg(&ckpt_key).query(c))?;
        let names: Vec<String> = self.redis.call(|c| redis::cmd("SMEMBERS").arg(&files_key).query(c))?;
        let step = ckpt.get("step").and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok());
        let (Some(step), Some(config)) = (step, ckpt.get("config.toml")) else {
            self.redis.call(|c| {
                let mut p = redis::pipe();
                for name in &names {
                    p.cmd("DEL").arg(stream.key(&format!("ev:{name}"))).ignore();
                }
                p.cmd("DEL").arg(&files_key).ignore();
                p.query::<()>(c)
            })?;
            return Ok(None);
        };
        let write = |path: &Path, bytes: &[u8]| -> anyhow::Result<()> {
            std::fs::create_dir_all(path.parent().expect("inside the run dir"))?;
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        };
        write(&dir.join("config.toml"), config)?;
        let step_dir = dir.join("checkpoints").join(format!("step-{step:012}"));
        for (field, bytes) in &ckpt {
            if let Some(file) = field.strip_prefix("f:") {
                if !safe_name(file) {
                    bail!("the run's checkpoint in Redis has a file named '{}'; accepted: {SAFE_NAME}", file.escape_debug());
                }
                write(&step_dir.join(file), bytes)?;
            }
        }
        stream.sent_ckpts.insert(step);
        stream.config_sent = true;
        for name in &names {
            if !is_event_file(name) {
                bail!("the run's event files in Redis include '{}', not an event file name", name.escape_debug());
            }
            let bytes: Vec<u8> = self.redis.call(|c| redis::cmd("GET").arg(stream.key(&format!("ev:{name}"))).query(c))?;
            write(&dir.join(name), &bytes)?;
            stream.sent.insert(name.clone(), bytes.len() as u64);
        }
        Ok(Some(step))
    }

    /// Streams artifacts and keeps the lease until the child exits or the task is no longer
    /// this worker's.
    fn watch(
        &mut self,
        job: &Job,
        guard: &Guard,
        child: &mut Child,
        stream: &mut Streamer,
        progress: &(AtomicU64, AtomicU64),
    ) -> anyhow::Result<Watch> {
        let renew = job.lease / 3;
        let mut last_renew = Instant::now();
        let mut stopping = false;
        let mut last_sync = Instant::now();
        let mut keep = Writes::default();
        keep.add(redis::cmd("XCLAIM").arg(&guard.tasks).arg(GROUP).arg(&guard.consumer).arg(0).arg(&guard.entry).arg("JUSTID"));
        loop {
            if child.try_wait().context("waiting for tame train")?.is_some() {
                return Ok(Watch::Exited);
            }
            if stop_requested() && !stopping {
                stopping = true;
                if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: our child, not yet reaped.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
            if last_sync.elapsed() >= SYNC_EVERY {
                match self.sync_artifacts(guard, stream)? {
                    Sync::Sent => {}
                    Sync::Superseded(why) => return Ok(Watch::Lost(why)),
                    Sync::TooLarge(why) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        self.finish(guard, stream, "failed", why.into_bytes())?;
                        return Ok(Watch::Lost("its checkpoint is too large for Redis".into()));
                    }
                }
                last_sync = Instant::now();
            }
            if last_renew.elapsed() >= renew {
                // Still ours? Then reset its idle time (XCLAIM to ourselves, JUSTID), in one
                // fenced write: a superseded worker must not claim the entry back.
                if let Fenced::Superseded(why) = guard.write(&mut self.redis, &keep)? {
                    return Ok(Watch::Lost(why));
                }
                last_renew = Instant::now();
            }
            if self.last_beat.elapsed() >= BEAT_EVERY {
                let (step, total) = (progress.0.load(Ordering::Relaxed), progress.1.load(Ordering::Relaxed));
                let doing = format!("job {} run {} (attempt {}) step {step}/{total}", job.id, stream.run, stream.attempt);
                self.beat(&doing)?;
            }
            // Short, so that the end of a run is seen at once; artifacts go every SYNC_EVERY.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends what is new in the run directory: config.toml once, new bytes of each event file,
    /// each completed checkpoint directory (kept once, as the run's latest in `ckpt:<run>`,
    /// where the coordinator reads it), each as one fenced write.
    fn sync_artifacts(&mut self, guard: &Guard, stream: &mut Streamer) -> anyhow::Result<Sync> {
        if !stream.config_sent {
            if let Ok(bytes) = std::fs::read(stream.dir.join("config.toml")) {
                let ckpt = stream.key("ckpt");
                let mut w = Writes::default();
                w.add(&stream.message("config", "config.toml", 0, &bytes));
                w.add(redis::cmd("HSET").arg(&ckpt).arg("config.toml").arg(&bytes));
                w.add(redis::cmd("EXPIRE").arg(&ckpt).arg(KEY_TTL_S));
                if let Fenced::Superseded(why) = guard.write(&mut self.redis, &w)? {
                    return Ok(Sync::Superseded(why));
                }
                stream.config_sent = true;
            }
        }
        for (name, offset, bytes) in stream.new_event_bytes()? {
            let (ev, files) = (stream.key(&format!("ev:{name}")), stream.key("evfiles"));
            let mut w = Writes::default();
            w.add(&stream.message("events", &name, offset, &bytes));
            w.add(redis::cmd("SETRANGE").arg(&ev).arg(offset).arg(&bytes));
            w.add(redis::cmd("EXPIRE").arg(&ev).arg(KEY_TTL_S));
            w.add(redis::cmd("SADD").arg(&files).arg(&name));
            w.add(redis::cmd("EXPIRE").arg(&files).arg(KEY_TTL_S));
            if let Fenced::Superseded(why) = guard.write(&mut self.redis, &w)? {
                return Ok(Sync::Superseded(why));
            }
            stream.sent.insert(name, offset + bytes.len() as u64);
        }
        for (step, files) in stream.new_checkpoints()? {
            let size: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
            if size > MAX_CHECKPOINT_BYTES {
                return Ok(Sync::TooLarge(format!(
                    "its checkpoint at step {step} is {:.0} MiB, over the {} MiB a run may move through Redis; \
                     lower sac.buffer_size (the replay buffer is most of it) or run this sweep without --redis",
                    size as f64 / (1u64 << 20) as f64,
                    MAX_CHECKPOINT_BYTES >> 20
                )));
            }
            let ckpt = stream.key("ckpt");
            let mut w = Writes::default();
            w.add(&stream.message("ckpt", &format!("step-{step:012}"), 0, &[]));
            let mut hset = redis::cmd("HSET");
            hset.arg(&ckpt).arg("step").arg(step);
            for (file, bytes) in &files {
                hset.arg(format!("f:{file}")).arg(bytes);
            }
            // The fields of an older checkpoint are replaced, not left beside the new ones.
            let mut hdel = redis::cmd("HDEL");
            hdel.arg(&ckpt);
            for old in stream.ckpt_files.iter().filter(|old| !files.iter().any(|(f, _)| f == *old)) {
                hdel.arg(format!("f:{old}"));
            }
            if hdel.args_iter().len() > 2 {
                w.add(&hdel);
            }
            w.add(&hset);
            w.add(redis::cmd("EXPIRE").arg(&ckpt).arg(KEY_TTL_S));
            if let Fenced::Superseded(why) = guard.write(&mut self.redis, &w)? {
                return Ok(Sync::Superseded(why));
            }
            stream.ckpt_files = files.iter().map(|(f, _)| f.clone()).collect();
            stream.sent_ckpts.insert(step);
        }
        Ok(Sync::Sent)
    }

    fn send(&mut self, guard: &Guard, stream: &Streamer, kind: &str, data: Vec<u8>) -> anyhow::Result<Fenced<()>> {
        let mut w = Writes::default();
        w.add(&stream.message(kind, "", 0, &data));
        w.add(redis::cmd("EXPIRE").arg(&stream.key_results).arg(KEY_TTL_S));
        guard.write(&mut self.redis, &w)
    }
}

enum Watch {
    Exited,
    /// The task is no longer this worker's (another took it over after its lease ran out).
    Lost(String),
}

/// What a round of artifact sending came to.
enum Sync {
    Sent,
    Superseded(String),
    /// A checkpoint too large to move: the run fails with this reason.
    TooLarge(String),
}

fn served(f: Fenced<()>) -> Served {
    match f {
        Fenced::Done(()) => Served::Done,
        Fenced::Superseded(why) => Served::Superseded(why),
    }
}

/// An entry's fields and values, to queue it again as it was.
fn entry_fields(entry: &StreamId) -> Vec<(String, Vec<u8>)> {
    entry
        .map
        .iter()
        .map(|(f, v)| {
            let bytes = match v {
                Value::BulkString(b) => b.clone(),
                Value::SimpleString(t) => t.clone().into_bytes(),
                Value::Int(n) => n.to_string().into_bytes(),
                other => format!("{other:?}").into_bytes(),
            };
            (f.clone(), bytes)
        })
        .collect()
}

/// What a panic said, as text.
fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// `events.out.tfevents.…` with a [`safe_name`]: the files a run directory streams.
fn is_event_file(name: &str) -> bool {
    crate::tensorboard::files::is_written_name(name) && safe_name(name)
}

/// Writes a task's config (and map file) into the scratch directory as `<name>.toml` and
/// checks it as `tame train --config` would; returns the config's path and what it resolves to.
/// A `map:` env must come with its map's text, which is written under the scratch directory:
/// a task never makes a worker read a file of its own.
fn prepare_config(base: &Path, name: &str, config: &str, map: Option<&MapFile>, threads: usize) -> anyhow::Result<(PathBuf, Resolved)> {
    if !safe_name(name) {
        bail!("the run name '{}' is not accepted: {SAFE_NAME}", name.escape_debug());
    }
    let mut table: toml::Table = toml::from_str(config).context("the task's config is not valid TOML")?;
    let env = table.get("env").and_then(toml::Value::as_str).unwrap_or("").to_string();
    let (base_name, options) = env.split_once(':').unwrap_or((&env, ""));
    let is_map = base_name.eq_ignore_ascii_case("map");
    match (is_map, map) {
        (true, None) => bail!("the task's env '{}' is a map file, but the task carries no map text (a worker never reads its own files)", env.escape_debug()),
        (false, Some(_)) => bail!("the task carries a map text, but its env '{}' is not map:", env.escape_debug()),
        _ => {}
    }
    std::fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
    if let Some(map) = map {
        if !safe_name(&map.name) {
            bail!("map file name '{}' is not accepted: {SAFE_NAME}", map.name.escape_debug());
        }
        let maps = base.join("maps");
        std::fs::create_dir_all(&maps)?;
        let path = std::path::absolute(maps.join(&map.name))?;
        std::fs::write(&path, &map.text).with_context(|| format!("writing {}", path.display()))?;
        // The path is replaced; the options after it (`map:PATH:slip=0.1`) stay.
        let rest = options.split_once(':').map_or(String::new(), |(_, opts)| format!(":{opts}"));
        table.insert("env".into(), toml::Value::String(format!("map:{}{rest}", path.display())));
    }
    let text = toml::to_string(&table).context("rewriting the task's config")?;
    let path = base.join(format!("{name}.toml"));
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let over = RunConfig { threads: Some(threads), ..Default::default() };
    let resolved = RunConfig::from_file(&path)?.overridden_by(over).resolve().context("the task's config is refused")?;
    Ok((path, resolved))
}

/// What of one run has been sent, and how results are labelled.
struct Streamer {
    job: String,
    run: String,
    attempt: u64,
    dir: PathBuf,
    key_results: String,
    config_sent: bool,
    /// Event file name → bytes sent.
    sent: BTreeMap<String, u64>,
    sent_ckpts: std::collections::BTreeSet<u64>,
    /// The files of the checkpoint last stored in `ckpt:<run>`.
    ckpt_files: Vec<String>,
}

impl Streamer {
    fn new(job: &str, run: &str, attempt: u64, dir: &Path) -> Streamer {
        Streamer {
            job: job.into(),
            run: run.into(),
            attempt,
            dir: dir.into(),
            key_results: key(job, "results"),
            config_sent: false,
            sent: BTreeMap::new(),
            sent_ckpts: Default::default(),
            ckpt_files: Vec::new(),
        }
    }

    /// A per-run key: `tame:<job>:<part>:<run>` (`ev:<file>` parts put the file after the run).
    fn key(&self, part: &str) -> String {
        match part.strip_prefix("ev:") {
            Some(file) => key(&self.job, &format!("ev:{}:{file}", self.run)),
            None => key(&self.job, &format!("{part}:{}", self.run)),
        }
    }

    /// One result message of this run's attempt.
    fn message(&self, kind: &str, name: &str, offset: u64, data: &[u8]) -> redis::Cmd {
        let mut c = redis::cmd("XADD");
        c.arg(&self.key_results).arg("*");
        c.arg("run").arg(&self.run).arg("attempt").arg(self.attempt).arg("kind").arg(kind);
        c.arg("name").arg(name).arg("offset").arg(offset).arg("data").arg(data);
        c
    }

    /// `(file, offset, bytes)` not sent yet, in pieces of at most [`CHUNK`].
    fn new_event_bytes(&self) -> anyhow::Result<Vec<(String, u64, Vec<u8>)>> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(out) };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_event_file(n))
            .collect();
        names.sort();
        for name in names {
            // Only the bytes past what was sent: event files are append-only.
            let from = self.sent.get(&name).copied().unwrap_or(0);
            let mut file = std::fs::File::open(self.dir.join(&name)).with_context(|| format!("opening {name}"))?;
            if file.metadata()?.len() <= from {
                continue;
            }
            file.seek(std::io::SeekFrom::Start(from))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).with_context(|| format!("reading {name}"))?;
            for (i, piece) in bytes.chunks(CHUNK).enumerate() {
                out.push((name.clone(), from + (i * CHUNK) as u64, piece.to_vec()));
            }
        }
        Ok(out)
    }

    /// Completed checkpoint directories not sent yet: `(step, [(file, bytes)])`.
    fn new_checkpoints(&self) -> anyhow::Result<Vec<(u64, Vec<(String, Vec<u8>)>)>> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join("checkpoints")) else { return Ok(out) };
        let mut steps: Vec<u64> = entries
            .filter_map(Result::ok)
            .filter_map(|e| checkpoint_step(&e.file_name().to_string_lossy()))
            .filter(|s| !self.sent_ckpts.contains(s))
            .collect();
        steps.sort();
        for step in steps {
            let dir = self.dir.join("checkpoints").join(format!("step-{step:012}"));
            let mut files = Vec::new();
            let Ok(listing) = std::fs::read_dir(&dir) else { continue };
            for e in listing.filter_map(Result::ok) {
                let name = e.file_name().to_string_lossy().into_owned();
                if !safe_name(&name) {
                    continue;
                }
                // Pruned (older than the newest two) while we read it: skip this one.
                let Ok(bytes) = std::fs::read(e.path()) else { continue };
                files.push((name, bytes));
            }
            files.sort();
            out.push((step, files));
        }
        Ok(out)
    }
}

/// `tame workers`: the live workers and, per job, its queued and running tasks.
pub fn list_workers(url: &RedisUrl, timeout: Duration) -> anyhow::Result<()> {
    let mut redis = Redis::connect(url, timeout)?;
    let mut names: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis.call(|c| {
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(worker_key("*")).arg("COUNT").arg(500).query(c)
        })?;
        names.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    names.sort();
    println!("{} live worker(s) on {}", names.len(), url.shown());
    for k in &names {
        let json: Option<String> = redis.call(|c| redis::cmd("GET").arg(k).query(c))?;
        let Some(beat) = json.and_then(|j| serde_json::from_str::<Beat>(&j).ok()) else { continue };
        let name = k.strip_prefix("tame:workers:").unwrap_or(k);
        println!("  {name:24} pid {:>7}  {} threads  {}", beat.pid, beat.threads, beat.doing);
        // A worker of other bits refuses jobs started by this tame: said here, before a sweep waits on it.
        let same = beat.protocol == PROTOCOL && beat.fingerprint == fingerprint();
        let note = if same { "" } else { "  (differs from this tame: it refuses jobs started here)" };
        println!("  {:24} protocol {}, fingerprint {}{note}", "", beat.protocol, beat.fingerprint);
    }
    let mut jobs: Vec<String> = redis.call(|c| redis::cmd("SMEMBERS").arg(JOBS).query(c))?;
    jobs.sort();
    println!("{} job(s)", jobs.len());
    for job in jobs {
        let (queued, pending) = queue_counts(&mut redis, &job)?;
        let out: Option<String> = redis.call(|c| redis::cmd("HGET").arg(key(&job, "meta")).arg("out").query(c))?;
        println!("  {job:20} {queued} queued, {pending} running  ({})", out.unwrap_or_default());
    }
    Ok(())
}

/// `(entries no worker has read yet, entries read and not acknowledged)` of a job's tasks.
pub(super) fn queue_counts(redis: &mut Redis, job: &str) -> anyhow::Result<(u64, u64)> {
    let groups = redis.call_raw(|c| redis::cmd("XINFO").arg("GROUPS").arg(key(job, "tasks")).query::<Vec<HashMap<String, Value>>>(c))?;
    let Ok(groups) = groups else { return Ok((0, 0)) };
    let field = |g: &HashMap<String, Value>, name: &str| match g.get(name) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    Ok(groups.iter().find(|g| matches!(g.get("name"), Some(Value::BulkString(n)) if n == GROUP.as_bytes())).map_or(
        (0, 0),
        |g| (field(g, "lag"), field(g, "pending")),
    ))
}
