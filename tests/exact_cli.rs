//! `tame solve` as a user runs it: JSON keys and values that agree with the library, the
//! heat-map PNG, and clean errors on bad input.

use std::process::{Command, Output};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().expect("the tame binary runs")
}

fn assert_clean_failure(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure");
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "an error exit, not a panic: {stderr}");
    assert!(stderr.contains(expected), "stderr lacks {expected:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn solve_json_reports_the_start_state_gaps_of_the_exact_solver() {
    let out = tame(&["solve", "--env", "frozenlake8x8", "--tau", "0.1", "--gamma", "0.95", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let table = tame_envs::transition_table("frozenlake8x8").unwrap();
    let want = tame_agents::exact::reference_values(&table, 0.95, 0.1, tame_agents::soft::Regularizer::Entropy).unwrap();
    for (key, value) in [
        ("v_star", want.v_star),
        ("v_star_tau", want.v_star_tau),
        ("v_pi_tau", want.v_pi_tau),
        ("gap_soft_value", want.gap_soft_value),
        ("gap_policy", want.gap_policy),
        ("bound", want.bound),
        ("residual", want.residual),
    ] {
        assert_eq!(v[key].as_f64(), Some(value), "{key}");
    }
    assert_eq!(v["iterations"].as_u64(), Some(want.iterations as u64));
    let bound = 0.1 * 4f64.ln() / 0.05;
    assert!((want.bound - bound).abs() < 1e-12);
    assert!(want.gap_soft_value > 0.0 && want.gap_soft_value <= bound);
    assert!(want.gap_policy > 0.0 && want.gap_policy <= bound);
}

#[test]
fn solve_prints_a_table_and_draws_the_heat_maps() {
    let dir = std::env::temp_dir().join(format!("tame-solve-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("values.png");
    let out = tame(&["solve", "--env", "cliffwalking", "--tau", "0.5", "--plot", png.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for want in ["V*", "V*_tau", "V^{pi*_tau}", "bound", "iterations", "start state"] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tau_zero_is_the_hard_limit() {
    let out = tame(&["solve", "--env", "frozenlake", "--tau", "0", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["gap_soft_value"].as_f64(), Some(0.0));
    // Evaluating the greedy policy reproduces V* up to rounding.
    assert!(v["gap_policy"].as_f64().unwrap().abs() < 1e-9, "{v}");
}

#[test]
fn bad_input_is_a_clean_error() {
    assert_clean_failure(&tame(&["solve", "--env", "pendulum", "--tau", "0.1"]), "no transition table");
    assert_clean_failure(&tame(&["solve", "--env", "frozenlak", "--tau", "0.1"]), "frozenlake");
    assert_clean_failure(&tame(&["solve", "--env", "frozenlake", "--tau", "-1"]), "'-1' for '--tau");
    assert_clean_failure(&tame(&["solve", "--env", "frozenlake", "--tau", "nan"]), "'nan' for '--tau");
    assert_clean_failure(&tame(&["solve", "--env", "frozenlake", "--tau", "0.1", "--gamma", "1"]), "[0, 1)");
    assert_clean_failure(&tame(&["solve", "--env", "frozenlake", "--tau", "abc"]), "abc");
    // Taxi's states are not cells of a map: no heat map, and nothing written.
    let png = std::env::temp_dir().join(format!("tame-solve-taxi-{}.png", std::process::id()));
    assert_clean_failure(&tame(&["solve", "--env", "taxi", "--tau", "0.1", "--plot", png.to_str().unwrap()]), "--plot draws gridworlds");
    assert!(!png.exists());
}
