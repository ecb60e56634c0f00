//! `tame env ...` as a user runs it: the built binary on the Gymnasium fixtures, on a
//! deliberately perturbed copy, and on bad input (non-zero exit, a message, no panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().expect("the tame binary runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gymnasium").join(name)
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_clean_failure(out: &Output, expected: &str) {
    let (stdout, stderr) = text(out);
    assert!(!out.status.success(), "expected a failure: {stdout}");
    // 1 for an error, 2 for a usage error caught while parsing the flags; 101 would be a panic.
    assert!(matches!(out.status.code(), Some(1 | 2)), "an error exit, not a panic: {stderr}");
    assert!(stderr.contains(expected), "stderr lacks {expected:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_trace_passes_on_the_fixtures() {
    for file in ["classic_control_seed1.json", "toy_text_tables.json"] {
        let out = tame(&["env", "check-trace", fixture(file).to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{file}: {stdout}{stderr}");
        assert!(!stdout.contains("FAIL"), "{stdout}");
    }
    let out = tame(&["env", "check-trace", "--json", fixture("classic_control_seed1.json").to_str().unwrap()]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        text(&out).0.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 9);
    for l in &lines {
        assert_eq!(l["ok"], true, "{l}");
        assert!(l["max_obs_dev"].as_f64().unwrap() <= 1e-5);
    }
}

#[test]
fn check_trace_fails_on_a_perturbed_trace() {
    let mut data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("classic_control_seed1.json")).unwrap()).unwrap();
    // 1e-4 is ten times the observation tolerance.
    let x = &mut data["pendulum_1"]["steps"][57]["obs"][2];
    *x = serde_json::json!(x.as_f64().unwrap() + 1e-4);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("envs_cli_perturbed.json");
    std::fs::write(&path, serde_json::to_string(&data).unwrap()).unwrap();
    let out = tame(&["env", "check-trace", path.to_str().unwrap()]);
    assert_clean_failure(&out, "pendulum_1");
    let (stdout, _) = text(&out);
    let line = stdout.lines().find(|l| l.starts_with("pendulum_1")).unwrap();
    assert!(line.contains("FAIL") && line.contains("1.0e-4"), "{line}");
    assert!(stdout.lines().filter(|l| l.ends_with(" ok")).count() == 8, "{stdout}");

    // A flipped flag is caught too.
    let mut data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("classic_control_seed1.json")).unwrap()).unwrap();
    data["cartpole_2"]["steps"][3]["terminated"] = serde_json::json!(true);
    std::fs::write(&path, serde_json::to_string(&data).unwrap()).unwrap();
    let out = tame(&["env", "check-trace", path.to_str().unwrap()]);
    assert_clean_failure(&out, "cartpole_2");
    assert!(text(&out).0.contains("step 3"));

    let out = tame(&["env", "check-trace", "/nonexistent/trace.json"]);
    assert_clean_failure(&out, "cannot read");
}

#[test]
fn list_shows_every_env_with_spaces_and_time_limit() {
    let out = tame(&["env", "list"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for s in ["cartpole", "CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0", "frozenlake8x8", "cliffwalking", "Discrete(48)", "map:PATH", "discrete=K"] {
        assert!(stdout.contains(s), "{s} missing from env list");
    }
    let out = tame(&["env", "list", "--json"]);
    let specs: Vec<serde_json::Value> = text(&out).0.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let limit = |name: &str| specs.iter().find(|s| s["name"] == name).unwrap()["time_limit"].clone();
    assert_eq!(limit("cartpole"), 500);
    assert_eq!(limit("pendulum"), 200);
    assert_eq!(limit("mountaincar"), 999);
    assert_eq!(limit("frozenlake"), 100);
    assert_eq!(limit("cliffwalking"), serde_json::Value::Null);
}

#[test]
fn bench_prints_one_json_object_per_measurement() {
    let out = tame(&["env", "bench", "--env", "cartpole,pendulum:discrete=3", "--num-envs", "600", "--steps", "60000", "--threads", "1,2", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2 * 2 * 2, "2 envs x 2 thread counts x (single, vector)");
    for r in &rows {
        assert!(r["steps_per_sec"].as_f64().unwrap() > 0.0);
        assert!(r["threads"] == 1 || r["threads"] == 2);
        assert!(r["num_envs"].as_u64().is_some() && r["env"].is_string());
    }
    assert!(rows.iter().any(|r| r["mode"] == "vector" && r["num_envs"] == 600));
}

#[test]
fn bad_env_names_and_maps_fail_cleanly() {
    let out = tame(&["env", "bench", "--env", "pendulm", "--steps", "10"]);
    assert_clean_failure(&out, "known envs: cartpole");
    let map = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("envs_cli_bad_map.txt");
    std::fs::write(&map, "SFF\nFFX\nFFG\n").unwrap();
    let out = tame(&["env", "bench", "--env", &format!("map:{}", map.display()), "--steps", "10"]);
    assert_clean_failure(&out, "line 2, column 3");
    let out = tame(&["env", "bench", "--env", "pendulum:discrete=1", "--steps", "10"]);
    assert_clean_failure(&out, "discrete=1");
    let out = tame(&["env", "bench", "--threads", "0", "--steps", "10"]);
    assert_clean_failure(&out, "'0' for '--threads");
}
