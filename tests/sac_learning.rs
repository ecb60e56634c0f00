//! SAC learns: seed-fixed training runs through `tame train`, each well under a minute in
//! release on one thread.

use std::path::PathBuf;
use std::process::Command;

use rand::{Rng, SeedableRng};
use tame_agents::eval::{evaluate, PolicyAction, DEFAULT_EVAL_MAX_EPISODE_STEPS};

fn train(name: &str, args: &[&str]) -> serde_json::Value {
    let logdir = std::env::temp_dir().join(format!("tame-sac-learn-{name}-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["train", "--quiet", "--threads", "1", "--logdir", &logdir.to_string_lossy()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let summary = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&logdir).ok();
    summary
}

fn config(name: &str) -> String {
    format!("{}/configs/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn discrete_soft_sac_tau_0_1_solves_nonslippery_frozenlake() {
    let s = train("fl-soft", &["--config", &config("sac-frozenlake.toml"), "--tau", "0.1", "--seed", "1"]);
    assert_eq!(s["success_rate"], 1.0, "{s}");
    assert_eq!(s["final_eval_return_mean"], 1.0, "{s}");
    // Still a soft policy: it keeps entropy at the states it visits.
    assert!(s["final_policy_entropy"].as_f64().unwrap() > 0.05, "{s}");
}

#[test]
fn hard_argmax_sac_tau_0_solves_nonslippery_frozenlake() {
    let s = train("fl-hard", &["--config", &config("sac-frozenlake.toml"), "--tau", "0", "--seed", "1"]);
    assert_eq!(s["success_rate"], 1.0, "{s}");
    assert_eq!(s["final_eval_return_mean"], 1.0, "{s}");
    assert_eq!(s["final_policy_entropy"], 0.0, "{s}");
}

#[test]
fn continuous_sac_on_pendulum_clearly_beats_random() {
    // Random policy on the same evaluation episodes.
    let mut env = tame_envs::make("pendulum").unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let random = evaluate(env.as_mut(), 10, DEFAULT_EVAL_MAX_EPISODE_STEPS, &mut |_| PolicyAction::Continuous(vec![rng.random_range(-2.0..2.0)]))
        .unwrap()
        .mean_return();
    let dir = std::env::temp_dir().join(format!("tame-sac-pendulum-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, "env = \"pendulum\"\ntau = \"auto\"\nsteps = 4000\n[sac]\nhidden = [64, 64]\nlearning_rate = 1e-3\n").unwrap();
    let s = train("pendulum", &["--config", &cfg.to_string_lossy(), "--seed", "1"]);
    std::fs::remove_dir_all(&dir).ok();
    let trained = s["final_eval_return_mean"].as_f64().unwrap();
    assert!(random < -900.0, "random baseline {random}");
    assert!(trained > -400.0 && trained > random + 600.0, "trained {trained} vs random {random}");
}
