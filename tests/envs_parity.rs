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

/// Fickle Taxi has no table: each step must be the dry table's move, except the one step where
/// a fickle passenger (drawn at reset with probability 0.3) changes destination, the first move
/// of the taxi with them aboard. Gymnasium's trace records each episode's draw, so its steps are
/// checked exactly; tame's own rollouts, whose draw is internal, by the same rule and the rate.
#[test]
fn fickle_taxi_follows_gymnasiums_rule_and_rate() {
    let dry = tame_envs::transition_table("taxi").unwrap();
    let cell = |s: usize| s / 20;
    let passenger = |s: usize| s / 4 % 5;
    // The dry move of (s, a), and whether a fickle passenger would change destination on it.
    let dry_step = |s: usize, a: usize| {
        let o = &dry.p[s][a];
        assert_eq!(o.len(), 1, "dry Taxi is deterministic");
        let eligible = passenger(s) == 4 && cell(o[0].next_state) != cell(s);
        (o[0].clone(), eligible)
    };
    let changed_destination = |moved: usize, t: usize| t / 4 == moved / 4 && t % 4 != moved % 4;

    let text = std::fs::read_to_string(fixture("taxi_fickle_trace.json")).unwrap();
    let root: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut changes = 0;
    for (name, trace) in root.as_object().unwrap() {
        let rows = trace["steps"].as_array().unwrap();
        assert!(rows.len() >= 2000, "{name}");
        let mut used = false;
        for (i, row) in rows.iter().enumerate() {
            let s = row[0].as_u64().unwrap() as usize;
            let a = row[1].as_u64().unwrap() as usize;
            let t = row[2].as_u64().unwrap() as usize;
            let (o, eligible) = dry_step(s, a);
            assert_eq!((row[3].as_f64().unwrap(), row[4].as_bool().unwrap()), (o.reward, o.terminated), "{name} step {i}");
            if row[6].as_bool().unwrap() && !used && eligible {
                assert!(changed_destination(o.next_state, t), "{name} step {i}: {s} -{a}-> {t}, dry {}", o.next_state);
                used = true;
                changes += 1;
            } else {
                assert_eq!(t, o.next_state, "{name} step {i}");
            }
            if row[4].as_bool().unwrap() || row[5].as_bool().unwrap() {
                used = false;
            }
        }
    }
    assert!(changes > 100, "the trace exercises the change: {changes}");

    // tame: the dry table's greedy policy picks passengers up; episodes from seeds 0..n.
    let hard = tame_agents::exact::value_iteration(&dry, 0.95, Default::default()).unwrap();
    let policy = hard.greedy_actions();
    let mut env = tame_envs::make("taxi:fickle=true").unwrap();
    let mut obs = [0f32];
    let (mut eligible_episodes, mut changed_episodes) = (0u32, 0u32);
    for episode in 0..4000u64 {
        env.reset(Some(episode), &mut obs);
        let (mut seen_eligible, mut changed) = (false, false);
        loop {
            let s = obs[0] as usize;
            let (o, eligible) = dry_step(s, policy[s]);
            let step = env.step(tame_envs::Action::Discrete(policy[s]), &mut obs).unwrap();
            let t = obs[0] as usize;
            assert_eq!((step.reward, step.terminated), (o.reward, o.terminated));
            if eligible && !seen_eligible {
                seen_eligible = true;
                eligible_episodes += 1;
                if t != o.next_state {
                    assert!(changed_destination(o.next_state, t), "episode {episode}: {s} -> {t}");
                    changed = true;
                    changed_episodes += 1;
                }
            } else {
                assert_eq!(t, o.next_state, "episode {episode}: only the first eligible move may change it (changed: {changed})");
            }
            if step.terminated || step.truncated {
                break;
            }
        }
    }
    let n = f64::from(eligible_episodes);
    let rate = f64::from(changed_episodes) / n;
    let sd = (0.3 * 0.7 / n).sqrt();
    assert!((rate - 0.3).abs() < 5.0 * sd, "{changed_episodes} of {eligible_episodes} episodes changed: {rate}");
}
