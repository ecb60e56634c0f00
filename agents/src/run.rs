//! The contract between a training algorithm and the binary that runs it: the [`Learner`]
//! interface every agent's whole state sits behind, the one training loop that drives any
//! learner ([`train`]: evaluations, checkpoints, stop requests, progress), where metrics go,
//! and what a run reports at the end.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::checkpoint::{self, Checkpoint, CheckpointWriter};
use crate::eval::{log_eval, EvalReport};
use crate::policy::Policy;
use crate::{Logger, NullLogger};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every running training loop to stop at its next step (set on Ctrl-C).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Forgets a stop request that has been acted on, so that the short work after it (a stopped
/// sweep's report, whose exact references poll the flag too) completes; a second signal still
/// quits at once.
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// Whether a stop was requested; training loops poll this once per step or generation.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Progress of a run, for the progress bar.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Environment steps taken so far.
    pub step: u64,
    /// Environment steps the run will take.
    pub total: u64,
    /// Return of the most recent finished training episode.
    pub last_return: Option<f64>,
    /// Most recent evaluation mean return.
    pub last_eval: Option<f64>,
}

/// Everything a training loop needs from outside.
pub struct RunCtx<'a> {
    pub logger: &'a mut dyn Logger,
    /// Where checkpoints go; `None` disables them (tests, benchmarks).
    pub checkpoint_dir: Option<&'a Path>,
    /// Called now and then with the run's progress.
    pub progress: &'a mut dyn FnMut(&Progress),
    /// Called right after each logged evaluation, the final one included, with the env step
    /// and the policy just evaluated (`tame train --capture-video` records an episode there);
    /// not after the unlogged evaluation of a stopped run.
    pub on_eval: OnEval<'a>,
}

/// A training algorithm with all of its state: what `tame train`, `--resume`, sweeps and
/// workers drive, without knowing which agent it is. Adding an agent means implementing this
/// (and naming it where the binary builds learners from configs).
pub trait Learner {
    /// Env steps taken so far (the x axis of every curve).
    fn env_steps(&self) -> u64;
    /// One unit of training (SAC: an env step and its updates; ES: a generation), logging its
    /// metrics at the new env step. A non-finite quantity is an error naming it and the step.
    fn advance(&mut self, logger: &mut dyn Logger) -> anyhow::Result<()>;
    /// A deterministic evaluation at the fixed evaluation seeds. It must not touch the
    /// training state: evaluating more or less often changes no training number. `last`
    /// marks the final evaluation (learners log extra views of it).
    fn evaluate(&mut self, logger: &mut dyn Logger, last: bool) -> anyhow::Result<EvalReport>;
    /// Every piece of training state, so that [`Learner::restore`] continues bit for bit.
    fn save(&mut self, out: &mut CheckpointWriter) -> anyhow::Result<()>;
    /// Overwrites a freshly built learner (same config) with a checkpoint's state.
    fn restore(&mut self, ckpt: &Checkpoint) -> anyhow::Result<()>;
    /// The current policy, to play it (the [`RunCtx::on_eval`] hook). Playing it must not
    /// touch the training state either.
    fn policy(&mut self) -> Box<dyn Policy + '_>;
}

/// When a run evaluates and checkpoints, in env steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub total_steps: u64,
    /// Evaluate each time the env steps cross a multiple of this (>= 1), and at the end.
    pub eval_every: u64,
    pub eval_episodes: usize,
    /// Checkpoint each time the env steps cross a multiple of this (>= 1; `tame train`'s
    /// default is `eval_every`), at the end, and when stopped.
    pub checkpoint_every: u64,
}

/// `true` when going from `before` to `after` env steps passes a multiple of `every`.
fn crossed(before: u64, after: u64, every: u64) -> bool {
    after / every > before / every
}

/// Run-level values stored in each checkpoint beside the learner's state.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    /// Wall-clock seconds of training so far, over every session of the run.
    pub wall_seconds: f64,
    /// Whatever the binary wants to find again on resume (its config, for instance).
    #[serde(default)]
    pub meta: serde_json::Value,
    /// The largest step of any point logged, and flushed, before the checkpoint was taken,
    /// over every session: a resume whose durable logs end below it knows points are missing.
    /// `None` in checkpoints written before it was recorded, or before anything was logged.
    #[serde(default)]
    pub logged_through: Option<u64>,
}

/// The training loop's logger: passes everything on and remembers the largest step logged.
struct Tracked<'a> {
    inner: &'a mut dyn Logger,
    through: Option<u64>,
}

impl Tracked<'_> {
    fn saw(&mut self, step: u64) {
        self.through = Some(self.through.map_or(step, |t| t.max(step)));
    }
}

impl Logger for Tracked<'_> {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> anyhow::Result<()> {
        self.saw(step);
        self.inner.scalar(tag, step, value)
    }
    fn histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> anyhow::Result<()> {
        self.saw(step);
        self.inner.histogram(tag, step, values)
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        self.inner.flush()
    }
}

/// Drives `learner` to `schedule.total_steps`: evaluations, checkpoints, progress, and a clean
/// stop on request (a final checkpoint, an evaluation reported in the summary but not logged,
/// so that a resumed run's logs equal an uninterrupted one's). `state` carries the time
/// already spent in earlier sessions and the binary's metadata for checkpoints.
pub fn train(
    learner: &mut dyn Learner,
    schedule: &Schedule,
    state: &RunState,
    ctx: &mut RunCtx,
) -> anyhow::Result<TrainSummary> {
    let start = Instant::now();
    let mut progress = Progress { step: learner.env_steps(), total: schedule.total_steps, ..Progress::default() };
    // The step of the newest checkpoint submitted, and the writer that completes them.
    let mut last_checkpoint: Option<u64> = None;
    let mut writer = checkpoint::Background::default();
    let mut checkpoint_seconds = 0.0;
    let checkpoint_dir = ctx.checkpoint_dir;
    let mut log = Tracked { inner: &mut *ctx.logger, through: state.logged_through };
    let mut checkpoint = |learner: &mut dyn Learner,
                          writer: &mut checkpoint::Background,
                          last: &mut Option<u64>,
                          logged_through: Option<u64>|
     -> anyhow::Result<()> {
        let step = learner.env_steps();
        if let Some(dir) = checkpoint_dir {
            let begun = Instant::now();
            let mut out = CheckpointWriter::default();
            learner.save(&mut out)?;
            let run = RunState {
                wall_seconds: state.wall_seconds + start.elapsed().as_secs_f64(),
                meta: state.meta.clone(),
                logged_through,
            };
            out.put("run", &run)?;
            out.put("step", &step)?;
            writer.submit(dir, step, out)?;
            *last = Some(step);
            checkpoint_seconds += begun.elapsed().as_secs_f64();
        }
        Ok(())
    };
    let mut interrupted = false;
    // A run killed after its final checkpoint but before its summary: the dead process had
    // already logged (and flushed) everything, its final evaluation included.
    let complete_at_start = learner.env_steps() >= schedule.total_steps;
    if complete_at_start {
        last_checkpoint = Some(learner.env_steps());
    }
    while learner.env_steps() < schedule.total_steps {
        if stop_requested() {
            interrupted = true;
            break;
        }
        let before = learner.env_steps();
        if let Err(e) = learner.advance(&mut log) {
            log.flush()?;
            writer.wait()?;
            let kept = match (checkpoint_dir, writer.last_complete) {
                (Some(dir), Some(at)) => format!(
                    "the last good checkpoint, from step {at}, is intact under {} (resuming reproduces this step)",
                    dir.display()
                ),
                (Some(dir), None) => match checkpoint::list(dir)?.first() {
                    Some((at, _)) => format!("the last good checkpoint, from step {at}, is intact under {}", dir.display()),
                    None => "no checkpoint had been written yet".into(),
                },
                _ => "no checkpoint had been written yet".into(),
            };
            return Err(anyhow::anyhow!("{e:#}; {kept}"));
        }
        let step = learner.env_steps();
        progress.step = step;
        let running = step < schedule.total_steps;
        let evaluate = running && crossed(before, step, schedule.eval_every);
        if evaluate {
            let report = learner.evaluate(&mut log, false)?;
            log_eval(&mut log, step, &report.stats)?;
            on_eval(learner, &mut ctx.on_eval, step)?;
            progress.last_eval = Some(report.mean_return());
            log.flush()?;
        }
        if running && crossed(before, step, schedule.checkpoint_every) {
            // Logs first: every point up to a checkpoint's step is durable before it exists,
            // since a resume from it logs from the next step on.
            log.flush()?;
            checkpoint(learner, &mut writer, &mut last_checkpoint, log.through)?;
        }
        (ctx.progress)(&progress);
    }
    let step = learner.env_steps();
    let report = if interrupted || complete_at_start {
        learner.evaluate(&mut NullLogger, true)?
    } else {
        let report = learner.evaluate(&mut log, true)?;
        log_eval(&mut log, step, &report.stats)?;
        on_eval(learner, &mut ctx.on_eval, step)?;
        report
    };
    progress.step = step;
    progress.last_eval = Some(report.mean_return());
    (ctx.progress)(&progress);
    if last_checkpoint != Some(step) {
        log.flush()?;
        checkpoint(learner, &mut writer, &mut last_checkpoint, log.through)?;
    }
    // The summary comes after the final checkpoint is on disk: it marks a finished run.
    let waited = Instant::now();
    writer.wait()?;
    log.flush()?;
    let checkpoint_seconds = checkpoint_seconds + waited.elapsed().as_secs_f64();
    Ok(TrainSummary {
        steps: step,
        final_eval_returns: report.stats.returns.clone(),
        final_policy_entropy: report.policy_entropy,
        success_rate: report.stats.success_rate(),
        final_eval_truncated: report.stats.truncated_count(),
        interrupted,
        wall_seconds: state.wall_seconds + start.elapsed().as_secs_f64(),
        checkpoint_seconds,
    })
}

/// The evaluation hook of [`RunCtx`].
pub type OnEval<'a> = Option<&'a mut dyn FnMut(u64, &mut dyn Policy) -> anyhow::Result<()>>;

/// Hands the policy just evaluated at `step` to the binary's hook, if it has one.
fn on_eval(learner: &mut dyn Learner, hook: &mut OnEval<'_>, step: u64) -> anyhow::Result<()> {
    match hook.as_deref_mut() {
        Some(hook) => hook(step, learner.policy().as_mut()),
        None => Ok(()),
    }
}

/// What a finished (or stopped) run reports; the binary turns it into `summary.json`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainSummary {
    /// Environment steps actually taken.
    pub steps: u64,
    /// Returns of the final deterministic evaluation, one per episode.
    pub final_eval_returns: Vec<f64>,
    /// Mean policy entropy over the final evaluation's states, where the policy has one.
    pub final_policy_entropy: Option<f64>,
    /// Fraction of final evaluation episodes that reached the goal, where the env has one.
    pub success_rate: Option<f64>,
    /// Final evaluation episodes cut (time limit or evaluation bound) before a terminal state.
    #[serde(default)]
    pub final_eval_truncated: usize,
    /// True when the run ended early because a stop was requested.
    pub interrupted: bool,
    /// Wall-clock seconds of training, over every session of the run.
    pub wall_seconds: f64,
    /// Of this session's time, the seconds spent writing checkpoints.
    pub checkpoint_seconds: f64,
}

/// The temperature τ of a soft policy: a fixed value (0 = the hard-argmax limit) or `auto`,
/// tuned to a target entropy. Written as a number or the word `auto` on the command line and
/// in TOML.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tau {
    Fixed(f64),
    Auto,
}

impl Tau {
    /// True for τ = 0, the hard-argmax limit.
    pub fn is_hard(&self) -> bool {
        matches!(self, Tau::Fixed(t) if *t == 0.0)
    }
}

impl std::str::FromStr for Tau {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Tau::Auto);
        }
        match s.parse::<f64>() {
            Ok(t) if t.is_finite() && t >= 0.0 => Ok(Tau::Fixed(t)),
            _ => Err(format!(
                "invalid temperature '{s}'; accepted: a finite number >= 0 (0 = hard argmax) or 'auto'"
            )),
        }
    }
}

impl std::fmt::Display for Tau {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Exact but short (1e-300, not a 300-digit decimal): run names and logs use it.
            Tau::Fixed(t) => f.write_str(&crate::numfmt::exact_short(*t)),
            Tau::Auto => write!(f, "auto"),
        }
    }
}

impl serde::Serialize for Tau {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tau::Fixed(t) => s.serialize_f64(*t),
            Tau::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Tau {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(t) => t.to_string(),
            Raw::Text(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}
