//! `tame worker`: takes tasks from every live job's stream (first entries whose worker died,
//! then new ones), runs each sweep run as a child `tame train` in its scratch directory and
//! streams the run's artifacts back as they appear. A stop (SIGINT/SIGTERM) stops the child,
//! which checkpoints; the checkpoint is sent and the task handed back for another worker.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::Value;
use tame_agents::run::stop_requested;

use tame_agents::es::{ObsNorm, PairEvaluator};

use super::{checkpoint_step, key, plain_name, worker_key, EsPart, MapFile, Redis, RedisUrl, SweepRun, Task, GROUP, JOBS, KEY_TTL_S};
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
}

struct Worker {
    redis: Redis,
    opts: WorkerOpts,
    last_beat: Instant,
    /// Live jobs and their leases, as last scanned.
    jobs: Vec<(String, Duration)>,
    scanned: Option<Instant>,
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

/// Serves tasks until a stop is requested.
pub fn serve(opts: WorkerOpts) -> anyhow::Result<()> {
    let redis = Redis::connect(&opts.url, opts.timeout)?;
    std::fs::create_dir_all(&opts.scratch)
        .with_context(|| format!("creating scratch directory {}", opts.scratch.display()))?;
    let mut w = Worker { redis, opts, last_beat: Instant::now(), jobs: Vec::new(), scanned: None, es_cache: None, serving: None };
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
    eprintln!("tame worker {name}: serving {} with {} threads", w.opts.url.shown(), w.opts.threads);
    let result = w.serve_loop();
    let _ = w.redis.call(|c| redis::cmd("DEL").arg(worker_key(&name)).query::<()>(c));
    result
}

impl Worker {
    fn beat_json(&self, doing: &str) -> String {
        let beat = Beat { pid: std::process::id(), threads: self.opts.threads, doing: doing.to_string() };
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
            entries.sort_by_key(|(_, _, _, task)| !matches!(task, Ok(Task::EsPart(_))));
            let mut runs = 0;
            for (job, lease, entry, task) in entries {
                let id = entry.id.clone();
                let outcome = match task {
                    Ok(Task::SweepRun(_)) if runs > 0 || stop_requested() => self.hand_back(&job, &entry),
                    Ok(task @ Task::SweepRun(_)) => {
                        runs += 1;
                        self.serve_task(&job, lease, &entry, task)
                    }
                    Ok(task) => self.serve_task(&job, lease, &entry, task),
                    Err(why) => self.set_aside(&job, &id, None, &why),
                };
                // A task gone wrong (its job deleted meanwhile, a full disk) is reported; the
                // worker goes on. Redis itself gone past the timeout ends it (beat).
                if let Err(e) = outcome {
                    eprintln!("tame worker {}: task {id} of job {job}: {e:#}", self.opts.name);
                }
            }
        }
        eprintln!("tame worker {}: stopped", self.opts.name);
        Ok(())
    }

    /// Every live job with its lease; jobs whose keys expired (a coordinator killed long ago)
    /// are dropped from the job set.
    fn scan_jobs(&mut self) -> anyhow::Result<Vec<(String, Duration)>> {
        let mut jobs: Vec<String> = self.redis.call(|c| redis::cmd("SMEMBERS").arg(JOBS).query(c))?;
        jobs.sort();
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let leases: Vec<Option<u64>> = self.redis.call(|c| {
            let mut p = redis::pipe();
            for job in &jobs {
                p.cmd("HGET").arg(key(job, "meta")).arg("lease_ms");
            }
            p.query(c)
        })?;
        let gone: Vec<&String> = jobs.iter().zip(&leases).filter(|(_, l)| l.is_none()).map(|(j, _)| j).collect();
        if !gone.is_empty() {
            self.redis.call(|c| redis::cmd("SREM").arg(JOBS).arg(&gone).query::<()>(c))?;
        }
        Ok(jobs
            .iter()
            .zip(leases)
            .filter_map(|(job, lease)| Some((job.clone(), Duration::from_millis(lease?))))
            .collect())
    }

    /// The next entries: one whose worker's lease ran out (looked for every [`SCAN_EVERY`]),
    /// else the new ones of every job, waiting up to [`WAIT`] for one.
    fn next_tasks(&mut self) -> anyhow::Result<Vec<(String, Duration, StreamId, Result<Task, String>)>> {
        let me = self.opts.name.clone();
        let with_task = |(job, lease, entry): (String, Duration, StreamId)| {
            let task = parse_task(&entry);
            (job, lease, entry, task)
        };
        if self.scanned.is_none_or(|t| t.elapsed() >= SCAN_EVERY) {
            self.jobs = self.scan_jobs()?;
            self.scanned = Some(Instant::now());
            for (job, lease) in self.jobs.clone() {
                let tasks = key(&job, "tasks");
                let claimed = self.redis.call_raw(|c| {
                    redis::cmd("XAUTOCLAIM")
                        .arg(&tasks)
                        .arg(GROUP)
                        .arg(&me)
                        .arg(lease.as_millis() as u64)
                        .arg("0-0")
                        .arg("COUNT")
                        .arg(1)
                        .query::<StreamAutoClaimReply>(c)
                })?;
                // A job whose stream went away since the scan (it finished): nothing to do.
                let Ok(claimed) = claimed else { continue };
                if let Some(entry) = claimed.claimed.into_iter().next() {
                    eprintln!("tame worker {me}: taking over task {} of job {job} (its worker's lease ran out)", entry.id);
                    return Ok(vec![with_task((job, lease, entry))]);
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
        let keys: Vec<String> = self.jobs.iter().map(|(job, _)| key(job, "tasks")).collect();
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
            Ok(reply) => Ok(reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| {
                    let (job, lease) = self.jobs[keys.iter().position(|x| *x == k.key).unwrap_or(0)].clone();
                    k.ids.into_iter().map(move |entry| (job.clone(), lease, entry))
                })
                .map(with_task)
                .collect()),
            Err(_) => {
                // A job's stream went away (it finished): scan again.
                self.scanned = None;
                std::thread::sleep(Duration::from_millis(50));
                Ok(Vec::new())
            }
        }
    }

    fn serve_task(&mut self, job: &str, lease: Duration, entry: &StreamId, task: Task) -> anyhow::Result<()> {
        match task {
            Task::SweepRun(run) => self.serve_sweep_run(job, lease, entry, run),
            Task::EsPart(part) => self.serve_es_part(job, lease, entry, part),
        }
    }

    /// Puts an entry back at the end of its stream for any worker (this one does not serve
    /// it now): a new entry with the same fields, the old one acknowledged and deleted.
    fn hand_back(&mut self, job: &str, entry: &StreamId) -> anyhow::Result<()> {
        let tasks = key(job, "tasks");
        self.redis.call(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("XACK").arg(&tasks).arg(GROUP).arg(&entry.id).ignore();
            p.cmd("XDEL").arg(&tasks).arg(&entry.id).ignore();
            p.cmd("XADD").arg(&tasks).arg("*");
            for (field, value) in &entry.map {
                p.arg(field);
                match value {
                    Value::BulkString(b) => p.arg(b),
                    Value::SimpleString(t) => p.arg(t),
                    Value::Int(n) => p.arg(n),
                    other => p.arg(format!("{other:?}")),
                };
            }
            p.ignore();
            p.query::<()>(c)
        })
    }

    /// Evaluates one part of an ES generation with the job's evaluator (built once per job
    /// from the task's config, checked as `tame train` checks it) and sends its episodes,
    /// acknowledging and deleting the part in the same transaction. The lease is renewed
    /// while it runs; a stop lets it finish first.
    fn serve_es_part(&mut self, job: &str, lease: Duration, entry: &StreamId, task: EsPart) -> anyhow::Result<()> {
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
            Err(why) => return self.set_aside_part(job, &entry.id, &task, &why),
        };
        let mut evaluator = match self.es_evaluator(job, &task) {
            Ok(e) => e,
            Err(e) => return self.set_aside_part(job, &entry.id, &task, &format!("{e:#}")),
        };
        let (g, pairs) = (task.generation.index + 1, task.first_pair..task.first_pair + task.generation.pair_seeds.len());
        let doing = format!("job {job} generation {g}, pairs {}..{}", pairs.start, pairs.end);
        if self.last_beat.elapsed() >= BEAT_EVERY {
            self.beat(&doing)?;
        }
        self.serving = Some((doing, Instant::now()));
        let begun = Instant::now();
        let tasks = key(job, "tasks");
        let me = self.opts.name.clone();
        let renew = (lease / 3).max(Duration::from_millis(100));
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = std::thread::scope(|s| -> anyhow::Result<_> {
            let generation = &task.generation;
            let evaluator = &mut evaluator;
            let (theta, norm) = (&theta, &norm);
            s.spawn(move || {
                let _ = tx.send(evaluator.0.evaluate(generation, theta, norm));
            });
            loop {
                match rx.recv_timeout(renew) {
                    Ok(result) => return Ok(result),
                    Err(_) => {
                        // Still working: keep the entry's idle time low (XCLAIM, JUSTID).
                        self.redis.call(|c| {
                            redis::cmd("XCLAIM").arg(&tasks).arg(GROUP).arg(&me).arg(0).arg(&entry.id).arg("JUSTID").query::<()>(c)
                        })?;
                    }
                }
            }
        });
        self.es_cache = Some(evaluator);
        let episodes = match outcome? {
            Ok(episodes) => episodes,
            Err(e) => return self.set_aside_part(job, &entry.id, &task, &e.to_string()),
        };
        let seconds = begun.elapsed().as_secs_f64();
        let data = serde_json::to_vec(&episodes).context("encoding the episodes")?;
        let results = key(job, "results");
        self.redis.call(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("XADD").arg(&results).arg("*").arg("generation").arg(task.generation.index).arg("part").arg(task.part);
            p.arg("worker").arg(&me).arg("seconds").arg(seconds).arg("data").arg(&data).ignore();
            p.cmd("EXPIRE").arg(&results).arg(KEY_TTL_S).ignore();
            p.cmd("XACK").arg(&tasks).arg(GROUP).arg(&entry.id).ignore();
            p.cmd("XDEL").arg(&tasks).arg(&entry.id).ignore();
            p.query::<()>(c)
        })
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
        Ok(EsEvaluator(evaluator, fingerprint))
    }

    /// Sets a part aside as [`set_aside`](Self::set_aside) does, and tells the coordinator
    /// why (its run stops with that reason: every worker would fail the same way).
    fn set_aside_part(&mut self, job: &str, id: &str, task: &EsPart, why: &str) -> anyhow::Result<()> {
        let text = format!("worker {}: task {id} of job {job} set aside: {why}", self.opts.name);
        eprintln!("tame {text}");
        let (errors, tasks, results) = (key(job, "errors"), key(job, "tasks"), key(job, "results"));
        let me = self.opts.name.clone();
        self.redis.call(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("RPUSH").arg(&errors).arg(&text).ignore();
            p.cmd("EXPIRE").arg(&errors).arg(KEY_TTL_S).ignore();
            p.cmd("XADD").arg(&results).arg("*").arg("generation").arg(task.generation.index).arg("part").arg(task.part);
            p.arg("worker").arg(&me).arg("failed").arg(why).ignore();
            p.cmd("XACK").arg(&tasks).arg(GROUP).arg(id).ignore();
            p.cmd("XDEL").arg(&tasks).arg(id).ignore();
            p.query::<()>(c)
        })
    }

    /// Reports a task that cannot run (to the job's error list and, when its run is known, as
    /// the run's failure) and acknowledges it, so that no worker takes it again.
    fn set_aside(&mut self, job: &str, id: &str, run: Option<(&str, u64)>, why: &str) -> anyhow::Result<()> {
        let text = format!("worker {}: task {id} of job {job} set aside: {why}", self.opts.name);
        eprintln!("tame {text}");
        let (errors, tasks, results) = (key(job, "errors"), key(job, "tasks"), key(job, "results"));
        self.redis.call(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("RPUSH").arg(&errors).arg(&text).ignore();
            p.cmd("EXPIRE").arg(&errors).arg(KEY_TTL_S).ignore();
            if let Some((run, attempt)) = run {
                p.cmd("XADD").arg(&results).arg("*").arg("run").arg(run).arg("attempt").arg(attempt);
                p.arg("kind").arg("failed").arg("data").arg(why).ignore();
            }
            p.cmd("XACK").arg(&tasks).arg(GROUP).arg(id).ignore();
            p.query::<()>(c)
        })
    }

    fn serve_sweep_run(&mut self, job: &str, lease: Duration, entry: &StreamId, task: SweepRun) -> anyhow::Result<()> {
        if !plain_name(&task.run) {
            return self.set_aside(job, &entry.id, None, &format!("run name '{}' is not a plain directory name", task.run));
        }
        let run = task.run.clone();
        let attempt: u64 = self.redis.call(|c| redis::cmd("INCR").arg(key(job, &format!("attempt:{run}"))).query(c))?;
        let _ = self.redis.call(|c| {
            redis::cmd("EXPIRE").arg(key(job, &format!("attempt:{run}"))).arg(KEY_TTL_S).query::<()>(c)
        });
        let base = self.opts.scratch.join(job);
        let dir = base.join("runs").join(&run);
        let config = match prepare_config(&base, &task.run, &task.config, task.map.as_ref(), self.opts.threads) {
            Ok((path, _)) => path,
            Err(e) => return self.set_aside(job, &entry.id, Some((&run, attempt)), &format!("{e:#}")),
        };
        let mut stream = Streamer::new(job, &run, attempt, &dir);
        let resumed_from = self.restore(&mut stream, &dir)?;
        self.send(&stream, "started", "", 0, resumed_from.map_or(b"fresh".to_vec(), |s| s.to_string().into_bytes()))?;
        eprintln!(
            "tame worker {}: job {job} run {run} (attempt {attempt}){}",
            self.opts.name,
            resumed_from.map_or(String::new(), |s| format!(", resuming from step {s}"))
        );

        let exe = std::env::current_exe().context("locating the tame executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("train").args(["--threads", &self.opts.threads.to_string(), "--quiet", "--progress-lines"]);
        if resumed_from.is_some() {
            cmd.arg("--resume").arg(&dir);
        } else {
            cmd.arg("--config").arg(&config).arg("--run-dir").arg(&dir);
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

        let ended = self.watch(job, lease, &entry.id, &mut child, &mut stream, &progress);
        if ended.is_err() {
            // Not left training on its own while nobody streams its artifacts.
            let _ = child.kill();
        }
        let status = child.wait();
        let _ = out_reader.join();
        let err_text = err_reader.join().unwrap_or_default();
        match ended? {
            Watch::Lost => {
                eprintln!("tame worker {}: job {job} run {run} was taken over by another worker; dropped", self.opts.name);
                return Ok(());
            }
            Watch::Exited => {}
        }
        self.sync_artifacts(&mut stream)?;
        let finished = crate::sweep::is_finished(&dir);
        let (tasks, results) = (key(job, "tasks"), key(job, "results"));
        if finished {
            let summary = std::fs::read(dir.join("summary.json")).context("reading the run's summary.json")?;
            let id = entry.id.clone();
            self.redis.call(|c| {
                let mut p = redis::pipe();
                p.atomic();
                stream.push(&mut p, &results, "summary", "summary.json", 0, &summary);
                p.cmd("XACK").arg(&tasks).arg(GROUP).arg(&id).ignore();
                p.query::<()>(c)
            })?;
        } else if stop_requested() {
            // Hand the task back at once (no wait for the lease): a new entry, same task.
            self.hand_back(job, entry)?;
            eprintln!("tame worker {}: job {job} run {run} stopped and handed back", self.opts.name);
        } else {
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let why = format!("tame train ended with {status}: {}", crate::sweep::tail(&err_text, 20));
            self.set_aside(job, &entry.id, Some((&run, attempt)), &why)?;
        }
        Ok(())
    }

    /// Writes what Redis holds of the run (its latest checkpoint, config and event files) into
    /// the scratch run directory; returns the checkpoint's step, or `None` for a fresh start
    /// (whose old event files, from an attempt without checkpoint, are dropped).
    fn restore(&mut self, stream: &mut Streamer, dir: &Path) -> anyhow::Result<Option<u64>> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
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
            if let Some(file) = field.strip_prefix("f:").filter(|f| plain_name(f)) {
                write(&step_dir.join(file), bytes)?;
            }
        }
        stream.sent_ckpts.insert(step);
        stream.config_sent = true;
        for name in names.iter().filter(|n| plain_name(n)) {
            let bytes: Vec<u8> = self.redis.call(|c| redis::cmd("GET").arg(stream.key(&format!("ev:{name}"))).query(c))?;
            write(&dir.join(name), &bytes)?;
            stream.sent.insert(name.clone(), bytes.len() as u64);
        }
        Ok(Some(step))
    }

    /// Streams artifacts and keeps the lease until the child exits (or the task was taken over).
    fn watch(
        &mut self,
        job: &str,
        lease: Duration,
        id: &str,
        child: &mut Child,
        stream: &mut Streamer,
        progress: &(AtomicU64, AtomicU64),
    ) -> anyhow::Result<Watch> {
        let tasks = key(job, "tasks");
        let me = self.opts.name.clone();
        let renew = (lease / 3).max(Duration::from_millis(100));
        let mut last_renew = Instant::now();
        let mut stopping = false;
        let mut last_sync = Instant::now();
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
                self.sync_artifacts(stream)?;
                last_sync = Instant::now();
            }
            if last_renew.elapsed() >= renew {
                // Still ours? Then reset its idle time (XCLAIM to ourselves, JUSTID).
                let owner: Vec<(String, String, u64, u64)> = self.redis.call(|c| {
                    redis::cmd("XPENDING").arg(&tasks).arg(GROUP).arg(id).arg(id).arg(1).query(c)
                })?;
                if owner.first().is_none_or(|o| o.1 != me) {
                    let _ = child.kill();
                    return Ok(Watch::Lost);
                }
                self.redis.call(|c| {
                    redis::cmd("XCLAIM").arg(&tasks).arg(GROUP).arg(&me).arg(0).arg(id).arg("JUSTID").query::<()>(c)
                })?;
                last_renew = Instant::now();
            }
            if self.last_beat.elapsed() >= Duration::from_secs(2) {
                let (step, total) = (progress.0.load(Ordering::Relaxed), progress.1.load(Ordering::Relaxed));
                let doing = format!("job {job} run {} (attempt {}) step {step}/{total}", stream.run, stream.attempt);
                self.beat(&doing)?;
            }
            // Short, so that the end of a run is seen at once; artifacts go every SYNC_EVERY.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends what is new in the run directory: config.toml once, new bytes of each event file,
    /// each completed checkpoint directory (also kept as the run's latest, for a takeover).
    fn sync_artifacts(&mut self, stream: &mut Streamer) -> anyhow::Result<()> {
        let results = stream.key_results.clone();
        if !stream.config_sent {
            if let Ok(bytes) = std::fs::read(stream.dir.join("config.toml")) {
                let ckpt = stream.key("ckpt");
                self.redis.call(|c| {
                    let mut p = redis::pipe();
                    p.atomic();
                    stream.push(&mut p, &results, "config", "config.toml", 0, &bytes);
                    p.cmd("HSET").arg(&ckpt).arg("config.toml").arg(&bytes).ignore();
                    p.cmd("EXPIRE").arg(&ckpt).arg(KEY_TTL_S).ignore();
                    p.query::<()>(c)
                })?;
                stream.config_sent = true;
            }
        }
        for (name, offset, bytes) in stream.new_event_bytes()? {
            let (ev, files) = (stream.key(&format!("ev:{name}")), stream.key("evfiles"));
            self.redis.call(|c| {
                let mut p = redis::pipe();
                p.atomic();
                stream.push(&mut p, &results, "events", &name, offset, &bytes);
                p.cmd("SETRANGE").arg(&ev).arg(offset).arg(&bytes).ignore();
                p.cmd("EXPIRE").arg(&ev).arg(KEY_TTL_S).ignore();
                p.cmd("SADD").arg(&files).arg(&name).ignore();
                p.cmd("EXPIRE").arg(&files).arg(KEY_TTL_S).ignore();
                p.query::<()>(c)
            })?;
            stream.sent.insert(name, offset + bytes.len() as u64);
        }
        for (step, files) in stream.new_checkpoints()? {
            let ckpt = stream.key("ckpt");
            self.redis.call(|c| {
                let mut p = redis::pipe();
                p.atomic();
                p.cmd("XADD").arg(&results).arg("*");
                p.arg("run").arg(&stream.run).arg("attempt").arg(stream.attempt).arg("kind").arg("ckpt");
                p.arg("name").arg(format!("step-{step:012}"));
                for (file, bytes) in &files {
                    p.arg(format!("f:{file}")).arg(bytes);
                }
                p.ignore();
                p.cmd("HSET").arg(&ckpt).arg("step").arg(step);
                for (file, bytes) in &files {
                    p.arg(format!("f:{file}")).arg(bytes);
                }
                p.ignore();
                p.cmd("EXPIRE").arg(&ckpt).arg(KEY_TTL_S).ignore();
                p.query::<()>(c)
            })?;
            stream.sent_ckpts.insert(step);
        }
        Ok(())
    }

    fn send(&mut self, stream: &Streamer, kind: &str, name: &str, offset: u64, data: Vec<u8>) -> anyhow::Result<()> {
        let results = stream.key_results.clone();
        self.redis.call(|c| {
            let mut p = redis::pipe();
            stream.push(&mut p, &results, kind, name, offset, &data);
            p.cmd("EXPIRE").arg(&results).arg(KEY_TTL_S).ignore();
            p.query::<()>(c)
        })
    }
}

enum Watch {
    Exited,
    /// Another worker took the task over (this one was too slow to renew its lease).
    Lost,
}

/// Writes a task's config (and map file) into the scratch directory as `<name>.toml` and
/// checks it as `tame train --config` would; returns the config's path and what it resolves to.
fn prepare_config(base: &Path, name: &str, config: &str, map: Option<&MapFile>, threads: usize) -> anyhow::Result<(PathBuf, Resolved)> {
    std::fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
    let mut text = config.to_string();
    if let Some(map) = map {
        if !plain_name(&map.name) {
            bail!("map file name '{}' is not a plain file name", map.name);
        }
        let maps = base.join("maps");
        std::fs::create_dir_all(&maps)?;
        let path = std::path::absolute(maps.join(&map.name))?;
        std::fs::write(&path, &map.text).with_context(|| format!("writing {}", path.display()))?;
        let mut table: toml::Table = toml::from_str(&text).context("the task's config is not valid TOML")?;
        table.insert("env".into(), toml::Value::String(format!("map:{}", path.display())));
        text = toml::to_string(&table).context("rewriting the task's config")?;
    }
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
        }
    }

    /// A per-run key: `tame:<job>:<part>:<run>` (`ev:<file>` parts put the file after the run).
    fn key(&self, part: &str) -> String {
        match part.strip_prefix("ev:") {
            Some(file) => key(&self.job, &format!("ev:{}:{file}", self.run)),
            None => key(&self.job, &format!("{part}:{}", self.run)),
        }
    }

    /// Queues one result message on `p`.
    fn push(&self, p: &mut redis::Pipeline, results: &str, kind: &str, name: &str, offset: u64, data: &[u8]) {
        p.cmd("XADD").arg(results).arg("*");
        p.arg("run").arg(&self.run).arg("attempt").arg(self.attempt).arg("kind").arg(kind);
        p.arg("name").arg(name).arg("offset").arg(offset).arg("data").arg(data).ignore();
    }

    /// `(file, offset, bytes)` not sent yet, in pieces of at most [`CHUNK`].
    fn new_event_bytes(&self) -> anyhow::Result<Vec<(String, u64, Vec<u8>)>> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(out) };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("events.out.tfevents.") && plain_name(n))
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
