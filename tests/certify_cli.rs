//! `tame certify` as a user runs it: objectives, sweeps with their O(ε) slopes, gridworlds,
//! plots, and clean errors for combinations that make no sense.

use std::process::{Command, Output};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().expect("the tame binary runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = tame(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_clean_failure(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure");
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "an error exit, not a panic: {stderr}");
    assert!(stderr.contains(expected), "stderr lacks {expected:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn entry<'a>(cert: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    cert["entries"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()
}

#[test]
fn certificate_of_an_objective_matches_the_library() {
    let v = json(&["certify", "--objective", "hinge", "--smoothing", "softplus", "--eps", "0.05", "--json"]);
    assert_eq!(v["objective"], "hinge");
    let want = tame_agents::smoothing::certify("hinge".parse().unwrap(), "softplus".parse().unwrap(), 0.05, 3.0).unwrap();
    let cert = &v["certificate"];
    assert_eq!(cert["eps"].as_f64(), Some(0.05));
    for e in &want.entries {
        assert_eq!(entry(cert, e.name)["measured"].as_f64(), Some(e.measured), "{}", e.name);
        assert_eq!(entry(cert, e.name)["bound"].as_f64(), e.bound, "{}", e.name);
    }
    // softplus_β − relu peaks at log 2/β.
    assert!((want.entries[0].measured - 0.05 * 2f64.ln()).abs() < 1e-12);
}

#[test]
fn sweep_shows_linear_error_and_inverse_linear_curvature() {
    let dir = std::env::temp_dir().join(format!("tame-certify-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("sweep.png");
    let v = json(&["certify", "--objective", "relu", "--smoothing", "gelu", "--sweep", "--points", "7", "--json", "--plot", png.to_str().unwrap()]);
    assert_eq!(v["certificates"].as_array().unwrap().len(), 7);
    let slope = |k: &str| v["log_log_slopes"][k].as_f64().unwrap();
    assert!((slope("sup_error") - 1.0).abs() < 0.02, "{v}");
    assert!((slope("grad_lipschitz") + 1.0).abs() < 0.02, "{v}");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // The table form prints the same slope row.
    let out = tame(&["certify", "--objective", "abs", "--smoothing", "moreau", "--sweep", "--points", "4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("slope") && stdout.contains("sup_error"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gridworld_certificate_uses_eps_equal_tau() {
    let v = json(&["certify", "--env", "frozenlake", "--tau", "0.01", "--json"]);
    let cert = &v["certificate"];
    assert_eq!(cert["eps"].as_f64(), Some(0.01));
    let bound = 0.01 * 4f64.ln() / (1.0 - 0.99);
    for name in ["sup_error", "policy_gap"] {
        let e = entry(cert, name);
        assert!((e["bound"].as_f64().unwrap() - bound).abs() < 1e-12);
        assert!(e["measured"].as_f64().unwrap() <= bound);
    }
    assert_eq!(entry(cert, "grad_lipschitz")["bound"].as_f64(), Some(50.0));
    let sweep = json(&["certify", "--env", "cliffwalking", "--sweep", "--points", "5", "--json"]);
    assert_eq!(sweep["certificates"].as_array().unwrap().len(), 5);
}

#[test]
fn nonsensical_requests_are_clean_errors_listing_what_is_accepted() {
    assert_clean_failure(&tame(&["certify", "--objective", "zero-one", "--smoothing", "huber"]), "gaussian, softplus");
    assert_clean_failure(&tame(&["certify", "--objective", "l2"]), "abs, relu, hinge, max, zero-one");
    assert_clean_failure(&tame(&["certify", "--smoothing", "cubic"]), "gaussian, softplus, huber, gelu, lse, moreau");
    assert_clean_failure(&tame(&["certify", "--eps", "0"]), "'0' for '--eps");
    assert_clean_failure(&tame(&["certify", "--eps", "-1"]), "'-1' for '--eps");
    assert_clean_failure(&tame(&["certify", "--env", "frozenlake"]), "--tau");
    assert_clean_failure(&tame(&["certify", "--env", "frozenlake", "--eps", "0.1"]), "--eps");
    assert_clean_failure(&tame(&["certify", "--env", "cartpole", "--tau", "0.1"]), "no transition table");
    assert_clean_failure(&tame(&["certify", "--tau", "0.1"]), "--env");
    assert_clean_failure(&tame(&["certify", "--sweep", "--eps-min", "1", "--eps-max", "0.1"]), "eps-min");
}
