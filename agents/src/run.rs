//! The contract between a training loop and the binary that runs it: where metrics,
//! checkpoints and progress go, how a run is stopped early, and what it reports at the end.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Logger;

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every running training loop to stop at its next step (set on Ctrl-C).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
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
    /// Called right after each evaluation, the final one included, with the env step and the
    /// policy just evaluated (`tame train --capture-video` records an episode there).
    pub on_eval: Option<&'a mut dyn FnMut(u64, &mut dyn crate::policy::Policy) -> anyhow::Result<()>>,
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
    /// True when the run ended early because a stop was requested.
    pub interrupted: bool,
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
            Tau::Fixed(t) => write!(f, "{t}"),
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
