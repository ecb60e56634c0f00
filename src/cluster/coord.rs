//! The coordinator of `tame sweep --redis`: queues the sweep's unfinished runs as tasks, then
//! writes what workers send into the out directory (`runs/<name>/`: config, event files as
//! they are flushed, checkpoints, summary.json), exactly as a local sweep lays it out.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use redis::streams::{StreamId, StreamReadReply};
use redis::Value;
use tame_agents::run::stop_requested;

use super::{checkpoint_step, key, plain_name, worker_key, MapFile, Redis, RedisUrl, SweepRun, Task, GROUP, JOBS, KEY_TTL_S};
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
}

/// Queues every unfinished run of `plan` on Redis and waits for them, writing their
/// directories under `out`; returns each run's outcome in grid order.
pub fn run_sweep(plan: &SweepPlan, out: &Path, opts: &ClusterOpts, quiet: bool) -> anyhow::Result<Vec<(RunSpec, RunOutcome)>> {
    let runs = plan.runs();
    std::fs::create_dir_all(out.join("runs"))
        .with_context(|| format!("creating sweep directory {}", out.join("runs").display()))?;
    let job = job_id(out)?;
    let mut redis = Redis::connect(&opts.url, opts.timeout)?;
    let (tasks, results, meta, queued) = (key(&job, "tasks"), key(&job, "results"), key(&job, "meta"), key(&job, "queued"));
    let out_shown = out.display().to_string();
    redis.call(|c| {
        let mut p = redis::pipe();
        p.cmd("HSET").arg(&meta).arg("kind").arg("sweep").arg("lease_ms").arg(opts.lease.as_millis() as u64);
        p.arg("out").arg(&out_shown).ignore();
        p.cmd("SADD").arg(JOBS).arg(&job).ignore();
        p.query::<()>(c)
    })?;
    let created = redis.call_raw(|c| {
        redis::cmd("XGROUP").arg("CREATE").arg(&tasks).arg(GROUP).arg("0").arg("MKSTREAM").query::<()>(c)
    })?;
    if let Err(e) = created {
        // The group exists already: this sweep was started before and is being resumed.
        if e.code() != Some("BUSYGROUP") {
            bail!("creating the task stream of job {job} on {}: {e}", opts.url.shown());
        }
    }
    redis.call(|c| {
        let mut p = redis::pipe();
        for k in [&meta, &tasks, &results, &queued] {
            p.cmd("EXPIRE").arg(k).arg(KEY_TTL_S).ignore();
        }
        p.query::<()>(c)
    })?;

    let mut states: BTreeMap<String, Run> = BTreeMap::new();
    let mut outcomes: Vec<Option<RunOutcome>> = vec![None; runs.len()];
    for (i, run) in runs.iter().enumerate() {
        let dir = run_dir(out, run);
        if is_finished(&dir) {
            outcomes[i] = Some(RunOutcome::Skipped);
            continue;
        }
        let task = match sweep_task(plan, run) {
            Ok(t) => t,
            Err(e) => {
                outcomes[i] = Some(RunOutcome::Failed(format!("{e:#}")));
                continue;
            }
        };
        let fresh: bool = redis.call(|c| redis::cmd("HSETNX").arg(&queued).arg(&run.name).arg(1).query(c))?;
        if fresh {
            if has_checkpoint(&dir) {
                seed_checkpoint(&mut redis, &job, &run.name, &dir)?;
            }
            let json = serde_json::to_string(&Task::SweepRun(task)).expect("plain struct");
            redis.call(|c| redis::cmd("XADD").arg(&tasks).arg("*").arg("task").arg(&json).query::<()>(c))?;
        }
        states.insert(run.name.clone(), Run { dir, attempt: 0, outcome: None });
    }

    let bar = ProgressBar::with_draw_target(
        Some(runs.len() as u64),
        if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    bar.set_style(ProgressStyle::with_template("runs {bar:30} {pos}/{len} ({msg}) {elapsed}").expect("static template"));
    bar.set_position(outcomes.iter().filter(|o| o.is_some()).count() as u64);
    if !quiet {
        eprintln!("tame sweep: job {job} on {}: {} runs queued; start workers with `tame worker --redis URL`", opts.url.shown(), states.len());
    }
    let mut last_id = "0".to_string();
    let mut started: HashSet<(String, u64)> = HashSet::new();
    let mut last_count = Instant::now() - Duration::from_secs(10);
    while states.values().any(|s| s.outcome.is_none()) && !stop_requested() {
        let reply: Option<StreamReadReply> = redis.call(|c| {
            redis::cmd("XREAD").arg("COUNT").arg(200).arg("BLOCK").arg(300).arg("STREAMS").arg(&results).arg(&last_id).query(c)
        })?;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            last_id = entry.id.clone();
            if let Err(e) = apply(&mut states, &mut started, &entry) {
                bar.println(format!("warning: result {} of job {job}: {e:#}", entry.id));
            }
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

/// A job id from the out directory: the same sweep resumed finds its job again, two sweeps
/// into different directories never share one.
fn job_id(out: &Path) -> anyhow::Result<String> {
    let abs = std::fs::canonicalize(out).with_context(|| format!("resolving {}", out.display()))?;
    Ok(format!("sweep-{:08x}", crc32c::crc32c(abs.as_os_str().as_encoded_bytes())))
}

/// The task of one run: the config it resolves to (as `tame train` would, refusing what it
/// would refuse) and its map file's text.
fn sweep_task(plan: &SweepPlan, run: &RunSpec) -> anyhow::Result<SweepRun> {
    let cfg = crate::cmd::train::resolve_argv(&train_args(plan, run, 1))?;
    Ok(SweepRun { run: run.name.clone(), config: cfg.to_toml()?, map: map_file(&cfg.env)? })
}

/// The text of the map file a `map:PATH` env reads, to travel with its tasks.
pub(super) fn map_file(env: &str) -> anyhow::Result<Option<MapFile>> {
    let Some(path) = env.strip_prefix("map:") else { return Ok(None) };
    let path = Path::new(path);
    let text = std::fs::read_to_string(path).with_context(|| format!("reading map file {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "map.txt".into());
    Ok(Some(MapFile { name, text }))
}

/// Puts a run's newest local checkpoint (and its config and event files) into Redis, so that
/// a worker resumes it there, as a local sweep would resume it here.
fn seed_checkpoint(redis: &mut Redis, job: &str, run: &str, dir: &Path) -> anyhow::Result<()> {
    let ckpts = tame_agents::checkpoint::list(&dir.join("checkpoints"))?;
    let Some((step, step_dir)) = ckpts.into_iter().max_by_key(|(s, _)| *s) else { return Ok(()) };
    let config = std::fs::read(dir.join("config.toml")).with_context(|| format!("reading {}/config.toml", dir.display()))?;
    let mut files = Vec::new();
    for e in std::fs::read_dir(&step_dir)?.filter_map(Result::ok) {
        files.push((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path())?));
    }
    let mut events = Vec::new();
    for e in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("events.out.tfevents.") {
            events.push((name, std::fs::read(e.path())?));
        }
    }
    let ckpt = key(job, &format!("ckpt:{run}"));
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

/// Applies one worker result to the run's directory; stale and duplicate ones change nothing.
fn apply(states: &mut BTreeMap<String, Run>, started: &mut HashSet<(String, u64)>, entry: &StreamId) -> anyhow::Result<()> {
    let text = |field: &str| -> Option<String> { entry.get::<String>(field) };
    let run = text("run").context("no run field")?;
    let Some(state) = states.get_mut(&run) else { return Ok(()) };
    let attempt: u64 = entry.get("attempt").context("no attempt field")?;
    if attempt < state.attempt || state.outcome.is_some() {
        return Ok(());
    }
    state.attempt = attempt;
    let kind = text("kind").context("no kind field")?;
    let name = text("name").unwrap_or_default();
    let data: Vec<u8> = entry.get("data").unwrap_or_default();
    let dir = &state.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    match kind.as_str() {
        "started" => {
            // A fresh attempt replaces what an earlier one left without a checkpoint.
            if data == b"fresh" && started.insert((run.clone(), attempt)) {
                std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
                std::fs::create_dir_all(dir)?;
            }
        }
        "config" => crate::fsutil::write_atomic(&dir.join("config.toml"), &data)?,
        "events" => {
            if !(plain_name(&name) && name.starts_with("events.out.tfevents.")) {
                bail!("event file name '{name}' refused");
            }
            let offset: u64 = entry.get("offset").context("no offset field")?;
            let path = dir.join(&name);
            let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let len = file.metadata()?.len();
            if offset + data.len() as u64 > len {
                file.write_all_at(&data, offset).with_context(|| format!("writing {}", path.display()))?;
                file.sync_data().with_context(|| format!("syncing {}", path.display()))?;
            }
        }
        "ckpt" => {
            let step = checkpoint_step(&name).with_context(|| format!("checkpoint name '{name}' refused"))?;
            write_checkpoint(dir, step, entry)?;
        }
        "summary" => {
            crate::fsutil::write_atomic(&dir.join("summary.json"), &data)?;
            if is_finished(dir) {
                state.outcome = Some(RunOutcome::Finished);
            }
        }
        "failed" => state.outcome = Some(RunOutcome::Failed(String::from_utf8_lossy(&data).into_owned())),
        other => bail!("unknown result kind '{other}'"),
    }
    Ok(())
}

/// Writes a checkpoint directory as `tame train` does (a temporary name, then a rename) and
/// keeps the newest [`KEEP`](tame_agents::checkpoint::KEEP), as a local run's directory has.
fn write_checkpoint(dir: &Path, step: u64, entry: &StreamId) -> anyhow::Result<()> {
    let checkpoints = dir.join("checkpoints");
    let fin = checkpoints.join(format!("step-{step:012}"));
    if fin.is_dir() {
        return Ok(());
    }
    let tmp = checkpoints.join(format!(".step-{step:012}.coordinator.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (field, value) in &entry.map {
        let Some(file) = field.strip_prefix("f:") else { continue };
        if !plain_name(file) {
            bail!("checkpoint file name '{file}' refused");
        }
        let Value::BulkString(bytes) = value else { bail!("checkpoint file {file} holds no bytes") };
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
