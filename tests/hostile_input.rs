//! Hostile input, one test per class: numeric flags, out-of-range config values, env-name
//! options, numbers printed in a form that fits, Ctrl-C during long computations, and
//! resource limits. Each refusal exits non-zero, names the bad value and what is accepted,
//! never panics, and creates no run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().expect("running tame")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs tame expecting a refusal; checks the needles are in stderr and returns it.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let out = tame(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} was accepted: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' missing from: {err}");
    }
    err
}

/// Nothing was created under `logdir` (it exists and is empty, or does not exist).
fn assert_empty(logdir: &Path) {
    let entries: Vec<_> = std::fs::read_dir(logdir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    assert!(entries.is_empty(), "a refused start left {entries:?}");
}

/// A `rows`×`cols` lake: start top-left, goal bottom-right, frozen elsewhere.
fn write_map(dir: &Path, name: &str, rows: usize, cols: usize) -> String {
    let mut text = String::new();
    for r in 0..rows {
        for c in 0..cols {
            text.push(match (r, c) {
                (0, 0) => 'S',
                _ if r == rows - 1 && c == cols - 1 => 'G',
                _ => 'F',
            });
        }
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn numeric_flags_of_every_command_say_what_is_accepted() {
    let root = scratch("flags");
    let logdir = root.join("runs");
    let l = logdir.to_str().unwrap();
    let i64_max = "9223372036854775807";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["train", "--logdir", l, "--seed", "-1"], vec!["'-1'", "--seed", "accepted: a whole number from 0 to", i64_max]),
        (vec!["train", "--logdir", l, "--seed", "1.5"], vec!["'1.5'", "--seed", "accepted"]),
        (vec!["train", "--logdir", l, "--steps", "18446744073709551615"], vec!["18446744073709551615", "--steps", i64_max]),
        (vec!["train", "--logdir", l, "--eval-every", "0"], vec!["'0'", "--eval-every", "from 1"]),
        (vec!["train", "--logdir", l, "--eval-episodes", "-2"], vec!["'-2'", "--eval-episodes", "from 1 to 100000"]),
        (vec!["train", "--logdir", l, "--threads", "0"], vec!["'0'", "--threads", "from 1 to 1024"]),
        (vec!["train", "--logdir", l, "--tau", "1e30"], vec!["1e30", "--tau", "1000000", "f32"]),
        (vec!["train", "--logdir", l, "--agent", "es", "--sigma", "x"], vec!["'x'", "--sigma", "finite number"]),
        (vec!["eval", l, "--episodes", "0"], vec!["'0'", "--episodes", "from 1 to 100000"]),
        (vec!["sweep", "--out", l, "--seeds", "-1"], vec!["'-1'", "--seeds", "from 1 to 1000"]),
        (vec!["sweep", "--out", l, "--jobs", "0"], vec!["'0'", "--jobs", "from 1 to 1024"]),
        (vec!["sweep", "--out", l, "--eval-every", "0"], vec!["'0'", "--eval-every"]),
        (vec!["sweep", "--out", l, "--threshold", "inf"], vec!["'inf'", "--threshold", "finite"]),
        (vec!["sweep", "--out", l, "--agent", "es", "--sigmas", "0.1,-1"], vec!["'-1'", "--sigmas", "> 0"]),
        (vec!["sweep", "--out", l, "--taus", "0,2e6"], vec!["2e6", "0 ≤ τ ≤ 1e6"]),
        (vec!["solve", "--env", "frozenlake", "--tau", "auto"], vec!["'auto'", "solve takes a number", "no meaning"]),
        (vec!["solve", "--env", "frozenlake", "--tau", "-1"], vec!["'-1'", "--tau", ">= 0"]),
        (vec!["solve", "--env", "frozenlake", "--tau", "0.1", "--gamma", "1"], vec!["'1'", "--gamma", "[0, 1)"]),
        (vec!["certify", "--sweep", "--points", "100000000"], vec!["100000000", "--points", "from 2 to 1000"]),
        (vec!["certify", "--eps", "-0.1"], vec!["'-0.1'", "--eps", "> 0"]),
        (vec!["certify", "--range", "1e300"], vec!["1e300", "--range", "<= 1000000"]),
        (vec!["certify", "--env", "frozenlake", "--tau", "nan"], vec!["'nan'", "--tau"]),
        (vec!["bench", "tb", "--scalars", "-5"], vec!["'-5'", "--scalars", "from 1 to 100000000"]),
        (vec!["bench", "tb", "--tags", "0"], vec!["'0'", "--tags"]),
        (vec!["bench", "sac", "--batch", "0"], vec!["'0'", "--batch", "from 1 to 65536"]),
        (vec!["bench", "sac", "--hidden", "256,100000"], vec!["100000", "--hidden", "from 1 to 4096"]),
        (vec!["bench", "es", "--generations", "0"], vec!["'0'", "--generations"]),
        (vec!["bench", "es", "--pop", "1000000"], vec!["1000000", "--pop", "100000"]),
        (vec!["env", "bench", "--num-envs", "-3"], vec!["'-3'", "--num-envs", "from 1 to 1048576"]),
        (vec!["env", "bench", "--threads", "1,0"], vec!["'0'", "--threads"]),
    ];
    for (args, needles) in cases {
        refused(&args, &needles);
    }
    assert_empty(&logdir);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn out_of_range_config_values_are_refused_before_anything_is_created() {
    let root = scratch("config");
    let logdir = root.join("runs");
    let l = logdir.to_str().unwrap();
    let big_map = write_map(&root, "wide.txt", 100, 100);
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("eval_every = 0\n".into(), vec!["eval_every = 0", "accepted: 1 to"]),
        ("steps = 9223372036854775808\n".into(), vec!["9223372036854775808"]),
        ("tau = 1e30\n".into(), vec!["tau = 1e30", "1e6", "f32"]),
        ("[sac]\ninitial_tau = 1e30\n".into(), vec!["sac.initial_tau = 1e30", "initial_tau <= 1e6", "f32"]),
        ("[sac]\nlearning_rate = 5.0\n".into(), vec!["sac.learning_rate = 5", "<= 1"]),
        ("[sac]\npolyak = 1.5\n".into(), vec!["sac.polyak = 1.5", "polyak <= 1"]),
        ("[sac]\nbatch_size = 1000000\n".into(), vec!["sac.batch_size = 1000000", "65536"]),
        ("[sac]\nhidden = [256, 5000]\n".into(), vec!["5000", "4096"]),
        ("[sac]\ngradient_steps = 5000\n".into(), vec!["gradient_steps = 5000", "1 to 1000"]),
        ("eval_episodes = 1000000\n".into(), vec!["eval_episodes = 1000000", "1 to 100000"]),
        (format!("env = \"map:{big_map}\"\n"), vec!["10000", "parameters", "1048576"]),
        (
            "env = \"pendulum\"\nsteps = 1000000000\n[sac]\nbuffer_size = 1000000000\n".into(),
            vec!["sac.buffer_size = 1000000000", "transitions of 36 bytes", "GiB", "at most 8 GiB"],
        ),
        ("agent = \"es\"\n[es]\npopulation = 200000\n".into(), vec!["population 200000", "2 to 100000"]),
        ("agent = \"es\"\n[es]\nsigma = 1e9\n".into(), vec!["sigma 1000000000", "> 0 and <= 1000"]),
        ("agent = \"es\"\n[es]\nlr = 100.0\n".into(), vec!["lr 100", "lr ≤ 10"]),
        ("agent = \"es\"\n[es]\nhidden = [0]\n".into(), vec!["width 0", "from 1 to 4096"]),
    ];
    for (text, needles) in cases {
        let config = root.join("config.toml");
        std::fs::write(&config, &text).unwrap();
        refused(&["train", "--quiet", "--logdir", l, "--config", config.to_str().unwrap()], &needles);
    }
    // A sweep resolves its runs' configs before it creates its directory.
    let config = root.join("sweep-base.toml");
    std::fs::write(&config, "[sac]\ninitial_tau = 1e30\n").unwrap();
    refused(
        &["sweep", "--quiet", "--out", l, "--config", config.to_str().unwrap(), "--taus", "0.1"],
        &["τ = 0.1", "sac.initial_tau = 1e30", "1e6"],
    );
    refused(&["sweep", "--quiet", "--out", l, "--taus", "1e30"], &["1e30", "0 ≤ τ ≤ 1e6"]);
    assert_empty(&logdir);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn repeated_and_conflicting_env_options_are_refused_by_name() {
    let root = scratch("envnames");
    let logdir = root.join("runs");
    let l = logdir.to_str().unwrap();
    let cases: [(&str, &[&str]); 5] = [
        ("frozenlake:slippery=true:slippery=false", &["'slippery' is given twice", "at most once"]),
        ("pendulum:discrete=5:discrete=7", &["'discrete' is given twice"]),
        ("frozenlake:limit=10:limit=none", &["'limit' is given twice"]),
        ("frozenlake:slippery=true:slip=0.2", &["'slippery' and 'slip'", "one of them"]),
        ("pendulum:discrete=100000", &["discrete=100000", "from 2 to 1024"]),
    ];
    for (name, needles) in cases {
        refused(&["train", "--quiet", "--logdir", l, "--env", name], needles);
        if name.starts_with("frozenlake") {
            refused(&["solve", "--env", name, "--tau", "0.1"], needles);
        }
    }
    assert_empty(&logdir);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn extreme_numbers_print_in_a_form_that_fits() {
    let out = tame(&["solve", "--env", "frozenlake", "--tau", "1e-300"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("tau = 1e-300"), "{text}");
    assert!(text.lines().all(|l| l.len() < 160), "a line too long: {text}");

    let out = tame(&["certify", "--env", "frozenlake", "--tau", "1e-300"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1e-300") && text.lines().all(|l| l.len() < 400), "{text}");

    let out = tame(&["certify", "--eps", "1e-300", "--range", "2", "--smoothing", "lse", "--objective", "relu"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1e-300") && text.lines().all(|l| l.len() < 400), "{text}");

    // The run directory's name carries τ exactly but short.
    let root = scratch("names");
    let out = tame(&[
        "train", "--quiet", "--threads", "1", "--logdir", root.to_str().unwrap(), "--env", "frozenlake",
        "--tau", "1e-300", "--steps", "20", "--eval-episodes", "1", "--config", &small_sac(&root),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let name = Path::new(&dir).file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("frozenlake__sac__tau1e-300__seed1__"), "{name}");
    // config.toml keeps τ exactly (the TOML writer spells floats out in full).
    let config: toml::Value = toml::from_str(&std::fs::read_to_string(Path::new(&dir).join("config.toml")).unwrap()).unwrap();
    assert_eq!(config["tau"].as_float(), Some(1e-300));
    std::fs::remove_dir_all(&root).ok();
}

fn small_sac(dir: &Path) -> String {
    let path = dir.join("small.toml");
    std::fs::write(&path, "[sac]\nhidden = [16]\nbatch_size = 8\nlearning_starts = 8\n").unwrap();
    path.to_string_lossy().into_owned()
}

/// Starts `tame args`, sends SIGINT after `after`, and returns (exit code, stderr, seconds
/// from the signal to the exit). Panics if it has not exited 60 s after the signal.
fn interrupt(args: &[&str], after: Duration) -> (Option<i32>, String, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning tame");
    // Loading libtorch can take seconds on a loaded machine: wait until the process catches
    // SIGINT (bit 1 of SigCgt in /proc/PID/status), then let it get into its computation.
    let status = format!("/proc/{}/status", child.id());
    let start = Instant::now();
    while !catches_sigint(&status) {
        assert!(start.elapsed() < Duration::from_secs(60), "{args:?} never installed its Ctrl-C handler");
        assert!(child.try_wait().unwrap().is_none(), "{args:?} ended before installing its Ctrl-C handler");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(after);
    assert!(child.try_wait().unwrap().is_none(), "{args:?} ended before the signal; make it longer");
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let sent = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if sent.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("{args:?} ignored Ctrl-C for 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = sent.elapsed().as_secs_f64();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), secs)
}

/// Whether the process whose /proc status file this is has a SIGINT handler installed.
fn catches_sigint(status_path: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(status_path) else { return false };
    text.lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
}

#[test]
fn long_computations_stop_on_ctrl_c_with_exit_130() {
    let root = scratch("ctrlc");
    let map = write_map(&root, "lake.txt", 200, 200);
    let env = format!("map:{map}:slip=0.2");
    let cases: Vec<Vec<&str>> = vec![
        vec!["solve", "--env", &env, "--tau", "0.1", "--gamma", "0.99999"],
        vec!["certify", "--env", &env, "--sweep", "--points", "1000", "--gamma", "0.9999"],
        vec!["bench", "tb", "--scalars", "100000000"],
        vec!["bench", "sac", "--updates", "1000000", "--hidden", "64", "--batch", "32", "--threads", "1"],
        vec!["bench", "es", "--generations", "1000000", "--threads", "1"],
        vec!["env", "bench", "--steps", "9000000000000000000", "--threads", "1"],
    ];
    for args in cases {
        let (code, err, secs) = interrupt(&args, Duration::from_millis(1000));
        assert_eq!(code, Some(130), "{args:?}: {err}");
        assert!(err.contains("interrupted by Ctrl-C"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // Not a speed assertion: a loop that does not poll runs for minutes or hours here.
        assert!(secs < 30.0, "{args:?} took {secs:.1} s to stop");
    }
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn resources_beyond_the_limits_are_refused_with_the_numbers() {
    let root = scratch("resources");
    let logdir = root.join("runs");
    let l = logdir.to_str().unwrap();
    let wide = write_map(&root, "wide.txt", 300, 300);
    let env = format!("map:{wide}");
    let needles: &[&str] = &["more than 65536 cells", "at most 65536 cells", "256x256"];
    refused(&["solve", "--env", &env, "--tau", "0.1"], needles);
    refused(&["certify", "--env", &env, "--tau", "0.1"], needles);
    refused(&["train", "--quiet", "--logdir", l, "--env", &env], needles);

    let huge = root.join("huge.txt");
    std::fs::write(&huge, "F".repeat(5 << 20)).unwrap();
    let env = format!("map:{}", huge.display());
    refused(&["solve", "--env", &env, "--tau", "0.1"], &["more than 4194304 bytes", "at most 4194304 bytes"]);
    refused(&["solve", "--env", "map:/dev/zero", "--tau", "0.1"], &["/dev/zero", "more than 4194304 bytes"]);

    // Cliffs send the agent back to every start: many of both make the table quadratic.
    let mut text = String::new();
    for r in 0..200 {
        let row: String = (0..200).map(|c| if r == 199 && c == 199 { 'G' } else if (r + c) % 2 == 0 { 'S' } else { 'C' }).collect();
        text.push_str(&row);
        text.push('\n');
    }
    let cliffs = root.join("cliffs.txt");
    std::fs::write(&cliffs, text).unwrap();
    let env = format!("map:{}", cliffs.display());
    refused(&["solve", "--env", &env, "--tau", "0.1"], &["outcomes", "one outcome per start cell", "at most 4194304 outcomes"]);

    refused(&["sweep", "--out", l, "--seeds", "5000"], &["5000", "from 1 to 1000"]);
    assert_empty(&logdir);
    std::fs::remove_dir_all(&root).ok();
}
