//! `tame bench chaos`: a seeded schedule of faults, in the spirit of Jepsen, run against one
//! small distributed sweep and one distributed ES run on a redis-server of its own. Workers
//! are SIGKILLed, or SIGSTOPped past their lease and resumed; workers join; redis-server is
//! restarted from an `everysec` AOF; the coordinator is SIGKILLed and resumed; a proxy between
//! every process and Redis stalls its connections silently (half-open, never closed). Each job
//! must equal its local run bit for bit, leave no process behind, and end within a bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cli_values as cv;

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Rounds, each a new fault schedule against both jobs.
    #[arg(long, default_value_t = 3, allow_hyphen_values = true, value_parser = cv::count::<1, 1000>)]
    rounds: usize,
    /// Seed of the first round's schedule (round r uses seed + r).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Workers at the start of each job.
    #[arg(long, default_value_t = 2, allow_hyphen_values = true, value_parser = cv::count::<1, 16>)]
    workers: usize,
    /// Longest a job may take under faults before the round counts as a hang.
    #[arg(long, default_value = "300s", value_parser = crate::cluster::parse_duration)]
    bound: Duration,
    /// Keep the round directories (logs, runs, the AOF) instead of removing them.
    #[arg(long)]
    keep: bool,
}

/// The lease of both jobs: short, so that stopped workers are superseded within the run.
const LEASE: &str = "1s";
/// How long Redis may stay away: well past a restart, and a socket stall is found within a
/// third of it.
const REDIS_TIMEOUT: &str = "15s";
/// Faults per job, at 0.8–2.5 s intervals from its start.
const FAULTS: usize = 6;

const SWEEP_CONFIG: &str = "agent = \"sac\"\nenv = \"frozenlake\"\neval_every = 200\neval_episodes = 5\ncheckpoint_every = 200\n\
    [sac]\nhidden = [16, 16]\nbatch_size = 32\nlearning_starts = 100\n";
const SWEEP_ARGS: [&str; 8] = [
    "--taus", "0,0.1", "--seeds", "2", "--steps", "6000", "--jobs", "2",
];
const ES_CONFIG: &str = "agent = \"es\"\nenv = \"pendulum\"\nseed = 3\nsteps = 40960000\neval_every = 10240000\neval_episodes = 3\n\
    checkpoint_every = 2048000\n[es]\npopulation = 64\nhidden = [8, 8]\nepisodes_per_member = 4\n";

/// What a fault does.
#[derive(Clone, Copy, Debug)]
enum Fault {
    KillWorker,
    StopWorker,
    JoinWorker,
    RestartRedis,
    KillCoordinator,
    StallConnections,
}

const ALL_FAULTS: [Fault; 6] = [
    Fault::KillWorker,
    Fault::StopWorker,
    Fault::JoinWorker,
    Fault::RestartRedis,
    Fault::KillCoordinator,
    Fault::StallConnections,
];

pub fn bench_chaos(args: ChaosArgs) -> anyhow::Result<()> {
    which_redis_server()?;
    let exe = std::env::current_exe().context("locating the tame executable")?;
    let root = std::env::temp_dir().join(format!("tame-bench-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let (sweep_cfg, es_cfg) = (root.join("sweep.toml"), root.join("es.toml"));
    std::fs::write(&sweep_cfg, SWEEP_CONFIG)?;
    std::fs::write(&es_cfg, ES_CONFIG)?;

    // The references: each job run locally once, timed.
    let begun = Instant::now();
    run_ok(
        Command::new(&exe)
            .args(["sweep", "--quiet"])
            .args(SWEEP_ARGS)
            .arg("--config")
            .arg(&sweep_cfg)
            .arg("--out")
            .arg(root.join("local-sweep")),
        "the local sweep",
    )?;
    let sweep_local = begun.elapsed().as_secs_f64();
    let begun = Instant::now();
    run_ok(
        Command::new(&exe)
            .args(["train", "--quiet", "--threads", "2", "--config"])
            .arg(&es_cfg)
            .arg("--run-dir")
            .arg(root.join("local-es")),
        "the local ES run",
    )?;
    let es_local = begun.elapsed().as_secs_f64();
    println!("chaos: local references: sweep of 4 SAC runs {sweep_local:.1} s, ES run {es_local:.1} s (2 threads each)");

    let (mut failed, mut inflicted) = (0, 0);
    for r in 0..args.rounds {
        crate::exit::check_interrupt("tame bench chaos")?;
        let seed = args.seed.wrapping_add(r as u64);
        let dir = root.join(format!("round-{r}"));
        std::fs::create_dir_all(&dir)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut line = format!("round {}/{} (seed {seed}):", r + 1, args.rounds);
        for job in [Job::Sweep, Job::Es] {
            let outcome = Round::new(&exe, &dir, job, args.workers)
                .and_then(|mut round| {
                    let result = round.play(&mut rng, args.bound, &sweep_cfg, &es_cfg);
                    round.stop_all();
                    result.map(|secs| (round.faults_seen.clone(), secs))
                })
                .and_then(|faults| {
                    no_process_left(&dir)?;
                    let local = root.join(match job {
                        Job::Sweep => "local-sweep",
                        Job::Es => "local-es",
                    });
                    job.compare(&local, &dir.join(job.name()))?;
                    Ok(faults)
                });
            match outcome {
                Ok((faults, secs)) => {
                    inflicted += faults.len();
                    line += &format!(
                        " {} equal to local in {secs:.1} s [{}];",
                        job.name(),
                        faults.join(", ")
                    );
                }
                Err(e) => {
                    failed += 1;
                    line += &format!(" {} FAILED: {e:#};", job.name());
                }
            }
        }
        println!("{line}");
        if !args.keep && failed == 0 {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let passed = 2 * args.rounds - failed;
    println!(
        "chaos: {passed}/{} jobs equal their local runs bit for bit under {inflicted} faults, none hung (bound {} s)",
        2 * args.rounds,
        args.bound.as_secs()
    );
    if failed > 0 {
        println!(
            "chaos: the failed rounds' directories are kept under {}",
            root.display()
        );
        bail!("{failed} of {} chaos jobs failed", 2 * args.rounds);
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        println!("chaos: kept {}", root.display());
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Job {
    Sweep,
    Es,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Sweep => "sweep",
            Job::Es => "es",
        }
    }

    /// Each run of `dist` equals the same run of `local`.
    fn compare(self, local: &Path, dist: &Path) -> anyhow::Result<()> {
        match self {
            Job::Es => same_run(local, dist),
            Job::Sweep => {
                for entry in std::fs::read_dir(local.join("runs"))? {
                    let name = entry?.file_name();
                    same_run(
                        &local.join("runs").join(&name),
                        &dist.join("runs").join(&name),
                    )
                    .with_context(|| format!("run {}", name.to_string_lossy()))?;
                }
                if std::fs::read(local.join("summary.csv"))?
                    != std::fs::read(dist.join("summary.csv"))?
                {
                    bail!("summary.csv differs");
                }
                Ok(())
            }
        }
    }
}

/// One job under one schedule of faults.
struct Round {
    exe: PathBuf,
    dir: PathBuf,
    job: Job,
    redis: Child,
    port: u16,
    proxy: Proxy,
    workers: Vec<(Child, Option<Instant>)>,
    coordinator: Option<Child>,
    started_workers: usize,
    faults_seen: Vec<String>,
}

impl Round {
    fn new(exe: &Path, dir: &Path, job: Job, workers: usize) -> anyhow::Result<Round> {
        let port = free_port()?;
        let data = dir.join(format!("redis-{}", job.name()));
        std::fs::create_dir_all(&data)?;
        let redis = start_redis(&data, port)?;
        let proxy = Proxy::start(port)?;
        let mut round = Round {
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            job,
            redis,
            port,
            proxy,
            workers: Vec::new(),
            coordinator: None,
            started_workers: 0,
            faults_seen: Vec::new(),
        };
        for _ in 0..workers {
            round.add_worker()?;
        }
        Ok(round)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.proxy.port)
    }

    fn log(&self, name: &str) -> anyhow::Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}-{name}.log", self.job.name())))?)
    }

    fn add_worker(&mut self) -> anyhow::Result<()> {
        let name = format!("{}-w{}", self.job.name(), self.started_workers);
        self.started_workers += 1;
        let child = Command::new(&self.exe)
            .args([
                "worker",
                "--threads",
                "1",
                "--name",
                &name,
                "--redis-timeout",
                REDIS_TIMEOUT,
                "--scratch",
            ])
            .arg(self.dir.join(format!("scratch-{name}")))
            .env(crate::cluster::URL_ENV, self.url())
            .stdout(Stdio::null())
            .stderr(self.log(&name)?)
            .spawn()
            .context("starting tame worker")?;
        self.workers.push((child, None));
        Ok(())
    }

    /// Starts (or, after a kill, resumes) the job's coordinator.
    fn start_coordinator(&mut self, sweep_cfg: &Path, es_cfg: &Path) -> anyhow::Result<()> {
        let out = self.dir.join(self.job.name());
        let mut cmd = Command::new(&self.exe);
        match self.job {
            // A sweep resumes by running the same command again.
            Job::Sweep => {
                cmd.args(["sweep", "--quiet"])
                    .args(SWEEP_ARGS)
                    .arg("--config")
                    .arg(sweep_cfg)
                    .arg("--out")
                    .arg(&out);
            }
            Job::Es if out.join("config.toml").exists() => {
                cmd.args(["train", "--quiet", "--threads", "1", "--resume"])
                    .arg(&out);
            }
            Job::Es => {
                cmd.args(["train", "--quiet", "--threads", "1", "--config"])
                    .arg(es_cfg)
                    .arg("--run-dir")
                    .arg(&out);
            }
        }
        cmd.args([
            "--redis",
            "--lease",
            LEASE,
            "--redis-timeout",
            REDIS_TIMEOUT,
        ])
        .env(crate::cluster::URL_ENV, self.url());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log("coordinator")?)
            .spawn()
            .context("starting the coordinator")?;
        self.coordinator = Some(child);
        Ok(())
    }

    /// Runs the job to its end under `FAULTS` faults drawn from `rng`; returns its wall time.
    fn play(
        &mut self,
        rng: &mut ChaCha8Rng,
        bound: Duration,
        sweep_cfg: &Path,
        es_cfg: &Path,
    ) -> anyhow::Result<f64> {
        let begun = Instant::now();
        self.start_coordinator(sweep_cfg, es_cfg)?;
        let mut next = begun + Duration::from_secs_f64(rng.random_range(0.3..1.5));
        let mut left = FAULTS;
        loop {
            crate::exit::check_interrupt("tame bench chaos")?;
            if begun.elapsed() > bound {
                bail!(
                    "still running after {} s (a hang); see {}",
                    bound.as_secs(),
                    self.dir.display()
                );
            }
            let coordinator = self.coordinator.as_mut().expect("started");
            if let Some(status) = coordinator.try_wait()? {
                if status.success() {
                    return Ok(begun.elapsed().as_secs_f64());
                }
                let log = std::fs::read_to_string(
                    self.dir
                        .join(format!("{}-coordinator.log", self.job.name())),
                )
                .unwrap_or_default();
                bail!(
                    "the coordinator failed ({status}): {}",
                    crate::sweep::tail(&log, 5)
                );
            }
            // Stopped workers come back after twice their lease: superseded by then.
            for (w, until) in &mut self.workers {
                if until.is_some_and(|t| Instant::now() >= t) {
                    signal(w, libc::SIGCONT);
                    *until = None;
                }
            }
            if left > 0 && Instant::now() >= next {
                let fault = ALL_FAULTS[rng.random_range(0..ALL_FAULTS.len())];
                let at = begun.elapsed().as_secs_f64();
                if let Some(what) = self.inflict(fault, rng, sweep_cfg, es_cfg)? {
                    self.faults_seen.push(format!("{what} @{at:.1}s"));
                }
                left -= 1;
                next = Instant::now() + Duration::from_secs_f64(rng.random_range(0.5..2.0));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Inflicts `fault`; says what was done (`None` when it did not apply now).
    fn inflict(
        &mut self,
        fault: Fault,
        rng: &mut ChaCha8Rng,
        sweep_cfg: &Path,
        es_cfg: &Path,
    ) -> anyhow::Result<Option<String>> {
        let running: Vec<usize> = (0..self.workers.len())
            .filter(|&i| self.workers[i].1.is_none())
            .collect();
        Ok(match fault {
            Fault::KillWorker if !running.is_empty() => {
                let i = running[rng.random_range(0..running.len())];
                let (mut w, _) = self.workers.remove(i);
                let _ = w.kill();
                let _ = w.wait();
                // One joins in its place, so that the job goes on.
                self.add_worker()?;
                Some("worker SIGKILLed".into())
            }
            Fault::StopWorker if running.len() > 1 => {
                let i = running[rng.random_range(0..running.len())];
                signal(&self.workers[i].0, libc::SIGSTOP);
                self.workers[i].1 = Some(
                    Instant::now() + 2 * crate::cluster::parse_duration(LEASE).expect("constant"),
                );
                Some("worker SIGSTOPped past its lease".into())
            }
            Fault::JoinWorker if self.workers.len() < 4 => {
                self.add_worker()?;
                Some("worker joined".into())
            }
            Fault::RestartRedis => {
                let _ = self.redis.kill();
                let _ = self.redis.wait();
                self.redis = start_redis(
                    &self.dir.join(format!("redis-{}", self.job.name())),
                    self.port,
                )?;
                Some("redis-server SIGKILLed and restarted from its AOF".into())
            }
            // ES resumes from a checkpoint: its coordinator is killed once it has one.
            Fault::KillCoordinator
                if self.job == Job::Sweep || has_checkpoint(&self.dir.join("es")) =>
            {
                let mut c = self.coordinator.take().expect("started");
                let _ = c.kill();
                let _ = c.wait();
                self.start_coordinator(sweep_cfg, es_cfg)?;
                Some("coordinator SIGKILLed and resumed".into())
            }
            Fault::StallConnections => {
                self.proxy.stall();
                Some("every connection stalled".into())
            }
            _ => None,
        })
    }

    /// SIGKILLs every process of the round.
    fn stop_all(&mut self) {
        for (w, _) in &mut self.workers {
            signal(w, libc::SIGCONT);
            let _ = w.kill();
            let _ = w.wait();
        }
        self.workers.clear();
        if let Some(mut c) = self.coordinator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.redis.kill();
        let _ = self.redis.wait();
        self.proxy.shut();
    }
}

impl Drop for Round {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A TCP proxy in front of redis-server that can stall every open connection: bytes stop
/// flowing both ways and the sockets stay open, as a half-open connection behaves. New
/// connections flow.
struct Proxy {
    port: u16,
    /// The epoch of the newest connection (1, 2, … in accept order).
    epoch: Arc<AtomicU64>,
    /// Connections of an epoch below this one are stalled.
    stall_below: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the chaos proxy")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let (epoch, stall_below, done) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (newest, stall, stop) = (epoch.clone(), stall_below.clone(), done.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                // Redis down (restarting): the client sees its connection close, and retries.
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mine = newest.fetch_add(1, Ordering::Relaxed) + 1;
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let (stall, stop) = (stall.clone(), stop.clone());
                    std::thread::spawn(move || pump(from, to, mine, &stall, &stop));
                }
            }
        });
        Ok(Proxy {
            port,
            epoch,
            stall_below,
            done,
        })
    }

    /// Stalls every connection open now; later ones flow.
    fn stall(&self) {
        self.stall_below
            .store(self.epoch.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn shut(&self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Copies bytes from `from` to `to` until either closes, or forever holds them once stalled.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    epoch: u64,
    stall_below: &AtomicU64,
    stop: &AtomicBool,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 64 * 1024];
    let mut stalled = false;
    while !stop.load(Ordering::Relaxed) {
        if !stalled && epoch < stall_below.load(Ordering::Relaxed) {
            stalled = true;
        }
        if stalled {
            // Half-open: nothing flows, nothing is closed.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

fn which_redis_server() -> anyhow::Result<()> {
    match Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => {
            bail!("tame bench chaos needs redis-server on the PATH (scripts/setup.sh installs it)")
        }
    }
}

fn start_redis(dir: &Path, port: u16) -> anyhow::Result<Child> {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut reply = [0u8; 8];
            if s.write_all(b"PING\r\n").is_ok()
                && s.read(&mut reply)
                    .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
            {
                return Ok(child);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("redis-server on port {port} did not come up within 20 s")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: our child, not yet reaped.
        unsafe { libc::kill(pid, signal) };
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            crate::sweep::tail(&String::from_utf8_lossy(&out.stderr), 5)
        );
    }
    Ok(())
}

fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoints"))
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("step-"))
        })
        .unwrap_or(false)
}

/// No process names a path under `dir` (workers, their `tame train` children, coordinators,
/// redis-server), within 10 s of the round's end: children of killed workers stop on their
/// parent-death signal.
fn no_process_left(dir: &Path) -> anyhow::Result<()> {
    let needle = dir.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(&needle) {
                left.push(format!("{pid}: {}", text.trim()));
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("processes left behind: {}", left.join("; "));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `dist` equals `local`: summary.json but its timings, the newest checkpoint's tensors, and
/// every scalar but the speed one, after the restart purge.
fn same_run(local: &Path, dist: &Path) -> anyhow::Result<()> {
    let summary = |d: &Path| -> anyhow::Result<serde_json::Value> {
        let mut s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.join("summary.json"))
                .with_context(|| format!("{}/summary.json", d.display()))?,
        )?;
        if let Some(o) = s.as_object_mut() {
            o.remove("wall_seconds");
            o.remove("checkpoint_seconds");
        }
        Ok(s)
    };
    if summary(local)? != summary(dist)? {
        bail!("summary.json differs");
    }
    let weights = |d: &Path| -> anyhow::Result<Vec<u8>> {
        let mut names: Vec<String> = std::fs::read_dir(d.join("checkpoints"))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        names.sort();
        let newest = names.pop().context("no checkpoint")?;
        Ok(std::fs::read(
            d.join("checkpoints")
                .join(newest)
                .join("tensors.safetensors"),
        )?)
    };
    if weights(local)? != weights(dist)? {
        bail!("the final weights differ");
    }
    let scalars = |d: &Path| -> anyhow::Result<Vec<(String, u64, u64)>> {
        let events = crate::tensorboard::read_events(d)?;
        if !events.problems.is_empty() {
            bail!("{}: {:?}", d.display(), events.problems);
        }
        let mut out = Vec::new();
        for (tag, points) in &events.scalars {
            if tag != "charts/SPS" {
                out.extend(
                    points
                        .iter()
                        .map(|p| (tag.clone(), p.step, p.value.to_bits())),
                );
            }
        }
        Ok(out)
    };
    if scalars(local)? != scalars(dist)? {
        bail!("the logged scalars differ");
    }
    Ok(())
}
