//! `tame train` / `tame eval` end to end: run directory layout, reproducibility, checkpoint
//! reload, and the errors bad input gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().expect("running tame")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tame train --quiet` with `args` and returns the run directory it printed.
fn train(args: &[&str]) -> PathBuf {
    let out = tame(&[&["train", "--quiet", "--threads", "1"], args].concat());
    assert!(out.status.success(), "tame train failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("config-in.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const SMALL_PENDULUM: &str = "env = \"pendulum\"\nsteps = 600\neval_every = 300\neval_episodes = 2\n\
    [sac]\nhidden = [32, 32]\nbatch_size = 64\n";

/// Every scalar of a run's event files except wall-clock ones, in a fixed order.
fn logged_scalars(dir: &Path) -> Vec<(String, u64, f64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents") {
            let events = tame::tensorboard::read_events(&path).unwrap();
            for (tag, points) in events.scalars {
                if tag == "charts/SPS" {
                    continue;
                }
                out.extend(points.iter().map(|p| (tag.clone(), p.step, p.value)));
            }
        }
    }
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

#[test]
fn same_seed_and_config_give_identical_summary_and_logs() {
    let root = scratch("repro");
    let config = write_config(&root, SMALL_PENDULUM);
    let logdir = root.to_string_lossy().into_owned();
    for extra in [&["--tau", "auto"][..], &["--env", "cartpole", "--tau", "0.05"][..]] {
        let args = [&["--config", &config, "--seed", "5", "--logdir", &logdir][..], extra].concat();
        let (a, b) = (train(&args), train(&args));
        assert_ne!(a, b, "two runs must get two directories");
        let (mut sa, mut sb) = (summary(&a), summary(&b));
        for s in [&mut sa, &mut sb] {
            s.as_object_mut().unwrap().remove("wall_seconds");
            s.as_object_mut().unwrap().remove("checkpoint_seconds");
        }
        assert_eq!(sa, sb);
        let (la, lb) = (logged_scalars(&a), logged_scalars(&b));
        assert!(la.iter().any(|(t, _, _)| t == "losses/qf1_loss"), "no losses logged: {la:?}");
        assert_eq!(la, lb, "logged losses/returns differ between identical runs");
        assert_eq!(std::fs::read(a.join("config.toml")).unwrap(), std::fs::read(b.join("config.toml")).unwrap());
    }
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn run_directory_holds_config_checkpoint_events_and_summary_and_eval_reloads_it() {
    let root = scratch("layout");
    let config = write_config(&root, SMALL_PENDULUM);
    let dir = train(&["--config", &config, "--seed", "2", "--tau", "0.2", "--logdir", &root.to_string_lossy()]);
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("pendulum__sac__tau0.2__seed2__"), "{name}");
    assert!(dir.join("checkpoints/step-000000000600/tensors.safetensors").is_file());
    let config_toml = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config_toml.contains("tau = 0.2") && config_toml.contains("learning_rate"), "{config_toml}");
    let s = summary(&dir);
    for key in ["env", "agent", "tau", "seed", "steps", "eval_episodes", "final_eval_return_mean",
        "final_eval_return_std", "wall_seconds", "final_policy_entropy"] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}: {s}");
    }
    assert_eq!(s["steps"], 600);
    assert_eq!(s["eval_episodes"], 2);
    let events = tame::tensorboard::find_runs(&dir).unwrap();
    assert!(!events.is_empty(), "no event file in {}", dir.display());
    let tags: Vec<String> = logged_scalars(&dir).into_iter().map(|t| t.0).collect();
    for tag in ["charts/episodic_return", "charts/episodic_length", "losses/qf1_loss", "losses/qf2_loss",
        "losses/qf1_values", "losses/qf2_values", "losses/actor_loss", "losses/alpha", "charts/policy_entropy", "eval/mean_return"] {
        assert!(tags.iter().any(|t| t == tag), "tag {tag} never logged");
    }
    // Histograms: returns of every evaluation, and the policy's entropy at the final one.
    let events = tame::tensorboard::read_events(&dir).unwrap();
    let returns = &events.histograms["eval/returns"];
    assert_eq!(returns.iter().map(|h| h.step).collect::<Vec<_>>(), [300, 600]);
    assert_eq!(returns[1].num, 2.0);
    assert!((returns[1].sum / 2.0 - s["final_eval_return_mean"].as_f64().unwrap()).abs() < 1e-9);
    assert!(events.histograms["eval/policy_entropy"][0].num >= 2.0);

    // `tame eval` reloads the checkpoint and reproduces the final evaluation exactly.
    let out = tame(&["eval", &dir.to_string_lossy(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["mean_return"], s["final_eval_return_mean"]);
    assert_eq!(e["checkpoint_step"], 600);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint() {
    let root = scratch("nan");
    // Absurd values such as a learning rate of 1e30 are refused up front, so drive auto-τ up
    // within the bounds instead: the largest learning rate and an unreachable target entropy
    // raise log τ by about 1 per update until τ, and the losses it scales, overflow f32.
    let config = write_config(&root, "env = \"pendulum\"\nsteps = 2000\neval_every = 200\neval_episodes = 1\n\
        [sac]\nhidden = [16, 16]\nlearning_rate = 1.0\nlearning_starts = 250\ninitial_tau = 1e6\ntarget_entropy = 1e6\n");
    let out = tame(&["train", "--quiet", "--threads", "1", "--config", &config, "--logdir", &root.to_string_lossy()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let step: u64 = err.split("is not a finite f32 at step ").nth(1).and_then(|t| t.split(';').next())
        .and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no step named: {err}"));
    assert!(step > 250, "the updates start at step 250: {err}");
    assert!(err.contains("from step 200"), "{err}");
    let run = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).unwrap();
    let out = tame(&["eval", &run.to_string_lossy(), "--json"]);
    assert!(out.status.success(), "last checkpoint unreadable: {}", String::from_utf8_lossy(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["checkpoint_step"], 200);
    assert!(e["mean_return"].as_f64().unwrap().is_finite());
    std::fs::remove_dir_all(&root).ok();
}

/// Runs `tame train` expecting failure; returns stderr.
fn train_error(args: &[&str]) -> String {
    let out = tame(&[&["train", "--quiet", "--steps", "10", "--logdir"], args].concat());
    assert!(!out.status.success(), "expected failure for {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_input_gets_a_clear_error() {
    let root = scratch("bad");
    let logdir = root.to_string_lossy().into_owned();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (vec!["--tau".into(), "-0.5".into()], vec!["-0.5", "auto"]),
        (vec!["--tau".into(), "warm".into()], vec!["warm", "auto"]),
        (vec!["--agent".into(), "ppo".into()], vec!["ppo", "sac"]),
        (vec!["--env".into(), "atari".into()], vec!["atari", "pendulum", "cartpole"]),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = std::iter::once(logdir.as_str()).chain(args.iter().map(|s| s.as_str())).collect();
        let err = train_error(&args);
        for n in needles {
            assert!(err.contains(n), "{args:?}: '{n}' missing from: {err}");
        }
    }
    let config_cases = [
        ("seeds = 3\n", vec!["seeds", "seed"]),
        ("[sac]\nlr = 0.1\n", vec!["lr", "learning_rate"]),
        ("[sac]\ngamma = 1.5\n", vec!["gamma", "1.5"]),
        ("[sac]\nhidden = []\n", vec!["hidden"]),
        ("env = \"cartpole\"\ntau = 0\n[sac]\nexploration_noise = 0.2\n", vec!["exploration_noise", "continuous", "Discrete(2)"]),
        ("env = \"pendulum\"\ntau = 0\n[sac]\nepsilon_end = 0.1\n", vec!["epsilon_end", "discrete"]),
    ];
    for (text, needles) in config_cases {
        let config = write_config(&root, text);
        let err = train_error(&[&logdir, "--config", &config]);
        for n in needles {
            assert!(err.contains(n), "{text:?}: '{n}' missing from: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    let err = train_error(&[&logdir, "--config", "/no/such/file.toml"]);
    assert!(err.contains("/no/such/file.toml"), "{err}");
    let out = tame(&["eval", &logdir]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.toml"));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn bench_sac_reports_rate_flops_and_the_same_run_sgemm_rate() {
    let out = tame(&["bench", "sac", "--hidden", "32,32", "--batch", "64", "--updates", "60", "--threads", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("no number {k} in {r}"));
    assert_eq!(r["updates"], 60);
    assert!(num("updates_per_sec") > 0.0 && num("median_updates_per_sec") > 0.0);
    // Pendulum (3 obs, 1 action), 32-32: per row, an actor pass is 3·32 + 32·32 + 32·2 = 1184
    // multiply-adds and a critic pass 4·32 + 32·32 + 32 = 1184. Target: actor + 2 critics;
    // critic step: 2 critics forward + backward without their first layer's input product
    // (2·1184 + 2·1184 + 2·(1184 − 128)); actor step: actor, 2 critics, their input products,
    // actor backward without its first layer's (1184 + 2·1184 + 2·1184 + 1184 + 1184 − 96).
    let macs_per_row = 3.0 * 1184.0 + (4.0 * 1184.0 + 2.0 * 1056.0) + (6.0 * 1184.0 + 1088.0);
    let want = 2.0 * 64.0 * macs_per_row / 1e9;
    assert!((num("gflop_per_update") - want).abs() < 1e-12, "{} vs {want}", num("gflop_per_update"));
    let sgemm = num("sgemm_gflops");
    assert!(sgemm > 0.0 && (sgemm - (num("sgemm_gflops_before") + num("sgemm_gflops_after")) / 2.0).abs() < 1e-9);
    let achieved = num("updates_per_sec") * num("gflop_per_update");
    assert!((num("fraction_of_sgemm") - achieved / sgemm).abs() < 1e-9);
}

/// A map whose goal lies behind a wall: no policy can reach a terminal state, and with
/// `limit=none` the map has no time limit, so every episode provably loops until cut.
const WALLED_GOAL: &str = "# The goal is walled off: every episode loops.\nSFWG\n";

fn scalar_points(dir: &Path, tag: &str) -> Vec<(u64, f64)> {
    let events = tame::tensorboard::read_events(dir).unwrap();
    events.scalars.get(tag).map(|ps| ps.iter().map(|p| (p.step, p.value)).collect()).unwrap_or_default()
}

#[test]
fn an_evaluation_that_would_loop_forever_ends_at_its_bound_and_says_how_many_were_cut() {
    let root = scratch("loop");
    let map = root.join("walled.txt");
    std::fs::write(&map, WALLED_GOAL).unwrap();
    let env = format!("map:{}:limit=none", map.display());
    // SAC: the default bound on an env without a time limit is 10,000 steps.
    let cfg = write_config(
        &root,
        &format!(
            "agent = \"sac\"\nenv = \"{env}\"\ntau = 0\nsteps = 300\neval_every = 300\neval_episodes = 2\n\
             [sac]\nhidden = [16, 16]\nbatch_size = 32\nlearning_starts = 100\n"
        ),
    );
    let dir = train(&["--config", &cfg, "--logdir", root.to_str().unwrap()]);
    let s = summary(&dir);
    assert_eq!(s["final_eval_returns"], serde_json::json!([0.0, 0.0]), "{s}");
    assert_eq!((s["final_eval_truncated"].as_u64(), s["eval_max_episode_steps"].as_u64()), (Some(2), Some(10_000)), "{s}");
    assert_eq!(scalar_points(&dir, "eval/truncated"), vec![(300, 2.0)]);
    let saved = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(saved.contains("eval_max_episode_steps = 10000"), "{saved}");
    // tame eval reads the bound from the run's config.
    let out = tame(&["eval", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((e["truncated"].as_u64(), e["max_episode_steps"].as_u64()), (Some(2), Some(10_000)), "{e}");
    let out = tame(&["eval", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 truncated") && text.contains("eval_max_episode_steps = 10000"), "{text}");

    // ES, with a bound from the command line; its training episodes have their own cap.
    let es = write_config(
        &root,
        &format!(
            "agent = \"es\"\nenv = \"{env}\"\nsteps = 2000\neval_every = 2000\neval_episodes = 3\n\
             [es]\npopulation = 8\nhidden = [8]\nmax_episode_steps = 50\n"
        ),
    );
    let dir = train(&["--config", &es, "--eval-max-episode-steps", "25", "--logdir", root.to_str().unwrap()]);
    let s = summary(&dir);
    assert_eq!((s["final_eval_truncated"].as_u64(), s["eval_max_episode_steps"].as_u64()), (Some(3), Some(25)), "{s}");
    assert_eq!(scalar_points(&dir, "eval/truncated").last().map(|p| p.1), Some(3.0));

    // A bound is counted on envs with a limit too: Pendulum's 200 steps cut every episode, and
    // without a bound of its own the run's is that limit.
    let dir = train(&["--config", &write_config(&root, SMALL_PENDULUM), "--logdir", root.to_str().unwrap()]);
    let s = summary(&dir);
    assert_eq!((s["final_eval_truncated"].as_u64(), s["eval_max_episode_steps"].as_u64()), (Some(2), Some(200)), "{s}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_bad_evaluation_bound_is_refused_naming_it_and_what_is_accepted() {
    let root = scratch("bad-bound");
    let out = tame(&["train", "--eval-max-episode-steps", "0", "--logdir", root.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--eval-max-episode-steps") && err.contains("'0'"), "{err}");
    for (text, want) in [
        ("eval_max_episode_steps = 0\n", "eval_max_episode_steps = 0 is out of range; accepted: 1 to"),
        ("eval_max_episode_steps = \"lots\"\n", "eval_max_episode_steps"),
        ("eval_max_episode_steps = -5\n", "eval_max_episode_steps"),
    ] {
        let cfg = write_config(&root, text);
        let out = tame(&["train", "--config", &cfg, "--logdir", root.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want) && !err.contains("panicked"), "{text}: {err}");
    }
    assert_eq!(std::fs::read_dir(&root).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count(), 0, "no run started");
    std::fs::remove_dir_all(&root).ok();
}
