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
    let (a, b) = (Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b"));
    check(distributed(&server, &cfg, &root.join("dist"), "0,0.1", "2", "400").output().unwrap(), "distributed sweep");
    assert_eq!(assert_same_runs(&root.join("local"), &root.join("dist")), 4);
    assert_cleaned_up(&server);
    // The workers keep nothing of a finished job: their disk use does not grow.
    for w in [&a, &b] {
        wait_for(30, "the scratch copies to go", || std::fs::read_dir(&w.scratch).map_or(true, |mut d| d.next().is_none()));
    }
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
    let mut server = Server::start(&root, &["--appendonly", "yes", "--appendfsync", "everysec"]);
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
    // A private CA, and the server's certificate signed by it.
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl").args(args).current_dir(&dir).stderr(Stdio::null()).status().expect("openssl, for the test's certificates");
        assert!(ok.success(), "openssl {args:?}");
    };
    openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tame test CA", "-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "server.csr"]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "cert.pem"]);
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
    // Its CA is not among the system's roots: refused at once unless it is trusted
    // (--redis-ca) or verification is skipped (#insecure).
    let strict = format!("rediss://127.0.0.1:{port}");
    let err = error_of(tame().args(["workers", "--redis", &strict]).output().unwrap());
    assert!(err.contains("TLS handshake") && err.contains("#insecure"), "{err}");
    check(tame().args(["workers", "--redis", &strict, "--redis-ca"]).arg(dir.join("ca.pem")).output().unwrap(), "workers with --redis-ca");
    let err = error_of(tame().args(["workers", "--redis", &strict, "--redis-ca"]).arg(dir.join("key.pem")).output().unwrap());
    assert!(err.contains("no PEM certificate"), "{err}");
    let scratch_dir = root.join("scratch");
    let mut worker = tame()
        .args(["worker", "--threads", "1", "--name", "tls", "--redis", &strict, "--redis-ca"])
        .arg(dir.join("ca.pem"))
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

// ---- Fencing, liveness and hostile peers (protocol 2) ----

#[test]
fn a_worker_stopped_past_its_lease_is_superseded_and_the_run_equals_the_local_one() {
    let root = scratch("sigstop");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0.1", "1", "1500");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let first = Worker::start(&server, &root, "first");
    let out = root.join("dist");
    let sweep = distributed(&server, &cfg, &out, "0.1", "1", "1500").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run = out.join("runs/tau0.1__seed0");
    wait_for(60, "a checkpoint of the first worker", || has_checkpoint(&run));
    // Frozen past its 2 s lease: to the others it is dead. Its child trains on meanwhile.
    signal(&first.child, libc::SIGSTOP);
    let second = Worker::start(&server, &root, "second");
    wait_for(60, "the second worker to take the run over", || second.log_text().contains("taking over"));
    signal(&first.child, libc::SIGCONT);
    // The first finds out at its next write, stops its child and lets go; the second
    // finishes the run, which is the local run bit for bit (no stale event or checkpoint).
    check(finish_within(sweep, 300, "distributed sweep"), "distributed sweep");
    assert_same_runs(&root.join("local"), &out);
    wait_for(30, "the first worker to let go", || first.log_text().contains("no longer ours"));
    let mut first = first;
    assert!(first.child.try_wait().unwrap().is_none(), "the superseded worker died:\n{}", first.log_text());
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_task_lost_from_its_stream_is_queued_again_by_the_audit() {
    let root = scratch("lost");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0", "1", "300");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let out = root.join("dist");
    let sweep = distributed(&server, &cfg, &out, "0", "1", "300").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let job = the_job(&server, "sweep-");
    let mut c = server.conn();
    let tasks = format!("tame:{job}:tasks");
    wait_for(30, "the run's task", || redis::cmd("XLEN").arg(&tasks).query::<usize>(&mut c).unwrap() == 1);
    // As if Redis lost it (an outage without fsync) or a peer deleted it.
    let _: () = redis::cmd("XTRIM").arg(&tasks).arg("MAXLEN").arg(0).query(&mut c).unwrap();
    let worker = Worker::start(&server, &root, "w");
    let output = finish_within(sweep, 120, "the sweep whose task was lost");
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    check(output, "distributed sweep");
    assert!(err.contains("queued again"), "{err}");
    assert_same_runs(&root.join("local"), &out);
    assert_eq!(worker.runs_served(), 1);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_forged_result_of_a_future_attempt_is_refused_and_the_run_finishes() {
    let root = scratch("forged");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0", "1", "300");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let out = root.join("dist");
    let sweep = distributed(&server, &cfg, &out, "0", "1", "300").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let job = the_job(&server, "sweep-");
    let mut c = server.conn();
    // Before any worker: a stranger's summary for attempt u64::MAX, which once made every
    // real result look stale.
    let _: String = redis::cmd("XADD")
        .arg(format!("tame:{job}:results"))
        .arg("*")
        .arg("run")
        .arg("tau0__seed0")
        .arg("attempt")
        .arg(u64::MAX)
        .arg("kind")
        .arg("summary")
        .arg("name")
        .arg("summary.json")
        .arg("offset")
        .arg(0)
        .arg("data")
        .arg("{\"forged\": true}")
        .query(&mut c)
        .unwrap();
    let _worker = Worker::start(&server, &root, "w");
    let output = finish_within(sweep, 120, "the sweep with a forged result");
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    check(output, "distributed sweep");
    assert!(err.contains("refused") && err.contains("attempt"), "{err}");
    assert_same_runs(&root.join("local"), &out);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn hostile_and_broken_jobs_are_refused_or_skipped_and_cost_the_real_one_nothing() {
    let root = scratch("hostile");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0", "1", "200");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut c = server.conn();
    let worker = Worker::start(&server, &root, "w");
    let outside = root.join("outside");
    // Ids that would be paths, each with a meta hash and a task stream as a real job has.
    let forged = ["../../outside".to_string(), outside.display().to_string(), "sweep-XYZ".to_string(), "sweep-0123".to_string()];
    for id in &forged {
        let _: () = redis::cmd("HSET").arg(format!("tame:{id}:meta")).arg("lease_ms").arg(2000).query(&mut c).unwrap();
        let _: () = redis::cmd("XGROUP").arg("CREATE").arg(format!("tame:{id}:tasks")).arg("workers").arg("0").arg("MKSTREAM").query(&mut c).unwrap();
        let _: String = redis::cmd("XADD").arg(format!("tame:{id}:tasks")).arg("*").arg("run").arg("r").arg("task").arg("{}").query(&mut c).unwrap();
        let _: () = redis::cmd("SADD").arg("tame:jobs").arg(id).query(&mut c).unwrap();
    }
    // Another protocol, another build, a stream without its group, and no stream at all.
    handmade_job(&mut c, "w", "sweep-00000000000000c1", "sweep");
    let _: () = redis::cmd("HSET").arg("tame:sweep-00000000000000c1:meta").arg("protocol").arg(1).query(&mut c).unwrap();
    handmade_job(&mut c, "w", "sweep-00000000000000c2", "sweep");
    let _: () = redis::cmd("HSET").arg("tame:sweep-00000000000000c2:meta").arg("fingerprint").arg("0.0.0-p2-0123456789abcdef").query(&mut c).unwrap();
    handmade_job(&mut c, "w", "sweep-00000000000000c3", "sweep");
    let _: () = redis::cmd("XGROUP").arg("DESTROY").arg("tame:sweep-00000000000000c3:tasks").arg("workers").query(&mut c).unwrap();
    let _: String = redis::cmd("XADD").arg("tame:sweep-00000000000000c3:tasks").arg("*").arg("run").arg("r").arg("task").arg("{}").query(&mut c).unwrap();
    handmade_job(&mut c, "w", "sweep-00000000000000c4", "sweep");
    let _: () = redis::cmd("DEL").arg("tame:sweep-00000000000000c4:tasks").query(&mut c).unwrap();
    // The real sweep is served all the same, and equals the local one.
    let out = root.join("dist");
    check(finish_within(distributed(&server, &cfg, &out, "0", "1", "200").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(), 120, "the real sweep"), "real sweep");
    assert_same_runs(&root.join("local"), &out);
    let log = worker.log_text();
    for id in &forged {
        assert!(log.contains(&format!("job '{}' refused", id.escape_debug())), "{id}: {log}");
    }
    assert!(!outside.exists() && !root.join("outside").exists(), "a worker wrote outside its scratch directory");
    // The refusals are said to the job's coordinator too, with the reason.
    let said = |id: &str| -> String {
        let all: HashMap<String, String> = redis::cmd("HGETALL").arg(format!("tame:{id}:refused")).query(&mut server.conn()).unwrap();
        all.get("w").cloned().unwrap_or_default()
    };
    assert!(said("sweep-00000000000000c1").contains("protocol 1"), "{}", said("sweep-00000000000000c1"));
    assert!(said("sweep-00000000000000c2").contains("other bits"), "{}", said("sweep-00000000000000c2"));
    let mut worker = worker;
    assert!(worker.child.try_wait().unwrap().is_none(), "the worker died:\n{}", worker.log_text());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_dead_workers_task_behind_many_live_ones_is_still_taken_over() {
    let root = scratch("cursor");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut c = server.conn();
    let worker = Worker::start(&server, &root, "w");
    let job = "sweep-00000000000000d1";
    unlisted_job(&mut c, "w", job, "sweep");
    let tasks = format!("tame:{job}:tasks");
    // 25 tasks held by a live peer that renews them, then one of a peer that died.
    for i in 0..26 {
        let _: String = redis::cmd("XADD").arg(&tasks).arg("*").arg("run").arg(format!("r{i}")).arg("task").arg("{not json").query(&mut c).unwrap();
    }
    let read = |c: &mut redis::Connection, consumer: &str, n: usize| -> Vec<String> {
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("workers")
            .arg(consumer)
            .arg("COUNT")
            .arg(n)
            .arg("STREAMS")
            .arg(&tasks)
            .arg(">")
            .query(c)
            .unwrap();
        reply.keys.into_iter().flat_map(|k| k.ids).map(|e| e.id).collect()
    };
    // The peers read their tasks before the job is listed, so the worker finds only theirs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = read(&mut c, "alive", 25);
    let dead = read(&mut c, "dead", 1);
    let _: () = redis::cmd("SADD").arg("tame:jobs").arg(job).query(&mut c).unwrap();
    let renewer = {
        let (stop, url, tasks, live) = (stop.clone(), server.url(), tasks.clone(), live.clone());
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: redis::Value = redis::cmd("XCLAIM").arg(&tasks).arg("workers").arg("alive").arg(0).arg(&live).arg("JUSTID").query(&mut c).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    if let Some(dead) = dead.first() {
        // Answered as failed (its task is malformed) once the worker finds it past the lease.
        let results = format!("tame:{job}:results");
        wait_for(60, "the dead peer's task to be taken over", || {
            let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING").arg(&tasks).arg("workers").arg("-").arg("+").arg(100).query(&mut c).unwrap();
            !pending.iter().any(|(id, ..)| id == dead)
        });
        let answered: usize = redis::cmd("XLEN").arg(&results).query(&mut c).unwrap();
        assert!(answered >= 1);
    } else {
        panic!("the worker read every task before the peers could: {live:?}\n{}", worker.log_text());
    }
    let held: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING").arg(&tasks).arg("workers").arg("-").arg("+").arg(100).query(&mut c).unwrap();
    assert!(held.iter().filter(|(_, owner, ..)| owner == "alive").count() == live.len(), "a live peer's task was taken");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    renewer.join().unwrap();
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_rerun_into_a_wiped_directory_is_a_new_job() {
    let root = scratch("newjob");
    let cfg = config(&root);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let out = root.join("dist");
    let first = distributed(&server, &cfg, &out, "0", "1", "200").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let old = the_job(&server, "sweep-");
    let file = std::fs::read_to_string(out.join("cluster-job.json")).unwrap();
    assert!(file.contains(&old), "{file}");
    let mut first = first;
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let second = distributed(&server, &cfg, &out, "0.1", "1", "200").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut c = server.conn();
    let mut jobs: Vec<String> = Vec::new();
    wait_for(30, "the second job", || {
        jobs = redis::cmd("SMEMBERS").arg("tame:jobs").query(&mut c).unwrap();
        jobs.len() == 2
    });
    assert!(jobs.contains(&old));
    let _w = Worker::start(&server, &root, "w");
    check(finish_within(second, 120, "the rerun"), "rerun");
    // Only the second job's run is in the directory: the first job's results never reach it.
    assert!(tame::sweep::is_finished(&out.join("runs/tau0.1__seed0")));
    assert!(!out.join("runs/tau0__seed0").exists());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn the_url_can_come_from_the_environment_and_the_password_never_reaches_argv() {
    let root = scratch("env-url");
    let cfg = config(&root);
    local(&cfg, &root.join("local"), "0", "1", "200");
    let pw = "s3cret-Pw";
    let server = Server::start(&root, &["--appendonly", "no", "--requirepass", pw]);
    let url = format!("redis://:{pw}@127.0.0.1:{}", server.port);
    let log = std::fs::File::create(root.join("envw.log")).unwrap();
    let mut worker = tame()
        .args(["worker", "--threads", "1", "--name", "envw", "--scratch"])
        .arg(root.join("scratch"))
        .env("TAME_REDIS_URL", &url)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let argv = std::fs::read(format!("/proc/{}/cmdline", worker.id())).unwrap();
    assert!(!String::from_utf8_lossy(&argv).contains(pw));
    let out = root.join("dist");
    let mut cmd = sweep_cmd(&cfg, &out, "0", "1", "200");
    cmd.args(["--redis", "--lease", "2s"]).env("TAME_REDIS_URL", &url);
    check(finish_within(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(), 120, "sweep"), "sweep with TAME_REDIS_URL");
    assert_same_runs(&root.join("local"), &out);
    let listed = tame().arg("workers").env("TAME_REDIS_URL", &url).output().unwrap();
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(text.contains("envw") && !text.contains(pw), "{text}");
    // Each worker's bits are shown, and this one's are the coordinator's.
    assert!(text.contains("protocol 2, fingerprint ") && !text.contains("differs"), "{text}");
    // Neither given: a clear error naming both ways.
    let err = error_of(tame().arg("workers").env_remove("TAME_REDIS_URL").output().unwrap());
    assert!(err.contains("--redis URL") && err.contains("TAME_REDIS_URL"), "{err}");
    worker.kill().unwrap();
    worker.wait().unwrap();
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_server_that_accepts_and_never_answers_is_an_error_within_the_timeout() {
    // A half-open peer: the connection is made, and nothing ever comes back.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for s in hole.incoming().take(64) {
            kept.push(s);
        }
    });
    let child = tame()
        .args(["workers", "--redis-timeout", "4s", "--redis", &format!("redis://127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = error_of(finish_within(child, 90, "tame workers against a silent server"));
    assert!(err.contains("still unreachable after 4 s"), "{err}");
    drop(held);
}

#[test]
fn rediss_against_a_plain_server_says_so_at_once() {
    let root = scratch("tls-plain");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let child = tame()
        .args(["workers", "--redis-timeout", "10m", "--redis", &format!("rediss://127.0.0.1:{}", server.port)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Well before the ten minutes it would retry for.
    let err = error_of(finish_within(child, 60, "rediss:// against plain TCP"));
    assert!(err.contains("plain TCP") && err.contains("redis://"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

/// The Jepsen-style campaign, two seeded rounds of it: workers killed, stopped past their lease
/// and joining, redis-server restarted from its everysec AOF, the coordinator killed and
/// resumed, every connection stalled by a proxy. Each job must equal its local run bit for bit,
/// leave no process behind and end within the bound (`tame bench chaos --rounds N` runs more).
#[test]
fn chaos_rounds_equal_the_local_runs() {
    let out = tame()
        .args([
            "bench", "chaos", "--rounds", "2", "--seed", "1", "--bound", "240s",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chaos failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout
        .lines()
        .find(|l| l.starts_with("chaos: 4/4 jobs equal"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let faults: usize = last
        .split(" under ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    // Faults that found nothing to act on are not counted; the schedule must still bite.
    assert!(
        faults >= 6,
        "only {faults} faults were inflicted:\n{stdout}"
    );
}

/// A run whose checkpoint is over what Redis may hold (a 4,096-state map fills 9,000 replay rows
/// of 32 kB: about 287 MiB) fails at once with the size and what to change; Redis never holds
/// it, and the worker goes on serving.
#[test]
fn a_checkpoint_too_large_for_redis_fails_the_run_clearly() {
    let root = scratch("toolarge");
    let mut rows: Vec<String> = (0..64).map(|_| "F".repeat(64)).collect();
    rows[0].replace_range(0..1, "S");
    rows[63].replace_range(63..64, "G");
    std::fs::write(root.join("big.txt"), rows.join("\n") + "\n").unwrap();
    let cfg = root.join("big.toml");
    let map = root.join("big.txt");
    std::fs::write(
        &cfg,
        format!(
            "agent = \"sac\"\nenv = \"map:{}\"\ncheckpoint_every = 9000\neval_episodes = 1\n[sac]\nhidden = [32, 32]\nlearning_starts = 10000\n",
            map.display()
        ),
    )
    .unwrap();
    let server = Server::start(&root, &["--appendonly", "no"]);
    let worker = Worker::start(&server, &root, "w");
    let out = distributed(&server, &cfg, &root.join("dist"), "0", "1", "9000").output().unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("over the 256 MiB a run may move through Redis") && text.contains("sac.buffer_size"), "{text}");
    let mut c = server.conn();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let peak: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory_peak:")).unwrap().trim().parse().unwrap();
    assert!(peak < 64 << 20, "Redis peaked at {peak} bytes");
    // The worker is still there and serves the next job.
    let small = config(&root);
    check(distributed(&server, &small, &root.join("small"), "0", "1", "200").output().unwrap(), "the next sweep");
    // Whether the worker meets the checkpoint while the child runs or after it exits (a race
    // under load), it logs the run's failure with the size.
    assert!(worker.log_text().contains("failed: its checkpoint at step 9000 is 287 MiB, over the 256 MiB"), "{}", worker.log_text());
    std::fs::remove_dir_all(&root).ok();
}
