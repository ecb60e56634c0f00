//! Sweeps: many ordinary training runs over a grid of temperatures τ (and, for ES, widths σ)
//! and seeds, run as child `tame train` processes, resumable, then summarised.
//!
//! Each (τ, σ, seed) is an ordinary run directory under `<out>/runs/`. A run counts as
//! finished when its `summary.json` exists; a rerun of the same sweep skips those and starts
//! unfinished ones afresh. A failing run is reported and does not stop the others.

mod exec;
mod plan;
mod plots;
mod report;

pub use exec::{execute, RunOutcome};
pub use exec::{is_finished, run_dir};
pub use plan::{RunSpec, SweepPlan, TauSpec};
pub use plots::write_plots;
pub use report::{summarize, to_markdown, write_reports, SweepSummary};
