//! The `tame-envs` contract: seeding, time limits, episode statistics, auto-reset, success,
//! action discretization, map files, and clear errors for every kind of bad input.

use std::path::PathBuf;

use tame_envs::{
    make, make_vec, spec, time_limit, transition_table, Action, Env, EnvError, EpisodeStatistics,
    Space, VecActions,
};

fn obs_buf(env: &dyn Env) -> Vec<f32> {
    vec![0.0; env.observation_space().dim()]
}

/// Pseudo-random but fixed actions for a space (no generator needed in tests).
fn action_at(space: &Space, k: usize) -> (usize, f64) {
    let h = k.wrapping_mul(2_654_435_761) >> 7;
    match space {
        Space::Discrete(n) => (h % n, 0.0),
        Space::Box { low, high } => (0, low[0] as f64 + (high[0] - low[0]) as f64 * ((h % 1000) as f64 / 999.0)),
    }
}

/// Steps `env` for up to `n` steps from `reset(seed)`, resetting on episode end; returns
/// every observation and reward.
fn rollout(name: &str, seed: u64, n: usize) -> Vec<(Vec<f32>, f64)> {
    let mut env = make(name).unwrap();
    let space = env.action_space();
    let mut obs = obs_buf(&*env);
    env.reset(Some(seed), &mut obs);
    let mut out = vec![(obs.clone(), 0.0)];
    for k in 0..n {
        let (i, x) = action_at(&space, k);
        let v = [x];
        let a = if matches!(space, Space::Discrete(_)) { Action::Discrete(i) } else { Action::Continuous(&v) };
        let r = env.step(a, &mut obs).unwrap();
        out.push((obs.clone(), r.reward));
        if r.terminated || r.truncated {
            env.reset(None, &mut obs);
            out.push((obs.clone(), 0.0));
        }
    }
    out
}

#[test]
fn same_seed_same_episode_other_seed_other_episode() {
    for name in ["cartpole", "pendulum", "mountaincar", "frozenlake", "frozenlake8x8"] {
        assert_eq!(rollout(name, 7, 300), rollout(name, 7, 300), "{name}");
        assert_ne!(rollout(name, 7, 300), rollout(name, 8, 300), "{name}");
    }
}

#[test]
fn time_limits_are_gymnasiums_and_truncate_exactly() {
    assert_eq!(time_limit("CartPole-v1").unwrap(), Some(500));
    assert_eq!(time_limit("pendulum").unwrap(), Some(200));
    assert_eq!(time_limit("MountainCarContinuous-v0").unwrap(), Some(999));
    assert_eq!(time_limit("frozenlake8x8").unwrap(), Some(100));
    assert_eq!(time_limit("cliffwalking").unwrap(), None);
    assert_eq!(time_limit("pendulum:limit=10").unwrap(), Some(10));

    let mut env = make("pendulum").unwrap();
    let mut obs = obs_buf(&*env);
    env.reset(Some(0), &mut obs);
    for t in 1..=200 {
        let r = env.step(Action::Continuous(&[0.0]), &mut obs).unwrap();
        assert!(!r.terminated);
        assert_eq!(r.truncated, t == 200, "step {t}");
    }
    assert!(matches!(env.step(Action::Continuous(&[0.0]), &mut obs), Err(EnvError::StepAfterDone)));
    env.reset(None, &mut obs);
    assert!(env.step(Action::Continuous(&[0.0]), &mut obs).is_ok(), "reset starts a new episode");

    // CliffWalking never truncates: walking into the top wall 1000 times is one episode.
    let mut cliff = make("cliffwalking").unwrap();
    let mut obs = obs_buf(&*cliff);
    cliff.reset(Some(0), &mut obs);
    for _ in 0..1000 {
        let r = cliff.step(Action::Discrete(3), &mut obs).unwrap();
        assert!(!r.terminated && !r.truncated && r.reward == -1.0);
    }
}

#[test]
fn step_after_termination_and_before_reset_are_errors() {
    let mut env = make("cartpole").unwrap();
    let mut obs = obs_buf(&*env);
    let e = env.step(Action::Discrete(0), &mut obs).unwrap_err();
    assert!(matches!(e, EnvError::StepBeforeReset), "{e}");
    env.reset(Some(1), &mut obs);
    let mut ended = false;
    for _ in 0..500 {
        if env.step(Action::Discrete(1), &mut obs).unwrap().terminated {
            ended = true;
            break;
        }
    }
    assert!(ended, "always pushing right topples the pole");
    let e = env.step(Action::Discrete(1), &mut obs).unwrap_err();
    assert!(e.to_string().contains("reset"), "{e}");
}

#[test]
fn bad_actions_are_errors_that_name_the_value() {
    let mut cp = make("cartpole").unwrap();
    let mut obs = obs_buf(&*cp);
    cp.reset(Some(0), &mut obs);
    let e = cp.step(Action::Discrete(2), &mut obs).unwrap_err().to_string();
    assert!(e.contains("action 2") && e.contains("Discrete(2)"), "{e}");
    assert!(cp.step(Action::Continuous(&[0.5]), &mut obs).is_err());

    let mut pd = make("pendulum").unwrap();
    let mut obs = obs_buf(&*pd);
    pd.reset(Some(0), &mut obs);
    let before = pd.state();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
        let e = pd.step(Action::Continuous(&[bad]), &mut obs).unwrap_err().to_string();
        assert!(e.contains("finite"), "{e}");
    }
    let e = pd.step(Action::Continuous(&[0.1, 0.2]), &mut obs).unwrap_err().to_string();
    assert!(e.contains("2 components") && e.contains("has 1"), "{e}");
    assert!(pd.step(Action::Discrete(0), &mut obs).is_err());
    assert_eq!(pd.state(), before, "rejected actions do not move the env");
    // Out-of-bounds but finite torques are clipped, as Gymnasium does.
    assert!(pd.step(Action::Continuous(&[7.5]), &mut obs).is_ok());
}

#[test]
fn bad_states_are_errors() {
    let mut pd = make("pendulum").unwrap();
    let mut obs = obs_buf(&*pd);
    assert!(pd.set_state(&[0.1], &mut obs).is_err());
    assert!(pd.set_state(&[f64::NAN, 0.0], &mut obs).is_err());
    let mut fl = make("frozenlake").unwrap();
    let mut obs = obs_buf(&*fl);
    assert!(fl.set_state(&[16.0], &mut obs).is_err());
    assert!(fl.set_state(&[2.5], &mut obs).is_err());
    fl.set_state(&[14.0], &mut obs).unwrap();
    assert_eq!(obs, vec![14.0]);
}

#[test]
fn unknown_env_lists_the_known_ones() {
    let e = make("Pendulum-v0").err().unwrap().to_string();
    for known in ["cartpole", "pendulum", "mountaincar", "frozenlake8x8", "cliffwalking", "Pendulum-v1", "map:PATH"] {
        assert!(e.contains(known), "{known} missing from: {e}");
    }
    assert!(transition_table("cartpole").is_err());
}

fn write_map(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("envs_api_{name}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn malformed_map_files_are_errors_with_line_and_column() {
    let cases = [
        ("badchar", "# comment\nSFF\nF?F\nFFG\n", "line 3, column 2"),
        ("ragged", "SFFF\nFFF\nFFFG\n", "line 2 has 3 cells but line 1 has 4"),
        ("nostart", "FFF\nFFG\n", "no start"),
        ("nogoal", "SFF\nFFF\n", "no goal"),
    ];
    for (name, text, expected) in cases {
        let path = write_map(name, text);
        let e = make(&format!("map:{}", path.display())).err().unwrap().to_string();
        assert!(e.contains(expected) && e.contains(&*path.to_string_lossy()), "{name}: {e}");
    }
    let e = make("map:/nonexistent/lake.txt").err().unwrap().to_string();
    assert!(e.contains("cannot read"), "{e}");
}

#[test]
fn map_files_build_tabular_envs_with_walls_cliffs_and_slip() {
    let path = write_map("ok", "SWG\nFCF\n");
    let name = format!("map:{}", path.display());
    let t = transition_table(&name).unwrap();
    assert_eq!((t.n_states, t.n_actions), (6, 4));
    assert_eq!(t.initial, vec![(0, 1.0)]);
    // FrozenLake numbering: RIGHT = 2 from cell 3 falls off the cliff back to the start.
    assert_eq!((t.p[3][2][0].next_state, t.p[3][2][0].reward), (0, -100.0));
    let slippery = transition_table(&format!("{name}:slip=0.2")).unwrap();
    let total: f64 = slippery.p[3][2].iter().map(|o| o.prob).sum();
    assert!((total - 1.0).abs() < 1e-12 && slippery.p[3][2].len() > 1);
    assert_eq!(spec(&name).unwrap().time_limit, Some(100));
    for shipped in ["configs/maps/bridge.txt", "configs/maps/rooms.txt"] {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(shipped);
        transition_table(&format!("map:{}", p.display())).unwrap();
    }
}

#[test]
fn sampled_transitions_follow_the_table() {
    let table = transition_table("frozenlake").unwrap();
    let mut env = make("frozenlake").unwrap();
    let mut obs = obs_buf(&*env);
    env.reset(Some(3), &mut obs);
    let (s, a, n) = (6usize, 0usize, 30_000);
    let mut counts = vec![0usize; table.n_states];
    for _ in 0..n {
        env.set_state(&[s as f64], &mut obs).unwrap();
        env.step(Action::Discrete(a), &mut obs).unwrap();
        counts[obs[0] as usize] += 1;
    }
    for o in &table.p[s][a] {
        let freq = counts[o.next_state] as f64 / n as f64;
        assert!((freq - o.prob).abs() < 0.015, "P({} | {s}, {a}) = {} but sampled {freq}", o.next_state, o.prob);
    }
}

#[test]
fn success_means_reaching_the_goal() {
    let mut env = make("frozenlake-noslip").unwrap();
    let mut obs = obs_buf(&*env);
    env.reset(Some(0), &mut obs);
    // DOWN, DOWN, RIGHT, RIGHT, DOWN, RIGHT: 0 → 4 → 8 → 9 → 10 → 14 → 15 (goal).
    let mut last = None;
    for a in [1, 1, 2, 2, 1, 2] {
        assert_eq!(env.success(), Some(false));
        last = Some(env.step(Action::Discrete(a), &mut obs).unwrap());
    }
    let last = last.unwrap();
    assert!(last.terminated && last.reward > 0.0);
    assert_eq!((obs[0], env.success()), (15.0, Some(true)));

    env.reset(None, &mut obs);
    env.step(Action::Discrete(2), &mut obs).unwrap();
    let r = env.step(Action::Discrete(1), &mut obs).unwrap();
    assert!(r.terminated && r.reward == 0.0, "cell 5 is a hole");
    assert_eq!(env.success(), Some(false));
    assert_eq!(make("pendulum").unwrap().success(), None);
}

#[test]
fn episode_statistics_sum_rewards_and_count_steps() {
    let mut env = EpisodeStatistics::new(make("cartpole").unwrap());
    let mut obs = vec![0.0; 4];
    env.reset(Some(5), &mut obs);
    let (mut total, mut steps) = (0.0, 0);
    loop {
        let r = env.step(Action::Discrete(steps % 2), &mut obs).unwrap();
        total += r.reward;
        steps += 1;
        if r.terminated || r.truncated {
            break;
        }
    }
    let stats = env.last_episode().unwrap();
    assert_eq!((stats.episode_return, stats.length as usize), (total, steps));
}

#[test]
fn discretized_actions_are_evenly_spaced_torques() {
    let mut d = make("pendulum:discrete=5").unwrap();
    let mut c = make("pendulum").unwrap();
    assert_eq!(d.action_space(), Space::Discrete(5));
    let (mut od, mut oc) = (vec![0.0; 3], vec![0.0; 3]);
    d.reset(Some(4), &mut od);
    c.reset(Some(4), &mut oc);
    for (i, torque) in [(0, -2.0), (1, -1.0), (2, 0.0), (3, 1.0), (4, 2.0)].into_iter().cycle().take(50) {
        let rd = d.step(Action::Discrete(i), &mut od).unwrap();
        let rc = c.step(Action::Continuous(&[torque]), &mut oc).unwrap();
        assert_eq!((rd, &od), (rc, &oc));
    }
    let e = d.step(Action::Discrete(5), &mut od).unwrap_err().to_string();
    assert!(e.contains("Discrete(5)"), "{e}");
    assert!(make("cartpole:discrete=4").is_err());
    assert_eq!(spec("mountaincar:discrete=3").unwrap().action_space, Space::Discrete(3));
}

#[test]
fn vectorized_copy_zero_replays_the_single_env() {
    for name in ["cartpole", "pendulum", "frozenlake"] {
        let n = 3;
        let mut venv = make_vec(name, n, 11).unwrap();
        let mut env = make(name).unwrap();
        let mut obs = obs_buf(&*env);
        env.reset(Some(11), &mut obs);
        assert_eq!(&venv.obs()[..obs.len()], &obs[..]);
        let space = env.action_space();
        let mut episodes = 0;
        for k in 0..600 {
            let (i, x) = action_at(&space, k);
            let r = if let Space::Discrete(_) = space {
                venv.step(VecActions::Discrete(&vec![i; n])).unwrap();
                env.step(Action::Discrete(i), &mut obs).unwrap()
            } else {
                venv.step(VecActions::Continuous(&vec![x as f32; n])).unwrap();
                env.step(Action::Continuous(&[x as f32 as f64]), &mut obs).unwrap()
            };
            let od = obs.len();
            assert_eq!((venv.rewards()[0], venv.terminated()[0], venv.truncated()[0]), (r.reward, r.terminated, r.truncated));
            if r.terminated || r.truncated {
                episodes += 1;
                assert_eq!(&venv.final_obs()[..od], &obs[..], "{name}: final obs at step {k}");
                assert!(venv.episode(0).is_some());
                env.reset(None, &mut obs);
            } else {
                assert!(venv.episode(0).is_none());
            }
            assert_eq!(&venv.obs()[..od], &obs[..], "{name}: obs at step {k}");
        }
        assert!(episodes >= 2, "{name}: auto-reset was exercised");
    }
}

#[test]
fn vectorized_results_do_not_depend_on_thread_count() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let n = 1500; // several chunks per thread
            let mut venv = make_vec("pendulum", n, 3).unwrap();
            let mut trace = Vec::new();
            for k in 0..250 {
                let actions: Vec<f32> = (0..n).map(|i| action_at(&venv.action_space(), k * n + i).1 as f32).collect();
                venv.step(VecActions::Continuous(&actions)).unwrap();
                trace.extend_from_slice(venv.obs());
                trace.extend(venv.rewards().iter().map(|r| *r as f32));
                if k == 199 {
                    let ep = venv.episode(0).unwrap();
                    assert_eq!(ep.length, 200, "truncated at the time limit on step 200");
                }
            }
            trace
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn vectorized_bad_actions_are_errors_and_move_nothing() {
    let mut venv = make_vec("cartpole", 4, 0).unwrap();
    let before = venv.obs().to_vec();
    let e = venv.step(VecActions::Discrete(&[0, 1, 2, 0])).unwrap_err().to_string();
    assert!(e.contains("action 2"), "{e}");
    assert!(venv.step(VecActions::Discrete(&[0, 1])).is_err());
    assert!(venv.step(VecActions::Continuous(&[0.0; 4])).is_err());
    assert_eq!(venv.obs(), &before[..]);

    let mut venv = make_vec("mountaincar", 3, 0).unwrap();
    let e = venv.step(VecActions::Continuous(&[0.0, f32::NAN, 0.0])).unwrap_err().to_string();
    assert!(e.contains("component 1") && e.contains("NaN"), "{e}");
}

#[test]
fn vectorized_gridworld_reports_success_and_returns() {
    let n = 2;
    let mut venv = make_vec("frozenlake-noslip", n, 0).unwrap();
    for a in [1, 1, 2, 2, 1] {
        venv.step(VecActions::Discrete(&[a; 2])).unwrap();
        assert_eq!(venv.success(0), None, "no episode has ended yet");
    }
    venv.step(VecActions::Discrete(&[2, 1])).unwrap(); // copy 0: goal; copy 1: DOWN from 10 → 14
    assert_eq!(venv.success(0), Some(true));
    assert_eq!(venv.episode(0).unwrap().episode_return, 1.0);
    assert_eq!(venv.episode(0).unwrap().length, 6);
    assert_eq!(venv.obs()[0], 0.0, "auto-reset to the start");
    assert_eq!(venv.final_obs()[0], 15.0);
    assert_eq!((venv.success(1), venv.obs()[1]), (None, 14.0));
}

/// Steps `env` `n` times with the fixed actions from index `k0`, resetting (unseeded) on
/// episode end; returns the observation bits, rewards and flags.
fn continue_for(env: &mut dyn Env, obs: &mut Vec<f32>, k0: usize, n: usize) -> Vec<(Vec<u32>, u64, bool, bool)> {
    let space = env.action_space();
    let mut out = Vec::new();
    for k in k0..k0 + n {
        let (i, x) = action_at(&space, k);
        let v = [x];
        let a = if matches!(space, Space::Discrete(_)) { Action::Discrete(i) } else { Action::Continuous(&v) };
        let r = env.step(a, obs).unwrap();
        out.push((obs.iter().map(|o| o.to_bits()).collect(), r.reward.to_bits(), r.terminated, r.truncated));
        if r.terminated || r.truncated {
            env.reset(None, obs);
        }
    }
    out
}

#[test]
fn a_snapshot_restored_into_a_fresh_env_continues_bit_for_bit() {
    // Every model, slippery gridworlds (the generator matters), discretized actions
    // (MountainCar's float32 phase), and a snapshot taken at several points of an episode.
    for name in ["cartpole", "pendulum", "mountaincar", "frozenlake", "frozenlake8x8", "cliffwalking",
        "pendulum:discrete=5", "mountaincar:discrete=3", "frozenlake:slip=0.4:limit=7"] {
        for cut in [0, 1, 37, 250] {
            let mut env = make(name).unwrap();
            let mut obs = obs_buf(&*env);
            env.reset(Some(11), &mut obs);
            continue_for(env.as_mut(), &mut obs, 0, cut);
            let json = serde_json::to_string(&env.snapshot().unwrap()).unwrap();
            let mut copy = make(name).unwrap();
            let mut copy_obs = obs_buf(&*copy);
            copy.reset(Some(999), &mut copy_obs);
            copy.restore(&serde_json::from_str(&json).unwrap(), &mut copy_obs).unwrap();
            assert_eq!(copy_obs, obs, "{name} after {cut} steps: restored observation");
            let a = continue_for(env.as_mut(), &mut obs, cut, 600);
            let b = continue_for(copy.as_mut(), &mut copy_obs, cut, 600);
            assert_eq!(a, b, "{name} after {cut} steps");
        }
    }
}

#[test]
fn snapshots_do_not_cross_wrappers_silently() {
    // A snapshot of an env with a time limit names what is missing when restored elsewhere.
    let mut limited = make("pendulum").unwrap();
    let mut obs = obs_buf(&*limited);
    limited.reset(Some(1), &mut obs);
    let mut snap = limited.snapshot().unwrap();
    snap.time_limit = None;
    let err = limited.restore(&snap, &mut obs).unwrap_err().to_string();
    assert!(err.contains("time limit"), "{err}");
}
