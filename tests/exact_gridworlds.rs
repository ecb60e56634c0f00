//! Every built-in gridworld (and the shipped maps), τ across six orders of magnitude: both
//! soft gaps within τ·log|A|/(1−γ), shrinking at least linearly as τ → 0, and the soft
//! solution's greedy policy converging to a hard-optimal one.

use tame_agents::exact::{compare, evaluate_policy, soft_value_iteration, SolveOptions};
use tame_agents::soft::Regularizer::Entropy;
use tame_agents::smoothing::certify_gridworld;

const TAUS: [f64; 7] = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0];

/// Every built-in env that has a transition table, plus the maps in configs/maps.
fn gridworlds() -> Vec<String> {
    let mut names: Vec<String> = tame_envs::builtin_specs()
        .into_iter()
        .map(|s| s.name)
        .filter(|n| tame_envs::transition_table(n).is_ok())
        .collect();
    for map in ["bridge", "rooms"] {
        names.push(format!("map:{}/configs/maps/{map}.txt:slip=0.2", env!("CARGO_MANIFEST_DIR")));
    }
    names
}

#[test]
fn the_gridworld_list_covers_frozenlake_and_cliffwalking() {
    let names = gridworlds();
    for want in ["frozenlake", "frozenlake8x8", "cliffwalking"] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }
}

#[test]
fn both_gaps_are_bounded_and_shrink_at_least_linearly_as_tau_falls() {
    for gamma in [0.9, 0.99] {
        for env in gridworlds() {
            let table = tame_envs::transition_table(&env).unwrap();
            let mut previous: Option<(f64, f64)> = None;
            // From the largest τ down: ten times smaller τ, at least ten times smaller soft gap.
            for &tau in TAUS.iter().rev() {
                let c = compare(&table, gamma, tau, Entropy).unwrap();
                let r = &c.reference;
                let soft = c.soft.as_ref().unwrap();
                let slack = 1e-9 * (1.0 + r.v_star_tau.abs());
                assert!(r.gap_soft_value >= -slack && r.gap_soft_value <= r.bound + slack, "{env} tau={tau}: {r:?}");
                assert!(r.gap_policy >= -slack && r.gap_policy <= r.bound + slack, "{env} tau={tau}: {r:?}");
                // V* − V^{π*_τ} ≤ V*_τ − V^{π*_τ} = τ·(discounted entropy of π*_τ).
                assert!(r.gap_policy <= r.v_star_tau - r.v_pi_tau + slack, "{env} tau={tau}");
                for s in 0..table.n_states {
                    let d = soft.v[s] - c.hard.v[s];
                    assert!(d >= -slack && d <= r.bound + slack, "{env} tau={tau} state {s}: {d}");
                    let p = c.hard.v[s] - c.v_pi_tau[s];
                    assert!(p >= -slack && p <= r.bound + slack, "{env} tau={tau} state {s}: {p}");
                }
                if let Some((prev_tau, prev_gap)) = previous {
                    let allowed = prev_gap * tau / prev_tau + 1e-9;
                    assert!(r.gap_soft_value <= allowed, "{env} gamma={gamma}: gap {} at tau={tau} vs {prev_gap} at {prev_tau}", r.gap_soft_value);
                }
                previous = Some((tau, r.gap_soft_value));
            }
            // Once τ is well below the smallest action gap the policy gap vanishes (it decays
            // like exp(−gap/τ)); with γ = 0.9 some action gaps are ~1e-4, hence τ = 1e-6 here.
            let r = compare(&table, gamma, 1e-6, Entropy).unwrap().reference;
            assert!(r.gap_policy <= 1e-9, "{env} gamma={gamma}: {r:?}");
        }
    }
}

#[test]
fn the_soft_solutions_greedy_policy_converges_to_a_hard_optimal_one() {
    let gamma = 0.99;
    for env in gridworlds() {
        let table = tame_envs::transition_table(&env).unwrap();
        let off_optimal = |tau: f64| -> f64 {
            let c = compare(&table, gamma, tau, Entropy).unwrap();
            (0..table.n_states)
                .map(|s| {
                    let best = c.hard.v[s];
                    (0..table.n_actions).filter(|&b| c.hard.q[s][b] < best - 1e-9).map(|b| c.soft_policy[s][b]).sum::<f64>()
                })
                .fold(0.0, f64::max)
        };
        // The mass π*_τ puts on non-optimal actions falls as τ does.
        let (a, b) = (off_optimal(1e-2), off_optimal(1e-4));
        assert!(b < a || b < 1e-12, "{env}: {a} at tau=1e-2, {b} at tau=1e-4");
        // τ below every action gap (some are ~1e-3 on the maps).
        let tau = 1e-6;
        let c = compare(&table, gamma, tau, Entropy).unwrap();
        let soft = soft_value_iteration(&table, gamma, tau, SolveOptions::default()).unwrap();
        for (s, a) in soft.greedy_actions().into_iter().enumerate() {
            let best = c.hard.v[s];
            assert!(c.hard.q[s][a] >= best - 1e-9 * (1.0 + best.abs()), "{env} state {s}: action {a} is not optimal");
            // The softmax itself sits on the optimal actions.
            let off: f64 = (0..table.n_actions).filter(|&b| c.hard.q[s][b] < best - 1e-9).map(|b| c.soft_policy[s][b]).sum();
            assert!(off < 1e-9, "{env} state {s}: {off} of pi*_tau on non-optimal actions");
        }
        let greedy = evaluate_policy(&table, gamma, &soft.greedy_policy(), SolveOptions::default()).unwrap();
        for s in 0..table.n_states {
            assert!((greedy.v[s] - c.hard.v[s]).abs() < 1e-8, "{env} state {s}");
        }
    }
}

#[test]
fn gridworld_certificates_stay_within_their_bounds() {
    for env in gridworlds() {
        let table = tame_envs::transition_table(&env).unwrap();
        for &tau in &TAUS {
            let c = certify_gridworld(&table, 0.99, tau).unwrap();
            assert_eq!(c.eps, tau);
            for e in &c.entries {
                assert!(e.measured.is_finite() && e.measured >= -1e-9, "{env} tau={tau}: {e:?}");
                if let Some(b) = e.bound {
                    assert!(e.measured <= b * (1.0 + 1e-9) + 1e-9, "{env} tau={tau}: {e:?}");
                }
            }
        }
        assert!(certify_gridworld(&table, 0.99, 0.0).is_err());
    }
}

/// The KL-to-uniform regularizer (SAC's `regularizer = "kl_uniform"`): its bonus is never
/// positive, so V*_τ ≤ V*, and both gaps keep the bound τ·log|A|/(1−γ).
#[test]
fn kl_uniform_soft_values_sit_below_hard_within_the_bound() {
    use tame_agents::soft::Regularizer::KlUniform;
    for name in ["frozenlake", "frozenlake8x8", "frozenlake-noslip", "cliffwalking"] {
        let table = tame_envs::transition_table(name).unwrap();
        for tau in [1e-4, 1e-3, 1e-2, 1e-1, 1.0] {
            let r = compare(&table, 0.99, tau, KlUniform).unwrap().reference;
            assert!(r.v_star_tau <= r.v_star + 1e-9, "{name} τ={tau}: {r:?}");
            assert!(-r.gap_soft_value <= r.bound * (1.0 + 1e-9), "{name} τ={tau}: {r:?}");
            assert!(r.gap_policy >= -1e-9 && r.gap_policy <= r.bound * (1.0 + 1e-9), "{name} τ={tau}: {r:?}");
        }
    }
}

/// Why SAC's FrozenLake config uses `kl_uniform`: at τ = 0.1, γ = 0.99 the entropy-optimal
/// policy lingers instead of finishing (wandering is worth τ·log 2/(1−γ) ≈ 6.9 > 1), while
/// the KL-to-uniform optimal policy still walks to the goal.
#[test]
fn on_frozenlake_the_entropy_bonus_outweighs_the_goal_but_kl_uniform_does_not() {
    use tame_agents::soft::Regularizer::KlUniform;
    let table = tame_envs::transition_table("frozenlake-noslip").unwrap();
    let entropy = compare(&table, 0.99, 0.1, Entropy).unwrap().reference;
    let kl = compare(&table, 0.99, 0.1, KlUniform).unwrap().reference;
    assert!(entropy.v_pi_tau < 0.05, "entropy-optimal policy should rarely finish: {entropy:?}");
    assert!(kl.v_pi_tau > 0.5, "KL-optimal policy should reach the goal: {kl:?}");
    assert!(entropy.v_star > 0.9 && (entropy.v_star - kl.v_star).abs() < 1e-12);
}

/// Blackjack's table is computed from card probabilities, apart from the env that deals the
/// cards. Its optimal policy, played on the env, must earn what the table says it earns: the
/// undiscounted optimum −0.0431 (Gymnasium's default rules: sab, infinite deck, the dealer stands
/// on 17), within four standard errors of 200,000 hands.
#[test]
fn blackjacks_optimal_policy_earns_its_exact_value_when_dealt() {
    let table = tame_envs::transition_table("blackjack").unwrap();
    let exact = tame_agents::exact::horizon_start_values(&table, None).unwrap().optimal;
    assert!((exact + 0.0431).abs() < 1e-4, "{exact}");
    // Hands end within a few cards, so γ = 1 − 1e-9 gives the undiscounted greedy policy.
    let hard = tame_agents::exact::value_iteration(&table, 1.0 - 1e-9, SolveOptions::default()).unwrap();
    let policy = hard.greedy_actions();
    let mut env = tame_envs::make("blackjack").unwrap();
    let mut obs = vec![0f32; 1];
    let (hands, mut sum, mut sum_sq) = (200_000u64, 0.0, 0.0);
    for hand in 0..hands {
        env.reset(Some(hand), &mut obs);
        let mut ret = 0.0;
        loop {
            let s = obs[0] as usize;
            let step = env.step(tame_envs::Action::Discrete(policy[s]), &mut obs).unwrap();
            ret += step.reward;
            if step.terminated || step.truncated {
                break;
            }
        }
        sum += ret;
        sum_sq += ret * ret;
    }
    let n = hands as f64;
    let mean = sum / n;
    let se = ((sum_sq / n - mean * mean) / n).sqrt();
    assert!((mean - exact).abs() < 4.0 * se, "dealt {mean} ± {se}, exact {exact}");
}
