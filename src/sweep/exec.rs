//! Runs the grid: at most `jobs` child `tame train` processes at a time, cores divided among
//! them, finished runs skipped, interrupted runs resumed from their checkpoint, failures
//! recorded without stopping the others. A stop request (SIGINT/SIGTERM to the sweep) starts
//! no new run and sends SIGTERM to every running child, which writes its summary and
//! checkpoint and exits; what the children wrote is kept for the next invocation.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tame_agents::run::stop_requested;

use super::plan::{RunSpec, SweepPlan};

/// How one run of the grid ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Found finished from an earlier invocation; not trained again.
    Skipped,
    Finished,
    /// Stopped with the sweep; its directory is kept, and the next invocation resumes it.
    Interrupted,
    /// Not started, because the sweep was stopped first.
    NotStarted,
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

/// What an invocation of the sweep does with one run's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// Finished earlier: nothing to do.
    Skip,
    /// Unfinished with a full training-state checkpoint: `tame train --resume` it.
    Resume,
    /// Absent, or unfinished without a checkpoint: (delete and) train from step 0.
    Fresh,
}

fn how_to_start(dir: &Path) -> Start {
    if is_finished(dir) {
        Start::Skip
    } else if has_checkpoint(dir) {
        Start::Resume
    } else {
        Start::Fresh
    }
}

/// Whether `dir/checkpoints/` holds a training-state checkpoint, a `step-<12 digits>/`
/// directory (temporary names, which a crash mid-write can leave, do not count).
pub(crate) fn has_checkpoint(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir.join("checkpoints")) else { return false };
    entries.filter_map(Result::ok).any(|e| {
        let name = e.file_name();
        let digits = name.to_str().and_then(|n| n.strip_prefix("step-"));
        digits.is_some_and(|d| d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit()))
            && e.file_type().is_ok_and(|t| t.is_dir())
    })
}

/// The children running now (grid index → PID), so that a stop request reaches each.
type Running = Mutex<BTreeMap<usize, u32>>;

/// Sends SIGTERM to every running child: each stops after its current step, writing its
/// summary and checkpoint. Holding the lock keeps a new child from starting meanwhile.
fn terminate_children(running: &Running) {
    let running = running.lock().expect("no panics while holding the lock");
    for &pid in running.values() {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) on a child of ours that has not been reaped yet (it leaves the
            // map before `wait`), so the PID cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
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
    let running: Running = Mutex::new(BTreeMap::new());

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(run) = runs.get(i) else { break };
                    let outcome = run_one(plan, out, (i, run), &exe, threads, &multi, &running);
                    if matches!(outcome, RunOutcome::Failed(_)) {
                        failed.fetch_add(1, Ordering::SeqCst);
                        let _ = multi.println(format!("run {} failed", run.name));
                    }
                    outcomes.lock().expect("no panics while holding the lock")[i] = Some(outcome);
                    overall.set_message(format!("{} failed", failed.load(Ordering::SeqCst)));
                    overall.inc(1);
                })
            })
            .collect();
        // Forward a stop request to the children once; the workers then start no new run.
        while !workers.iter().all(|w| w.is_finished()) {
            if stop_requested() {
                terminate_children(&running);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
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
    (index, run): (usize, &RunSpec),
    exe: &Path,
    threads: usize,
    multi: &MultiProgress,
    running: &Running,
) -> RunOutcome {
    let dir = run_dir(out, run);
    let start = how_to_start(&dir);
    if start == Start::Skip {
        return RunOutcome::Skipped;
    }
    if stop_requested() {
        return RunOutcome::NotStarted;
    }
    if dir.is_dir() {
        // A `tame train` left running (say, by a sweep killed with SIGKILL) still owns it.
        let lock = match crate::lock::lock_dir(&dir) {
            Ok(lock) => lock,
            Err(e) => return RunOutcome::Failed(format!("{e:#}")),
        };
        // An unfinished run without a checkpoint starts afresh, so its logs hold one run.
        if start == Start::Fresh {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                return RunOutcome::Failed(format!("removing unfinished {}: {e}", dir.display()));
            }
        }
        drop(lock);
    }
    let mut cmd = train_command(plan, run, &dir, exe, threads, start);
    as_child_run(&mut cmd);

    let spawned = {
        // Spawned under the lock that a stop request takes, so no child escapes the stop.
        let mut running = running.lock().expect("no panics while holding the lock");
        if stop_requested() {
            return RunOutcome::NotStarted;
        }
        let spawned = cmd.spawn();
        if let Ok(child) = &spawned {
            running.insert(index, child.id());
        }
        spawned
    };
    let bar = multi.add(ProgressBar::new(plan.steps.unwrap_or(0)));
    bar.set_style(
        ProgressStyle::with_template("  {prefix:28} {bar:30} {pos}/{len} {per_sec}")
            .expect("static template"),
    );
    bar.set_prefix(run.name.clone());
    let outcome = match spawned {
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
            running.lock().expect("no panics while holding the lock").remove(&index);
            let status = child.wait();
            let err_text = err_reader.join().unwrap_or_default();
            match status {
                // A child that finished just as the stop came exits 143 with a full summary.
                Ok(s) if is_finished(&dir) && (s.success() || stop_requested()) => RunOutcome::Finished,
                Ok(_) if stop_requested() => RunOutcome::Interrupted,
                Ok(s) => RunOutcome::Failed(format!("{s}: {}", tail(&err_text, 20))),
                Err(e) => RunOutcome::Failed(format!("waiting for the run: {e}")),
            }
        }
    };
    bar.finish_and_clear();
    multi.remove(&bar);
    outcome
}

/// Sets up a child `tame train` of a sweep or worker: piped output, its own process group (a
/// Ctrl-C in the terminal reaches the parent alone, which stops the child with one SIGTERM; a
/// second signal would make it quit at once), and SIGTERM when the parent dies.
pub(crate) fn as_child_run(cmd: &mut Command) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; it only sets a flag of the new process. If the
    // parent dies (even by SIGKILL), the child gets SIGTERM: it stops cleanly if it can
    // before it next writes into the dead parent's pipes (SIGPIPE ends it there), so no
    // orphan keeps training and holding its run's lock.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// The child command for one run: `tame train --resume DIR` for a run with a checkpoint,
/// else a fresh `tame train --run-dir DIR` with the grid point's settings.
fn train_command(plan: &SweepPlan, run: &RunSpec, dir: &Path, exe: &Path, threads: usize, start: Start) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("train");
    if start == Start::Resume {
        // The run's own config.toml holds every setting; only the thread count may differ.
        cmd.arg("--resume").arg(dir).args(["--threads", &threads.to_string()]);
        cmd.args(["--quiet", "--progress-lines"]);
        return cmd;
    }
    cmd.args(train_args(plan, run, threads))
        .arg("--run-dir")
        .arg(dir)
        .args(["--quiet", "--progress-lines"]);
    cmd
}

/// The settings of a fresh run of the grid, as `tame train` flags (no directory, no output
/// options): local children get them on their command line, Redis workers the config they
/// resolve to.
pub fn train_args(plan: &SweepPlan, run: &RunSpec, threads: usize) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--agent", plan.agent.name(), "--env", &run.env].map(Into::into).into();
    let mut flag = |name: &str, value: String| args.extend([name.into(), value.into()]);
    flag("--tau", run.tau.to_string());
    flag("--seed", run.seed.to_string());
    flag("--threads", threads.to_string());
    if let Some(sigma) = run.sigma {
        flag("--sigma", sigma.to_string());
    }
    if let Some(steps) = plan.steps {
        flag("--steps", steps.to_string());
    }
    if let Some(k) = plan.eval_every {
        flag("--eval-every", k.to_string());
    }
    if let Some(config) = &run.config {
        args.extend(["--config".into(), config.clone().into_os_string()]);
    }
    args
}

/// `tame train --progress-lines` prints `progress <step> <total>` lines.
fn parse_progress_line(line: &str) -> Option<(u64, u64)> {
    let mut parts = line.split_whitespace();
    (parts.next()? == "progress").then_some(())?;
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_runs_are_skipped_checkpointed_ones_resumed_the_rest_restarted() {
        let root = std::env::temp_dir().join(format!("tame-sweep-start-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let make = |name: &str, summary: Option<&str>, checkpoints: &[&str]| {
            let dir = root.join(name);
            std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
            if let Some(json) = summary {
                std::fs::write(dir.join("summary.json"), json).unwrap();
            }
            for c in checkpoints {
                std::fs::create_dir_all(dir.join("checkpoints").join(c)).unwrap();
            }
            dir
        };
        let done = r#"{"interrupted": false}"#;
        let stopped = r#"{"interrupted": true}"#;
        let cases = [
            (make("finished", Some(done), &["step-000000001000"]), Start::Skip),
            (make("stopped-with-checkpoint", Some(stopped), &["step-000000001000"]), Start::Resume),
            (make("killed-with-checkpoints", None, &["step-000000000500", "step-000000001000"]), Start::Resume),
            (make("stopped-before-a-checkpoint", Some(stopped), &[]), Start::Fresh),
            (make("weights-only", None, &[]), Start::Fresh),
            // Names a crash mid-write can leave, or another layout: not a checkpoint.
            (make("temp-checkpoint", None, &["step-000000001000.tmp", ".step-000000001000", "step-12"]), Start::Fresh),
            (root.join("never-started"), Start::Fresh),
        ];
        std::fs::write(root.join("weights-only/checkpoints/latest.safetensors"), b"x").unwrap();
        // A file, not a directory, under a checkpoint's name.
        let file_named_like_one = make("file-not-dir", None, &[]);
        std::fs::write(file_named_like_one.join("checkpoints/step-000000001000"), b"x").unwrap();
        for (dir, want) in cases.iter().chain([&(file_named_like_one, Start::Fresh)]) {
            assert_eq!(how_to_start(dir), *want, "{}", dir.display());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_resumed_run_is_started_with_its_own_config_and_the_sweeps_threads() {
        let plan = SweepPlan {
            agent: crate::run_dir::AgentKind::Es,
            envs: vec!["cartpole".into()],
            taus: vec![super::super::TauSpec::Fixed(0.0)],
            sigmas: vec![0.1],
            seeds: vec![3],
            steps: Some(1000),
            config: Some(PathBuf::from("base.toml")),
            configs: Default::default(),
            eval_every: Some(100),
            thresholds: Default::default(),
            normalization: Default::default(),
        };
        let run = &plan.runs()[0];
        let dir = Path::new("out/runs/x");
        let args = |start| -> Vec<String> {
            let cmd = train_command(&plan, run, dir, Path::new("tame"), 2, start);
            cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
        };
        let resume = args(Start::Resume);
        assert_eq!(resume, ["train", "--resume", "out/runs/x", "--threads", "2", "--quiet", "--progress-lines"]);
        let fresh = args(Start::Fresh).join(" ");
        assert!(fresh.contains("--run-dir out/runs/x") && fresh.contains("--seed 3"), "{fresh}");
        assert!(fresh.contains("--sigma 0.1") && fresh.contains("--config base.toml"), "{fresh}");
        assert!(!fresh.contains("--resume"), "{fresh}");
    }

    #[test]
    fn progress_lines_parse() {
        assert_eq!(parse_progress_line("progress 1200 5000"), Some((1200, 5000)));
        assert_eq!(parse_progress_line("eval 3"), None);
        assert_eq!(parse_progress_line("progress x"), None);
    }
}
