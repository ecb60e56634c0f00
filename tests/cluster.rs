//! Distributed sweeps against a real redis-server (each test starts its own on a free
//! loopback port and kills it afterwards): the out directory equals a local sweep's bit for bit
//! (summary.json minus timing, final weights, every scalar after the restart purge) with two
//! workers, a worker SIGKILLed mid-run, a worker joining late, Redis restarted mid-job (AOF),
//! and two sweeps at once; bad URLs, passwords, servers and tasks get clear errors.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A tiny discrete-SAC config, checkpointing every 100 steps.
fn config(root: &Path) -> PathBuf {
    let path = root.join("tiny.toml");
    std::fs::write(
        &path,
        "agent = \"sac\"\nenv = \"frozenlake\"\neval_every = 100\neval_episodes = 5\ncheckpoint_every = 100\n\
         [sac]\nhidden = [16, 16]\nbatch_size = 32\nlearning_starts = 100\n",
    )
    .unwrap();
    path
}

fn sweep_cmd(cfg: &Path, out: &Path, taus: &str, seeds: &str, steps: &str) -> Command {
    let mut cmd = tame();
    cmd.args(["sweep", "--quiet", "--taus", taus, "--seeds", seeds, "--steps", steps, "--jobs", "2"])
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null());
    cmd
}

fn local(cfg: &Path, out: &Path, taus: &str, seeds: &str, steps: &str) {
    check(sweep_cmd(cfg, out, taus, seeds, steps).output().unwrap(), "local sweep");
}

fn distributed(server: &Server, cfg: &Path, out: &Path, taus: &str, seeds: &str, steps: &str) -> Command {
    let mut cmd = sweep_cmd(cfg, out, taus, seeds, steps);
    cmd.args(["--redis", &server.url(), "--lease", "2s"]);
    cmd
}

/// Each run of `dist` equals the same run of `local`; returns the number of runs.
fn assert_same_runs(local: &Path, dist: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(local.join("runs")).unwrap() {
        let name = entry.unwrap().file_name();
        let (a, b) = (local.join("runs").join(&name), dist.join("runs").join(&name));
        let what = name.to_string_lossy();
        assert_eq!(summary(&a), summary(&b), "{what}: summary.json");
        assert!(final_weights(&a) == final_weights(&b), "{what}: final weights differ");
        assert_eq!(scalars(&a), scalars(&b), "{what}: scalars after the purge");
        assert_eq!(std::fs::read(a.join("config.toml")).unwrap(), std::fs::read(b.join("config.toml")).unwrap(), "{what}: config");
        n += 1;
    }
    for file in ["summary.csv", "summary.md"] {
        assert_eq!(std::fs::read(local.join(file)).unwrap(), std::fs::read(dist.join(file)).unwrap(), "{file}");
    }
    n
}

fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoints"))
        .map(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("step-")))
        .unwrap_or(false)
}

#[test]
fn a_sweep_on_two_workers_equals_the_local_sweep() {
    let root = scratch("two");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0,0.1", "2", "400");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let (_a, _b) = (Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b"));
    check(distributed(&server, &cfg, &root.join("dist"), "0,0.1", "2", "400").output().unwrap(), "distributed sweep");
    assert_eq!(assert_same_runs(&root.join("local"), &root.join("dist")), 4);
    assert_cleaned_up(&server);
    // A rerun finds every run finished and queues nothing.
    let again = distributed(&server, &cfg, &root.join("dist"), "0,0.1", "2", "400").output().unwrap();
    check(again, "rerun");
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_worker_killed_mid_run_is_taken_over_from_its_checkpoint_with_the_same_result() {
    let root = scratch("kill");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0.1", "1", "1500");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut first = Worker::start(&server, &root, "first");
    let out = root.join("dist");
    let sweep = distributed(&server, &cfg, &out, "0.1", "1", "1500").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run = out.join("runs/tau0.1__seed0");
    wait_for(60, "a checkpoint of the first worker", || has_checkpoint(&run));
    first.kill();
    assert!(!run.join("summary.json").exists(), "the run finished before the kill; make it longer");
    let second = Worker::start(&server, &root, "second");
    check(sweep.wait_with_output().unwrap(), "distributed sweep");
    assert_same_runs(&root.join("local"), &out);
    assert_eq!(second.runs_served(), 1, "the second worker took the run over");
    let files = std::fs::read_dir(&run).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("tfevents")).count();
    assert!(files >= 2, "the resumed run appends a new event file");
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_stopped_worker_checkpoints_and_hands_its_run_back_at_once() {
    let root = scratch("handback");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0", "1", "1500");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut first = Worker::start(&server, &root, "first");
    let out = root.join("dist");
    // A lease far longer than the test: the run can only move on by being handed back.
    let mut cmd = sweep_cmd(&cfg, &out, "0", "1", "1500");
    cmd.args(["--redis", &server.url(), "--lease", "10m"]);
    let sweep = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run = out.join("runs/tau0__seed0");
    wait_for(60, "a checkpoint of the first worker", || has_checkpoint(&run));
    // SAFETY: our child, not yet reaped.
    unsafe { libc::kill(first.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = first.child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "a worker stopped by SIGTERM exits 128 + 15");
    let log = std::fs::read_to_string(root.join("first.log")).unwrap();
    assert!(log.contains("handed back"), "{log}");
    let mut c = server.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("tame:*:tasks").query(&mut c).unwrap();
    let pending: (usize, Option<String>, Option<String>, Option<Vec<(String, String)>>) =
        redis::cmd("XPENDING").arg(&keys[0]).arg("workers").query(&mut c).unwrap();
    assert_eq!(pending.0, 0, "the stopped worker still holds its task");
    let second = Worker::start(&server, &root, "second");
    check(sweep.wait_with_output().unwrap(), "distributed sweep");
    assert_same_runs(&root.join("local"), &out);
    assert_eq!(second.runs_served(), 1);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_local_sweep_stopped_mid_run_is_finished_by_workers_from_its_checkpoint() {
    let root = scratch("resume");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0.1", "1", "1500");
    let out = root.join("dist");
    let run = out.join("runs/tau0.1__seed0");
    let mut first = sweep_cmd(&cfg, &out, "0.1", "1", "1500").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for(60, "a checkpoint of the local sweep", || has_checkpoint(&run));
    // SAFETY: our child, not yet reaped.
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGTERM) };
    first.wait().unwrap();
    assert!(!tame::sweep::is_finished(&run), "the local run finished before the stop; make it longer");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let _w = Worker::start(&server, &root, "w");
    let mut cmd = distributed(&server, &cfg, &out, "0.1", "1", "1500");
    // While it runs, `tame workers` lists the worker and the job.
    let sweep = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(30, "the worker to list the job", || {
        let out = tame().args(["workers", "--redis", &server.url()]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("1 live worker") && text.contains(" w ") && text.contains("1 job(s)")
    });
    check(sweep.wait_with_output().unwrap(), "distributed sweep");
    let log = std::fs::read_to_string(root.join("w.log")).unwrap();
    assert!(log.contains("resuming from step"), "{log}");
    assert_same_runs(&root.join("local"), &out);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_stopped_distributed_sweep_resumes_with_the_same_command() {
    let root = scratch("coord");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0,0.1", "1", "1000");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let _w = Worker::start(&server, &root, "w");
    let out = root.join("dist");
    let first = distributed(&server, &cfg, &out, "0,0.1", "1", "1000").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(60, "a first checkpoint", || has_checkpoint(&out.join("runs/tau0__seed0")) || has_checkpoint(&out.join("runs/tau0.1__seed0")));
    // SAFETY: our child, not yet reaped.
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGTERM) };
    let stopped = first.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(143), "{}", String::from_utf8_lossy(&stopped.stderr));
    let stopped_err = String::from_utf8_lossy(&stopped.stderr);
    assert!(stopped_err.contains("run the same command again"), "{stopped_err}");
    // The worker went on meanwhile; the same command collects everything, once.
    check(distributed(&server, &cfg, &out, "0,0.1", "1", "1000").output().unwrap(), "resumed distributed sweep");
    assert_eq!(assert_same_runs(&root.join("local"), &out), 2);
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_worker_joining_mid_job_takes_runs_and_the_result_is_the_same() {
    let root = scratch("join");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0,0.1", "2", "600");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let _early = Worker::start(&server, &root, "early");
    let out = root.join("dist");
    let sweep = distributed(&server, &cfg, &out, "0,0.1", "2", "600").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(60, "the first run to start", || {
        std::fs::read_dir(out.join("runs")).map(|d| d.count() > 0).unwrap_or(false)
    });
    let late = Worker::start(&server, &root, "late");
    check(sweep.wait_with_output().unwrap(), "distributed sweep");
    assert_eq!(assert_same_runs(&root.join("local"), &out), 4);
    assert!(late.runs_served() >= 1, "the late worker served no run");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn redis_restarted_mid_job_with_aof_loses_nothing() {
    let root = scratch("restart");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0,0.1", "1", "1000");
    let mut server = Server::start(&root, &["--appendonly", "yes", "--appendfsync", "always"]);
    let (_a, _b) = (Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b"));
    let out = root.join("dist");
    let sweep = distributed(&server, &cfg, &out, "0,0.1", "1", "1000").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(60, "a first checkpoint", || has_checkpoint(&out.join("runs/tau0__seed0")) || has_checkpoint(&out.join("runs/tau0.1__seed0")));
    server.restart();
    let output = sweep.wait_with_output().unwrap();
    check(output, "distributed sweep across a Redis restart");
    assert_eq!(assert_same_runs(&root.join("local"), &out), 2);
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn two_sweeps_share_one_redis_at_once() {
    let root = scratch("share");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0,0.1", "1", "400");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let (_a, _b) = (Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b"));
    let one = distributed(&server, &cfg, &root.join("one"), "0,0.1", "1", "400").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let two = distributed(&server, &cfg, &root.join("two"), "0,0.1", "1", "400").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    check(one.wait_with_output().unwrap(), "first sweep");
    check(two.wait_with_output().unwrap(), "second sweep");
    assert_eq!(assert_same_runs(&root.join("local"), &root.join("one")), 2);
    assert_eq!(assert_same_runs(&root.join("local"), &root.join("two")), 2);
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn bad_urls_passwords_and_servers_get_clear_errors_without_the_password() {
    let root = scratch("bad");
    let cfg = config(&root);
    for bad in ["localhost:6379", "http://user:pa55word@host", "redis://:pa55word@"] {
        let err = error_of(tame().args(["workers", "--redis", bad]).output().unwrap());
        assert!(err.contains("accepted: redis://"), "{bad}: {err}");
        assert!(!err.contains("pa55word"), "{bad}: the password leaked: {err}");
        let err = error_of(sweep_cmd(&cfg, &root.join("out"), "0", "1", "100").args(["--redis", bad]).output().unwrap());
        assert!(err.contains("accepted: redis://") && !err.contains("pa55word"), "{err}");
    }
    assert!(!root.join("out").exists(), "a bad URL left an out directory");

    let server = Server::start(&root, &["--requirepass", "right-secret"]);
    let err = error_of(tame().args(["workers", "--redis", &format!("redis://:wrong-secret@127.0.0.1:{}", server.port)]).output().unwrap());
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-secret"), "the password leaked: {err}");
    let err = error_of(tame().args(["worker", "--redis", &server.url()]).output().unwrap());
    assert!(err.contains("requires a password"), "{err}");
    let ok = tame().args(["workers", "--redis", &format!("redis://:right-secret@127.0.0.1:{}", server.port)]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("redis://:***@127.0.0.1") && !text.contains("right-secret"), "{text}");

    // A server that answers garbage.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let err = error_of(tame().args(["workers", "--redis-timeout", "3s", "--redis", &format!("redis://127.0.0.1:{port}")]).output().unwrap());
    assert!(err.contains("does not speak the Redis protocol"), "{err}");

    // Nothing listening: retried, then a clear error after the timeout.
    let port = free_port();
    let err = error_of(tame().args(["workers", "--redis-timeout", "2s", "--redis", &format!("redis://127.0.0.1:{port}")]).output().unwrap());
    assert!(err.contains("retrying") && err.contains("still unreachable after 2 s"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_malformed_task_is_reported_and_set_aside_and_the_worker_goes_on() {
    let root = scratch("malformed");
    let cfg = config(&root);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut c = server.conn();
    let mut worker = Worker::start(&server, &root, "sturdy");
    let job = "sweep-00000000000000aa";
    handmade_job(&mut c, "sturdy", job, "sweep");
    let (tasks, errors, results) = (format!("tame:{job}:tasks"), format!("tame:{job}:errors"), format!("tame:{job}:results"));
    // (run field, task): a run's broken task is answered as that run's failure; an entry naming
    // no acceptable run has no one to answer to, and goes to the job's error list.
    let bad = [
        (Some("r1"), "{not json", "malformed"),
        (Some("r2"), r#"{"kind":"sweep-run","run":"r2","config":"agent = \"sac\"\nenv = \"no-such-env\"\n"}"#, "no-such-env"),
        (Some("r3"), r#"{"kind":"launch-missiles"}"#, "malformed"),
        (Some("r4"), r#"{"kind":"sweep-run","run":"other","config":""}"#, "names run 'other'"),
        (Some("r5"), r#"{"kind":"sweep-run","run":"r5","config":"agent = \"sac\"\nenv = \"map:/etc/passwd\"\n"}"#, "carries no map text"),
        (Some("../escape"), r#"{"kind":"sweep-run","run":"../escape","config":""}"#, "not a run name"),
        (None, r#"{"kind":"sweep-run","run":"r7","config":""}"#, "not a run name"),
    ];
    for (run, task, _) in &bad {
        let mut add = redis::cmd("XADD");
        add.arg(&tasks).arg("*");
        if let Some(run) = run {
            add.arg("run").arg(run);
        }
        let _: String = add.arg("task").arg(task).query(&mut c).unwrap();
    }
    let answered = || -> Vec<(String, String)> {
        let mut c = server.conn();
        let msgs: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE").arg(&results).arg("-").arg("+").query(&mut c).unwrap();
        msgs.iter()
            .filter(|(_, f)| f.get("kind").map(|k| k.as_slice()) == Some(b"failed"))
            .map(|(_, f)| (String::from_utf8_lossy(&f["run"]).into_owned(), String::from_utf8_lossy(&f["data"]).into_owned()))
            .collect()
    };
    wait_for(30, "the malformed tasks to be answered", || {
        answered().len() == 5 && redis::cmd("LLEN").arg(&errors).query::<usize>(&mut c).unwrap() == 2
    });
    let failed = answered();
    for (run, _, reason) in &bad[..5] {
        let why = &failed.iter().find(|(r, _)| r == run.unwrap()).expect("each run answered").1;
        assert!(why.contains(reason), "{run:?}: {reason:?} in {why:?}");
    }
    let reports: Vec<String> = redis::cmd("LRANGE").arg(&errors).arg(0).arg(-1).query(&mut c).unwrap();
    assert!(reports.iter().all(|r| r.contains("not a run name")), "{reports:?}");
    // Acknowledged and deleted: none is pending for another worker to take again.
    let left: usize = redis::cmd("XLEN").arg(&tasks).query(&mut c).unwrap();
    assert_eq!(left, 0);
    assert!(worker.child.try_wait().unwrap().is_none(), "the worker died");
    // Nothing was written outside the worker's scratch directory.
    assert!(!root.join("escape.toml").exists());
    // It still serves: a real sweep on the same Redis finishes.
    check(distributed(&server, &cfg, &root.join("dist"), "0", "1", "200").output().unwrap(), "sweep after bad tasks");
    assert!(root.join("dist/runs/tau0__seed0/summary.json").exists());
    worker.kill();
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn rediss_urls_reach_a_tls_server_and_a_sweep_runs_over_it() {
    let root = scratch("tls");
    let cfg = config(&root);
    let dir = root.join("redis");
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl, to make the test's self-signed certificate");
    assert!(made.success());
    let port = free_port();
    let mut server = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .arg("--tls-cert-file")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("key.pem"))
        .args(["--tls-auth-clients", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("rediss://127.0.0.1:{port}/#insecure");
    wait_for(20, "the TLS server", || tame().args(["workers", "--redis-timeout", "1s", "--redis", &url]).output().unwrap().status.success());
    // Its certificate is self-signed: refused at once unless verification is skipped.
    let err = error_of(tame().args(["workers", "--redis", &format!("rediss://127.0.0.1:{port}")]).output().unwrap());
    assert!(err.contains("TLS handshake") && err.contains("#insecure"), "{err}");
    let scratch_dir = root.join("scratch");
    let mut worker = tame()
        .args(["worker", "--threads", "1", "--name", "tls", "--redis", &url])
        .arg("--scratch")
        .arg(&scratch_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut cmd = sweep_cmd(&cfg, &root.join("dist"), "0", "1", "200");
    let out = cmd.args(["--redis", &url]).output().unwrap();
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = server.kill();
    let _ = server.wait();
    check(out, "sweep over TLS");
    assert!(tame::sweep::is_finished(&root.join("dist/runs/tau0__seed0")));
    std::fs::remove_dir_all(&root).ok();
}
