//! Distributed ES (`tame train --agent es --redis`) against a real redis-server of each test's
//! own: the run directory equals the local single-process run's bit for bit (summary.json
//! minus timing, the final checkpoint's tensors, every scalar after the restart purge) on 1, 2
//! and 3 workers of different thread counts, with a worker SIGKILLed mid-part, a worker
//! joining mid-run, Redis restarted mid-run from its AOF, two runs sharing one Redis, the
//! coordinator stopped or killed and resumed, and Redis gone past the timeout; malformed
//! parts written into a stream by hand are set aside while the worker goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Members × 200 Pendulum steps × episodes per member: env steps of one generation.
fn generation_steps(pop: u64, episodes: u64) -> u64 {
    pop * 200 * episodes
}

/// An ES config on Pendulum, evaluating and checkpointing every `every` env steps; with
/// `episodes` episodes per member, so that a part takes a while on one thread.
fn config(root: &Path, name: &str, episodes: u64, every: u64) -> PathBuf {
    let path = root.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "agent = \"es\"\nenv = \"pendulum\"\neval_every = {every}\neval_episodes = 3\ncheckpoint_every = {every}\n\
             [es]\npopulation = 64\nhidden = [8, 8]\nepisodes_per_member = {episodes}\n"
        ),
    )
    .unwrap();
    path
}

fn train(cfg: &Path, dir: &Path, steps: u64, threads: usize) -> Command {
    let mut cmd = tame();
    cmd.args(["train", "--quiet", "--steps", &steps.to_string(), "--threads", &threads.to_string()])
        .arg("--config")
        .arg(cfg)
        .arg("--run-dir")
        .arg(dir)
        .stdin(Stdio::null());
    cmd
}

fn local(cfg: &Path, dir: &Path, steps: u64) {
    check(train(cfg, dir, steps, 2).output().unwrap(), "local run");
}

/// The same run with its generations on the workers of `server`.
fn distributed(server: &Server, cfg: &Path, dir: &Path, steps: u64) -> Command {
    let mut cmd = train(cfg, dir, steps, 1);
    cmd.args(["--redis", &server.url(), "--lease", "1s"]);
    cmd
}

/// A distributed run in the background, its stderr in `<dir>.log`.
fn spawn(mut cmd: Command, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

fn finish(child: Child, dir: &Path, what: &str) {
    let out = child.wait_with_output().unwrap();
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    assert!(out.status.success(), "{what}: {}\n{log}", out.status);
}

fn assert_same_run(local: &Path, dist: &Path, what: &str) {
    assert_eq!(summary(local), summary(dist), "{what}: summary.json");
    assert!(final_weights(local) == final_weights(dist), "{what}: final weights differ");
    assert_eq!(scalars(local), scalars(dist), "{what}: scalars after the purge");
    assert_eq!(summary(dist)["interrupted"], false, "{what}");
}

fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoints"))
        .map(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("step-")))
        .unwrap_or(false)
}

/// The ES job ids registered on `server`.
fn es_jobs(server: &Server) -> Vec<String> {
    let mut c = server.conn();
    let jobs: Vec<String> = redis::cmd("SMEMBERS").arg("tame:jobs").query(&mut c).unwrap();
    jobs.into_iter().filter(|j| j.starts_with("es-")).collect()
}

/// Whether `worker` holds an unacknowledged part of `job` right now.
fn holds_part(server: &Server, job: &str, worker: &str) -> bool {
    let mut c = server.conn();
    let pending: redis::RedisResult<Vec<(String, String, u64, u64)>> = redis::cmd("XPENDING")
        .arg(format!("tame:{job}:tasks"))
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(100)
        .query(&mut c);
    pending.is_ok_and(|p| p.iter().any(|(_, owner, _, _)| owner == worker))
}

fn served_job(worker: &Worker) -> bool {
    worker.log_text().contains("evaluating ES parts")
}

#[test]
fn es_on_one_two_and_three_workers_of_any_thread_count_equals_the_local_run() {
    let root = scratch("es-workers");
    // Long enough (about a second on one thread) for every worker to find the job.
    let steps = 40 * generation_steps(64, 10);
    let cfg = config(&root, "es", 10, 10 * generation_steps(64, 10));
    local(&cfg, &root.join("local"), steps);
    let server = Server::start(&root, &["--appendonly", "no"]);
    for (n, threads) in [(1, vec![2]), (2, vec![1, 2]), (3, vec![1, 1, 1])] {
        let workers: Vec<Worker> =
            threads.iter().enumerate().map(|(i, &t)| Worker::with_threads(&server, &root, &format!("w{n}-{i}"), t)).collect();
        let dir = root.join(format!("dist{n}"));
        check(distributed(&server, &cfg, &dir, steps).output().unwrap(), "distributed run");
        assert_same_run(&root.join("local"), &dir, &format!("{n} workers"));
        assert!(workers.iter().all(served_job), "every one of the {n} workers served a part");
        drop(workers);
    }
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn es_on_a_map_env_ships_the_map_to_the_workers() {
    let root = scratch("es-map");
    let map = root.join("corridor.txt");
    std::fs::write(&map, "SFFF\nFHFH\nFFFG\n").unwrap();
    let cfg = root.join("map.toml");
    std::fs::write(
        &cfg,
        format!(
            "agent = \"es\"\nenv = \"map:{}\"\ntau = 0.5\neval_every = 4096\neval_episodes = 3\n[es]\npopulation = 32\nhidden = [8]\n",
            map.display()
        ),
    )
    .unwrap();
    local(&cfg, &root.join("local"), 20_000);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let worker = Worker::start(&server, &root, "mapper");
    check(distributed(&server, &cfg, &root.join("dist"), 20_000).output().unwrap(), "distributed run");
    assert_same_run(&root.join("local"), &root.join("dist"), "map env");
    let log = worker.log_text();
    assert!(log.contains("map corridor.txt (15 bytes) shipped"), "{log}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_worker_killed_mid_part_is_taken_over_with_the_same_result() {
    let root = scratch("es-kill");
    let gen = generation_steps(64, 20);
    let cfg = config(&root, "slow", 20, 2 * gen);
    local(&cfg, &root.join("local"), 6 * gen);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut doomed = Worker::start(&server, &root, "doomed");
    let dir = root.join("dist");
    let coordinator = spawn(distributed(&server, &cfg, &dir, 6 * gen), &dir);
    wait_for(60, "the ES job", || !es_jobs(&server).is_empty());
    let job = es_jobs(&server).remove(0);
    wait_for(60, "the worker to hold a part", || holds_part(&server, &job, "doomed"));
    doomed.kill();
    let rescuer = Worker::start(&server, &root, "rescuer");
    finish(coordinator, &dir, "distributed run");
    assert_same_run(&root.join("local"), &dir, "after the kill");
    let log = std::fs::read_to_string(root.join("rescuer.log")).unwrap();
    assert!(log.contains("taking over task"), "the rescuer took the dead worker's part over:\n{log}");
    drop(rescuer);
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_worker_joining_mid_run_takes_parts_and_the_result_is_the_same() {
    let root = scratch("es-join");
    let gen = generation_steps(64, 10);
    let cfg = config(&root, "join", 10, 4 * gen);
    local(&cfg, &root.join("local"), 60 * gen);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let first = Worker::start(&server, &root, "first");
    let dir = root.join("dist");
    let coordinator = spawn(distributed(&server, &cfg, &dir, 60 * gen), &dir);
    wait_for(60, "the first checkpoint", || has_checkpoint(&dir));
    let late = Worker::start(&server, &root, "late");
    finish(coordinator, &dir, "distributed run");
    assert_same_run(&root.join("local"), &dir, "late worker");
    assert!(served_job(&late), "the late worker served parts");
    drop((first, late));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn redis_restarted_mid_run_from_its_aof_loses_nothing() {
    let root = scratch("es-aof");
    let gen = generation_steps(64, 10);
    let cfg = config(&root, "aof", 10, 4 * gen);
    local(&cfg, &root.join("local"), 24 * gen);
    // everysec: a restart may lose the last second of writes, which the coordinator re-queues.
    let mut server = Server::start(&root, &["--appendonly", "yes", "--appendfsync", "everysec"]);
    let workers = [Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b")];
    let dir = root.join("dist");
    let coordinator = spawn(distributed(&server, &cfg, &dir, 24 * gen), &dir);
    wait_for(60, "the first checkpoint", || has_checkpoint(&dir));
    server.restart();
    finish(coordinator, &dir, "distributed run");
    assert_same_run(&root.join("local"), &dir, "Redis restarted");
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(log.contains("unreachable") && log.contains("is back after"), "the outage was reported:\n{log}");
    drop(workers);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn two_es_runs_share_one_redis_at_once() {
    let root = scratch("es-two");
    let gen = generation_steps(64, 4);
    let cfg = config(&root, "two", 4, 4 * gen);
    local(&cfg, &root.join("local"), 12 * gen);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let workers = [Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b")];
    let (one, two) = (root.join("one"), root.join("two"));
    let first = spawn(distributed(&server, &cfg, &one, 12 * gen), &one);
    let second = spawn(distributed(&server, &cfg, &two, 12 * gen), &two);
    finish(first, &one, "first run");
    finish(second, &two, "second run");
    assert_same_run(&root.join("local"), &one, "first run");
    assert_same_run(&root.join("local"), &two, "second run");
    drop(workers);
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_coordinator_without_workers_waits_stops_on_sigint_and_resumes_on_workers() {
    let root = scratch("es-stop");
    let gen = generation_steps(64, 1);
    let cfg = config(&root, "stop", 1, 4 * gen);
    local(&cfg, &root.join("local"), 12 * gen);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let dir = root.join("dist");
    let coordinator = spawn(distributed(&server, &cfg, &dir, 12 * gen), &dir);
    wait_for(60, "the ES job", || !es_jobs(&server).is_empty());
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: our child, not yet reaped.
    unsafe { libc::kill(coordinator.id() as libc::pid_t, libc::SIGINT) };
    let out = coordinator.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", std::fs::read_to_string(dir.with_extension("log")).unwrap());
    assert_eq!(summary(&dir)["interrupted"], true);
    assert!(es_jobs(&server).is_empty(), "the stopped run removed its job");
    let worker = Worker::start(&server, &root, "later");
    let mut resume = tame();
    resume.args(["train", "--quiet", "--threads", "1", "--redis", &server.url(), "--resume"]).arg(&dir);
    check(resume.output().unwrap(), "resumed run");
    assert_same_run(&root.join("local"), &dir, "stopped and resumed");
    drop(worker);
    assert_cleaned_up(&server);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_killed_coordinator_resumes_from_its_checkpoint_with_the_same_result() {
    let root = scratch("es-coordkill");
    let gen = generation_steps(64, 10);
    let cfg = config(&root, "ck", 10, 4 * gen);
    local(&cfg, &root.join("local"), 24 * gen);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let workers = [Worker::start(&server, &root, "a"), Worker::start(&server, &root, "b")];
    let dir = root.join("dist");
    let mut coordinator = spawn(distributed(&server, &cfg, &dir, 24 * gen), &dir);
    wait_for(60, "the first checkpoint", || has_checkpoint(&dir));
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    let mut resume = tame();
    resume.args(["train", "--quiet", "--threads", "1", "--redis", &server.url(), "--lease", "1s", "--resume"]).arg(&dir);
    check(resume.output().unwrap(), "resumed run");
    assert_same_run(&root.join("local"), &dir, "coordinator killed and resumed");
    drop(workers);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn redis_gone_past_the_timeout_stops_the_run_and_resume_carries_on() {
    let root = scratch("es-gone");
    let gen = generation_steps(64, 10);
    let cfg = config(&root, "gone", 10, 4 * gen);
    local(&cfg, &root.join("local"), 24 * gen);
    let server = Server::start(&root, &["--appendonly", "no"]);
    let worker = Worker::start(&server, &root, "a");
    let dir = root.join("dist");
    let mut cmd = distributed(&server, &cfg, &dir, 24 * gen);
    cmd.args(["--redis-timeout", "2s"]);
    let coordinator = spawn(cmd, &dir);
    wait_for(60, "the first checkpoint", || has_checkpoint(&dir));
    drop(server);
    let out = coordinator.wait_with_output().unwrap();
    assert!(!out.status.success());
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(log.contains("still unreachable after 2 s") && log.contains("last good checkpoint"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    drop(worker);
    let server = Server::start(&root.join("second"), &["--appendonly", "no"]);
    let worker = Worker::start(&server, &root, "b");
    let mut resume = tame();
    resume.args(["train", "--quiet", "--threads", "1", "--redis", &server.url(), "--resume"]).arg(&dir);
    check(resume.output().unwrap(), "resumed run");
    assert_same_run(&root.join("local"), &dir, "Redis gone, resumed elsewhere");
    drop(worker);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn malformed_es_parts_are_set_aside_with_the_reason_and_the_worker_goes_on() {
    let root = scratch("es-malformed");
    let server = Server::start(&root, &["--appendonly", "no"]);
    let mut c = server.conn();
    let mut worker = Worker::start(&server, &root, "sturdy");
    let job = "es-00000000000000bb";
    handmade_job(&mut c, "sturdy", job, "es");
    let (tasks, errors, results) = (format!("tame:{job}:tasks"), format!("tame:{job}:errors"), format!("tame:{job}:results"));
    let config = "agent = \"es\"\nenv = \"pendulum\"\ntau = 0.0\nseed = 1\nsteps = 1000\n[es]\npopulation = 8\nhidden = [4]\n";
    let part = |config: &str, recorded: usize| {
        serde_json::json!({
            "kind": "es-part", "part": 0, "first_pair": 0, "config": config,
            "generation": {"index": 0, "sigma": 0.1, "pair_seeds": [1, 2], "recorded": vec![false; recorded]},
        })
        .to_string()
    };
    let f32s = |n: usize| vec![0u8; 4 * n];
    // Pendulum: 3 features; 3-4-1 network: 3·4 + 4 + 4·1 + 1 = 21 parameters.
    let bad: Vec<(String, Vec<u8>, &str)> = vec![
        (part(config, 4), vec![1, 2, 3, 4, 5], "not whole f32s"),
        (part(config, 4), f32s(20), "θ has 20 parameters; this policy has 21"),
        (part(config, 3), f32s(21), "3 recording flags for 2 pairs"),
        (part(&config.replace("pendulum", "no-such-env"), 4), f32s(21), "no-such-env"),
        (part("agent = \"sac\"\n", 4), f32s(21), "accepted here: es"),
    ];
    for (task, theta, _) in &bad {
        let _: String = redis::cmd("XADD")
            .arg(&tasks)
            .arg("*")
            .arg("generation")
            .arg(0)
            .arg("part")
            .arg(0)
            .arg("task")
            .arg(task)
            .arg("theta")
            .arg(theta)
            .arg("obs_mean")
            .arg(f32s(3))
            .arg("obs_inv_std")
            .arg(f32s(3))
            .query(&mut c)
            .unwrap();
    }
    wait_for(30, "the malformed parts to be reported", || redis::cmd("LLEN").arg(&errors).query::<usize>(&mut c).unwrap() == bad.len());
    let reports: Vec<String> = redis::cmd("LRANGE").arg(&errors).arg(0).arg(-1).query(&mut c).unwrap();
    for (_, _, reason) in &bad {
        assert!(reports.iter().any(|r| r.contains(reason)), "{reason:?} in {reports:?}");
    }
    // Each is answered as failed (so a coordinator would stop with the reason) and removed.
    let answered: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE").arg(&results).arg("-").arg("+").query(&mut c).unwrap();
    assert_eq!(answered.iter().filter(|(_, f)| f.iter().any(|(k, _)| k == "failed")).count(), bad.len());
    let left: usize = redis::cmd("XLEN").arg(&tasks).query(&mut c).unwrap();
    assert_eq!(left, 0);
    assert!(worker.child.try_wait().unwrap().is_none(), "the worker died");
    // It still serves: a real distributed run finishes, equal to the local one.
    let gen = generation_steps(64, 1);
    let cfg = self::config(&root, "after", 1, 2 * gen);
    local(&cfg, &root.join("local"), 4 * gen);
    check(distributed(&server, &cfg, &root.join("dist"), 4 * gen).output().unwrap(), "run after bad parts");
    assert_same_run(&root.join("local"), &root.join("dist"), "after bad parts");
    worker.kill();
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn redis_flags_are_refused_where_they_do_not_apply() {
    let root = scratch("es-flags");
    let err = error_of(
        tame().args(["train", "--agent", "sac", "--steps", "100", "--redis", "redis://127.0.0.1:1"]).arg("--logdir").arg(&root).output().unwrap(),
    );
    assert!(err.contains("--redis distributes ES generations"), "{err}");
    let err = error_of(tame().args(["train", "--agent", "es", "--lease", "5s"]).output().unwrap());
    assert!(err.contains("--redis"), "{err}");
    let err = error_of(tame().args(["train", "--agent", "es", "--redis", "http://u:topsecret@h"]).output().unwrap());
    assert!(err.contains("accepted: redis://") && !err.contains("topsecret"), "{err}");
    assert!(std::fs::read_dir(&root).map_or(true, |d| d.count() == 0), "nothing was created");
    std::fs::remove_dir_all(&root).ok();
}
