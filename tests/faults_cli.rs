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

/// Whether a process with this PID exists (a zombie counts until its parent reaps it).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Polls `cond` every 20 ms for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn es_sweep(out: &Path, steps: u64, jobs: u32) -> Command {
    let mut cmd = tame();
    cmd.args(["sweep", "--quiet", "--agent", "es", "--env", "cartpole", "--taus", "0"])
        .args(["--sigmas", "0.05,0.1", "--seeds", "2", "--steps", &steps.to_string()])
        .args(["--jobs", &jobs.to_string(), "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The PID a directory's `.lock` file names, once it names one.
fn lock_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(".lock")).ok()?.trim().parse().ok()
}

/// Starts a sweep of four ES runs of about a minute each, two at a time, and waits until
/// both first runs train; returns the sweep, its run directories and the children's PIDs.
fn sweep_with_two_running_children(out: &Path, own_group: bool) -> (Child, Vec<PathBuf>, Vec<u32>) {
    let mut cmd = es_sweep(out, 200_000_000, 2);
    if own_group {
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    let sweep = cmd.spawn().unwrap();
    let runs = out.join("runs");
    let started = || -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&runs) else { return Vec::new() };
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| lock_pid(p).is_some()).collect()
    };
    wait_until(Duration::from_secs(60), "two runs to start", || started().len() == 2);
    let dirs = started();
    let children = dirs.iter().map(|p| lock_pid(p).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    (sweep, dirs, children)
}

fn assert_stopped_cleanly(dirs: &[PathBuf], children: &[u32]) {
    for &pid in children {
        wait_until(Duration::from_secs(20), "the children to exit", || !alive(pid));
    }
    for run in dirs {
        let summary = json(&run.join("summary.json"));
        assert_eq!(summary["interrupted"], true, "{}: {summary}", run.display());
        assert!(summary["steps"].as_u64().unwrap() < 200_000_000);
    }
}

fn stop_a_sweep(name: &str, to_group: bool) {
    let dir = tmp(name);
    let out = dir.join("sweep");
    let (mut sweep, dirs, children) = sweep_with_two_running_children(&out, to_group);
    if to_group {
        // What a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
        // SAFETY: kill(2) on the process group our own child leads.
        assert_eq!(unsafe { libc::kill(-(sweep.id() as libc::pid_t), libc::SIGINT) }, 0);
    } else {
        send(&sweep, libc::SIGINT);
    }
    let status = wait_within(&mut sweep, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut sweep.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}; stderr: {stderr}");
    assert!(
        stderr.contains("sweep stopped by SIGINT: 0 of 4 runs finished, 2 interrupted, 2 not started"),
        "{stderr}"
    );
    for &pid in &children {
        assert!(!alive(pid), "child {pid} still runs");
    }
    assert_stopped_cleanly(&dirs, &children);
    let report = json(&out.join("summary.json"));
    let outcomes: Vec<&str> =
        report["runs"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "interrupted").count(), 2, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "not started").count(), 2, "{outcomes:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sigint_to_a_sweep_stops_its_children_keeps_their_summaries_and_exits_130() {
    stop_a_sweep("sweep-stop", false);
}

#[test]
fn ctrl_c_to_a_sweeps_process_group_stops_the_children_once_and_cleanly() {
    // The children are in process groups of their own: only the sweep's SIGTERM reaches
    // them, so they stop cleanly instead of taking a second signal as "quit at once".
    stop_a_sweep("sweep-group", true);
}

#[test]
fn a_sweep_killed_with_sigkill_leaves_no_child_running() {
    let dir = tmp("sweep-kill");
    let out = dir.join("sweep");
    let (mut sweep, dirs, children) = sweep_with_two_running_children(&out, false);
    sweep.kill().unwrap();
    sweep.wait().unwrap();
    // PR_SET_PDEATHSIG: each child gets SIGTERM when the sweep dies. It stops cleanly if it
    // can; its next write into the dead sweep's pipes (SIGPIPE) ends it otherwise. Either
    // way no orphan keeps training, and every lock is free for the next sweep.
    for &pid in &children {
        wait_until(Duration::from_secs(20), "the children to exit", || !alive(pid));
    }
    for run in &dirs {
        tame::lock::lock_dir(run).expect("the dead child's lock is released");
    }
    tame::lock::lock_dir(&out).expect("the dead sweep's lock is released");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_second_sweep_on_the_same_out_is_refused_naming_the_first_and_the_first_finishes() {
    let dir = tmp("sweep-lock");
    let out = dir.join("sweep");
    let first = es_sweep(&out, 3_000_000, 1).spawn().unwrap();
    let first_pid = first.id();
    wait_until(Duration::from_secs(30), "the first sweep to lock its --out", || lock_pid(&out) == Some(first_pid));
    let second = es_sweep(&out, 3_000_000, 1).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("is in use by another tame process (PID {first_pid})")), "{stderr}");
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");

    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let report = json(&out.join("summary.json"));
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["outcome"] == "finished"), "{runs:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_directory_lock_names_its_holder_and_dies_with_it() {
    let dir = tmp("lock-kill");
    let run_dir = dir.join("run");
    let mut child = long_es_train(&run_dir);
    let _stdout = wait_for_progress(&mut child);
    assert_eq!(inspect_status(&run_dir), "running");
    let err = tame::lock::lock_dir(&run_dir).unwrap_err().to_string();
    assert!(err.contains(&format!("PID {}", child.id())), "{err}");
    child.kill().unwrap(); // SIGKILL: no destructor, no clean-up
    child.wait().unwrap();
    assert_eq!(inspect_status(&run_dir), "", "a killed run is neither running nor ended");
    let lock = tame::lock::lock_dir(&run_dir).expect("the kernel releases a dead holder's lock");
    assert_eq!(lock_pid(&run_dir), Some(std::process::id()));
    drop(lock);
    std::fs::remove_dir_all(&dir).ok();
}

/// A small tmpfs mounted for one test, unmounted on drop; `None` where mounting is not
/// permitted (not root, or in a container without CAP_SYS_ADMIN).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_full_disk_is_named_plainly_leaves_no_temp_file_and_keeps_what_was_logged() {
    let dir = tmp("disk-full");
    let Some(fs) = Tmpfs::mount(&dir.join("small"), "64k") else {
        // The plain-words mapping is still checked on a real ENOSPC, through /dev/full, by
        // fsutil::tests::a_real_enospc_from_dev_full_reads_as_no_space_left.
        eprintln!("skipped: mounting a 64 KiB tmpfs is not permitted here (needs root)");
        return;
    };
    let root = fs.0.clone();

    // write_atomic: the old file survives, the temp file goes, the error names the file.
    let summary = root.join("summary.json");
    tame::fsutil::write_atomic(&summary, b"{\"old\": true}").unwrap();
    let err = format!("{:#}", tame::fsutil::write_atomic(&summary, &vec![b'x'; 200_000]).unwrap_err());
    assert_eq!(err, format!("no space left on device while writing {}", summary.display()));
    assert_eq!(std::fs::read(&summary).unwrap(), b"{\"old\": true}");
    assert!(temp_files(&root).is_empty(), "{:?}", temp_files(&root));

    // The TensorBoard writer: flushed scalars stay readable, the error names the event file.
    let logs = root.join("run");
    let mut writer = tame::tensorboard::EventWriter::create(&logs).unwrap();
    let path = writer.path().to_path_buf();
    let mut flushed = 0;
    let err = loop {
        for _ in 0..100 {
            writer.add_scalar("charts/x", flushed, flushed as f64).unwrap();
            flushed += 1;
        }
        if let Err(e) = writer.flush() {
            flushed -= 100;
            break format!("{e:#}");
        }
        assert!(flushed < 1_000_000, "64 KiB never filled");
    };
    assert_eq!(err, format!("no space left on device while writing {}", path.display()));
    drop(writer);
    let events = tame::tensorboard::read_events(&logs).unwrap();
    let xs = &events.scalars["charts/x"];
    assert!(xs.len() as u64 >= flushed && flushed > 100, "{} read, {flushed} flushed", xs.len());
    assert!(xs.iter().enumerate().all(|(i, p)| p.step == i as u64 && p.value == i as f64));
    assert!(events.problems.iter().all(|p| p.contains("truncated")), "{:?}", events.problems);
    drop(fs);
    std::fs::remove_dir_all(&dir).ok();
}
