//! Turns the finished runs of a sweep into its report: per env one row per (τ, σ) (final
//! return with a 95% bootstrap CI over seeds, area under the learning curve, steps to a
//! threshold, final policy entropy, success rate and, on gridworlds, the exact solver's
//! reference values), and across envs the statistics of [`super::analysis`] on normalized
//! scores. Writes `summary.csv`, `summary.md` and `summary.json` atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::analysis::{self, Analysis, Method};
use super::exec::{run_dir, RunOutcome};
use super::normalize::{self, Normalization};
use super::plan::{RunSpec, SweepPlan, TauSpec};
use crate::fsutil::write_atomic;
use crate::stats::{self, Aggregate, AggregateEstimates, Bootstrap, Interval};
use tame_agents::soft::Regularizer;

/// Seed of the per-env bootstrap of the mean, fixed so that a summary is reproducible.
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
    pub env: String,
    pub tau: TauSpec,
    pub sigma: Option<f64>,
    pub seed: u64,
    /// `finished`, `skipped` (finished earlier), `interrupted` (stopped with the sweep; the
    /// next invocation resumes it), `not started` or `failed: ...`.
    pub outcome: String,
    pub steps: Option<u64>,
    pub final_return: Option<f64>,
    /// The final return normalized ([`Normalization::score`]); the raw return without one.
    pub score: Option<f64>,
    pub auc: Option<f64>,
    /// The AUC normalized the same way.
    pub auc_score: Option<f64>,
    pub steps_to_threshold: Option<u64>,
    pub final_entropy: Option<f64>,
    pub success_rate: Option<f64>,
    /// `(step, eval/mean_return)` from the run's event files.
    #[serde(skip)]
    pub curve: Vec<(u64, f64)>,
}

/// One row per (env, τ, σ) of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct GroupRow {
    pub env: String,
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
    /// How each env's returns became scores; an env missing here (possible only in a
    /// one-env sweep) is aggregated on raw returns.
    pub normalization: BTreeMap<String, Normalization>,
    /// The across-env statistics per (τ, σ).
    pub analysis: Analysis,
    /// Discount used by the exact reference columns.
    pub exact_gamma: Option<f64>,
    /// The soft bonus of the exact reference columns per gridworld: the runs' own (SAC's
    /// `regularizer`).
    pub exact_regularizer: BTreeMap<String, Regularizer>,
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

/// The soft bonus an env's runs use: their base config's `[sac] regularizer`, else entropy.
fn runs_regularizer(plan: &SweepPlan, env: &str) -> anyhow::Result<Regularizer> {
    let base = match plan.configs.get(env).or(plan.config.as_ref()) {
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

/// Reads every run of the grid back from disk and aggregates it, with the default bootstrap.
pub fn summarize(
    plan: &SweepPlan,
    out: &Path,
    outcomes: &[(RunSpec, RunOutcome)],
) -> anyhow::Result<SweepSummary> {
    summarize_with(plan, out, outcomes, Bootstrap::default())
}

/// The normalization of every env of `plan` that has one; with several envs all must.
pub fn normalizations(plan: &SweepPlan) -> anyhow::Result<BTreeMap<String, Normalization>> {
    let mut out = BTreeMap::new();
    for env in &plan.envs {
        match normalize::resolve(env, &plan.normalization) {
            Ok(n) => {
                out.insert(env.clone(), n);
            }
            Err(e) if plan.envs.len() > 1 => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// [`summarize`] with the given bootstrap settings.
pub fn summarize_with(
    plan: &SweepPlan,
    out: &Path,
    outcomes: &[(RunSpec, RunOutcome)],
    boot: Bootstrap,
) -> anyhow::Result<SweepSummary> {
    let normalization = normalizations(plan)?;
    let mut runs = Vec::new();
    for (spec, outcome) in outcomes {
        let dir = run_dir(out, spec);
        let threshold = plan.threshold(&spec.env);
        let mut row = RunRow {
            name: spec.name.clone(),
            env: spec.env.clone(),
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
            score: None,
            auc: None,
            auc_score: None,
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
            let score = |v: f64| normalization.get(&spec.env).map_or(v, |n| n.score(v));
            row.steps = Some(s.steps);
            row.final_return = Some(s.final_eval_return_mean);
            row.score = Some(score(s.final_eval_return_mean));
            row.auc = stats::normalized_auc(&row.curve);
            row.auc_score = row.auc.map(score);
            row.steps_to_threshold = threshold.and_then(|t| stats::steps_to_threshold(&row.curve, t));
            row.final_entropy = s.final_policy_entropy;
            row.success_rate = s.success_rate;
        }
        runs.push(row);
    }

    let mut groups = Vec::new();
    let mut exact_regularizer = BTreeMap::new();
    for env in &plan.envs {
        // Read once: every τ of the grid is solved on the same table.
        let table = tame_envs::transition_table(env).ok();
        let regularizer = runs_regularizer(plan, env)?;
        if table.is_some() {
            exact_regularizer.insert(env.clone(), regularizer);
        }
        for &tau in &plan.taus {
            for sigma in sigma_keys(plan) {
                let members: Vec<&RunRow> =
                    runs.iter().filter(|r| &r.env == env && r.tau == tau && r.sigma == sigma).collect();
                groups.push(group_row(env, tau, sigma, &members, table.as_ref(), regularizer)?);
            }
        }
    }
    let (methods, lead) = methods_of(plan, &runs, &normalization, "");
    let raw = plan.envs.iter().filter(|e| !normalization.contains_key(*e)).cloned().collect::<Vec<_>>();
    let scores = if raw.is_empty() {
        "normalized final eval return".to_string()
    } else {
        format!("raw final eval return ({} has no known normalization)", raw.join(", "))
    };
    let mut analysis = analysis::analyze(&plan.envs, &methods, &lead, curve_grid(&runs), boot, &scores);
    note_failures(&runs, &mut analysis);
    Ok(SweepSummary {
        plan: plan.clone(),
        normalization,
        analysis,
        exact_gamma: (!exact_regularizer.is_empty()).then_some(EXACT_GAMMA),
        exact_regularizer,
        groups,
        runs,
    })
}

/// Adds a note per failed run (they are kept out of every statistic).
pub fn note_failures(runs: &[RunRow], analysis: &mut Analysis) {
    let failed: Vec<&str> = runs.iter().filter(|r| r.final_return.is_none()).map(|r| r.name.as_str()).collect();
    if !failed.is_empty() {
        analysis.notes.push(format!(
            "{} failed or unfinished run(s) left out of every statistic: {}.",
            failed.len(),
            failed.join(", ")
        ));
    }
}

fn sigma_keys(plan: &SweepPlan) -> Vec<Option<f64>> {
    if plan.sigmas.is_empty() {
        vec![None]
    } else {
        plan.sigmas.iter().copied().map(Some).collect()
    }
}

fn group_row(
    env: &str,
    tau: TauSpec,
    sigma: Option<f64>,
    members: &[&RunRow],
    table: Option<&tame_envs::TransitionTable>,
    regularizer: Regularizer,
) -> anyhow::Result<GroupRow> {
    let ok: Vec<&RunRow> = members.iter().copied().filter(|r| r.final_return.is_some()).collect();
    let finals: Vec<f64> = ok.iter().filter_map(|r| r.final_return).collect();
    let ci = stats::bootstrap_ci(&finals, 0.05, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
    let mut reached: Vec<f64> = ok.iter().filter_map(|r| r.steps_to_threshold).map(|s| s as f64).collect();
    reached.sort_by(f64::total_cmp);
    let reference = exact_reference(table, env, tau.value(), regularizer)?;
    let opt_mean = |f: fn(&RunRow) -> Option<f64>| {
        let v: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
        stats::mean(&v)
    };
    Ok(GroupRow {
        env: env.to_string(),
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
    })
}

/// The label of a (τ, σ) of the grid, τ = 0 marked as the hard argmax.
pub fn method_label(tau: TauSpec, sigma: Option<f64>) -> String {
    let t = match tau {
        TauSpec::Fixed(0.0) => "τ=0 (hard)".to_string(),
        t => format!("τ={t}"),
    };
    match sigma {
        Some(s) => format!("{t}, σ={}", tame_agents::numfmt::compact(s)),
        None => t,
    }
}

/// One [`Method`] per (τ, σ) of `plan` from its finished runs (labels prefixed by
/// `prefix`), and the comparisons to lead with: each against τ = 0 at the same σ (against the
/// first τ when the grid has no τ = 0).
pub fn methods_of(
    plan: &SweepPlan,
    runs: &[RunRow],
    normalization: &BTreeMap<String, Normalization>,
    prefix: &str,
) -> (Vec<Method>, Vec<(usize, usize)>) {
    let mut methods = Vec::new();
    let mut keys = Vec::new();
    for &tau in &plan.taus {
        for sigma in sigma_keys(plan) {
            let mut m = Method { label: format!("{prefix}{}", method_label(tau, sigma)), ..Method::default() };
            for env in &plan.envs {
                let ok: Vec<&RunRow> = runs
                    .iter()
                    .filter(|r| &r.env == env && r.tau == tau && r.sigma == sigma && r.score.is_some())
                    .collect();
                m.final_scores.push(ok.iter().filter_map(|r| r.score).collect());
                m.auc_scores.push(ok.iter().filter_map(|r| r.auc_score).collect());
                m.curves.push(
                    ok.iter().map(|r| scored_curve(r, normalization.get(env))).filter(|c| !c.is_empty()).collect(),
                );
            }
            methods.push(m);
            keys.push((tau, sigma));
        }
    }
    let mut lead = Vec::new();
    for (i, &(_, sigma)) in keys.iter().enumerate() {
        let base = keys
            .iter()
            .position(|&(t, s)| t == TauSpec::Fixed(0.0) && s == sigma)
            .or_else(|| keys.iter().position(|&(_, s)| s == sigma));
        if let Some(b) = base.filter(|&b| b != i) {
            lead.push((i, b));
        }
    }
    (methods, lead)
}

/// A run's eval curve on the learning-curve grid, in score units.
fn scored_curve(r: &RunRow, norm: Option<&Normalization>) -> Vec<f64> {
    let Some(steps) = r.steps else { return Vec::new() };
    let grid = analysis::curve_on_grid(&r.curve, steps);
    grid.into_iter().map(|v| norm.map_or(v, |n| n.score(v))).collect()
}

/// The learning-curve grid: env steps when every finished run has one budget, else the
/// fraction of each run's own budget.
pub fn curve_grid(runs: &[RunRow]) -> (Vec<f64>, String) {
    let budgets: std::collections::BTreeSet<u64> = runs.iter().filter_map(|r| r.steps).collect();
    let k = analysis::CURVE_POINTS;
    match budgets.iter().next() {
        Some(&b) if budgets.len() == 1 => (
            (0..k).map(|i| b as f64 * i as f64 / (k - 1) as f64).collect(),
            "environment steps".into(),
        ),
        _ => ((0..k).map(|i| i as f64 / (k - 1) as f64).collect(), "fraction of each env's training steps".into()),
    }
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

const COLUMNS: [&str; 16] = [
    "env",
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
        g.env.clone(),
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

/// Three decimals of a score.
fn num(x: f64) -> String {
    format!("{x:.3}")
}

/// `point [low, high]`, or the point with the reason there is no interval.
fn with_ci(point: f64, ci: Option<Interval>) -> String {
    match ci {
        Some(c) => format!("{} [{}, {}]", num(point), num(c.low), num(c.high)),
        None => format!("{} (no CI: one run per env)", num(point)),
    }
}

/// The across-env sections of a report: the lead comparisons, the aggregates of final return
/// and AUC, every pair's probability of improvement, and the notes.
pub fn analysis_markdown(a: &Analysis, lead_title: &str, s: &mut String) {
    let boot = a.bootstrap;
    let _ = writeln!(
        s,
        "Scores: {} over {} env(s) ({}). CIs: {:.0}% percentile intervals of the stratified bootstrap \
         (runs resampled within each env), {} resamples, seed {} (Agarwal et al. 2021; rliable's \
         definitions).\n",
        a.scores,
        a.envs.len(),
        a.envs.join(", "),
        100.0 * boot.confidence,
        boot.resamples,
        boot.seed
    );
    if !a.lead.is_empty() {
        let _ = writeln!(s, "## {lead_title}\n");
        let _ = writeln!(
            s,
            "P(X > Y): the probability that a run of X beats a run of Y on the same env, averaged \
             over envs; 0.5 is a tie.\n"
        );
        let _ = writeln!(s, "| X | Y | P(X > Y) [95% CI] | IQM of X [95% CI] |\n|---|---|---|---|");
        for p in &a.lead {
            let iqm = a
                .methods
                .iter()
                .find(|m| m.label == p.x)
                .and_then(|m| m.final_return.as_ref())
                .map_or(String::new(), |e| with_ci(e.iqm, e.interval(Aggregate::Iqm)));
            let _ = writeln!(s, "| {} | {} | {} | {} |", p.x, p.y, with_ci(p.probability, p.ci), iqm);
        }
        s.push('\n');
    }
    for (title, pick) in [
        ("Aggregates of the final return", (|m: &analysis::MethodStats| m.final_return.clone()) as fn(&analysis::MethodStats) -> Option<AggregateEstimates>),
        ("Aggregates of the AUC (sample efficiency)", |m: &analysis::MethodStats| m.auc.clone()),
    ] {
        let _ = writeln!(s, "## {title}\n");
        let _ = writeln!(
            s,
            "| method | runs per env | IQM | median | mean | optimality gap |\n|---|---|---|---|---|---|"
        );
        for m in &a.methods {
            let runs = m.runs_per_env.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
            let cells: Vec<String> = match pick(m) {
                Some(e) => Aggregate::ALL.iter().map(|&g| with_ci(e.point(g), e.interval(g))).collect(),
                None => vec!["no finished run".into(); 4],
            };
            let _ = writeln!(s, "| {} | {runs} | {} |", m.label, cells.join(" | "));
        }
        s.push('\n');
    }
    if a.improvement.len() > a.lead.len() {
        let _ = writeln!(s, "## Probability of improvement, every pair\n");
        let _ = writeln!(s, "| X | Y | P(X > Y) [95% CI] |\n|---|---|---|");
        for p in &a.improvement {
            let _ = writeln!(s, "| {} | {} | {} |", p.x, p.y, with_ci(p.probability, p.ci));
        }
        s.push('\n');
    }
    if !a.notes.is_empty() {
        let _ = writeln!(s, "## Notes\n");
        for n in &a.notes {
            let _ = writeln!(s, "- {n}");
        }
        s.push('\n');
    }
}

/// The normalization table.
pub fn normalization_markdown(n: &BTreeMap<String, Normalization>, s: &mut String) {
    if n.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Normalization: score = (return − random) / (reference − random)\n");
    let _ = writeln!(s, "| env | random | reference | source |\n|---|---|---|---|");
    for (env, v) in n {
        let _ = writeln!(s, "| {env} | {:.6} | {:.6} | {} |", v.random, v.reference, v.source);
    }
    s.push('\n');
}

/// The summary in Markdown: settings, the comparison against τ = 0, the aggregates, the
/// per-env table and the normalization used.
pub fn to_markdown(summary: &SweepSummary) -> String {
    let p = &summary.plan;
    let mut s = String::new();
    let _ = writeln!(s, "# Sweep: {} on {}\n", p.agent.name(), p.envs.join(", "));
    let _ = writeln!(
        s,
        "{} seeds × {} steps per run.\n",
        p.seeds.len(),
        p.steps.map_or("each env's base-config".to_string(), |s| s.to_string())
    );
    let base = if p.taus.contains(&TauSpec::Fixed(0.0)) { TauSpec::Fixed(0.0) } else { p.taus[0] };
    let title = format!("Is soft better than hard? Each τ against τ = {base}");
    analysis_markdown(&summary.analysis, &title, &mut s);
    let _ = writeln!(s, "## Per env\n");
    let _ = writeln!(
        s,
        "Final return: mean over seeds with a 95% bootstrap CI. AUC: mean eval return over the run \
         (trapezoid, divided by the step span)."
    );
    if !p.thresholds.is_empty() {
        let t: Vec<String> = p.thresholds.iter().map(|(e, t)| format!("{e} {}", tame_agents::numfmt::compact(*t))).collect();
        let _ = writeln!(s, "Threshold for steps-to-threshold: {}.", t.join(", "));
    }
    if let Some(g) = summary.exact_gamma {
        let regs: Vec<String> = summary.exact_regularizer.iter().map(|(e, r)| format!("{e}: {r:?}")).collect();
        let _ = writeln!(
            s,
            "Exact columns: start-state values from soft/hard value iteration with γ = {g} and \
             the runs' regularizer ({}).",
            regs.join(", ")
        );
    }
    s.push('\n');
    let _ = writeln!(s, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(COLUMNS.len()));
    for g in &summary.groups {
        let mut cells = row_cells(g);
        if g.tau == TauSpec::Fixed(0.0) {
            cells[1] = "0 (hard argmax)".into();
        }
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s.push('\n');
    normalization_markdown(&summary.normalization, &mut s);
    let failed: Vec<&RunRow> = summary.runs.iter().filter(|r| r.outcome.starts_with("failed")).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "## Failed runs\n");
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
