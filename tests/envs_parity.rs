//! Parity with Gymnasium 1.4.0: every recorded trace replays within the fixture README's
//! tolerances, and every transition table equals Gymnasium's `env.unwrapped.P`.

use std::path::Path;

use tame_envs::parity::{check_file, TraceReport, OBS_TOL, REWARD_REL_TOL};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gymnasium").join(name)
}

fn assert_all_ok(reports: &[TraceReport]) {
    for r in reports {
        eprintln!("{r:?}");
        assert!(r.ok, "{} ({}) outside tolerance: {r:?}", r.name, r.env);
        assert!(r.steps > 0);
    }
}

#[test]
fn classic_control_traces_replay_within_tolerance() {
    let reports = check_file(&fixture("classic_control_seed1.json")).unwrap();
    assert_eq!(reports.len(), 9, "three traces per env");
    assert_all_ok(&reports);
    for r in &reports {
        assert!(r.max_obs_dev <= OBS_TOL && r.max_reward_rel_dev <= REWARD_REL_TOL);
        assert_eq!(r.first_flag_mismatch, None);
    }
}

#[test]
fn toy_text_tables_equal_gymnasium() {
    let reports = check_file(&fixture("toy_text_tables.json")).unwrap();
    assert_eq!(reports.len(), 4);
    assert_all_ok(&reports);
    for r in &reports {
        assert!(r.max_prob_dev.is_some(), "{} was compared as a table", r.name);
    }
}

#[test]
fn mujoco_v5_traces_replay_bit_for_bit() {
    let reports = check_file(&fixture("mujoco_v5.json")).unwrap();
    assert_eq!(reports.len(), 22, "two traces for each of the eleven v5 tasks");
    assert_all_ok(&reports);
    for r in &reports {
        assert!(r.exact, "{} is held to bit parity", r.name);
        assert_eq!((r.max_obs_dev, r.max_reward_rel_dev, r.max_info_dev), (0.0, 0.0, 0.0), "{r:?}");
    }
}

#[test]
fn acrobot_mountaincar_and_taxi_traces_replay_bit_for_bit() {
    let reports = check_file(&fixture("toy_classic_traces.json")).unwrap();
    assert_eq!(reports.len(), 15, "three seeds of Acrobot, MountainCar-v0, Taxi, rainy Taxi, slippery CliffWalking");
    assert_all_ok(&reports);
    for r in &reports {
        assert!(r.steps >= 2000, "{}: {} steps", r.name, r.steps);
        if r.exact && r.max_prob_dev.is_none() && !r.name.contains("rainy") && !r.name.contains("slippery") {
            assert_eq!((r.max_obs_dev, r.max_reward_rel_dev, r.first_mismatch), (0.0, 0.0, None), "{r:?}");
        }
    }
}

#[test]
fn taxi_and_slippery_cliff_tables_equal_gymnasium() {
    let reports = check_file(&fixture("toy_text_tables_23.json")).unwrap();
    assert_eq!(reports.len(), 3);
    assert_all_ok(&reports);
    for r in &reports {
        assert!(r.max_prob_dev.is_some(), "{} was compared as a table", r.name);
    }
    let taxi = reports.iter().find(|r| r.name == "taxi").unwrap();
    assert_eq!(taxi.steps, 500 * 6);
}

#[test]
fn blackjack_frequencies_match_the_card_probabilities() {
    let reports = check_file(&fixture("blackjack_trace.json")).unwrap();
    assert_eq!(reports.len(), 2, "sab and natural rules");
    assert_all_ok(&reports);
    for r in &reports {
        assert!(r.steps >= 10_000 && r.max_z.is_some(), "{r:?}");
    }
}

/// The frequency check can fail: a table with a wrong payout is refused.
#[test]
fn blackjack_frequency_check_catches_wrong_rules() {
    let text = std::fs::read_to_string(fixture("blackjack_trace.json")).unwrap();
    let mut root: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The natural-rules trace checked as if it were sab's: naturals paid 1.5 are impossible there.
    root["blackjack_natural"]["kwargs"] = serde_json::json!({});
    let reports = tame_envs::parity::check_json(&root.to_string()).unwrap();
    let r = reports.iter().find(|r| r.name == "blackjack_natural").unwrap();
    assert!(!r.ok && r.error.is_some(), "{r:?}");
}
