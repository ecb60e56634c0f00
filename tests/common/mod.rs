//! What the integration tests against a real redis-server share (tests/cluster.rs,
//! tests/cluster_es.rs): a server of the test's own on a free loopback port, `tame worker`
//! processes, and the comparisons that make "equals the local run" bit for bit.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn tame() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tame"))
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A redis-server of the test's own, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub extra: Vec<String>,
}

impl Server {
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        let dir = root.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let port = free_port();
        let child = Self::spawn(&dir, port, &extra);
        let server = Server { child, port, dir, extra };
        server.wait_ready();
        server
    }

    pub fn spawn(dir: &Path, port: u16, extra: &[String]) -> Child {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/setup.sh installs it)")
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf) {
                    // +PONG, or -NOAUTH from a server with a password: either way it is up.
                    if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")) {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL and start again on the same port and directory (its AOF).
    pub fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        self.child = Self::spawn(&self.dir, self.port, &self.extra);
        self.wait_ready();
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tame worker`, SIGKILLed on drop.
pub struct Worker {
    pub child: Child,
    pub scratch: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
}

impl Worker {
    pub fn start(server: &Server, root: &Path, name: &str) -> Worker {
        Self::with_threads(server, root, name, 1)
    }

    /// A worker running its tasks on `threads` threads; its stderr goes to `<root>/<name>.log`.
    pub fn with_threads(server: &Server, root: &Path, name: &str, threads: usize) -> Worker {
        let scratch = root.join(format!("scratch-{name}"));
        let log_path = root.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = tame()
            .args(["worker", "--threads", &threads.to_string(), "--name", name, "--redis", &server.url()])
            .arg("--scratch")
            .arg(&scratch)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Worker { child, scratch, log: log_path }
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// What this worker wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sweep runs this worker started (its log's "run R (attempt N)" lines; the worker deletes
    /// each run's scratch copy once the run's files are sent).
    pub fn runs_served(&self) -> usize {
        self.log_text().matches("(attempt ").count()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn check(out: Output, what: &str) {
    assert!(out.status.success(), "{what}: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
}

pub fn summary(dir: &Path) -> serde_json::Value {
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    s.as_object_mut().unwrap().remove("wall_seconds");
    s.as_object_mut().unwrap().remove("checkpoint_seconds");
    s
}

pub fn final_weights(dir: &Path) -> Vec<u8> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    std::fs::read(dir.join("checkpoints").join(names.pop().unwrap()).join("tensors.safetensors")).unwrap()
}

/// Every logged scalar but the timing one, as (tag, step, value bits), after the purge rule.
pub fn scalars(dir: &Path) -> Vec<(String, u64, u64)> {
    let events = tame::tensorboard::read_events(dir).unwrap();
    assert!(events.problems.is_empty(), "{}: {:?}", dir.display(), events.problems);
    let mut out = Vec::new();
    for (tag, points) in &events.scalars {
        if tag != "charts/SPS" {
            out.extend(points.iter().map(|p| (tag.clone(), p.step, p.value.to_bits())));
        }
    }
    out
}

/// No key of any job is left behind, nor a job id.
pub fn assert_cleaned_up(server: &Server) {
    let mut c = server.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("tame:*").query(&mut c).unwrap();
    let left: Vec<&String> = keys.iter().filter(|k| !k.starts_with("tame:workers:")).collect();
    assert!(left.is_empty(), "keys left: {left:?}");
}

/// Waits until `cond` holds (panics after `secs`).
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn error_of(out: Output) -> String {
    assert!(!out.status.success(), "expected a failure; stdout: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}


/// Registers a job by hand, as a stranger on the Redis could: its id, kind and lease, and the
/// protocol and build fingerprint `worker` announces in its heartbeat (so that it is served).
pub fn handmade_job(c: &mut redis::Connection, worker: &str, id: &str, kind: &str) {
    unlisted_job(c, worker, id, kind);
    let _: () = redis::cmd("SADD").arg("tame:jobs").arg(id).query(c).unwrap();
}

/// [`handmade_job`] but not yet in `tame:jobs`, so that no worker reads its stream until the
/// caller lists it.
pub fn unlisted_job(c: &mut redis::Connection, worker: &str, id: &str, kind: &str) {
    let mut beat = None;
    wait_for(30, "the worker's first heartbeat", || {
        beat = redis::cmd("GET").arg(format!("tame:workers:{worker}")).query::<Option<String>>(c).unwrap();
        beat.is_some()
    });
    let beat: serde_json::Value = serde_json::from_str(&beat.unwrap()).unwrap();
    let (protocol, print) = (beat["protocol"].as_u64().unwrap(), beat["fingerprint"].as_str().unwrap().to_string());
    let tasks = format!("tame:{id}:tasks");
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&tasks).arg("workers").arg("0").arg("MKSTREAM").query(c).unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("tame:{id}:meta"))
        .arg("kind")
        .arg(kind)
        .arg("lease_ms")
        .arg(2000)
        .arg("protocol")
        .arg(protocol)
        .arg("fingerprint")
        .arg(print)
        .query(c)
        .unwrap();
}

/// Waits for `child` to exit, at most `secs` (then kills it and panics: a hang is a failure).
pub fn finish_within(mut child: Child, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what}: still running after {secs} s\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: our child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// The one job id on the server whose id starts with `kind` (`sweep-` or `es-`), once there is one.
pub fn the_job(server: &Server, kind: &str) -> String {
    let mut c = server.conn();
    let mut id = None;
    wait_for(60, "the job to be registered", || {
        let jobs: Vec<String> = redis::cmd("SMEMBERS").arg("tame:jobs").query(&mut c).unwrap();
        id = jobs.into_iter().find(|j| j.starts_with(kind));
        id.is_some()
    });
    id.unwrap()
}
