//! Sweeps: many ordinary training runs over a grid of envs, temperatures τ (and, for ES,
//! widths σ) and seeds, run as child `tame train` processes, resumable, then summarised: per
//! env, and across envs on normalized scores with rliable's statistics (`analysis`,
//! `normalize`, [`crate::stats`]).
//!
//! Each (env, τ, σ, seed) is an ordinary run directory under `<out>/runs/`. A run counts as
//! finished when its `summary.json` exists and does not say `interrupted`; a rerun of the same
//! sweep skips those, resumes unfinished ones that have a training-state checkpoint
//! (`checkpoints/step-*/`) and starts the others afresh. A failing run is reported and does not
//! stop the others. SIGINT/SIGTERM to the sweep stops its running children cleanly.

mod analysis;
mod exec;
mod normalize;
mod plan;
mod plots;
mod report;

pub use analysis::{analyze, Analysis, Method, CURVE_POINTS};
pub use exec::{execute, is_finished, run_dir, RunOutcome};
pub use normalize::{random_policy_return, GivenNormalization, Normalization};
pub use plan::{env_slug, RunSpec, SweepFile, SweepPlan, TauSpec};
pub use plots::{write_analysis_plots, write_plots};
pub use report::{
    analysis_markdown, curve_grid, methods_of, normalization_markdown, note_failures, summarize, summarize_with,
    to_markdown, write_reports, SweepSummary,
};
pub(crate) use exec::{as_child_run, has_checkpoint, tail, train_args};
