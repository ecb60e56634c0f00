//! The coordinator of `tame sweep --redis`: queues the sweep's unfinished runs as tasks, then
//! writes what workers send into the out directory (`runs/<name>/`: config, event files as
//! they are flushed, checkpoints, summary.json), exactly as a local sweep lays it out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use redis::streams::{StreamId, StreamReadReply};
use tame_agents::run::stop_requested;

use super::fingerprint::fingerprint;
use super::{
    checkpoint_step, job_id_ok, key, new_job_id, safe_name, worker_key, MapFile, Redis, RedisUrl, SweepRun, Task, GROUP, JOBS,
    KEY_TTL_S, PROTOCOL,
};
use crate::sweep::{has_checkpoint, is_finished, run_dir, train_args, RunOutcome, RunSpec, SweepPlan};

pub struct ClusterOpts {
    pub url: RedisUrl,
    /// How long a task may go without its worker's renewal before another worker takes it.
    pub lease: Duration,
    pub timeout: Duration,
}

/// What the coordinator knows of one queued run.
struct Run {
    dir: PathBuf,
    /// The newest attempt seen; results of older ones are stale.
    attempt: u64,
    outcome: Option<RunOutcome>,
    /// The run's task as queued, to queue it again if it is lost.
    task: String,
}

/// How often the coordinator checks that every unfinished run is queued or pending.
const AUDIT_EVERY: Duration = Duration::from_secs(3);
/// The file in a sweep's out directory that names its job, so that a rerun finds it again.
const JOB_FILE: &str = "cluster-job.json";

/// Queues every unfinished run of `plan` on Redis and waits for them, writing their
/// directories under `out`; returns each run's outcome in grid order.
pub fn run_sweep(plan: &SweepPlan, out: &Path, opts: &ClusterOpts, quiet: bool) -> anyhow::Result<Vec<(RunSpec, RunOutcome)>> {
    let runs = plan.runs();
    std::fs::create_dir_all(out.join("runs"))
        .with_context(|| format!("creating sweep directory {}", out.join("runs").display()))?;
    let job = job_id(out)?;
    let mut redis = Redis::connect(&opts.url, opts.timeout)?;
    register(&mut redis, &job, "sweep", opts.lease, &out.display().to_string(), &opts.url)?;
    let (tasks, results, entries) = (key(&job, "tasks"), key(&job, "results"), key(&job, "entries"));

    let mut states: BTreeMap<String, Run> = BTreeMap::new();
    let mut outcomes: Vec<Option<RunOutcome>> = vec![None; runs.len()];
    for (i, run) in runs.iter().enumerate() {
        let dir = run_dir(out, run);
        if is_finished(&dir) {
            outcomes[i] = Some(RunOutcome::Skipped);
            continue;
        }
        match sweep_task(plan, run) {
            Ok(t) => {
                let json = serde_json::to_string(&Task::SweepRun(t)).expect("plain struct");
                states.insert(run.name.clone(), Run { dir, attempt: 0, outcome: None, task: json });
            }
            Err(e) => outcomes[i] = Some(RunOutcome::Failed(format!("{e:#}"))),
        }
    }
    // What an earlier session of this job left in the results stream is applied first; a run
    // it marked done without this directory holding its result (a failure) is queued again.
    let mut last_id = "0".to_string();
    let mut started: HashSet<(String, u64)> = HashSet::new();
    drain(&mut redis, &job, &results, &mut last_id, &mut states, &mut started, None)?;
    let names: Vec<String> = states.keys().cloned().collect();
    let marks: Vec<Option<String>> = redis.call(|c| {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        for name in &names {
            p.cmd("HGET").arg(&entries).arg(name);
        }
        p.query(c)
    })?;
    let stale: Vec<&String> =
        names.iter().zip(&marks).filter(|(n, m)| m.as_deref() == Some("done") && states[*n].outcome.is_none()).map(|(n, _)| n).collect();
    if !stale.is_empty() {
        redis.call(|c| redis::cmd("HDEL").arg(&entries).arg(&stale).query::<()>(c))?;
    }
    for (name, state) in &states {
        if state.outcome.is_none() && has_checkpoint(&state.dir) {
            seed_checkpoint(&mut redis, &job, name, &state.dir)?;
        }
    }
    audit(&mut redis, &tasks, &entries, &states)?;

    let bar = ProgressBar::with_draw_target(
        Some(runs.len() as u64),
        if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    bar.set_style(ProgressStyle::with_template("runs {bar:30} {pos}/{len} ({msg}) {elapsed}").expect("static template"));
    bar.set_position(outcomes.iter().filter(|o| o.is_some()).count() as u64);
    if !quiet {
        eprintln!(
            "tame sweep: job {job} on {}: {} runs queued; start workers with `tame worker --redis URL`",
            opts.url.shown(),
            states.values().filter(|s| s.outcome.is_none()).count()
        );
    }
    // Warnings show with --quiet too (it hides only the progress bar).
    let say = |line: String| if quiet { eprintln!("{line}") } else { bar.println(line) };
    let mut last_count = Instant::now() - Duration::from_secs(10);
    let mut audited = Instant::now();
    let mut renewed = Instant::now();
    let mut outages = redis.outages();
    let mut refusals = Refusals::default();
    while states.values().any(|s| s.outcome.is_none()) && !stop_requested() {
        drain(&mut redis, &job, &results, &mut last_id, &mut states, &mut started, Some(&bar))?;
        let outage = redis.outages() != outages;
        if outage || audited.elapsed() >= AUDIT_EVERY {
            if outage {
                // Redis was away: what it had not made durable may be lost; announce the job
                // again, and queue what is neither queued nor pending.
                outages = redis.outages();
                register(&mut redis, &job, "sweep", opts.lease, &out.display().to_string(), &opts.url)?;
            }
            drain(&mut redis, &job, &results, &mut last_id, &mut states, &mut started, None)?;
            for name in audit(&mut redis, &tasks, &entries, &states)? {
                say(format!("tame sweep: run {name} had no task (lost, or its worker gave it up); queued again"));
            }
            // Results read are dropped from their stream: its memory stays bounded.
            if last_id != "0" {
                redis.call(|c| redis::cmd("XTRIM").arg(&results).arg("MINID").arg(&last_id).query::<()>(c))?;
            }
            refusals.show(&mut redis, &job, &say)?;
            audited = Instant::now();
        }
        if renewed.elapsed() >= super::RENEW_EVERY {
            renew_keys(&mut redis, &job)?;
            renewed = Instant::now();
        }
        if last_count.elapsed() >= Duration::from_secs(1) {
            let workers = count_workers(&mut redis)?;
            let (waiting, running) = super::worker::queue_counts(&mut redis, &job)?;
            let failed = states.values().filter(|s| matches!(s.outcome, Some(RunOutcome::Failed(_)))).count();
            bar.set_message(format!("{workers} workers live, {waiting} queued, {running} running, {failed} failed"));
            last_count = Instant::now();
        }
        let done = outcomes.iter().filter(|o| o.is_some()).count() + states.values().filter(|s| s.outcome.is_some()).count();
        bar.set_position(done as u64);
    }
    bar.finish_and_clear();
    let all_done = states.values().all(|s| s.outcome.is_some());
    if all_done {
        clean_up(&mut redis, &job)?;
        let _ = std::fs::remove_file(out.join(JOB_FILE));
    }
    Ok(runs
        .into_iter()
        .zip(outcomes)
        .map(|(run, o)| {
            let o = o.or_else(|| states.get(&run.name).and_then(|s| s.outcome.clone()));
            let o = o.unwrap_or_else(|| {
                let dir = run_dir(out, &run);
                if dir.exists() { RunOutcome::Interrupted } else { RunOutcome::NotStarted }
            });
            (run, o)
        })
        .collect())
}

/// Announces a job to workers: its kind, lease, protocol and this build's fingerprint, in the
/// job set, with its task stream and consumer group (made unless they exist). Repeated after
/// an outage, since a Redis restarted from its AOF may have lost the last second of writes.
pub(super) fn register(redis: &mut Redis, job: &str, kind: &str, lease: Duration, label: &str, url: &RedisUrl) -> anyhow::Result<()> {
    let (meta, tasks) = (key(job, "meta"), key(job, "tasks"));
    let lease_ms = lease.as_millis().max(1) as u64;
    redis.call(|c| {
        let mut p = redis::pipe();
        p.cmd("HSET").arg(&meta).arg("kind").arg(kind).arg("lease_ms").arg(lease_ms).arg("out").arg(label);
        p.arg("protocol").arg(PROTOCOL).arg("fingerprint").arg(fingerprint()).ignore();
        p.cmd("EXPIRE").arg(&meta).arg(KEY_TTL_S).ignore();
        p.cmd("SADD").arg(JOBS).arg(job).ignore();
        p.query::<()>(c)
    })?;
    let created = redis.call_raw(|c| redis::cmd("XGROUP").arg("CREATE").arg(&tasks).arg(GROUP).arg("0").arg("MKSTREAM").query::<()>(c))?;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => bail!("creating the task stream of job {job} on {}: {e}", url.shown()),
        _ => renew_keys(redis, job),
    }
}

/// Queues every unfinished run that is neither queued nor pending (one idempotent script
/// each); returns the runs it queued.
fn audit(redis: &mut Redis, tasks: &str, entries: &str, states: &BTreeMap<String, Run>) -> anyhow::Result<Vec<String>> {
    let mut queued = Vec::new();
    for (name, state) in states.iter().filter(|(_, s)| s.outcome.is_none()) {
        if super::fence::queue(redis, tasks, entries, name, &state.task)? {
            queued.push(name.clone());
        }
    }
    Ok(queued)
}

/// Reads and applies every result not read yet (waiting up to 300 ms for the first when
/// `bar` is given, as the main loop does).
fn drain(
    redis: &mut Redis,
    job: &str,
    results: &str,
    last_id: &mut String,
    states: &mut BTreeMap<String, Run>,
    started: &mut HashSet<(String, u64)>,
    bar: Option<&ProgressBar>,
) -> anyhow::Result<()> {
    let block = bar.is_some();
    loop {
        let from = last_id.clone();
        let reply: Option<StreamReadReply> = redis.call(|c| {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(200);
            if block {
                cmd.arg("BLOCK").arg(300);
            }
            cmd.arg("STREAMS").arg(results).arg(&from).query(c)
        })?;
        let ids: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        if ids.is_empty() {
            return Ok(());
        }
        for entry in &ids {
            *last_id = entry.id.clone();
            if let Err(e) = apply(redis, job, states, started, entry) {
                let line = format!("warning: result {} of job {job} refused: {e:#}", entry.id);
                match bar {
                    Some(bar) if !bar.is_hidden() => bar.println(line),
                    _ => eprintln!("{line}"),
                }
            }
        }
        if block {
            return Ok(());
        }
    }
}

/// What workers said about refusing a job, each shown once.
#[derive(Default)]
pub(super) struct Refusals(HashSet<String>);

impl Refusals {
    pub(super) fn show(&mut self, redis: &mut Redis, job: &str, print: &dyn Fn(String)) -> anyhow::Result<()> {
        let all: HashMap<String, String> = redis.call(|c| redis::cmd("HGETALL").arg(key(job, "refused")).query(c))?;
        for (worker, why) in all {
            if self.0.insert(worker.clone()) {
                print(format!("warning: worker '{}' refuses job {job}: {}", worker.escape_debug(), why.escape_debug()));
            }
        }
        Ok(())
    }
}

/// Renews the expiry of every key of `job`, so that a job running longer than
/// [`KEY_TTL_S`] keeps them.
pub(super) fn renew_keys(redis: &mut Redis, job: &str) -> anyhow::Result<()> {
    let pattern = key(job, "*");
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis.call(|c| redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).query(c))?;
        if !batch.is_empty() {
            redis.call(|c| {
                let mut p = redis::pipe();
                for k in &batch {
                    p.cmd("EXPIRE").arg(k).arg(KEY_TTL_S).ignore();
                }
                p.query::<()>(c)
            })?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

/// The job of the sweep in `out`: the one its file names (a rerun of the same sweep finds its
/// job again), else a new random id, written there first. Two sweeps never share a job, not
/// even a rerun into a directory that was wiped.
fn job_id(out: &Path) -> anyhow::Result<String> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct JobFile {
        job: String,
    }
    let path = out.join(JOB_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let file: JobFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a job file; remove it to start a new job", path.display()))?;
            if !job_id_ok(&file.job) || !file.job.starts_with("sweep-") {
                bail!("{} names job '{}', not a sweep job id; remove it to start a new job", path.display(), file.job.escape_debug());
            }
            Ok(file.job)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let job = new_job_id("sweep");
            let bytes = serde_json::to_vec_pretty(&JobFile { job: job.clone() }).expect("plain struct");
            crate::fsutil::write_atomic(&path, &bytes)?;
            Ok(job)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The task of one run: the config it resolves to (as `tame train` would, refusing what it
/// would refuse) and its map file's text.
fn sweep_task(plan: &SweepPlan, run: &RunSpec) -> anyhow::Result<SweepRun> {
    let cfg = crate::cmd::train::resolve_argv(&train_args(plan, run, 1))?;
    Ok(SweepRun { run: run.name.clone(), config: cfg.to_toml()?, map: map_file(&cfg.env)? })
}

/// The text of the map file a `map:PATH[:OPTIONS]` env reads, to travel with its tasks (a
/// worker never reads a file of its own). Its name on the worker is the file's name with
/// every character [`safe_name`](super::safe_name) refuses replaced by `_`.
pub(super) fn map_file(env: &str) -> anyhow::Result<Option<MapFile>> {
    let Some((base, rest)) = env.split_once(':') else { return Ok(None) };
    if !base.eq_ignore_ascii_case("map") {
        return Ok(None);
    }
    let path = Path::new(rest.split(':').next().unwrap_or(rest));
    let text = std::fs::read_to_string(path).with_context(|| format!("reading map file {}", path.display()))?;
    let raw = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || "._+=-".contains(c) { c } else { '_' }).collect();
    name = name.trim_start_matches(['.', '-']).chars().take(200).collect();
    if !safe_name(&name) {
        name = "map.txt".into();
    }
    Ok(Some(MapFile { name, text }))
}

/// Puts a run's newest local checkpoint (and its config and event files) into Redis, so that
/// a worker resumes it there, as a local sweep would resume it here; unless Redis holds a
/// newer one already (this job's workers got further than this directory).
fn seed_checkpoint(redis: &mut Redis, job: &str, run: &str, dir: &Path) -> anyhow::Result<()> {
    let ckpts = tame_agents::checkpoint::list(&dir.join("checkpoints"))?;
    let Some((step, step_dir)) = ckpts.into_iter().max_by_key(|(s, _)| *s) else { return Ok(()) };
    let ckpt = key(job, &format!("ckpt:{run}"));
    let held: Option<u64> = redis.call(|c| redis::cmd("HGET").arg(&ckpt).arg("step").query(c))?;
    if held.is_some_and(|h| h >= step) {
        return Ok(());
    }
    let config = std::fs::read(dir.join("config.toml")).with_context(|| format!("reading {}/config.toml", dir.display()))?;
    let mut files = Vec::new();
    for e in std::fs::read_dir(&step_dir)?.filter_map(Result::ok) {
        files.push((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path())?));
    }
    let mut events = Vec::new();
    for e in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if crate::tensorboard::files::is_written_name(&name) {
            events.push((name, std::fs::read(e.path())?));
        }
    }
    let files_key = key(job, &format!("evfiles:{run}"));
    redis.call(|c| {
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("DEL").arg(&ckpt).ignore();
        p.cmd("HSET").arg(&ckpt).arg("step").arg(step).arg("config.toml").arg(&config);
        for (name, bytes) in &files {
            p.arg(format!("f:{name}")).arg(bytes);
        }
        p.ignore();
        p.cmd("EXPIRE").arg(&ckpt).arg(KEY_TTL_S).ignore();
        for (name, bytes) in &events {
            let ev = key(job, &format!("ev:{run}:{name}"));
            p.cmd("SET").arg(&ev).arg(bytes).arg("EX").arg(KEY_TTL_S).ignore();
            p.cmd("SADD").arg(&files_key).arg(name).ignore();
        }
        p.cmd("EXPIRE").arg(&files_key).arg(KEY_TTL_S).ignore();
        p.query::<()>(c)
    })
}

/// Applies one worker result to the run's directory; stale and duplicate ones change nothing,
/// and a result claiming an attempt no worker has made (forged) is refused.
fn apply(redis: &mut Redis, job: &str, states: &mut BTreeMap<String, Run>, started: &mut HashSet<(String, u64)>, entry: &StreamId) -> anyhow::Result<()> {
    let text = |field: &str| -> Option<String> { entry.get::<String>(field) };
    let run = text("run").context("no run field")?;
    let Some(state) = states.get_mut(&run) else { return Ok(()) };
    let attempt: u64 = entry.get("attempt").context("no attempt field, or not a number")?;
    if attempt < state.attempt || state.outcome.is_some() {
        return Ok(());
    }
    if attempt > state.attempt {
        let made: Option<u64> = redis.call(|c| redis::cmd("GET").arg(key(job, &format!("attempt:{run}"))).query(c))?;
        if made.is_none_or(|m| attempt > m) {
            bail!("run {run}: attempt {attempt} was never made (the newest is {}); not from a worker of this job", made.unwrap_or(0));
        }
    }
    state.attempt = attempt;
    let kind = text("kind").context("no kind field")?;
    let name = text("name").unwrap_or_default();
    let data: Vec<u8> = entry.get("data").unwrap_or_default();
    let dir = state.dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match kind.as_str() {
        "started" => {
            // A fresh attempt replaces what an earlier one left without a checkpoint.
            if data == b"fresh" && started.insert((run.clone(), attempt)) {
                std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
                std::fs::create_dir_all(&dir)?;
            }
        }
        "config" => crate::fsutil::write_atomic(&dir.join("config.toml"), &data)?,
        "events" => {
            if !(safe_name(&name) && crate::tensorboard::files::is_written_name(&name)) {
                bail!("event file name '{}' refused", name.escape_debug());
            }
            let offset: u64 = entry.get("offset").context("no offset field")?;
            let end = offset.checked_add(data.len() as u64).filter(|&e| e <= MAX_EVENT_FILE).context("event bytes past the largest event file accepted")?;
            let path = dir.join(&name);
            let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let len = file.metadata()?.len();
            if end > len {
                file.write_all_at(&data, offset).with_context(|| format!("writing {}", path.display()))?;
                file.sync_data().with_context(|| format!("syncing {}", path.display()))?;
            }
        }
        "ckpt" => {
            checkpoint_step(&name).with_context(|| format!("checkpoint name '{}' refused", name.escape_debug()))?;
            write_checkpoint(redis, &key(job, &format!("ckpt:{run}")), &dir)?;
        }
        "summary" => {
            serde_json::from_slice::<serde_json::Value>(&data).context("the summary is not JSON")?;
            crate::fsutil::write_atomic(&dir.join("summary.json"), &data)?;
            if is_finished(&dir) {
                state.outcome = Some(RunOutcome::Finished);
            }
        }
        "failed" => state.outcome = Some(RunOutcome::Failed(String::from_utf8_lossy(&data).into_owned())),
        other => bail!("unknown result kind '{}'", other.escape_debug()),
    }
    if state.outcome.is_some() {
        forget_run(redis, job, &run)?;
    }
    Ok(())
}

/// The largest event file a result may write into (1 GiB): a result is input from a
/// stranger, and must not make the coordinator write at any offset.
const MAX_EVENT_FILE: u64 = 1 << 30;

/// Deletes what Redis holds of a run that ended (its checkpoint, event files, owner): a job's
/// memory is bounded by the runs in flight.
fn forget_run(redis: &mut Redis, job: &str, run: &str) -> anyhow::Result<()> {
    let files_key = key(job, &format!("evfiles:{run}"));
    let names: Vec<String> = redis.call(|c| redis::cmd("SMEMBERS").arg(&files_key).query(c))?;
    redis.call(|c| {
        let mut p = redis::pipe();
        for name in &names {
            p.cmd("DEL").arg(key(job, &format!("ev:{run}:{name}"))).ignore();
        }
        p.cmd("DEL").arg(&files_key).arg(key(job, &format!("ckpt:{run}"))).arg(key(job, &format!("owner:{run}"))).ignore();
        p.query::<()>(c)
    })
}

/// Writes the checkpoint that `ckpt:<run>` holds (the run's newest) as `tame train` does (a
/// temporary name, then a rename) and keeps the newest [`KEEP`](tame_agents::checkpoint::KEEP),
/// as a local run's directory has. Checkpoints are stored once in Redis, there.
fn write_checkpoint(redis: &mut Redis, ckpt_key: &str, dir: &Path) -> anyhow::Result<()> {
    let held: HashMap<String, Vec<u8>> = redis.call(|c| redis::cmd("HGETALL").arg(ckpt_key).query(c))?;
    let Some(step) = held.get("step").and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok()) else {
        // Already replaced by a fresh attempt, or gone with the run: nothing to write.
        return Ok(());
    };
    let checkpoints = dir.join("checkpoints");
    let fin = checkpoints.join(format!("step-{step:012}"));
    if fin.is_dir() {
        return Ok(());
    }
    let tmp = checkpoints.join(format!(".step-{step:012}.coordinator.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (field, bytes) in &held {
        let Some(file) = field.strip_prefix("f:") else { continue };
        if !safe_name(file) {
            bail!("checkpoint file name '{}' refused", file.escape_debug());
        }
        crate::fsutil::write_atomic(&tmp.join(file), bytes)?;
    }
    std::fs::rename(&tmp, &fin).with_context(|| format!("renaming {} to {}", tmp.display(), fin.display()))?;
    let mut all = tame_agents::checkpoint::list(&checkpoints)?;
    all.sort_by_key(|(s, _)| *s);
    let drop = all.len().saturating_sub(tame_agents::checkpoint::KEEP);
    for (_, old) in all.into_iter().take(drop) {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// Workers whose heartbeat is live.
pub fn count_workers(redis: &mut Redis) -> anyhow::Result<usize> {
    let mut cursor = 0u64;
    let mut n = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis.call(|c| {
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(worker_key("*")).arg("COUNT").arg(500).query(c)
        })?;
        n += batch.len();
        cursor = next;
        if cursor == 0 {
            return Ok(n);
        }
    }
}

/// Deletes every key of a finished job.
pub(super) fn clean_up(redis: &mut Redis, job: &str) -> anyhow::Result<()> {
    let pattern = key(job, "*");
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis.call(|c| redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).query(c))?;
        if !batch.is_empty() {
            redis.call(|c| redis::cmd("DEL").arg(&batch).query::<()>(c))?;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    redis.call(|c| redis::cmd("SREM").arg(JOBS).arg(job).query::<()>(c))
}
