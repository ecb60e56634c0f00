//! Runs the grid: at most `jobs` child `tame train` processes at a time, cores divided among
//! them, finished runs skipped, failures recorded without stopping the others.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plan::{RunSpec, SweepPlan};

/// How one run of the grid ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Found finished from an earlier invocation; not trained again.
    Skipped,
    Finished,
    /// The child failed; the message holds its exit status and the end of its stderr.
    Failed(String),
}

/// Where a run of the grid lives.
pub fn run_dir(out: &Path, run: &RunSpec) -> PathBuf {
    out.join("runs").join(&run.name)
}

/// A run is finished once its summary (written atomically, last) exists and says the run
/// was not interrupted.
pub fn is_finished(dir: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Done {
        interrupted: bool,
    }
    std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Done>(&bytes).ok())
        .is_some_and(|d| !d.interrupted)
}

/// Runs every unfinished run of `plan`, `jobs` at a time, and returns each run's outcome in
/// grid order. `threads` is handed to each child (`--threads`).
pub fn execute(
    plan: &SweepPlan,
    out: &Path,
    jobs: usize,
    threads: usize,
    quiet: bool,
) -> anyhow::Result<Vec<(RunSpec, RunOutcome)>> {
    let runs = plan.runs();
    std::fs::create_dir_all(out.join("runs"))
        .with_context(|| format!("creating sweep directory {}", out.join("runs").display()))?;
    let exe = std::env::current_exe().context("locating the tame executable")?;

    let multi = MultiProgress::with_draw_target(if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let overall = multi.add(ProgressBar::new(runs.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("runs {bar:30} {pos}/{len} ({msg}) {elapsed}")
            .expect("static template"),
    );
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<RunOutcome>>> = Mutex::new(vec![None; runs.len()]);

    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(run) = runs.get(i) else { break };
                let outcome = run_one(plan, out, run, &exe, threads, &multi);
                if matches!(outcome, RunOutcome::Failed(_)) {
                    failed.fetch_add(1, Ordering::SeqCst);
                    let _ = multi.println(format!("run {} failed", run.name));
                }
                outcomes.lock().expect("no panics while holding the lock")[i] = Some(outcome);
                overall.set_message(format!("{} failed", failed.load(Ordering::SeqCst)));
                overall.inc(1);
            });
        }
    });
    overall.finish();
    let outcomes = outcomes.into_inner().expect("workers finished");
    Ok(runs
        .into_iter()
        .zip(outcomes)
        .map(|(r, o)| (r, o.expect("every run visited")))
        .collect())
}

fn run_one(
    plan: &SweepPlan,
    out: &Path,
    run: &RunSpec,
    exe: &Path,
    threads: usize,
    multi: &MultiProgress,
) -> RunOutcome {
    let dir = run_dir(out, run);
    if is_finished(&dir) {
        return RunOutcome::Skipped;
    }
    // An unfinished run from an interrupted sweep starts afresh, so its logs hold one run.
    if dir.is_dir() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            return RunOutcome::Failed(format!("removing unfinished {}: {e}", dir.display()));
        }
    }
    let mut cmd = Command::new(exe);
    cmd.arg("train")
        .args(["--agent", plan.agent.name(), "--env", &run.env])
        .args(["--tau", &run.tau.to_string(), "--seed", &run.seed.to_string()])
        .args(["--threads", &threads.to_string()])
        .arg("--run-dir")
        .arg(&dir)
        .args(["--quiet", "--progress-lines"]);
    if let Some(sigma) = run.sigma {
        cmd.args(["--sigma", &sigma.to_string()]);
    }
    if let Some(config) = &run.config {
        cmd.arg("--config").arg(config);
    }
    if let Some(steps) = plan.steps {
        cmd.args(["--steps", &steps.to_string()]);
    }
    if let Some(k) = plan.eval_every {
        cmd.args(["--eval-every", &k.to_string()]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());

    let bar = multi.add(ProgressBar::new(plan.steps.unwrap_or(0)));
    bar.set_style(
        ProgressStyle::with_template("  {prefix:28} {bar:30} {pos}/{len} {per_sec}")
            .expect("static template"),
    );
    bar.set_prefix(run.name.clone());
    let outcome = match cmd.spawn() {
        Err(e) => RunOutcome::Failed(format!("starting {}: {e}", exe.display())),
        Ok(mut child) => {
            let stderr = child.stderr.take();
            // Drain stderr on its own thread so a chatty child never blocks on a full pipe.
            let err_reader = std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut s) = stderr {
                    let _ = s.read_to_string(&mut text);
                }
                text
            });
            if let Some(stdout) = child.stdout.take() {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some((step, total)) = parse_progress_line(&line) {
                        bar.set_length(total);
                        bar.set_position(step);
                    }
                }
            }
            let status = child.wait();
            let err_text = err_reader.join().unwrap_or_default();
            match status {
                Ok(s) if s.success() && is_finished(&dir) => RunOutcome::Finished,
                Ok(s) => RunOutcome::Failed(format!("{s}: {}", tail(&err_text, 20))),
                Err(e) => RunOutcome::Failed(format!("waiting for the run: {e}")),
            }
        }
    };
    bar.finish_and_clear();
    multi.remove(&bar);
    outcome
}

/// `tame train --progress-lines` prints `progress <step> <total>` lines.
fn parse_progress_line(line: &str) -> Option<(u64, u64)> {
    let mut parts = line.split_whitespace();
    (parts.next()? == "progress").then_some(())?;
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_parse() {
        assert_eq!(parse_progress_line("progress 1200 5000"), Some((1200, 5000)));
        assert_eq!(parse_progress_line("eval 3"), None);
        assert_eq!(parse_progress_line("progress x"), None);
    }
}
