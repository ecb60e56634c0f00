//! Turns the finished runs of a sweep into one row per (τ, σ): final return with a 95%
//! bootstrap CI over seeds, area under the learning curve, steps to a threshold, final policy
//! entropy, success rate and, on gridworlds, the exact solver's reference values.
//! Writes `summary.csv`, `summary.md` and `summary.json` atomically.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::exec::{run_dir, RunOutcome};
use super::plan::{RunSpec, SweepPlan, TauSpec};
use crate::fsutil::write_atomic;
use tame_agents::exact::Regularizer;
use crate::stats;

/// Seed of the bootstrap resampling, fixed so that a summary is reproducible.
const BOOTSTRAP_SEED: u64 = 0x7a3e;
const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// The fields of a run's `summary.json` that a sweep reads.
#[derive(Clone, Debug, Deserialize)]
struct RunSummaryFile {
    steps: u64,
    final_eval_return_mean: f64,
    #[serde(default)]
    final_policy_entropy: Option<f64>,
    #[serde(default)]
    success_rate: Option<f64>,
}

/// One run's numbers, as read back from its directory.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub name: String,
    pub tau: TauSpec,
    pub sigma: Option<f64>,
    pub seed: u64,
    /// `finished`, `skipped` (finished earlier), `interrupted` (stopped with the sweep; the
    /// next invocation resumes it), `not started` or `failed: ...`.
    pub outcome: String,
    pub steps: Option<u64>,
    pub final_return: Option<f64>,
    pub auc: Option<f64>,
    pub steps_to_threshold: Option<u64>,
    pub final_entropy: Option<f64>,
    pub success_rate: Option<f64>,
    /// `(step, eval/mean_return)` from the run's event files.
    #[serde(skip)]
    pub curve: Vec<(u64, f64)>,
}

/// One row per (τ, σ) of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct GroupRow {
    pub tau: TauSpec,
    pub sigma: Option<f64>,
    pub seeds: usize,
    pub failed: usize,
    pub final_return_mean: Option<f64>,
    pub final_return_ci_low: Option<f64>,
    pub final_return_ci_high: Option<f64>,
    pub auc_mean: Option<f64>,
    /// Median over the seeds that reached the threshold.
    pub steps_to_threshold_median: Option<f64>,
    pub reached_threshold: usize,
    pub final_entropy_mean: Option<f64>,
    pub success_rate_mean: Option<f64>,
    /// Exact soft-optimal value V*_τ at the start state (gridworlds, fixed τ).
    pub exact_v_star_tau: Option<f64>,
    /// Exact hard-optimal value V* at the start state (gridworlds).
    pub exact_v_star: Option<f64>,
    /// Unregularized value of the soft-optimal policy π*_τ (gridworlds, fixed τ).
    pub exact_v_pi_tau: Option<f64>,
}

/// Everything a sweep reports.
#[derive(Clone, Debug, Serialize)]
pub struct SweepSummary {
    pub plan: SweepPlan,
    pub threshold: Option<f64>,
    /// Discount used by the exact reference columns.
    pub exact_gamma: Option<f64>,
    /// The soft bonus of the exact reference columns: the runs' own (SAC's `regularizer`).
    pub exact_regularizer: Option<Regularizer>,
    pub groups: Vec<GroupRow>,
    pub runs: Vec<RunRow>,
}

/// Discount of the exact reference columns: SAC's default γ (SB3 / CleanRL).
pub const EXACT_GAMMA: f64 = 0.99;

/// Exact start-state values for one τ of the grid.
#[derive(Clone, Copy, Debug)]
struct ExactColumns {
    /// V*_τ; `None` for `auto`, which has no single τ.
    v_star_tau: Option<f64>,
    v_star: f64,
    /// V^{π*_τ}; `None` for `auto`.
    v_pi_tau: Option<f64>,
}

/// The exact solver's reference for `tau` (`None`: `auto`) on envs with a transition table,
/// under the runs' regularizer; `None` for other envs.
fn exact_reference(
    table: Option<&tame_envs::TransitionTable>,
    env: &str,
    tau: Option<f64>,
    regularizer: Regularizer,
) -> anyhow::Result<Option<ExactColumns>> {
    let Some(table) = table else { return Ok(None) };
    let r = tame_agents::exact::reference_values(table, EXACT_GAMMA, tau.unwrap_or(0.0), regularizer)
        .with_context(|| format!("exact solution of {env} at τ = {tau:?}"))?;
    Ok(Some(ExactColumns {
        v_star_tau: tau.map(|_| r.v_star_tau),
        v_star: r.v_star,
        v_pi_tau: tau.map(|_| r.v_pi_tau),
    }))
}

/// The soft bonus the sweep's runs use: the base config's `[sac] regularizer`, else entropy.
fn runs_regularizer(plan: &SweepPlan) -> anyhow::Result<Regularizer> {
    let base = match &plan.config {
        Some(path) => crate::run_dir::RunConfig::from_file(path)?,
        None => crate::run_dir::RunConfig::default(),
    };
    Ok(base.sac.map_or(Regularizer::Entropy, |s| s.regularizer))
}

/// The `eval/mean_return` learning curve of a run, from its event files.
fn eval_curve(run_dir: &Path) -> anyhow::Result<Vec<(u64, f64)>> {
    let events = crate::tensorboard::read_events(run_dir)?;
    Ok(events
        .scalars
        .get(EVAL_TAG)
        .map(|points| points.iter().map(|p| (p.step, p.value)).collect())
        .unwrap_or_default())
}

/// The tag every agent logs its periodic deterministic evaluation under.
pub const EVAL_TAG: &str = "eval/mean_return";

/// Reads every run of the grid back from disk and aggregates it.
pub fn summarize(
    plan: &SweepPlan,
    out: &Path,
    outcomes: &[(RunSpec, RunOutcome)],
) -> anyhow::Result<SweepSummary> {
    let threshold = plan.threshold;
    // Read once: every τ of the grid is solved on the same table.
    let table = tame_envs::transition_table(&plan.env).ok();
    let regularizer = runs_regularizer(plan)?;
    let mut runs = Vec::new();
    for (spec, outcome) in outcomes {
        let dir = run_dir(out, spec);
        let mut row = RunRow {
            name: spec.name.clone(),
            tau: spec.tau,
            sigma: spec.sigma,
            seed: spec.seed,
            outcome: match outcome {
                RunOutcome::Skipped => "skipped".into(),
                RunOutcome::Finished => "finished".into(),
                RunOutcome::Interrupted => "interrupted".into(),
                RunOutcome::NotStarted => "not started".into(),
                RunOutcome::Failed(why) => format!("failed: {why}"),
            },
            steps: None,
            final_return: None,
            auc: None,
            steps_to_threshold: None,
            final_entropy: None,
            success_rate: None,
            curve: Vec::new(),
        };
        if matches!(outcome, RunOutcome::Skipped | RunOutcome::Finished) {
            let path = dir.join("summary.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let s: RunSummaryFile = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            row.curve = eval_curve(&dir).with_context(|| format!("reading logs of {}", dir.display()))?;
            row.steps = Some(s.steps);
            row.final_return = Some(s.final_eval_return_mean);
            row.auc = stats::normalized_auc(&row.curve);
            row.steps_to_threshold = threshold.and_then(|t| stats::steps_to_threshold(&row.curve, t));
            row.final_entropy = s.final_policy_entropy;
            row.success_rate = s.success_rate;
        }
        runs.push(row);
    }

    let mut groups = Vec::new();
    for &tau in &plan.taus {
        let sigmas: Vec<Option<f64>> = if plan.sigmas.is_empty() {
            vec![None]
        } else {
            plan.sigmas.iter().copied().map(Some).collect()
        };
        for sigma in sigmas {
            let members: Vec<&RunRow> =
                runs.iter().filter(|r| r.tau == tau && r.sigma == sigma).collect();
            let ok: Vec<&RunRow> = members.iter().copied().filter(|r| r.final_return.is_some()).collect();
            let finals: Vec<f64> = ok.iter().filter_map(|r| r.final_return).collect();
            let ci = stats::bootstrap_ci(&finals, 0.05, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
            let mut reached: Vec<f64> =
                ok.iter().filter_map(|r| r.steps_to_threshold).map(|s| s as f64).collect();
            reached.sort_by(f64::total_cmp);
            let reference = exact_reference(table.as_ref(), &plan.env, tau.value(), regularizer)?;
            let opt_mean = |f: fn(&RunRow) -> Option<f64>| {
                let v: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
                stats::mean(&v)
            };
            groups.push(GroupRow {
                tau,
                sigma,
                seeds: members.len(),
                failed: members.iter().filter(|r| r.outcome.starts_with("failed")).count(),
                final_return_mean: stats::mean(&finals),
                final_return_ci_low: ci.map(|c| c.0),
                final_return_ci_high: ci.map(|c| c.1),
                auc_mean: opt_mean(|r| r.auc),
                steps_to_threshold_median: median(&reached),
                reached_threshold: reached.len(),
                final_entropy_mean: opt_mean(|r| r.final_entropy),
                success_rate_mean: opt_mean(|r| r.success_rate),
                exact_v_star_tau: reference.and_then(|r| r.v_star_tau),
                exact_v_star: reference.map(|r| r.v_star),
                exact_v_pi_tau: reference.and_then(|r| r.v_pi_tau),
            });
        }
    }
    Ok(SweepSummary {
        plan: plan.clone(),
        threshold,
        exact_gamma: table.is_some().then_some(EXACT_GAMMA),
        exact_regularizer: table.is_some().then_some(regularizer),
        groups,
        runs,
    })
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Six decimals, except whole numbers (step counts, returns of 0/1 tasks), which print bare.
fn cell(v: Option<f64>) -> String {
    v.map(|x| if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { tame_agents::numfmt::table(x, 6) })
        .unwrap_or_default()
}

const COLUMNS: [&str; 15] = [
    "tau",
    "sigma",
    "seeds",
    "failed",
    "final_return_mean",
    "final_return_ci_low",
    "final_return_ci_high",
    "auc_mean",
    "steps_to_threshold_median",
    "reached_threshold",
    "final_entropy_mean",
    "success_rate_mean",
    "exact_v_star_tau",
    "exact_v_star",
    "exact_v_pi_tau",
];

fn row_cells(g: &GroupRow) -> Vec<String> {
    vec![
        g.tau.to_string(),
        g.sigma.map(|s| s.to_string()).unwrap_or_default(),
        g.seeds.to_string(),
        g.failed.to_string(),
        cell(g.final_return_mean),
        cell(g.final_return_ci_low),
        cell(g.final_return_ci_high),
        cell(g.auc_mean),
        cell(g.steps_to_threshold_median),
        g.reached_threshold.to_string(),
        cell(g.final_entropy_mean),
        cell(g.success_rate_mean),
        cell(g.exact_v_star_tau),
        cell(g.exact_v_star),
        cell(g.exact_v_pi_tau),
    ]
}

/// The summary as CSV, one row per (τ, σ).
pub fn to_csv(summary: &SweepSummary) -> String {
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for g in &summary.groups {
        s.push_str(&row_cells(g).join(","));
        s.push('\n');
    }
    s
}

/// The summary as a Markdown table, with the sweep's settings above it.
pub fn to_markdown(summary: &SweepSummary) -> String {
    let p = &summary.plan;
    let mut s = String::new();
    let _ = writeln!(s, "# Sweep: {} on {}\n", p.agent.name(), p.env);
    let _ = writeln!(
        s,
        "{} seeds × {} steps per run. Final return: mean over seeds with a 95% bootstrap CI. \
         AUC: mean eval return over the run (trapezoid, divided by the step span).",
        p.seeds.len(),
        p.steps.map_or("the default number of".to_string(), |s| s.to_string())
    );
    if let Some(t) = summary.threshold {
        let _ = writeln!(s, "Threshold for steps-to-threshold: {}.", tame_agents::numfmt::compact(t));
    }
    if let Some(g) = summary.exact_gamma {
        let _ = writeln!(
            s,
            "Exact columns: start-state values from soft/hard value iteration with γ = {g} and \
             the runs' regularizer ({:?}).",
            summary.exact_regularizer.unwrap_or(Regularizer::Entropy)
        );
    }
    s.push('\n');
    let _ = writeln!(s, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(COLUMNS.len()));
    for g in &summary.groups {
        let mut cells = row_cells(g);
        if g.tau == TauSpec::Fixed(0.0) {
            cells[0] = "0 (hard argmax)".into();
        }
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    let failed: Vec<&RunRow> = summary.runs.iter().filter(|r| r.outcome.starts_with("failed")).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "\n## Failed runs\n");
        for r in failed {
            let first = r.outcome.lines().next().unwrap_or_default();
            let _ = writeln!(s, "- `{}`: {}", r.name, first);
        }
    }
    let unfinished: Vec<&RunRow> =
        summary.runs.iter().filter(|r| matches!(r.outcome.as_str(), "interrupted" | "not started")).collect();
    if !unfinished.is_empty() {
        let _ = writeln!(s, "\n## Unfinished runs (the sweep was stopped; run it again to finish them)\n");
        for r in unfinished {
            let _ = writeln!(s, "- `{}`: {}", r.name, r.outcome);
        }
    }
    s
}

/// Writes `summary.csv`, `summary.md` and `summary.json` into `out`, each atomically.
pub fn write_reports(summary: &SweepSummary, out: &Path) -> anyhow::Result<()> {
    write_atomic(&out.join("summary.csv"), to_csv(summary).as_bytes())?;
    write_atomic(&out.join("summary.md"), to_markdown(summary).as_bytes())?;
    let json = serde_json::to_string_pretty(summary).context("serializing the sweep summary")?;
    write_atomic(&out.join("summary.json"), json.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), Some(2.0));
        assert_eq!(median(&[1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }
}
