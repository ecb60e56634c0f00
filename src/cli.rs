//! Command-line interface: one subcommand per job, each implemented in `cmd/`.

use clap::{Parser, Subcommand};

use crate::cmd;

/// tame: see what smoothing does to learning.
///
/// Soft (entropy-regularized, temperature τ) against hard-argmax policies, and Gaussian
/// smoothing in parameter space (evolution strategies, width σ), on native environments.
#[derive(Debug, Parser)]
#[command(name = "tame", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Environments: list them, replay Gymnasium traces, measure steps per second.
    #[command(subcommand)]
    Env(cmd::env::EnvCommand),
    /// Speed measurements: print figures for one component.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Train an agent into a new run directory (config, TensorBoard logs, checkpoints, summary).
    Train(cmd::train::TrainArgs),
    /// Reload a run's latest checkpoint and evaluate it deterministically.
    Eval(cmd::eval::EvalArgs),
    /// Replay a run's checkpoint with rendering: an animated GIF, or gridworld text (--ansi).
    Render(cmd::render::RenderArgs),
    /// Soft against hard argmax across temperatures τ (and ES widths σ) and seeds: runs,
    /// summary table (CSV, Markdown, JSON) and plots.
    Sweep(cmd::sweep::SweepArgs),
    /// Recompute a sweep's report from its run directories (aggregates with stratified bootstrap
    /// CIs, profiles, probability of improvement, plots), or compare two sweeps (--against).
    Report(cmd::report::ReportArgs),
    /// Serve the runs of sweeps queued on Redis (`tame sweep --redis`) until stopped.
    Worker(cmd::worker::WorkerArgs),
    /// List the workers live on a Redis, what each does, and each job's queued and running tasks.
    Workers(cmd::worker::WorkersArgs),
    /// Summarise runs: agent, env, τ, seed, steps and last/best/mean of a scalar per run.
    Inspect(cmd::inspect::InspectArgs),
    /// Exact hard and soft value iteration on a tabular env (gridworlds, taxi, blackjack): V*,
    /// V*_tau, the gaps and their bound.
    Solve(cmd::solve::SolveArgs),
    /// The smoothing certificate K_smooth, measured beside its bounds (objectives or gridworlds).
    Certify(cmd::certify::CertifyArgs),
}

/// Parses `std::env::args` and runs the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    crate::interrupt::install()?;
    match cli.command {
        Command::Env(c) => cmd::env::run(c),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Render(a) => cmd::render::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Worker(a) => cmd::worker::run_worker(a),
        Command::Workers(a) => cmd::worker::run_workers(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Solve(a) => cmd::solve::run(a),
        Command::Certify(a) => cmd::certify::run(a),
    }
}
