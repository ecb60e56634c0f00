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

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().unwrap()
}

#[test]
fn several_envs_are_normalized_aggregated_reported_and_compared() {
    let dir = tmp("envs");
    let config = tiny_config(&dir);
    let out = dir.join("sweep");
    let (config_s, out_s) = (config.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--quiet", "--taus", "0,0.1", "--steps", "300", "--jobs", "2", "--config", config_s];
    let run = tame(&[&["sweep", "--envs", "frozenlake-noslip,frozenlake", "--seeds", "2", "--out", out_s], &common[..]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for f in ["aggregates.png", "aggregates_auc.png", "performance_profiles.png", "probability_of_improvement.png", "sample_efficiency.png"] {
        let bytes = std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(&bytes[1..4], b"PNG", "{f}");
    }
    let summary = json(&out.join("summary.json"));
    // Normalization: exact, within the time limit; the slippery lake's optimum is below 1.
    let norm = &summary["normalization"];
    assert_eq!(norm["frozenlake-noslip"]["reference"], 1.0);
    let slippery = norm["frozenlake"]["reference"].as_f64().unwrap();
    assert!(slippery > 0.7 && slippery < 0.8, "{norm}");
    // Each run's score is its own final return normalized, its directory named by env.
    for r in summary["runs"].as_array().unwrap() {
        let env = r["env"].as_str().unwrap();
        let name = r["name"].as_str().unwrap();
        assert!(name.starts_with(&format!("{env}__tau")), "{name}");
        let ret = json(&out.join("runs").join(name).join("summary.json"))["final_eval_return_mean"].as_f64().unwrap();
        let (lo, hi) = (norm[env]["random"].as_f64().unwrap(), norm[env]["reference"].as_f64().unwrap());
        assert!(close(&r["score"], (ret - lo) / (hi - lo)), "{r}");
    }
    let a = &summary["analysis"];
    assert_eq!(a["methods"].as_array().unwrap().len(), 2);
    assert_eq!(a["methods"][0]["runs_per_env"], serde_json::json!([2, 2]));
    assert_eq!(a["lead"][0]["x"], "τ=0.1");
    assert_eq!(a["lead"][0]["y"], "τ=0 (hard)");
    assert!(a["methods"][1]["final_return"]["ci"].is_array(), "two seeds: an interval");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.find("Each τ against τ = 0").unwrap() < md.find("## Aggregates").unwrap(), "{md}");
    assert_eq!(summary["groups"].as_array().unwrap().len(), 4, "2 envs × 2 τ");

    // `tame report` recomputes the same analysis from the run directories alone.
    let report = tame(&["report", out_s, "--quiet"]);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    assert_eq!(json(&out.join("summary.json"))["analysis"], summary["analysis"]);

    // A run without its summary counts as failed: kept out and reported.
    let gone = out.join("runs").join("frozenlake__tau0.1__seed1");
    std::fs::remove_file(gone.join("summary.json")).unwrap();
    let report = tame(&["report", out_s, "--quiet"]);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let after = json(&out.join("summary.json"));
    assert_eq!(after["analysis"]["methods"][1]["runs_per_env"], serde_json::json!([2, 1]));
    let notes = after["analysis"]["notes"].to_string();
    assert!(notes.contains("frozenlake__tau0.1__seed1"), "{notes}");
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("Failed runs"));

    // One seed: points without intervals, and the summary says so. Then the two sweeps are
    // compared on the env they share.
    let single = dir.join("single");
    let single_s = single.to_str().unwrap();
    let run = tame(&[&["sweep", "--env", "frozenlake-noslip", "--seeds", "1", "--out", single_s], &common[..]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let one = json(&single.join("summary.json"));
    assert!(one["analysis"]["methods"][0]["final_return"]["ci"].is_null(), "{}", one["analysis"]);
    assert!(one["analysis"]["notes"].to_string().contains("no confidence"));
    assert!(std::fs::read_to_string(single.join("summary.md")).unwrap().contains("no CI"));
    let cmp = dir.join("cmp");
    let compare = tame(&["report", out_s, "--against", single_s, "--out", cmp.to_str().unwrap(), "--quiet"]);
    assert!(compare.status.success(), "{}", String::from_utf8_lossy(&compare.stderr));
    let c = json(&cmp.join("summary.json"));
    assert_eq!(c["envs"], serde_json::json!(["frozenlake-noslip"]));
    assert_eq!(c["analysis"]["methods"].as_array().unwrap().len(), 4);
    assert_eq!(c["analysis"]["lead"].as_array().unwrap().len(), 2, "same τ on both sides");
    assert!(cmp.join("probability_of_improvement.png").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_env_without_a_normalization_is_refused_before_any_run() {
    let dir = tmp("nonorm");
    let out = dir.join("s");
    let r = tame(&["sweep", "--quiet", "--envs", "frozenlake,pendulum:discrete=3", "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(stderr.contains("'pendulum:discrete=3'") && stderr.contains("[normalization.\"pendulum:discrete=3\"]"), "{stderr}");
    assert!(!out.join("runs").exists(), "nothing ran");
    // A threshold cannot apply to two envs.
    let r = tame(&["sweep", "--quiet", "--envs", "frozenlake,cartpole", "--threshold", "1", "--out", out.to_str().unwrap()]);
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("[thresholds]"));
    std::fs::remove_dir_all(&dir).ok();
}
