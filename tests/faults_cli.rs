//! Faults a user meets outside the happy path, end to end through the `tame` binary:
//! SIGINT/SIGTERM (a clean stop, exit 128 + signal), sweeps that stop their children, locks on
//! run and sweep directories, and a full disk.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tame() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tame"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn send(child: &Child, signal: i32) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Waits for `child` at most `limit`; kills it and fails the test past that.
fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An ES CartPole run long enough (tens of seconds) to be stopped while it trains.
fn long_es_train(run_dir: &Path) -> Child {
    tame()
        .args(["train", "--agent", "es", "--env", "cartpole", "--steps", "400000000"])
        .args(["--threads", "1", "--quiet", "--progress-lines", "--run-dir"])
        .arg(run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout until its first `progress` line: it is training.
fn wait_for_progress(child: &mut Child) -> BufReader<std::process::ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the run ended before training");
        if line.starts_with("progress ") {
            return out;
        }
    }
}

fn inspect_status(run_dir: &Path) -> String {
    let out = tame().arg("inspect").arg(run_dir).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows[0]["status"].as_str().unwrap_or_default().to_owned()
}

fn signal_stops_training_cleanly(signal: i32, expected_code: i32, name: &str) {
    let dir = tmp(name);
    let run_dir = dir.join("run");
    let mut child = long_es_train(&run_dir);
    let _stdout = wait_for_progress(&mut child);
    send(&child, signal);
    let status = wait_within(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(expected_code), "{status:?}; stderr: {stderr}");
    assert_eq!(stderr.matches("tame: stopping after the current step").count(), 1, "{stderr}");
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert!(summary["steps"].as_u64().unwrap() < 400_000_000);
    assert_eq!(inspect_status(&run_dir), "interrupted");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sigint_stops_a_run_with_its_summary_and_exit_130() {
    signal_stops_training_cleanly(libc::SIGINT, 130, "sigint");
}

#[test]
fn sigterm_stops_a_run_with_its_summary_and_exit_143() {
    signal_stops_training_cleanly(libc::SIGTERM, 143, "sigterm");
}

#[test]
fn a_finished_run_shows_success_in_inspect() {
    let dir = tmp("success");
    let run_dir = dir.join("run");
    let out = tame()
        .args(["train", "--agent", "es", "--env", "cartpole", "--steps", "20000", "--threads", "1", "--quiet"])
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&run_dir.join("summary.json"))["interrupted"], false);
    assert_eq!(inspect_status(&run_dir), "success");
    std::fs::remove_dir_all(&dir).ok();
}
