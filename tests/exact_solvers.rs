//! Hard and soft value iteration and policy evaluation on hand-built MDPs with closed-form
//! answers, and the soft/hard gap theory on seeded random MDPs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tame_agents::exact::{
    compare, evaluate_policy, reference_values, soft_value_iteration, start_value, value_iteration, ExactError,
    SolveOptions,
};
use tame_agents::soft::Regularizer::Entropy;
use tame_envs::{Outcome, TransitionTable};

const TAUS: [f64; 8] = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3];

fn go(prob: f64, next_state: usize, reward: f64, terminated: bool) -> Outcome {
    Outcome { prob, next_state, reward, terminated }
}

/// One state looping on itself; action a pays r[a] forever.
fn self_loop(r: &[f64]) -> TransitionTable {
    TransitionTable {
        n_states: 1,
        n_actions: r.len(),
        p: vec![r.iter().map(|&ra| vec![go(1.0, 0, ra, false)]).collect()],
        initial: vec![(0, 1.0)],
    }
}

/// A corridor of n cells: action 0 moves right (the last move pays 1 and terminates),
/// action 1 stays. V*(s) = γ^(n−1−s).
fn corridor(n: usize) -> TransitionTable {
    let p = (0..n)
        .map(|s| {
            let right = if s + 1 == n { go(1.0, s, 1.0, true) } else { go(1.0, s + 1, 0.0, false) };
            vec![vec![right], vec![go(1.0, s, 0.0, false)]]
        })
        .collect();
    TransitionTable { n_states: n, n_actions: 2, p, initial: vec![(0, 1.0)] }
}

fn random_mdp(rng: &mut ChaCha8Rng, n: usize, a: usize) -> TransitionTable {
    let p = (0..n)
        .map(|_| {
            (0..a)
                .map(|_| {
                    let k = rng.random_range(1..=3);
                    let w: Vec<f64> = (0..k).map(|_| rng.random::<f64>() + 0.05).collect();
                    let z: f64 = w.iter().sum();
                    w.iter()
                        .map(|wi| go(wi / z, rng.random_range(0..n), rng.random_range(-1.0..1.0), rng.random::<f64>() < 0.1))
                        .collect()
                })
                .collect()
        })
        .collect();
    TransitionTable { n_states: n, n_actions: a, p, initial: vec![(0, 0.5), (n - 1, 0.5)] }
}

#[test]
fn hard_value_iteration_solves_the_corridor() {
    let gamma = 0.9;
    let sol = value_iteration(&corridor(5), gamma, SolveOptions::default()).unwrap();
    for s in 0..5 {
        assert!((sol.v[s] - gamma.powi(4 - s as i32)).abs() < 1e-10, "s={s}: {}", sol.v[s]);
    }
    assert_eq!(sol.greedy_actions(), vec![0; 5]);
    assert!(sol.residual <= 1e-12 && sol.iterations > 1);
}

#[test]
fn soft_value_of_a_self_loop_is_lse_over_one_minus_gamma_for_every_tau() {
    let r = [1.0, 0.0, -0.5];
    let gamma = 0.99;
    for &tau in &TAUS {
        let t = self_loop(&r);
        let sol = soft_value_iteration(&t, gamma, tau, SolveOptions::default()).unwrap();
        let m = 1.0;
        let lse = m + tau * r.iter().map(|ri| ((ri - m) / tau).exp()).sum::<f64>().ln();
        let want = lse / (1.0 - gamma);
        assert!((sol.v[0] - want).abs() <= 1e-8 * want.abs().max(1.0), "tau={tau}: {} vs {want}", sol.v[0]);
        // The soft-optimal policy's unregularized value is softmax(r/τ)·r/(1−γ).
        let c = compare(&t, gamma, tau, Entropy).unwrap();
        let p = &c.soft_policy[0];
        let want_pi = p.iter().zip(&r).map(|(pi, ri)| pi * ri).sum::<f64>() / (1.0 - gamma);
        assert!((c.reference.v_pi_tau - want_pi).abs() < 1e-8 * want_pi.abs().max(1.0), "tau={tau}");
        assert!(c.reference.gap_soft_value <= c.reference.bound * (1.0 + 1e-9));
        assert!(c.reference.gap_policy <= c.reference.bound * (1.0 + 1e-9));
    }
}

#[test]
fn terminal_transitions_do_not_bootstrap_even_into_valuable_states() {
    // Action 0 terminates into the self-loop state 1 (worth 1/(1−γ) if it bootstrapped).
    let t = TransitionTable {
        n_states: 2,
        n_actions: 1,
        p: vec![vec![vec![go(1.0, 1, 0.5, true)]], vec![vec![go(1.0, 1, 1.0, false)]]],
        initial: vec![(0, 1.0)],
    };
    let sol = value_iteration(&t, 0.9, SolveOptions::default()).unwrap();
    assert!((sol.v[0] - 0.5).abs() < 1e-12 && (sol.v[1] - 10.0).abs() < 1e-9);
    assert!((start_value(&t, &sol.v) - 0.5).abs() < 1e-12);
}

#[test]
fn policy_evaluation_of_the_greedy_policy_reproduces_the_optimal_values() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for _ in 0..10 {
        let t = random_mdp(&mut rng, 8, 3);
        let sol = value_iteration(&t, 0.95, SolveOptions::default()).unwrap();
        let eval = evaluate_policy(&t, 0.95, &sol.greedy_policy(), SolveOptions::default()).unwrap();
        for (a, b) in sol.v.iter().zip(&eval.v) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }
}

#[test]
fn soft_gaps_on_random_mdps_are_bounded_convex_in_tau_and_the_greedy_policy_converges() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let gamma = 0.9;
    for _ in 0..10 {
        let t = random_mdp(&mut rng, 10, 4);
        let hard = value_iteration(&t, gamma, SolveOptions::default()).unwrap();
        let mut last_ratio = 0.0;
        for &tau in &TAUS {
            let r = reference_values(&t, gamma, tau, Entropy).unwrap();
            let slack = 1e-9 * (1.0 + r.v_star_tau.abs());
            assert!(r.gap_soft_value >= -slack && r.gap_soft_value <= r.bound + slack, "tau={tau}: {r:?}");
            assert!(r.gap_policy >= -slack && r.gap_policy <= r.bound + slack, "tau={tau}: {r:?}");
            // V*_τ is a max of functions affine in τ with V*_0 = V*, so gap/τ is nondecreasing:
            // ten times smaller τ, at least ten times smaller gap.
            let ratio = r.gap_soft_value / tau;
            assert!(ratio >= last_ratio - 1e-6, "tau={tau}: gap/tau {ratio} < {last_ratio}");
            last_ratio = ratio;
        }
        // Generic rewards have no ties: the soft solution's greedy policy is the hard one at
        // small τ, and the softmax puts nearly all mass on it.
        let soft = soft_value_iteration(&t, gamma, 1e-4, SolveOptions::default()).unwrap();
        assert_eq!(soft.greedy_actions(), hard.greedy_actions());
        let pi = soft.softmax_policy(1e-4);
        for (s, a) in hard.greedy_actions().into_iter().enumerate() {
            assert!(pi[s][a] > 0.999, "state {s}: {:?}", pi[s]);
        }
    }
}

#[test]
fn extreme_temperatures_stay_finite() {
    let t = corridor(20);
    for tau in [1e-4, 1e3] {
        let sol = soft_value_iteration(&t, 0.99, tau, SolveOptions::default()).unwrap();
        assert!(sol.v.iter().all(|v| v.is_finite()));
        assert!(sol.softmax_policy(tau).iter().flatten().all(|p| p.is_finite()));
    }
}

#[test]
fn tau_zero_is_the_hard_limit_and_bad_inputs_are_errors() {
    let t = corridor(4);
    let r = reference_values(&t, 0.9, 0.0, Entropy).unwrap();
    assert_eq!((r.gap_soft_value, r.gap_policy, r.bound), (0.0, 0.0, 0.0));
    assert!((r.v_star - 0.9f64.powi(3)).abs() < 1e-10);
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(matches!(reference_values(&t, 0.9, bad, Entropy), Err(ExactError::BadTau(_))));
    }
    let msg = value_iteration(&t, 1.0, SolveOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("gamma = 1") && msg.contains("[0, 1)"), "{msg}");
    let tight = SolveOptions { tol: 1e-12, max_iterations: 3 };
    assert!(matches!(value_iteration(&t, 0.99, tight), Err(ExactError::NotConverged { .. })));
}
