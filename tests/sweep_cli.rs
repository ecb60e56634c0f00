//! `tame sweep` end to end: a small seed-fixed sweep on FrozenLake 4x4 writes every summary
//! file and plot, its numbers match the runs' own files, a rerun trains nothing, and a run
//! that fails is reported without stopping the others.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny discrete-SAC config: small networks, short warm-up, evaluation every 100 steps.
fn tiny_config(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        "agent = \"sac\"\nenv = \"frozenlake\"\neval_every = 100\neval_episodes = 5\n\
         [sac]\nhidden = [16, 16]\nbatch_size = 32\nlearning_starts = 100\n",
    )
    .unwrap();
    path
}

fn sweep(out: &Path, config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["sweep", "--quiet", "--taus", "0,0.1", "--seeds", "2", "--steps", "300", "--jobs", "2"])
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Trapezoid area under the run's logged eval curve, divided by its step span.
fn auc_from_events(run: &Path) -> f64 {
    let events = tame::tensorboard::read_events(run).unwrap();
    let pts: Vec<(f64, f64)> =
        events.scalars["eval/mean_return"].iter().map(|p| (p.step as f64, p.value)).collect();
    assert!(pts.len() >= 2, "{pts:?}");
    let area: f64 = pts.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
    area / (pts[pts.len() - 1].0 - pts[0].0)
}

fn close(a: &Value, b: f64) -> bool {
    // The CSV/JSON keep full precision in JSON; allow only float noise.
    a.as_f64().is_some_and(|a| (a - b).abs() <= 1e-9 * (1.0 + b.abs()))
}

#[test]
fn small_sweep_writes_reports_that_match_its_runs_and_resumes_without_training() {
    let dir = tmp("ok");
    let config = tiny_config(&dir);
    let out = dir.join("sweep");
    let first = sweep(&out, &config);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    for f in ["summary.csv", "summary.md", "summary.json", "learning_curves.png", "final_return_vs_tau.png"] {
        let bytes = std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(bytes.len() > 100, "{f} is nearly empty");
        if f.ends_with(".png") {
            assert_eq!(&bytes[1..4], b"PNG", "{f} is not a PNG");
        }
    }
    let summary = json(&out.join("summary.json"));
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for (g, tau) in groups.iter().zip(["0", "0.1"]) {
        assert_eq!(g["tau"], tau);
        assert_eq!(g["seeds"], 2);
        assert_eq!(g["failed"], 0);
        let runs: Vec<PathBuf> =
            (0..2).map(|s| out.join("runs").join(format!("tau{tau}__seed{s}"))).collect();
        let finals: Vec<f64> = runs
            .iter()
            .map(|r| json(&r.join("summary.json"))["final_eval_return_mean"].as_f64().unwrap())
            .collect();
        assert!(close(&g["final_return_mean"], mean(&finals)), "{g} vs {finals:?}");
        let (lo, hi) = (g["final_return_ci_low"].as_f64().unwrap(), g["final_return_ci_high"].as_f64().unwrap());
        let (min, max) = finals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
        assert!(min <= lo && lo <= mean(&finals) && mean(&finals) <= hi && hi <= max, "{g}");
        let aucs: Vec<f64> = runs.iter().map(|r| auc_from_events(r)).collect();
        assert!(close(&g["auc_mean"], mean(&aucs)), "{g} vs {aucs:?}");
        let entropy: Vec<f64> = runs
            .iter()
            .map(|r| json(&r.join("summary.json"))["final_policy_entropy"].as_f64().unwrap())
            .collect();
        assert!(close(&g["final_entropy_mean"], mean(&entropy)), "{g} vs {entropy:?}");
        let success: Vec<f64> = runs
            .iter()
            .map(|r| json(&r.join("summary.json"))["success_rate"].as_f64().unwrap())
            .collect();
        assert!(close(&g["success_rate_mean"], mean(&success)), "{g} vs {success:?}");
        // Gridworld: the exact solver's reference columns are there, soft ≥ hard.
        let (soft, hard) = (g["exact_v_star_tau"].as_f64().unwrap(), g["exact_v_star"].as_f64().unwrap());
        assert!(soft >= hard - 1e-12 && hard > 0.0, "{g}");
    }
    let hard_entropy = groups[0]["final_entropy_mean"].as_f64().unwrap();
    assert_eq!(hard_entropy, 0.0, "τ = 0 is the hard argmax");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("0 (hard argmax)"));

    // A rerun trains nothing: every run is skipped and its files are untouched.
    let stamp = |p: PathBuf| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: Vec<_> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| stamp(out.join("runs").join(r["name"].as_str().unwrap()).join("summary.json")))
        .collect();
    let second = sweep(&out, &config);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let again = json(&out.join("summary.json"));
    for (r, t) in again["runs"].as_array().unwrap().iter().zip(before) {
        assert_eq!(r["outcome"], "skipped", "{r}");
        assert_eq!(stamp(out.join("runs").join(r["name"].as_str().unwrap()).join("summary.json")), t);
    }
    assert_eq!(again["groups"], summary["groups"], "same runs, same summary");

    // `tame inspect` reads the same runs.
    let inspect = Command::new(env!("CARGO_BIN_EXE_tame")).arg("inspect").arg(&out).arg("--json").output().unwrap();
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let rows: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(4), "{rows}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failing_run_is_reported_and_the_others_finish() {
    let dir = tmp("fail");
    let config = tiny_config(&dir);
    let out = dir.join("sweep");
    // A plain file where one run's directory should go: that run cannot write its directory.
    std::fs::create_dir_all(out.join("runs")).unwrap();
    std::fs::write(out.join("runs").join("tau0.1__seed1"), "in the way").unwrap();
    let result = sweep(&out, &config);
    assert!(!result.status.success(), "a failed run must make the sweep exit non-zero");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("1 of 4 runs failed") && stderr.contains("tau0.1__seed1"), "{stderr}");
    let summary = json(&out.join("summary.json"));
    let runs = summary["runs"].as_array().unwrap();
    let failed: Vec<&Value> = runs.iter().filter(|r| r["outcome"].as_str().unwrap().starts_with("failed")).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "tau0.1__seed1");
    for r in runs.iter().filter(|r| r["name"] != "tau0.1__seed1") {
        assert_eq!(r["outcome"], "finished", "{r}");
        assert!(out.join("runs").join(r["name"].as_str().unwrap()).join("summary.json").is_file());
    }
    assert_eq!(summary["groups"][1]["failed"], 1);
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("Failed runs"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_sweeps_are_refused_by_name() {
    let cases: [(&[&str], &str); 5] = [
        (&["--threshold", "nan"], "'nan' for '--threshold"),
        (&["--taus", "0,-1"], "-1"),
        (&["--taus", "0,warm"], "warm"),
        (&["--env", "nosuchenv"], "nosuchenv"),
        (&["--sigmas", "0.1"], "es agent"),
    ];
    for (args, needle) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tame"))
            .args(["sweep", "--quiet", "--out"])
            .arg(tmp("bad").join("s"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
