//! Policy maps on gridworlds: π(a|s) drawn in every cell as one arrow per action whose
//! length is the probability, the learned policy above the exact π*_τ of the soft solver,
//! one column per τ. `tame sweep` on a gridworld writes them into `policy_maps.png`: soft
//! policies spread over several arrows, τ = 0 is a single arrow per cell.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;
use tame_agents::soft::Regularizer;
use tame_envs::GridLayout;

use crate::agent::load_policy;
use crate::plot::{arrow, plot_err, render, Area, FONT};
use crate::run_dir::AgentKind;
use crate::sweep::{SweepPlan, TauSpec};

/// One map: a title and π(a|s) per cell (`None` for cells without a choice: holes, goals,
/// walls), or a note saying why there is nothing to draw.
#[derive(Clone, Debug)]
pub struct MapPanel {
    pub title: String,
    pub probs: Option<Vec<Option<Vec<f64>>>>,
    pub note: String,
}

/// Side of a cell in pixels, by map size.
fn cell_px(layout: &GridLayout) -> u32 {
    let rows = layout.cells.len() / layout.ncol;
    (256 / layout.ncol.max(rows)).clamp(16, 64) as u32
}

/// Draws `columns` (learned above exact) into `path`.
pub fn draw_policy_maps(path: &Path, layout: &GridLayout, columns: &[(MapPanel, MapPanel)]) -> anyhow::Result<()> {
    let rows = layout.cells.len() / layout.ncol;
    let cell = cell_px(layout);
    let (w, h) = ((cell * layout.ncol as u32 + 40).max(230), cell * rows as u32 + 60);
    render(path, (w * columns.len().max(1) as u32, 2 * h), |root| {
        let areas = root.split_evenly((2, columns.len().max(1)));
        for (i, (learned, exact)) in columns.iter().enumerate() {
            draw_map(&areas[i], layout, learned)?;
            draw_map(&areas[columns.len() + i], layout, exact)?;
        }
        Ok(())
    })
}

fn cell_colour(c: char) -> RGBColor {
    let [r, g, b] = tame_envs::render::cell_colour(c);
    RGBColor(r, g, b)
}

fn draw_map(area: &Area<'_>, layout: &GridLayout, panel: &MapPanel) -> anyhow::Result<()> {
    let (ncol, nrow) = (layout.ncol, layout.cells.len() / layout.ncol);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 14))
        .margin(12)
        .build_cartesian_2d(0f64..ncol as f64, nrow as f64..0f64)
        .map_err(plot_err)?;
    let Some(probs) = &panel.probs else {
        // Nothing to draw: the note, one line per sentence part, where the map would be.
        let style = (FONT, 14).into_font().color(&BLACK);
        for (i, line) in panel.note.split(": ").enumerate() {
            let text = Text::new(line.to_string(), (0.1, nrow as f64 / 2.0 + 0.35 * i as f64), style.clone());
            chart.draw_series(std::iter::once(text)).map_err(plot_err)?;
        }
        return Ok(());
    };
    for (s, &c) in layout.cells.iter().enumerate() {
        let (x, y) = ((s % ncol) as f64, (s / ncol) as f64);
        let rect = Rectangle::new([(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)], cell_colour(c).filled());
        chart.draw_series(std::iter::once(rect)).map_err(plot_err)?;
    }
    let ink = RGBColor(20, 20, 20);
    for (s, p) in probs.iter().enumerate() {
        let Some(p) = p else { continue };
        let (cx, cy) = ((s % ncol) as f64 + 0.5, (s / ncol) as f64 + 0.5);
        for (a, &pa) in p.iter().enumerate().take(4) {
            if pa < 0.02 {
                continue;
            }
            // Length 0.45 cells at probability 1; the head shrinks with the arrow.
            let (dr, dc) = layout.moves[a];
            let [shaft, head] = arrow((cx, cy), (dc as f64, dr as f64), 0.45 * pa, 0.14 * pa.sqrt());
            let stroke = ink.stroke_width(2);
            chart
                .draw_series([PathElement::new(shaft, stroke), PathElement::new(head, stroke)])
                .map_err(plot_err)?;
        }
    }
    Ok(())
}

/// π(a|s) at every cell with a choice; holes, goals and walls get `None`.
fn per_cell(layout: &GridLayout, mut probs: impl FnMut(usize) -> Option<Vec<f64>>) -> Vec<Option<Vec<f64>>> {
    (0..layout.cells.len()).map(|s| if matches!(layout.cells[s], 'H' | 'G' | 'W') { None } else { probs(s) }).collect()
}

/// γ and regularizer of a run's soft objective (ES has none: γ 0.99 and entropy, as SAC's
/// defaults).
fn objective(cfg: &crate::run_dir::Resolved) -> (f64, Regularizer) {
    match (cfg.agent, &cfg.file.sac) {
        (AgentKind::Sac, Some(sac)) => (sac.gamma, sac.regularizer),
        _ => (0.99, Regularizer::Entropy),
    }
}

/// `tame sweep`'s policy maps (see [`sweep_policy_maps`]), one file per gridworld env of the
/// plan: `out/policy_maps.png` for a one-env sweep, `out/policy_maps-<env>.png` for several.
/// Envs that are not gridworlds, or agents whose actions have no distribution, get none.
pub fn write_sweep_policy_maps(plan: &SweepPlan, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for env in &plan.envs {
        let Some((layout, columns)) = sweep_policy_maps(plan, env, out)? else { continue };
        let name = match plan.envs.len() {
            1 => "policy_maps.png".to_string(),
            _ => format!("policy_maps-{}.png", crate::sweep::env_slug(env)),
        };
        let path = out.join(name);
        draw_policy_maps(&path, &layout, &columns)?;
        written.push(path);
    }
    Ok(written)
}

/// For each τ of the plan, the lowest finished seed's learned π(·|s) on `env` (the first σ
/// for ES) and the exact π*_τ under the run's γ and regularizer; `None` if `env` is not a
/// gridworld.
pub fn sweep_policy_maps(
    plan: &SweepPlan,
    env: &str,
    out: &Path,
) -> anyhow::Result<Option<(GridLayout, Vec<(MapPanel, MapPanel)>)>> {
    let (Ok(layout), Ok(table)) = (tame_envs::grid_layout(env), tame_envs::transition_table(env)) else {
        return Ok(None);
    };
    let runs: Vec<_> = plan.runs().into_iter().filter(|r| r.env == env).collect();
    let mut columns = Vec::new();
    for tau in &plan.taus {
        let label = match tau {
            TauSpec::Fixed(t) if *t == 0.0 => "τ = 0 (hard)".to_string(),
            t => format!("τ = {t}"),
        };
        let first_sigma = runs.iter().find(|r| r.tau == *tau).and_then(|r| r.sigma);
        let finished = runs
            .iter()
            .filter(|r| r.tau == *tau && r.sigma == first_sigma)
            .map(|r| (r, crate::sweep::run_dir(out, r)))
            .find(|(_, dir)| crate::sweep::is_finished(dir));
        let Some((run, dir)) = finished else {
            let none = |what: &str| MapPanel { title: format!("{label}: {what}"), probs: None, note: "no finished run".into() };
            columns.push((none("learned"), none("exact")));
            continue;
        };
        let mut loaded = load_policy(&dir)?;
        let learned = per_cell(&layout, |s| loaded.policy.action_probs(&[s as f32]));
        if learned.iter().flatten().next().is_none() {
            return Ok(None);
        }
        let (gamma, regularizer) = objective(&loaded.config);
        let exact = match tau.value() {
            Some(t) => {
                let c = tame_agents::exact::compare(&table, gamma, t, regularizer)
                    .with_context(|| format!("exact solution of {env} at τ = {t}"))?;
                MapPanel {
                    title: format!("{label}: exact π*_τ (γ {gamma})"),
                    probs: Some(per_cell(&layout, |s| Some(c.soft_policy[s].clone()))),
                    note: String::new(),
                }
            }
            None => MapPanel { title: format!("{label}: exact"), probs: None, note: "τ = auto is tuned: no single π*_τ".into() },
        };
        let learned = MapPanel { title: format!("{label}: learned (seed {})", run.seed), probs: Some(learned), note: String::new() };
        columns.push((learned, exact));
    }
    Ok(Some((layout, columns)))
}
