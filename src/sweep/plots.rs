//! The sweep's pictures. Per env: learning curves per τ (mean over seeds with a 95% band) and
//! final return against τ on a log axis, τ = 0 drawn as the "hard argmax" point. Across envs,
//! rliable's four kinds on normalized scores: aggregate intervals (IQM, median, mean,
//! optimality gap), performance profiles, the probability-of-improvement chart and
//! sample-efficiency (IQM) curves, each with its stratified bootstrap CIs.

use std::collections::BTreeSet;
use std::path::Path;

use super::analysis::Analysis;
use super::plan::TauSpec;
use super::report::{method_label, GroupRow, RunRow, SweepSummary, EVAL_TAG};
use crate::plot::{interval_panels, line_panels, IntervalPanel, IntervalRow, LinePanel, Series};
use crate::stats::{self, Aggregate, AggregateEstimates};

/// Band resamples: fewer than the table's, since there is one interval per curve point.
const BAND_RESAMPLES: usize = 1000;
const BAND_SEED: u64 = 0x5eed;

/// File names of the plots, inside the sweep directory.
pub const CURVES_PNG: &str = "learning_curves.png";
pub const FINAL_PNG: &str = "final_return_vs_tau.png";
pub const AGGREGATES_PNG: &str = "aggregates.png";
pub const AGGREGATES_AUC_PNG: &str = "aggregates_auc.png";
pub const PROFILES_PNG: &str = "performance_profiles.png";
pub const IMPROVEMENT_PNG: &str = "probability_of_improvement.png";
pub const SAMPLE_EFFICIENCY_PNG: &str = "sample_efficiency.png";

/// `(x, lower, upper)` points of a shaded band.
type Band = Vec<(f64, f64, f64)>;

/// Mean and 95% bootstrap band over seeds at every step that all of them logged.
fn mean_curve(runs: &[&RunRow]) -> (Vec<(f64, f64)>, Band) {
    let curves: Vec<&Vec<(u64, f64)>> =
        runs.iter().map(|r| &r.curve).filter(|c| !c.is_empty()).collect();
    let Some(first) = curves.first() else { return (Vec::new(), Vec::new()) };
    let common: BTreeSet<u64> = first
        .iter()
        .map(|p| p.0)
        .filter(|s| curves.iter().all(|c| c.iter().any(|p| p.0 == *s)))
        .collect();
    let mut points = Vec::new();
    let mut band = Vec::new();
    for step in common {
        let values: Vec<f64> = curves
            .iter()
            .filter_map(|c| c.iter().find(|p| p.0 == step).map(|p| p.1))
            .collect();
        if let (Some(m), Some((lo, hi))) =
            (stats::mean(&values), stats::bootstrap_ci(&values, 0.05, BAND_RESAMPLES, BAND_SEED))
        {
            points.push((step as f64, m));
            band.push((step as f64, lo, hi));
        }
    }
    (points, band)
}

/// Writes every PNG into `out`: the per-env pair and the four across-env kinds.
pub fn write_plots(summary: &SweepSummary, out: &Path) -> anyhow::Result<()> {
    let plan = &summary.plan;
    let columns = if plan.envs.len() > 1 { 2 } else { 1 };
    let mut curve_panels = Vec::new();
    for env in &plan.envs {
        let mut curves = Vec::new();
        for (i, g) in summary.groups.iter().filter(|g| &g.env == env).enumerate() {
            let members: Vec<&RunRow> = summary
                .runs
                .iter()
                .filter(|r| &r.env == env && r.tau == g.tau && r.sigma == g.sigma)
                .collect();
            let (points, band) = mean_curve(&members);
            if !points.is_empty() {
                curves.push(Series::new(method_label(g.tau, g.sigma), points).band(band).color(i));
            }
        }
        curve_panels.push(LinePanel {
            title: format!("{} on {env}: {EVAL_TAG} (mean over seeds, 95% CI)", plan.agent.name()),
            x_label: "environment steps".into(),
            y_label: "eval return".into(),
            series: curves,
            ..LinePanel::default()
        });
    }
    line_panels(&out.join(CURVES_PNG), &curve_panels, columns)?;
    let finals: Vec<LinePanel> = plan.envs.iter().map(|env| final_panel(summary, env)).collect();
    line_panels(&out.join(FINAL_PNG), &finals, columns)?;
    write_analysis_plots(&summary.analysis, out, plan.agent.name())
}

/// The four rliable kinds for `analysis`, titles starting with `what`.
pub fn write_analysis_plots(analysis: &Analysis, out: &Path, what: &str) -> anyhow::Result<()> {
    let scores = &analysis.scores;
    let label_width = 20 + 8 * analysis.methods.iter().map(|m| m.label.chars().count()).max().unwrap_or(8) as u32;
    let aggregate_panels = |pick: fn(&super::analysis::MethodStats) -> Option<&AggregateEstimates>| {
        Aggregate::ALL
            .iter()
            .enumerate()
            .map(|(k, &a)| IntervalPanel {
                title: a.label().into(),
                x_label: if k == 0 { format!("{what}: {scores}") } else { String::new() },
                rows: analysis
                    .methods
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        let e = pick(m)?;
                        Some(IntervalRow {
                            // Only the first panel names the rows (the panels share them).
                            label: if k == 0 { m.label.clone() } else { String::new() },
                            point: e.point(a),
                            interval: e.interval(a).map(|c| (c.low, c.high)),
                            color: i,
                        })
                    })
                    .collect(),
                label_width: if k == 0 { label_width } else { 10 },
                ..IntervalPanel::default()
            })
            .collect::<Vec<_>>()
    };
    interval_panels(&out.join(AGGREGATES_PNG), &aggregate_panels(|m| m.final_return.as_ref()), 340)?;
    let mut auc = aggregate_panels(|m| m.auc.as_ref());
    auc[0].x_label = format!("{what}: AUC of the {scores}");
    interval_panels(&out.join(AGGREGATES_AUC_PNG), &auc, 340)?;

    let p = &analysis.profiles;
    let profiles = LinePanel {
        title: format!("{what}: performance profiles (fraction of runs with score > x, 95% CI)"),
        x_label: format!("{scores} x"),
        y_label: "fraction of runs with score > x".into(),
        series: band_series(&p.thresholds, &p.methods),
        ..LinePanel::default()
    };
    line_panels(&out.join(PROFILES_PNG), &[profiles], 1)?;

    // The lead pairs (each τ against τ = 0), else every pair once.
    let pairs: Vec<&super::analysis::Improvement> = if analysis.lead.is_empty() {
        analysis.improvement.iter().step_by(2).collect()
    } else {
        analysis.lead.iter().collect()
    };
    let pair_labels: Vec<String> = pairs.iter().map(|p| format!("{} vs {}", p.x, p.y)).collect();
    let width = 20 + 8 * pair_labels.iter().map(|l| l.chars().count()).max().unwrap_or(8) as u32;
    let improvement = IntervalPanel {
        title: format!("{what}: probability of improvement P(X > Y), 95% CI"),
        x_label: "P(X > Y)".into(),
        rows: pairs
            .iter()
            .zip(pair_labels)
            .enumerate()
            .map(|(i, (p, label))| IntervalRow {
                label,
                point: p.probability,
                interval: p.ci.map(|c| (c.low, c.high)),
                color: i,
            })
            .collect(),
        x_range: Some((0.0, 1.0)),
        x_marker: Some(0.5),
        label_width: width,
    };
    interval_panels(&out.join(IMPROVEMENT_PNG), &[improvement], 560 + width)?;

    let c = &analysis.curves;
    let curves = LinePanel {
        title: format!("{what}: sample efficiency, IQM of the {} (95% CI)", scores.replace("final ", "")),
        x_label: c.x_label.clone(),
        y_label: "IQM score".into(),
        series: band_series(&c.x, &c.methods),
        ..LinePanel::default()
    };
    line_panels(&out.join(SAMPLE_EFFICIENCY_PNG), &[curves], 1)
}

/// One line per method over `x`, shaded by its CI band where it has one.
fn band_series(x: &[f64], methods: &[super::analysis::Band]) -> Vec<Series> {
    methods
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let pts: Vec<(f64, f64)> = x.iter().copied().zip(b.values.iter().copied()).collect();
            let band = b
                .ci
                .as_ref()
                .map(|ci| x.iter().zip(ci).map(|(&x, c)| (x, c.low, c.high)).collect())
                .unwrap_or_default();
            Series::new(b.label.clone(), pts).band(band).color(i)
        })
        .collect()
}

/// Final return against τ on log-x for one env. τ = 0 has no place on a log axis, so it sits
/// one decade left of the smallest positive τ, marked "hard argmax"; `auto` is a dashed level.
fn final_panel(summary: &SweepSummary, env: &str) -> LinePanel {
    let plan = &summary.plan;
    let positive: Vec<f64> =
        plan.taus.iter().filter_map(|t| t.value()).filter(|v| *v > 0.0).collect();
    let hard_x = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hard_x = if hard_x.is_finite() { hard_x / 10.0 } else { 1e-3 };
    let x_of = |tau: TauSpec| match tau {
        TauSpec::Fixed(0.0) => Some(hard_x),
        TauSpec::Fixed(v) => Some(v),
        TauSpec::Auto => None,
    };
    let sigma_keys: Vec<Option<f64>> = if plan.sigmas.is_empty() {
        vec![None]
    } else {
        plan.sigmas.iter().copied().map(Some).collect()
    };
    let mut series = Vec::new();
    let mut xs_all = Vec::new();
    for (i, sigma) in sigma_keys.iter().enumerate() {
        let rows: Vec<&GroupRow> =
            summary.groups.iter().filter(|g| g.env == env && g.sigma == *sigma).collect();
        let mut pts = Vec::new();
        let mut band = Vec::new();
        for g in &rows {
            if let (Some(x), Some(m)) = (x_of(g.tau), g.final_return_mean) {
                pts.push((x, m));
                band.push((x, g.final_return_ci_low.unwrap_or(m), g.final_return_ci_high.unwrap_or(m)));
                xs_all.push(x);
            }
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        band.sort_by(|a, b| a.0.total_cmp(&b.0));
        let label = match sigma {
            Some(s) => format!("final eval return, σ={}", tame_agents::numfmt::compact(*s)),
            None => "final eval return (mean, 95% CI)".into(),
        };
        if !pts.is_empty() {
            series.push(Series::new(label, pts).band(band).color(i));
        }
        if let Some(auto) = rows.iter().find(|g| g.tau == TauSpec::Auto).and_then(|g| g.final_return_mean) {
            let lo = xs_all.iter().copied().fold(hard_x, f64::min);
            let hi = xs_all.iter().copied().fold(hard_x * 10.0, f64::max);
            let label = match sigma {
                Some(s) => format!("τ=auto, σ={}", tame_agents::numfmt::compact(*s)),
                None => "τ=auto".into(),
            };
            // Its own colour, after the σ series, so it shows even where it overlays one.
            let colour = sigma_keys.len() + i;
            series.push(Series::new(label, vec![(lo, auto), (hi, auto)]).dashed().color(colour));
        }
    }
    let markers = if plan.taus.contains(&TauSpec::Fixed(0.0)) {
        vec![(hard_x, "hard argmax (τ=0)".to_string())]
    } else {
        Vec::new()
    };
    LinePanel {
        title: format!("{} on {env}: final eval return against τ", plan.agent.name()),
        x_label: "temperature τ (log scale)".into(),
        y_label: "final eval return".into(),
        log_x: true,
        series,
        x_markers: markers,
        ..LinePanel::default()
    }
}
