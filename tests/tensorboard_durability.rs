//! `flush` is durable: a child process logs N scalars, flushes, keeps logging, and is
//! killed with SIGKILL (no destructors, no exit flush). Every flushed scalar is readable.

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
