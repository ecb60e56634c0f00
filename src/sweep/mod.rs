//! Sweeps: many ordinary training runs over a grid of temperatures τ (and, for ES, widths σ)
//! and seeds, run as child `tame train` processes, resumable, then summarised.
//!
//! Each (τ, σ, seed) is an ordinary run directory under `<out>/runs/`. A run counts as
//! finished when its `summary.json` exists and does not say `interrupted`; a rerun of the same
//! sweep skips those, resumes unfinished ones that have a training-state checkpoint
//! (`checkpoints/step-*/`) and starts the others afresh. A failing run is reported and does not
//! stop the others. SIGINT/SIGTERM to the sweep stops its running children cleanly.

mod exec;
mod plan;
mod plots;
mod report;

pub use exec::{execute, is_finished, run_dir, RunOutcome};
pub use plan::{RunSpec, SweepFile, SweepPlan, TauSpec};
pub use plots::write_plots;
pub use report::{summarize, to_markdown, write_reports, SweepSummary};
