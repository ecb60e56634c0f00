//! Exact resume: a run SIGKILLed at a moment drawn from a seeded generator (after its first
//! checkpoint) and continued with `tame train --resume` ends with the same summary, the same
//! final weights byte for byte and the same logged scalars (after TensorBoard's restart purge)
//! as the run that was never interrupted. Evaluations flush the logs between checkpoints, so
//! the killed process has logged past its last checkpoint and the purge is exercised. Also:
//! what `--resume` refuses, and NaN replay.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tame() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tame"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Continuous SAC with `--tau auto`: small networks so a run takes a few seconds.
const SAC_AUTO: &str = "agent = \"sac\"\nenv = \"pendulum\"\ntau = \"auto\"\nsteps = 3000\neval_every = 250\n\
    eval_episodes = 2\ncheckpoint_every = 750\n[sac]\nhidden = [32, 32]\nbatch_size = 64\nlearning_starts = 200\n";
/// Discrete SAC at τ = 0 (ε-greedy, clipped double Q) on slippery FrozenLake: the env's
/// generator and the ε schedule both matter.
const SAC_HARD: &str = "agent = \"sac\"\nenv = \"frozenlake\"\ntau = 0\nsteps = 4000\neval_every = 300\n\
    eval_episodes = 5\ncheckpoint_every = 900\n[sac]\nhidden = [32, 32]\nbatch_size = 64\nlearning_starts = 200\n";
/// ES on Pendulum: generations of 64 members × 200 steps.
const ES: &str = "agent = \"es\"\nenv = \"pendulum\"\nsteps = 600000\neval_every = 30000\ncheckpoint_every = 90000\neval_episodes = 4\n\
    [es]\npopulation = 64\nhidden = [16]\n";

fn run(args: &[&str]) -> Output {
    tame().args(args).stdin(Stdio::null()).output().unwrap()
}

fn train_full(cfg: &Path, dir: &Path, threads: &str) {
    let out = run(&["train", "--quiet", "--threads", threads, "--config", cfg.to_str().unwrap(), "--run-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn checkpoints(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("checkpoints"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("step-")).count())
        .unwrap_or(0)
}

/// Starts `cmd`, waits for a checkpoint under `dir` newer than the ones there before and then
/// for the process to have flushed log points past it (an evaluation between checkpoints),
/// sleeps a moment drawn from `rng` and SIGKILLs it. Returns false if it finished first
/// (exited, or wrote its summary before the signal came).
fn kill_after_checkpoint(mut cmd: Command, dir: &Path, rng: &mut ChaCha8Rng, max_delay_ms: u64) -> bool {
    let before = newest_step(dir);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let checkpoint_step = loop {
        if let Some(name) = newest_step(dir).filter(|n| Some(n) != before.as_ref()) {
            break name.trim_start_matches("step-").parse::<u64>().unwrap();
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "no checkpoint within two minutes");
        std::thread::sleep(Duration::from_millis(5));
    };
    while newest_event_file(dir).and_then(|f| tame::tensorboard::read_events(&f).ok()).and_then(|e| e.last_step())
        <= Some(checkpoint_step)
    {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(0..max_delay_ms)));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    // A kill that lands after the run wrote its summary, just before it exits, ended nothing.
    status.signal() == Some(libc::SIGKILL) && !dir.join("summary.json").exists()
}

fn newest_event_file(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("tfevents"))
        .collect();
    files.sort();
    files.pop()
}

fn newest_step(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names.pop()
}

fn summary(dir: &Path) -> serde_json::Value {
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    s.as_object_mut().unwrap().remove("wall_seconds");
    s.as_object_mut().unwrap().remove("checkpoint_seconds");
    s
}

fn final_weights(dir: &Path) -> Vec<u8> {
    let name = newest_step(dir).unwrap();
    std::fs::read(dir.join("checkpoints").join(name).join("tensors.safetensors")).unwrap()
}

/// Every logged scalar but the timing one, as (tag, step, value bits), after the purge rule.
fn scalars(dir: &Path) -> Vec<(String, u64, u64)> {
    let events = tame::tensorboard::read_events(dir).unwrap();
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    let mut out = Vec::new();
    for (tag, points) in &events.scalars {
        if tag == "charts/SPS" {
            continue;
        }
        for p in points {
            out.push((tag.clone(), p.step, p.value.to_bits()));
        }
    }
    out
}

/// Kills a run `kills` times (each after a new checkpoint, at a drawn moment), resumes it with
/// the given thread counts, and compares it with an uninterrupted run.
fn kill_and_resume_equals_uninterrupted(name: &str, cfg_text: &str, seed: u64, kills: usize, threads: &[&str], max_delay_ms: u64) {
    let root = scratch(name);
    let cfg = config(&root, "run.toml", cfg_text);
    let full = root.join("full");
    train_full(&cfg, &full, "1");

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cut = root.join("cut");
    let mut delay = max_delay_ms;
    let mut killed = 0;
    for attempt in 0..6 {
        let _ = std::fs::remove_dir_all(&cut);
        killed = 0;
        let mut cmd = tame();
        cmd.args(["train", "--quiet", "--threads", threads[0], "--config", cfg.to_str().unwrap(), "--run-dir", cut.to_str().unwrap()]);
        if !kill_after_checkpoint(cmd, &cut, &mut rng, delay) {
            delay = (delay / 2).max(1);
            assert!(attempt < 5, "{name}: the run always finished before the kill");
            continue;
        }
        killed = 1;
        while killed < kills {
            let mut cmd = tame();
            cmd.args(["train", "--quiet", "--threads", threads[killed % threads.len()], "--resume", cut.to_str().unwrap()]);
            if !kill_after_checkpoint(cmd, &cut, &mut rng, delay) {
                break;
            }
            killed += 1;
        }
        if killed == kills {
            break;
        }
        delay = (delay / 2).max(1);
    }
    assert_eq!(killed, kills, "{name}: could not kill the run {kills} times before it finished");
    if !cut.join("summary.json").exists() {
        let out = run(&["train", "--quiet", "--threads", threads[kills % threads.len()], "--resume", cut.to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(summary(&cut), summary(&full), "{name}: summary.json");
    assert!(final_weights(&cut) == final_weights(&full), "{name}: final weights differ");
    assert_eq!(scalars(&cut), scalars(&full), "{name}: logged scalars after the restart purge");
    let files = std::fs::read_dir(&cut).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("tfevents")).count();
    assert!(files >= 2, "{name}: a resumed run appends a new event file");
    assert_python_sees_each_step_once(&cut, &scalars(&cut));
    std::fs::remove_dir_all(&root).ok();
}

/// The real `tensorboard` package (its EventAccumulator, which applies the restart purge
/// itself) reads every tag with each step once and the same values as `tame`'s reader.
fn assert_python_sees_each_step_once(dir: &Path, ours: &[(String, u64, u64)]) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make test` to install tensorboard", python.display());
    let script = r#"
import json, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
out = {}
for tag in acc.Tags()["scalars"]:
    if tag == "charts/SPS":
        continue
    out[tag] = [[e.step, struct.unpack("<I", struct.pack("<f", e.value))[0]] for e in acc.Scalars(tag)]
print(json.dumps(out))
"#;
    let out = Command::new(python).arg("-c").arg(script).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: std::collections::BTreeMap<String, Vec<(u64, u32)>> = serde_json::from_slice(&out.stdout).unwrap();
    for (tag, points) in &theirs {
        let steps: Vec<u64> = points.iter().map(|p| p.0).collect();
        let mut unique = steps.clone();
        unique.dedup();
        assert_eq!(steps, unique, "{tag}: a step appears twice in TensorBoard");
        // TensorBoard stores scalars as f32; ours are the f64 of those f32 values.
        let mine: Vec<(u64, u32)> =
            ours.iter().filter(|(t, _, _)| t == tag).map(|(_, s, v)| (*s, (f64::from_bits(*v) as f32).to_bits())).collect();
        assert_eq!(points, &mine, "{tag}: TensorBoard and tame read different points");
    }
    assert_eq!(theirs.len(), ours.iter().map(|(t, _, _)| t).collect::<std::collections::BTreeSet<_>>().len());
}

#[test]
fn continuous_sac_tau_auto_resumes_bit_for_bit_on_another_thread_count() {
    kill_and_resume_equals_uninterrupted("sac-auto", SAC_AUTO, 1, 1, &["1", "2"], 600);
}

#[test]
fn discrete_hard_sac_killed_twice_resumes_bit_for_bit() {
    kill_and_resume_equals_uninterrupted("sac-hard", SAC_HARD, 2, 2, &["2", "1"], 400);
}

#[test]
fn es_resumes_bit_for_bit() {
    kill_and_resume_equals_uninterrupted("es", ES, 3, 1, &["2", "1"], 300);
}

fn resume_error(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "expected a refusal: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn resume_refuses_what_it_cannot_continue_and_names_why() {
    let root = scratch("refuse");
    let cfg = config(&root, "run.toml", ES);
    let dir = root.join("run");
    let d = dir.to_str().unwrap();
    train_full(&cfg, &dir, "2");

    // A finished run.
    let err = resume_error(&["train", "--resume", d]);
    assert!(err.contains("is finished") && err.contains("--steps"), "{err}");
    // Flags that would change the run.
    let err = resume_error(&["train", "--resume", d, "--seed", "4"]);
    assert!(err.contains("--seed cannot be given with --resume"), "{err}");
    // Not a run, and no directory at all.
    let err = resume_error(&["train", "--resume", root.to_str().unwrap()]);
    assert!(err.contains("not a run directory"), "{err}");
    let err = resume_error(&["train", "--resume", root.join("nope").to_str().unwrap()]);
    assert!(err.contains("does not exist"), "{err}");
    // A config edited since the run started names the key.
    let config_path = dir.join("config.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, original.replace("population = 64", "population = 32")).unwrap();
    let err = resume_error(&["train", "--resume", d, "--steps", "700000"]);
    assert!(err.contains("edited since the run started") && err.contains("es.population was 64, is now 32"), "{err}");
    std::fs::write(&config_path, &original).unwrap();
    // A newest checkpoint that fails its checksum: resuming falls back to the older one and says so.
    let newest = dir.join("checkpoints").join(newest_step(&dir).unwrap());
    let tensors = newest.join("tensors.safetensors");
    let mut bytes = std::fs::read(&tensors).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&tensors, &bytes).unwrap();
    let out = run(&["train", "--quiet", "--resume", d, "--steps", "660000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("fails its checksum") && err.contains("falling back to the older checkpoint"), "{err}");
    // A checkpoint of another format version.
    let newest = dir.join("checkpoints").join(newest_step(&dir).unwrap());
    let manifest = newest.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"format\": 1", "\"format\": 7")).unwrap();
    let older: Vec<_> = std::fs::read_dir(dir.join("checkpoints")).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| *p != newest).collect();
    for p in older {
        std::fs::remove_dir_all(p).unwrap();
    }
    let err = resume_error(&["train", "--resume", d, "--steps", "900000"]);
    assert!(err.contains("format 7") && err.contains("incompatible version"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn extending_a_finished_run_continues_it() {
    let root = scratch("extend");
    let short = config(&root, "short.toml", &ES.replace("steps = 600000", "steps = 300000"));
    let dir = root.join("run");
    train_full(&short, &dir, "2");
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap(), "--steps", "600000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&dir);
    assert!(s["steps"].as_u64().unwrap() >= 600000, "{s}");
    assert_eq!(s["interrupted"], false);
    let saved = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(saved.contains("steps = 600000"), "{saved}");
    // ES has no schedule tied to the total, and this run's evaluations fall on the same
    // steps, so the extension equals a run planned for 600,000 steps from the start.
    let planned = root.join("planned");
    train_full(&config(&root, "long.toml", ES), &planned, "1");
    assert!(final_weights(&dir) == final_weights(&planned), "extended ES run differs from the planned one");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_diverging_run_stops_naming_the_quantity_and_step_and_resuming_reproduces_it() {
    // SGD with lr·λ = 50 makes θ ← θ(1 − lr·λ) + … grow 49-fold per generation until it
    // leaves f32: a real divergence, not an injected one.
    let root = scratch("nan");
    let cfg = config(
        &root,
        "diverge.toml",
        "agent = \"es\"\nenv = \"cartpole\"\nsteps = 400000\neval_every = 2000\ncheckpoint_every = 2000\neval_episodes = 2\n\
         [es]\npopulation = 16\nhidden = [8]\noptimizer = \"sgd\"\nlr = 5.0\nweight_decay = 10.0\nmomentum = 0.0\n",
    );
    let dir = root.join("run");
    let out = run(&["train", "--quiet", "--config", cfg.to_str().unwrap(), "--run-dir", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let first = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(first.contains("not finite") || first.contains("non-finite"), "{first}");
    assert!(first.contains("last good checkpoint"), "{first}");
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let second = String::from_utf8_lossy(&out.stderr).into_owned();
    let what = |e: &str| e.lines().next().unwrap_or("").split("; the last good").next().unwrap_or("").to_string();
    assert_eq!(what(&second), what(&first), "resuming reproduces the same failure at the same step");
    assert!(checkpoints(&dir) >= 1);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn eval_reads_new_checkpoints_and_runs_written_before_them() {
    let root = scratch("eval");
    let cfg = config(&root, "run.toml", &ES.replace("steps = 600000", "steps = 120000"));
    let dir = root.join("run");
    train_full(&cfg, &dir, "2");
    let eval = |dir: &Path| -> serde_json::Value {
        let out = run(&["eval", dir.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let new = eval(&dir);
    assert_eq!(new["returns"], summary(&dir)["final_eval_returns"]);
    // A run directory of the earlier layout: weights only, in checkpoints/latest.safetensors.
    let legacy = root.join("legacy");
    std::fs::create_dir_all(legacy.join("checkpoints")).unwrap();
    std::fs::copy(dir.join("config.toml"), legacy.join("config.toml")).unwrap();
    let newest = dir.join("checkpoints").join(newest_step(&dir).unwrap()).join("tensors.safetensors");
    std::fs::copy(newest, legacy.join("checkpoints/latest.safetensors")).unwrap();
    assert_eq!(eval(&legacy)["returns"], new["returns"]);
    // A truncated legacy checkpoint is named as such, not as a raw library error.
    let bytes = std::fs::read(legacy.join("checkpoints/latest.safetensors")).unwrap();
    std::fs::write(legacy.join("checkpoints/latest.safetensors"), &bytes[..bytes.len() / 3]).unwrap();
    let err = resume_error(&["eval", legacy.to_str().unwrap()]);
    assert!(err.contains("latest.safetensors") && err.contains("truncated"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_killed_sweep_started_again_resumes_its_runs_and_equals_an_uninterrupted_sweep() {
    let root = scratch("sweep");
    let cfg = config(&root, "run.toml", ES);
    let sweep = |out: &Path| {
        let mut cmd = tame();
        cmd.args(["sweep", "--quiet", "--agent", "es", "--env", "pendulum", "--taus", "0", "--seeds", "2", "--jobs", "2"])
            .args(["--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        cmd
    };
    let full = root.join("full");
    let out = sweep(&full).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // SIGKILL the sweep (its children get SIGTERM and stop at a checkpoint) once its first
    // run has checkpointed; its children may also die before stopping cleanly. Retried with a
    // shorter delay when the runs were faster than the kill.
    let cut = root.join("cut");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let runs = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("runs")).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        v.sort();
        v
    };
    let mut delay = 200;
    let mut cut_short = false;
    for _ in 0..6 {
        let _ = std::fs::remove_dir_all(&cut);
        let mut child = sweep(&cut).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !runs(&cut).iter().any(|r| newest_step(r).is_some()) && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..delay)));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let unfinished = |r: &PathBuf| !r.join("summary.json").exists() || summary(r)["interrupted"] == true;
        if runs(&cut).len() < 2 || runs(&cut).iter().any(unfinished) {
            cut_short = true;
            break;
        }
        delay = (delay / 2).max(1);
    }
    assert!(cut_short, "the sweep always finished before the kill");

    let out = sweep(&cut).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (runs(&full), runs(&cut));
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name());
        assert_eq!(summary(x), summary(y), "{}", y.display());
        assert!(final_weights(x) == final_weights(y), "{}: final weights differ", y.display());
        assert_eq!(scalars(x), scalars(y), "{}: scalars differ", y.display());
    }
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_run_killed_between_its_final_checkpoint_and_its_summary_is_finished_by_resume() {
    let root = scratch("final");
    let cfg = config(&root, "run.toml", &ES.replace("steps = 600000", "steps = 120000"));
    let dir = root.join("run");
    train_full(&cfg, &dir, "2");
    let (done, logged) = (summary(&dir), scalars(&dir));
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(summary(&dir), done);
    assert_eq!(scalars(&dir), logged, "the final evaluation is not logged twice");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn an_extended_sac_run_equals_one_planned_for_the_longer_total() {
    // τ auto has no schedule tied to the total, and a replay buffer that filled exactly
    // (capacity = steps < buffer_size) grows in order, as the planned run's never wrapped.
    let root = scratch("extend-sac");
    let short = config(&root, "short.toml", &SAC_AUTO.replace("steps = 3000", "steps = 1500"));
    let dir = root.join("run");
    train_full(&short, &dir, "1");
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap(), "--steps", "3000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let planned = root.join("planned");
    train_full(&config(&root, "long.toml", SAC_AUTO), &planned, "1");
    assert!(final_weights(&dir) == final_weights(&planned), "extended SAC run differs from the planned one");
    std::fs::remove_dir_all(&root).ok();
}

/// Small SAC on Pendulum: checkpoints at 200 and 400 and the final one at 600 (the newest two kept).
const SAC_SMALL: &str = "agent = \"sac\"\nenv = \"pendulum\"\nsteps = 600\neval_every = 100\neval_episodes = 1\n\
    checkpoint_every = 200\n[sac]\nhidden = [16, 16]\nbatch_size = 32\nlearning_starts = 100\n";

/// One finished SAC_SMALL run, trained once for every test that copies it.
fn finished_small_run() -> &'static Path {
    static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let root = scratch("small-base");
        let dir = root.join("run");
        train_full(&config(&root, "run.toml", SAC_SMALL), &dir, "1");
        dir
    })
}

/// A copy of the finished small run under `root`.
fn copy_of_small_run(root: &Path, name: &str) -> PathBuf {
    let to = root.join(name);
    let out = Command::new("cp").arg("-a").arg(finished_small_run()).arg(&to).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    to
}

fn step_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names
}

/// Makes a finished copy unfinished at its checkpoint of step 400: what a run killed between
/// its checkpoints at 400 and 600 leaves.
fn unfinish(dir: &Path) {
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    std::fs::remove_dir_all(dir.join("checkpoints/step-000000000600")).unwrap();
}

#[test]
fn stray_checkpoint_entries_are_set_aside_once_and_never_count_or_abort() {
    let root = scratch("strays");
    let dir = copy_of_small_run(&root, "run");
    let (done, logged) = (summary(&dir), scalars(&dir));
    unfinish(&dir);
    // An empty directory that sorts newest, and a regular file named like a checkpoint.
    std::fs::create_dir(dir.join("checkpoints/step-999999999999")).unwrap();
    std::fs::write(dir.join("checkpoints/step-000000000001"), b"stray").unwrap();
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for stray in ["step-999999999999", "step-000000000001"] {
        assert_eq!(err.lines().filter(|l| l.contains(stray)).count(), 1, "{stray} reported once: {err}");
    }
    assert!(err.contains("it has no manifest.json") && err.contains("it is not a directory") && err.contains("set-aside"), "{err}");
    // Retention kept two good checkpoints, the strays are kept aside for their owner.
    assert_eq!(step_names(&dir), ["step-000000000400", "step-000000000600"]);
    assert!(dir.join("checkpoints/set-aside/step-999999999999").is_dir());
    assert_eq!(std::fs::read(dir.join("checkpoints/set-aside/step-000000000001")).unwrap(), b"stray");
    assert_eq!((summary(&dir), scalars(&dir)), (done, logged), "the resumed run equals the uninterrupted one");
    // Nothing left to warn about.
    let out = run(&["eval", dir.to_str().unwrap()]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn resume_steps_below_the_planned_total_of_an_unfinished_run_is_refused_naming_it() {
    let root = scratch("shorten");
    let dir = copy_of_small_run(&root, "run");
    unfinish(&dir);
    let config_before = std::fs::read(dir.join("config.toml")).unwrap();
    let err = resume_error(&["train", "--resume", dir.to_str().unwrap(), "--steps", "500"]);
    assert!(err.contains("--steps 500") && err.contains("600 steps") && err.contains("planned"), "{err}");
    assert_eq!(std::fs::read(dir.join("config.toml")).unwrap(), config_before, "config.toml untouched");
    // Without --steps it finishes the planned 600.
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(summary(&dir)["steps"], 600);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn resume_names_a_path_that_is_not_a_directory() {
    let root = scratch("not-dir");
    let file = root.join("passwd");
    std::fs::write(&file, "root:x:0:0::/root:/bin/sh\n").unwrap();
    for args in [vec!["train", "--resume", file.to_str().unwrap()], vec!["eval", file.to_str().unwrap()]] {
        let err = resume_error(&args);
        assert!(err.contains("is not a directory") && !err.contains("does not exist"), "{args:?}: {err}");
    }
    if Path::new("/etc/passwd").is_file() {
        let err = resume_error(&["train", "--resume", "/etc/passwd"]);
        assert!(err.contains("/etc/passwd is not a directory"), "{err}");
    }
    std::fs::remove_dir_all(&root).ok();
}

/// Byte offsets at which the records of an event file end.
fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let (mut ends, mut at) = (Vec::new(), 0);
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        at += 12 + len + 4;
        if at > bytes.len() {
            break;
        }
        ends.push(at);
    }
    ends
}

/// The last step of the first `len` bytes of an event file.
fn last_step_of_prefix(bytes: &[u8], len: usize, scratch: &Path) -> Option<u64> {
    let probe = scratch.join("events.out.tfevents.probe");
    std::fs::write(&probe, &bytes[..len]).unwrap();
    tame::tensorboard::read_events(&probe).unwrap().last_step()
}

#[test]
fn logs_that_end_before_the_newest_checkpoint_resume_from_one_they_cover() {
    let root = scratch("logs-short");
    let dir = copy_of_small_run(&root, "run");
    let (done, logged) = (summary(&dir), scalars(&dir));
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    // Cut the event file after its last whole record before step 600: the logs reach the
    // checkpoint of step 400 (logged through 400) but not the final one (through 600).
    let file = newest_event_file(&dir).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let ends = record_ends(&bytes);
    let cut = *ends.iter().rev().find(|&&end| last_step_of_prefix(&bytes, end, &root) < Some(600)).unwrap();
    let end = last_step_of_prefix(&bytes, cut, &root).unwrap();
    assert!((400..600).contains(&end), "{end}");
    std::fs::write(&file, &bytes[..cut]).unwrap();
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("end at step {end}")) && err.contains("resuming from the older checkpoint at step 400"),
        "{err}"
    );
    // Steps 401..600 were trained and logged again: nothing is missing, every bit equal.
    assert_eq!((summary(&dir), scalars(&dir)), (done, logged));
    assert!(dir.join("checkpoints/set-aside/step-000000000600").is_dir());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn logs_cut_in_half_before_every_checkpoint_are_named_as_a_gap() {
    let root = scratch("logs-half");
    let dir = copy_of_small_run(&root, "run");
    let done = summary(&dir);
    unfinish(&dir);
    // Half the bytes: a torn record, and points only up to a step below 400.
    let file = newest_event_file(&dir).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let end = last_step_of_prefix(&bytes, bytes.len() / 2, &root).unwrap();
    assert!(end < 400, "{end}");
    let out = run(&["train", "--quiet", "--resume", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("end at step {end}"))
            && err.contains(&format!("no points from step {} to step 400", end + 1))
            && err.contains("continuing from step 400"),
        "{err}"
    );
    assert_eq!(summary(&dir), done, "the run itself continues bit for bit");
    // Said once: the next resume of the now finished run has no gap to report.
    let out = run(&["train", "--resume", dir.to_str().unwrap(), "--steps", "700"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("warning"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}
