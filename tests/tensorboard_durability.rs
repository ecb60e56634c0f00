//! `flush` is durable: a child process logs N scalars, flushes, keeps logging, and is
//! killed with SIGKILL (no destructors, no exit flush). Every flushed scalar is readable.
//! And Ctrl-C (SIGINT) stops the logging loop, which flushes everything before exiting.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use tame::tensorboard::read_events;

#[test]
fn every_flushed_scalar_survives_sigkill() {
    let dir = std::env::temp_dir().join(format!("tame-tb-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let n = 100_000u64;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["bench", "tb-durability-child"])
        .arg(&dir)
        .arg(n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "flushed");
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success());

    let run = read_events(&dir).unwrap();
    let x = &run.scalars["durable/x"];
    assert_eq!(x.len() as u64, n);
    assert!(x.iter().enumerate().all(|(i, p)| p.step == i as u64 && p.value == i as f64));
    // Unflushed records may be cut anywhere, but only at the tail.
    assert!(run.problems.len() <= 1, "{:?}", run.problems);
    assert!(run.problems.iter().all(|p| p.contains("truncated")), "{:?}", run.problems);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ctrl_c_stops_the_loop_and_everything_logged_is_flushed() {
    let dir = std::env::temp_dir().join(format!("tame-tb-sigint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["bench", "tb-durability-child"])
        .arg(&dir)
        .arg("10")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "flushed");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    // A clean stop on SIGINT still exits 128 + SIGINT, as shells expect.
    assert_eq!(status.code(), Some(130), "{status:?}");
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let logged: usize = line.trim().strip_prefix("stopped after ").unwrap().parse().unwrap();
    assert!(logged > 0);

    let run = read_events(&dir).unwrap();
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    assert_eq!(run.scalars["durable/x"].len(), 10);
    assert_eq!(run.scalars["unflushed/y"].len(), logged);
    std::fs::remove_dir_all(&dir).ok();
}
