//! The sweep's pictures: learning curves per τ (mean over seeds with a 95% band) and final
//! return against τ on a log axis, with τ = 0 drawn as the "hard argmax" point.

use std::collections::BTreeSet;
use std::path::Path;

use super::plan::TauSpec;
use super::report::{GroupRow, RunRow, SweepSummary, EVAL_TAG};
use crate::plot::{line_panels, LinePanel, Series};
use crate::stats;

/// Band resamples: fewer than the table's, since there is one interval per curve point.
const BAND_RESAMPLES: usize = 1000;
const BAND_SEED: u64 = 0x5eed;

/// File names of the plots, inside the sweep directory.
pub const CURVES_PNG: &str = "learning_curves.png";
pub const FINAL_PNG: &str = "final_return_vs_tau.png";

fn group_label(tau: TauSpec, sigma: Option<f64>) -> String {
    let t = match tau {
        TauSpec::Fixed(0.0) => "τ=0 (hard argmax)".to_string(),
        t => format!("τ={t}"),
    };
    match sigma {
        Some(s) => format!("{t}, σ={}", tame_agents::numfmt::compact(s)),
        None => t,
    }
}

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

/// Writes both PNGs into `out`.
pub fn write_plots(summary: &SweepSummary, out: &Path) -> anyhow::Result<()> {
    let plan = &summary.plan;
    let mut curves = Vec::new();
    for (i, g) in summary.groups.iter().enumerate() {
        let members: Vec<&RunRow> =
            summary.runs.iter().filter(|r| r.tau == g.tau && r.sigma == g.sigma).collect();
        let (points, band) = mean_curve(&members);
        if !points.is_empty() {
            curves.push(Series::new(group_label(g.tau, g.sigma), points).band(band).color(i));
        }
    }
    let curves_panel = LinePanel {
        title: format!("{} on {}: {EVAL_TAG} (mean over seeds, 95% CI)", plan.agent.name(), plan.env),
        x_label: "environment steps".into(),
        y_label: "eval return".into(),
        series: curves,
        ..LinePanel::default()
    };
    line_panels(&out.join(CURVES_PNG), &[curves_panel], 1)?;
    line_panels(&out.join(FINAL_PNG), &[final_panel(summary)], 1)
}

/// Final return against τ on log-x. τ = 0 has no place on a log axis, so it sits one decade
/// left of the smallest positive τ, marked "hard argmax"; `auto` is a dashed level.
fn final_panel(summary: &SweepSummary) -> LinePanel {
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
        let rows: Vec<&GroupRow> = summary.groups.iter().filter(|g| g.sigma == *sigma).collect();
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
            Some(s) => format!("final eval return, σ={s}"),
            None => "final eval return (mean, 95% CI)".into(),
        };
        if !pts.is_empty() {
            series.push(Series::new(label, pts).band(band).color(i));
        }
        if let Some(auto) = rows.iter().find(|g| g.tau == TauSpec::Auto).and_then(|g| g.final_return_mean) {
            let lo = xs_all.iter().copied().fold(hard_x, f64::min);
            let hi = xs_all.iter().copied().fold(hard_x * 10.0, f64::max);
            let label = match sigma {
                Some(s) => format!("τ=auto, σ={s}"),
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
        title: format!("{} on {}: final eval return against τ", plan.agent.name(), plan.env),
        x_label: "temperature τ (log scale)".into(),
        y_label: "final eval return".into(),
        log_x: true,
        series,
        x_markers: markers,
        ..LinePanel::default()
    }
}
