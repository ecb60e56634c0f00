//! `tame solve`: exact hard and soft value iteration on an env's transition table, the
//! soft/hard gaps at the start state and their bound τ·log|A|/(1−γ).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use tame_agents::exact::{compare, Comparison};
use tame_agents::soft::Regularizer;
use tame_agents::numfmt::compact;
use tame_envs::TransitionTable;

use crate::plot::{heat_panels, HeatPanel};

#[derive(Debug, Args)]
pub struct SolveArgs {
    /// Env with a transition table to solve: the gridworlds (frozenlake, frozenlake8x8,
    /// cliffwalking, map:PATH, ... with options such as :slippery=false), taxi (:rainy=true too)
    /// and blackjack; see `tame env list`. A random start (taxi, blackjack) reports each value
    /// as its expectation over the initial-state distribution.
    #[arg(long)]
    env: String,
    /// Temperature tau of the soft solution: a number from 0 (the hard-argmax limit) to 1e6.
    #[arg(long, allow_hyphen_values = true, value_parser = crate::cli_values::solve_tau)]
    tau: f64,
    /// Discount gamma in [0, 1).
    #[arg(long, default_value_t = 0.99, allow_hyphen_values = true, value_parser = crate::cli_values::discount)]
    gamma: f64,
    /// What the soft bonus measures, as SAC's `regularizer`: the entropy (the papers'), or
    /// minus the KL divergence to the uniform policy (entropy − log|A|, never positive).
    #[arg(long, value_enum, default_value_t = RegularizerArg::Entropy)]
    regularizer: RegularizerArg,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw the value heat maps with policy arrows, hard and soft side by side, into this PNG
    /// (gridworlds only).
    /// An arrow is the policy's expected move from the cell (slips included).
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
}

/// The soft bonus, as spelled on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RegularizerArg {
    Entropy,
    KlUniform,
}

impl From<RegularizerArg> for Regularizer {
    fn from(r: RegularizerArg) -> Regularizer {
        match r {
            RegularizerArg::Entropy => Regularizer::Entropy,
            RegularizerArg::KlUniform => Regularizer::KlUniform,
        }
    }
}

pub fn run(args: SolveArgs) -> anyhow::Result<()> {
    // The value parsers bound tau and gamma; these guard the library entry point too.
    if !(args.tau >= 0.0 && args.tau <= tame_agents::limits::MAX_TAU) {
        bail!("--tau {} is not a temperature; accepted: 0 <= tau <= 1e6 (0 = hard argmax)", compact(args.tau));
    }
    if !(0.0..1.0).contains(&args.gamma) {
        bail!("--gamma {} is outside [0, 1); the discounted solver needs 0 <= gamma < 1", compact(args.gamma));
    }
    let table = tame_envs::transition_table(&args.env).with_context(|| format!("--env {}", args.env))?;
    // A heat map has one cell per state: only gridworlds' states are cells (Taxi's are
    // (cell, passenger, destination), Blackjack's are hands).
    if args.plot.is_some() && tame_envs::grid_layout(&args.env).is_err() {
        bail!(
            "--plot draws gridworlds (frozenlake, cliffwalking, map:PATH), one cell per state; \
             {}'s {} states are not cells of a map. Use --json for its values",
            args.env,
            table.n_states
        );
    }
    let c = compare(&table, args.gamma, args.tau, args.regularizer.into())
        .map_err(crate::exit::interrupted_or)
        .with_context(|| format!("solving {}", args.env))?;
    if let Some(path) = &args.plot {
        plot(&args, &table, &c, path)?;
    }
    let r = &c.reference;
    if args.json {
        let mut v = serde_json::to_value(r)?;
        v["env"] = args.env.clone().into();
        v["regularizer"] = serde_json::to_value(Regularizer::from(args.regularizer))?;
        v["n_states"] = table.n_states.into();
        v["n_actions"] = table.n_actions.into();
        v["hard_iterations"] = c.hard.iterations.into();
        v["hard_residual"] = c.hard.residual.into();
        v["start"] = "expectation over the env's initial-state distribution".into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{}: {} states, {} actions, gamma = {}, tau = {}, regularizer = {:?}",
        args.env,
        table.n_states,
        table.n_actions,
        compact(args.gamma),
        compact(args.tau),
        Regularizer::from(args.regularizer)
    );
    println!("values at the start state (expectation over the initial-state distribution):");
    let rows = [
        ("V*", "hard-optimal value", r.v_star),
        ("V*_tau", "soft-optimal (regularized) value", r.v_star_tau),
        ("V^{pi*_tau}", "unregularized value of the soft-optimal policy", r.v_pi_tau),
        ("V*_tau - V*", "soft value gap", r.gap_soft_value),
        ("V* - V^{pi*_tau}", "policy gap", r.gap_policy),
        ("bound", "tau*log|A|/(1-gamma), on both gaps' sizes", r.bound),
    ];
    for (name, meaning, value) in rows {
        println!("  {name:<18} {value:>14.6e}  {meaning}");
    }
    println!(
        "soft solver: {} iterations, residual {:.3e}; hard solver: {} iterations, residual {:.3e}",
        r.iterations, r.residual, c.hard.iterations, c.hard.residual
    );
    Ok(())
}

/// Grid shape recovered from the table: the column count that explains the most transitions
/// as moves to a neighbouring cell (or staying). Gridworld cells are numbered row by row.
fn grid_columns(table: &TransitionTable) -> Option<usize> {
    let n = table.n_states;
    let explained = |cols: usize| -> usize {
        let mut count = 0;
        for (s, row) in table.p.iter().enumerate() {
            for o in row.iter().flatten() {
                let (r0, c0) = (s / cols, s % cols);
                let (r1, c1) = (o.next_state / cols, o.next_state % cols);
                if r0.abs_diff(r1) + c0.abs_diff(c1) <= 1 {
                    count += 1;
                }
            }
        }
        count
    };
    (1..=n).filter(|c| n.is_multiple_of(*c)).max_by_key(|&c| (explained(c), usize::MAX - c.abs_diff(n / c)))
}

/// Expected (d_col, d_row) of one step from state `s` under the policy; jumps that are not
/// moves to a neighbouring cell (a cliff's reset to the start) are left out.
fn drift(table: &TransitionTable, cols: usize, s: usize, policy: &[f64]) -> (f64, f64) {
    let (r0, c0) = ((s / cols) as f64, (s % cols) as f64);
    let (mut dc, mut dr) = (0.0, 0.0);
    for (a, pa) in policy.iter().enumerate() {
        for o in &table.p[s][a] {
            let (r1, c1) = ((o.next_state / cols) as f64, (o.next_state % cols) as f64);
            if (r1 - r0).abs() + (c1 - c0).abs() <= 1.0 {
                dc += pa * o.prob * (c1 - c0);
                dr += pa * o.prob * (r1 - r0);
            }
        }
    }
    (dc, dr)
}

fn plot(args: &SolveArgs, table: &TransitionTable, c: &Comparison, path: &std::path::Path) -> anyhow::Result<()> {
    let cols = grid_columns(table).context("cannot lay the states out as a grid")?;
    let rows = table.n_states / cols;
    let panel = |title: String, v: &[f64], policy: &[Vec<f64>]| HeatPanel {
        title,
        values: (0..rows).map(|r| v[r * cols..(r + 1) * cols].to_vec()).collect(),
        arrows: (0..rows)
            .map(|r| (0..cols).map(|col| drift(table, cols, r * cols + col, &policy[r * cols + col])).collect())
            .collect(),
        annotate: true,
    };
    let hard = panel(format!("{}: V* and greedy policy", args.env), &c.hard.v, &c.hard.greedy_policy());
    let soft_v = c.soft.as_ref().map_or(&c.hard.v, |s| &s.v);
    let soft = panel(format!("V*_tau and pi*_tau, tau = {}", compact(args.tau)), soft_v, &c.soft_policy);
    heat_panels(path, &[hard, soft])
}
