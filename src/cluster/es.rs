//! The coordinator of `tame train --agent es --redis`: each generation's mirrored pairs are
//! split into parts of whole chunks ([`PAIRS_PER_CHUNK`] pairs), queued as tasks with θ and the
//! observation normalisation, and the episodes workers send back are put together in pair
//! order. Ranks, ĝ (regenerated here from the pair seeds), the update, evaluations and
//! checkpoints stay in the `tame train` process. A part whose worker died is taken over after
//! its lease; a result that comes twice, or from an older generation, is ignored; so any
//! number of workers, joining and dying at any time, give the local run's bits.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::streams::StreamReadReply;
use tame_agents::es::{Episode, Generation, ObsNorm, Population, PAIRS_PER_CHUNK};
use tame_agents::run::stop_requested;

use super::coord::{clean_up, count_workers, map_file, register, renew_keys, Refusals};
use super::{key, new_job_id, EsPart, MapFile, Redis, RedisUrl, Task, RENEW_EVERY};
use crate::run_dir::Resolved;

/// Parts queued per live worker. One: each further part costs its worker a round trip and
/// the coordinator a wake-up; `tame bench es --redis --parts 2,4` measured 62% and 57% of the
/// local speed where one part per worker gave 82% (noise regeneration left out).
const PARTS_PER_WORKER: usize = 1;
/// How often the live workers are counted (the parts of a generation follow that count).
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// How long a generation may wait before the wait is reported.
const NOTE_AFTER: Duration = Duration::from_secs(10);

pub struct EsJobOpts {
    pub url: RedisUrl,
    /// How long a part may go without its worker's renewal before another worker takes it.
    pub lease: Duration,
    pub timeout: Duration,
    /// Split each generation into this many parts instead of following the live workers.
    pub parts: Option<usize>,
    pub quiet: bool,
}

/// What a distributed ES run has cost so far, for `tame bench es --redis`.
#[derive(Clone, Debug, Default)]
pub(crate) struct EsJobStats {
    pub generations: u64,
    pub parts: u64,
    /// Commands and pipelines sent to Redis (each one round trip).
    pub round_trips: u64,
    /// Bytes of the tasks queued (θ, normalisation, config, draws).
    pub bytes_sent: u64,
    /// Bytes of the episodes received.
    pub bytes_received: u64,
    /// Σ over generations of the time from queueing the parts to the last result.
    pub wait_seconds: f64,
    /// Σ over generations of the busiest worker's evaluation time in that generation.
    pub critical_seconds: f64,
    /// Σ of every part's evaluation time on its worker.
    pub worker_seconds: f64,
    /// Σ over generations of the time spent queueing the parts.
    pub publish_seconds: f64,
    /// Σ of the time between one generation's last result and the next one's queueing: the
    /// ranks, ĝ, the update and the next draws, all while the workers wait.
    pub between_seconds: f64,
    /// When the last generation's last result was read (`None`: the next generation starts
    /// a new series, as after a pause of the caller's).
    pub returned: Option<Instant>,
}

/// One distributed ES run's job on Redis; its keys are deleted when it is dropped.
pub struct EsJob {
    redis: Redis,
    opts: EsJobOpts,
    job: String,
    /// The run, as `tame workers` shows it.
    label: String,
    /// The resolved config as `config.toml` holds it: what every task carries.
    config: String,
    map: Option<MapFile>,
    /// The newest results entry read.
    last_id: String,
    workers: usize,
    counted: Option<Instant>,
    renewed: Instant,
    refusals: Refusals,
    stats: Arc<Mutex<EsJobStats>>,
}

impl EsJob {
    /// Registers a job for the run `label` (shown by `tame workers`). Its id is new for each
    /// session, so a resumed run never reads an earlier session's results.
    pub fn start(cfg: &Resolved, label: &str, opts: EsJobOpts) -> anyhow::Result<EsJob> {
        let config = cfg.to_toml()?;
        let map = map_file(&cfg.env)?;
        let redis = Redis::connect(&opts.url, opts.timeout)?;
        let job = new_job_id("es");
        let mut es = EsJob {
            redis,
            label: label.to_string(),
            job,
            config,
            map,
            last_id: "0".into(),
            workers: 0,
            counted: None,
            renewed: Instant::now(),
            refusals: Refusals::default(),
            stats: Arc::default(),
            opts,
        };
        es.register()?;
        let workers = es.live_workers()?;
        if !es.opts.quiet {
            eprintln!(
                "tame train: ES generations go to workers on {} as job {}; {workers} worker(s) live{}",
                es.opts.url.shown(),
                es.job,
                if workers == 0 { " (start them with `tame worker --redis URL`)" } else { "" }
            );
        }
        Ok(es)
    }

    /// The job's costs so far, shared (they keep counting once the job is boxed into a learner).
    pub(crate) fn stats(&self) -> Arc<Mutex<EsJobStats>> {
        self.stats.clone()
    }

    /// Announces the job to workers (see [`register`]).
    fn register(&mut self) -> anyhow::Result<()> {
        register(&mut self.redis, &self.job, "es", self.opts.lease, &self.label, &self.opts.url)
    }

    fn live_workers(&mut self) -> anyhow::Result<usize> {
        if self.counted.is_none_or(|t| t.elapsed() >= COUNT_EVERY) {
            self.workers = count_workers(&mut self.redis)?;
            self.counted = Some(Instant::now());
        }
        Ok(self.workers)
    }

    /// Pair ranges of the parts, each a whole number of chunks, the chunks spread evenly.
    fn split(&mut self, pairs: usize) -> anyhow::Result<Vec<Range<usize>>> {
        let chunks = pairs.div_ceil(PAIRS_PER_CHUNK);
        let parts = match self.opts.parts {
            Some(p) => p,
            None => self.live_workers()?.max(1) * PARTS_PER_WORKER,
        }
        .clamp(1, chunks);
        Ok((0..parts)
            .map(|i| {
                let (a, b) = (i * chunks / parts, (i + 1) * chunks / parts);
                (a * PAIRS_PER_CHUNK).min(pairs)..(b * PAIRS_PER_CHUNK).min(pairs)
            })
            .collect())
    }

    /// Queues `parts` of `generation` (those not yet back when re-queued after an outage).
    fn publish(&mut self, generation: &Generation, theta: &[f32], norm: &ObsNorm, parts: &[(usize, Range<usize>)]) -> anyhow::Result<()> {
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (theta, mean, inv_std) = (bytes(theta), bytes(&norm.mean), bytes(&norm.inv_std));
        let mut entries: Vec<(usize, String)> = Vec::with_capacity(parts.len());
        for (part, range) in parts {
            let task = Task::EsPart(EsPart {
                part: *part,
                first_pair: range.start,
                config: self.config.clone(),
                map: self.map.clone(),
                generation: generation.pairs(range.clone()),
            });
            entries.push((*part, serde_json::to_string(&task).expect("plain struct")));
        }
        let (tasks, results) = (key(&self.job, "tasks"), key(&self.job, "results"));
        let renew = self.renewed.elapsed() >= RENEW_EVERY;
        let last_id = self.last_id.clone();
        self.redis.call(|c| {
            let mut p = redis::pipe();
            for (part, json) in &entries {
                p.cmd("XADD").arg(&tasks).arg("*").arg("generation").arg(generation.index).arg("part").arg(part).arg("task").arg(json);
                p.arg("theta").arg(&theta).arg("obs_mean").arg(&mean).arg("obs_inv_std").arg(&inv_std).ignore();
            }
            // Results already read are dropped from their stream.
            if last_id != "0" {
                p.cmd("XTRIM").arg(&results).arg("MINID").arg(&last_id).ignore();
            }
            p.query::<()>(c)
        })?;
        if renew {
            renew_keys(&mut self.redis, &self.job)?;
            self.renewed = Instant::now();
        }
        let sent: usize = entries.iter().map(|(_, e)| e.len() + theta.len() + mean.len() + inv_std.len()).sum();
        self.stats.lock().expect("stats lock").bytes_sent += sent as u64;
        Ok(())
    }
}

/// One result entry of the current generation.
struct PartResult {
    part: usize,
    worker: String,
    seconds: f64,
    outcome: Result<Vec<u8>, String>,
}

impl Population for EsJob {
    fn evaluate(&mut self, generation: &Generation, theta: &[f32], norm: &ObsNorm) -> anyhow::Result<Option<Vec<Episode>>> {
        let begun = Instant::now();
        let between = self.stats.lock().expect("stats lock").returned.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let calls_before = self.redis.calls();
        let ranges = self.split(generation.pair_seeds.len())?;
        let all: Vec<(usize, Range<usize>)> = ranges.iter().cloned().enumerate().collect();
        self.publish(generation, theta, norm, &all)?;
        let published = begun.elapsed().as_secs_f64();
        let mut outages = self.redis.outages();
        let results = key(&self.job, "results");
        let mut got: Vec<Option<Vec<Episode>>> = vec![None; ranges.len()];
        let mut busy: BTreeMap<String, f64> = BTreeMap::new();
        let (mut received, mut worker_seconds) = (0u64, 0.0);
        let mut noted = Instant::now();
        let mut waited = Instant::now();
        while got.iter().any(Option::is_none) {
            if stop_requested() {
                return Ok(None);
            }
            if self.redis.outages() != outages {
                // Redis was away: what it had not made durable may be lost; queue again the
                // parts not back yet (a duplicate result is ignored).
                outages = self.redis.outages();
                self.register()?;
                let missing: Vec<(usize, Range<usize>)> = all.iter().filter(|(i, _)| got[*i].is_none()).cloned().collect();
                self.publish(generation, theta, norm, &missing)?;
            }
            let last_id = self.last_id.clone();
            let reply: Option<StreamReadReply> = self.redis.call(|c| {
                redis::cmd("XREAD").arg("COUNT").arg(256).arg("BLOCK").arg(250).arg("STREAMS").arg(&results).arg(&last_id).query(c)
            })?;
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                self.last_id = entry.id.clone();
                let Some(g) = entry.get::<u64>("generation") else { continue };
                let Some(part) = entry.get::<usize>("part") else { continue };
                if g != generation.index || part >= got.len() || got[part].is_some() {
                    continue;
                }
                let r = PartResult {
                    part,
                    worker: entry.get("worker").unwrap_or_default(),
                    seconds: entry.get("seconds").unwrap_or(0.0),
                    outcome: match entry.get::<String>("failed") {
                        Some(why) => Err(why),
                        None => Ok(entry.get::<Vec<u8>>("data").unwrap_or_default()),
                    },
                };
                let data = match r.outcome {
                    Ok(data) => data,
                    Err(why) => bail!(
                        "worker {} could not evaluate part {} of generation {}: {why}",
                        r.worker,
                        r.part,
                        generation.index + 1
                    ),
                };
                let episodes: Vec<Episode> = serde_json::from_slice(&data)
                    .with_context(|| format!("the episodes of part {part} from worker {} are malformed", r.worker))?;
                let want = 2 * ranges[part].len();
                if episodes.len() != want {
                    bail!("worker {} sent {} episodes for part {part}, which has {want} members", r.worker, episodes.len());
                }
                let recorded = &generation.recorded[2 * ranges[part].start..2 * ranges[part].end];
                if let Err(why) = check_episodes(&episodes, recorded, norm.mean.len()) {
                    bail!("worker {} sent a bad episode for part {part}: {why}", r.worker);
                }
                received += data.len() as u64;
                worker_seconds += r.seconds;
                *busy.entry(r.worker).or_default() += r.seconds;
                got[part] = Some(episodes);
            }
            if waited.elapsed() >= COUNT_EVERY && !self.opts.quiet {
                waited = Instant::now();
                let job = self.job.clone();
                self.refusals.show(&mut self.redis, &job, &|line| eprintln!("{line}"))?;
            }
            if noted.elapsed() >= NOTE_AFTER && !self.opts.quiet {
                noted = Instant::now();
                let workers = count_workers(&mut self.redis)?;
                let missing = got.iter().filter(|g| g.is_none()).count();
                eprintln!(
                    "tame train: generation {} of job {} waits for {missing} of {} parts; {workers} worker(s) live{}",
                    generation.index + 1,
                    self.job,
                    got.len(),
                    if workers == 0 { " (start them with `tame worker --redis URL`)" } else { "" }
                );
            }
        }
        let mut stats = self.stats.lock().expect("stats lock");
        stats.generations += 1;
        stats.parts += got.len() as u64;
        stats.round_trips += self.redis.calls() - calls_before;
        stats.bytes_received += received;
        stats.wait_seconds += begun.elapsed().as_secs_f64();
        stats.critical_seconds += busy.values().copied().fold(0.0, f64::max);
        stats.worker_seconds += worker_seconds;
        stats.publish_seconds += published;
        stats.between_seconds += between;
        stats.returned = Some(Instant::now());
        Ok(Some(got.into_iter().flatten().flatten().collect()))
    }
}

impl Drop for EsJob {
    /// The job's keys go (workers drop its queued parts); a Redis that is away by now keeps
    /// them until they expire.
    fn drop(&mut self) {
        self.redis.set_timeout(Duration::from_secs(2));
        if let Err(e) = clean_up(&mut self.redis, &self.job) {
            eprintln!("warning: job {} was not removed from Redis ({e:#}); its keys expire on their own", self.job);
        }
    }
}

/// What a worker's episodes must be for the part they answer: finite returns, and the
/// observation sums of exactly the recorded members, each with one value per feature.
fn check_episodes(episodes: &[Episode], recorded: &[bool], features: usize) -> Result<(), String> {
    for (i, (ep, &rec)) in episodes.iter().zip(recorded).enumerate() {
        if !ep.ret.is_finite() {
            return Err(format!("member {i} has return {}", ep.ret));
        }
        let want = if rec { features } else { 0 };
        if ep.obs_sum.len() != want || ep.obs_sumsq.len() != want {
            return Err(format!(
                "member {i} has {} observation sums and {} sums of squares; {want} expected",
                ep.obs_sum.len(),
                ep.obs_sumsq.len()
            ));
        }
        if ep.obs_sum.iter().chain(&ep.obs_sumsq).any(|x| !x.is_finite()) || (!rec && ep.obs_count != 0) {
            return Err(format!("member {i} has observation statistics that are not finite or not asked for"));
        }
    }
    Ok(())
}
