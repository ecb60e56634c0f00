//! Exact dynamic programming on a finite MDP's transition table: hard and soft value
//! iteration and policy evaluation, the ground truth against which soft (temperature τ) and
//! hard-argmax agents are compared.
//!
//! Conventions (the same as the learning agents'):
//! - `Q(s,a) = Σ_{s',r,done} P(s',r,done|s,a) · (r + γ·(1−done)·V(s'))`: a transition flagged
//!   `terminated` does not bootstrap, whatever state it lands in.
//! - hard: `V(s) = max_a Q(s,a)`; soft: `V(s) = τ·log Σ_a exp(Q(s,a)/τ)` with the policy
//!   `π_τ(a|s) = softmax(Q(s,·)/τ)`. The soft value is the optimal entropy-regularized value
//!   `max_π E[Σ_t γ^t (r_t + τ·H(π(·|s_t)))]`, so `V* ≤ V*_τ ≤ V* + τ·log|A|/(1−γ)` and
//!   `V* − V^{π*_τ} ≤ τ·log|A|/(1−γ)` (Geist, Scherrer & Pietquin 2019).
//! - "Start value" means the expectation of `V` under the table's initial-state distribution.
//!
//! Plain Rust, no tch: everything is f64 and deterministic.

use crate::math::{argmax, log_sum_exp, max, softmax};
use crate::numfmt::compact;
use crate::soft::Regularizer;
use tame_envs::TransitionTable;

/// Why a solve was refused or failed; each message names the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    #[error("gamma = {} is outside [0, 1); the discounted solvers need 0 <= gamma < 1", compact(*.0))]
    BadGamma(f64),
    #[error("tau = {} is not a positive finite temperature (use tau > 0, or the hard solver)", compact(*.0))]
    BadTau(f64),
    #[error("transition table is malformed: {0}")]
    BadTable(String),
    #[error("policy is malformed: {0}")]
    BadPolicy(String),
    #[error("no convergence after {iterations} iterations (residual {residual:e}, tolerance {tol:e})")]
    NotConverged { iterations: usize, residual: f64, tol: f64 },
    #[error("stopped by Ctrl-C after {iterations} value-iteration sweeps")]
    Interrupted { iterations: usize },
}

/// Stopping rule: stop once `‖V_{k+1} − V_k‖∞ ≤ tol · max(1, ‖V_{k+1}‖∞)`.
///
/// The relative form keeps the same number of significant digits when τ·log|A|/(1−γ) makes
/// the soft values large (τ = 1e3); the error in V is then at most γ/(1−γ) times the residual.
#[derive(Clone, Copy, Debug)]
pub struct SolveOptions {
    pub tol: f64,
    pub max_iterations: usize,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self { tol: 1e-12, max_iterations: 200_000 }
    }
}

/// The fixed point found by value iteration.
#[derive(Clone, Debug)]
pub struct Solution {
    /// `v[s]`.
    pub v: Vec<f64>,
    /// `q[s][a]`, computed from the final `v`.
    pub q: Vec<Vec<f64>>,
    /// Bellman sweeps taken.
    pub iterations: usize,
    /// `‖V_{k+1} − V_k‖∞` of the last sweep.
    pub residual: f64,
}

impl Solution {
    /// The greedy (hard-argmax) action per state; ties go to the lowest action index.
    pub fn greedy_actions(&self) -> Vec<usize> {
        self.q.iter().map(|qs| argmax(qs)).collect()
    }

    /// The greedy policy as a distribution per state (one-hot).
    pub fn greedy_policy(&self) -> Vec<Vec<f64>> {
        self.q
            .iter()
            .map(|qs| {
                let mut p = vec![0.0; qs.len()];
                p[argmax(qs)] = 1.0;
                p
            })
            .collect()
    }

    /// `π(a|s) = softmax(Q(s,·)/τ)`, the policy that attains the soft value at temperature τ.
    pub fn softmax_policy(&self, tau: f64) -> Vec<Vec<f64>> {
        self.q.iter().map(|qs| softmax(qs, tau)).collect()
    }
}

/// The value of a fixed policy.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub v: Vec<f64>,
    pub iterations: usize,
    pub residual: f64,
}

/// Hard value iteration: `V(s) ← max_a Q(s,a)`.
pub fn value_iteration(
    table: &TransitionTable,
    gamma: f64,
    opts: SolveOptions,
) -> Result<Solution, ExactError> {
    check_table(table)?;
    check_gamma(gamma)?;
    iterate(table, gamma, opts, max)
}

/// Soft value iteration at temperature τ: `V(s) ← τ·log Σ_a exp(Q(s,a)/τ)`.
///
/// The log-sum-exp is shifted by `max_a Q(s,a)` so that it neither overflows at τ = 1e-4 nor
/// loses the max at τ = 1e3: `V = m + τ·log Σ_a exp((Q(s,a) − m)/τ)`, every exponent ≤ 0.
pub fn soft_value_iteration(
    table: &TransitionTable,
    gamma: f64,
    tau: f64,
    opts: SolveOptions,
) -> Result<Solution, ExactError> {
    check_table(table)?;
    check_gamma(gamma)?;
    soft_value_iteration_with(table, gamma, tau, Regularizer::Entropy, opts)
}

/// Soft value iteration under either regularizer SAC offers:
/// entropy, `V(s) ← τ·log Σ_a exp(Q(s,a)/τ)`; or KL to the uniform policy, whose bonus is the
/// entropy minus its maximum τ·log|A|: `V(s) ← τ·log Σ_a exp(Q(s,a)/τ) − τ·log|A|`.
/// The soft-optimal policy is softmax(Q/τ) in both; only the values (and so, in episodic
/// tasks, which states are worth reaching) differ.
pub fn soft_value_iteration_with(
    table: &TransitionTable,
    gamma: f64,
    tau: f64,
    regularizer: Regularizer,
    opts: SolveOptions,
) -> Result<Solution, ExactError> {
    check_table(table)?;
    check_gamma(gamma)?;
    if !(tau > 0.0 && tau.is_finite()) {
        return Err(ExactError::BadTau(tau));
    }
    let offset = tau * regularizer.log_reference((table.n_actions as f64).ln());
    iterate(table, gamma, opts, |qs| log_sum_exp(qs, tau) - offset)
}

/// Iterative policy evaluation of a stochastic policy `policy[s][a]` under the
/// unregularized return: `V(s) ← Σ_a π(a|s) Q(s,a)`.
pub fn evaluate_policy(
    table: &TransitionTable,
    gamma: f64,
    policy: &[Vec<f64>],
    opts: SolveOptions,
) -> Result<Evaluation, ExactError> {
    check_table(table)?;
    check_gamma(gamma)?;
    check_policy(table, policy)?;
    let sol = iterate_with(table, gamma, opts, |s, qs| {
        policy[s].iter().zip(qs).map(|(p, q)| if *p > 0.0 { p * q } else { 0.0 }).sum()
    })?;
    Ok(Evaluation { v: sol.v, iterations: sol.iterations, residual: sol.residual })
}

/// Expected value of `v` under the table's initial-state distribution.
pub fn start_value(table: &TransitionTable, v: &[f64]) -> f64 {
    table.initial.iter().map(|&(s, p)| p * v[s]).sum()
}

/// The soft-against-hard comparison at the start state for one temperature: what
/// `tame solve` prints and what a sweep puts beside its learned returns.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reference {
    pub gamma: f64,
    pub tau: f64,
    /// V* at the start: the hard-optimal value.
    pub v_star: f64,
    /// V*_τ at the start: the soft-optimal (entropy-regularized) value.
    pub v_star_tau: f64,
    /// V^{π*_τ} at the start: the unregularized return of the soft-optimal policy.
    pub v_pi_tau: f64,
    /// V*_τ − V* (≥ 0).
    pub gap_soft_value: f64,
    /// V* − V^{π*_τ} (≥ 0).
    pub gap_policy: f64,
    /// τ·log|A|/(1−γ), which bounds both gaps.
    pub bound: f64,
    /// Sweeps of the soft solver (of the hard one when τ = 0).
    pub iterations: usize,
    /// Final residual of the soft solver (of the hard one when τ = 0).
    pub residual: f64,
}

/// Everything behind a [`Reference`], for callers that also want the per-state solutions.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub reference: Reference,
    pub hard: Solution,
    /// `None` when τ = 0 (the soft solution is the hard one).
    pub soft: Option<Solution>,
    /// π*_τ (the greedy policy when τ = 0).
    pub soft_policy: Vec<Vec<f64>>,
    /// V^{π*_τ} per state.
    pub v_pi_tau: Vec<f64>,
}

/// Solves hard and soft, scores π*_τ, and reports start-state values. τ = 0 is accepted and
/// means the hard-argmax limit (both gaps are 0). With [`Regularizer::KlUniform`] the soft
/// value lies *below* V* (the bonus is ≤ 0), so `gap_soft_value` is ≤ 0; its size and the
/// policy gap keep the same bound τ·log|A|/(1−γ).
pub fn compare(
    table: &TransitionTable,
    gamma: f64,
    tau: f64,
    regularizer: Regularizer,
) -> Result<Comparison, ExactError> {
    if !(tau >= 0.0 && tau.is_finite()) {
        return Err(ExactError::BadTau(tau));
    }
    let opts = SolveOptions::default();
    let hard = value_iteration(table, gamma, opts)?;
    let (soft, soft_policy) = if tau > 0.0 {
        let soft = soft_value_iteration_with(table, gamma, tau, regularizer, opts)?;
        let policy = soft.softmax_policy(tau);
        (Some(soft), policy)
    } else {
        (None, hard.greedy_policy())
    };
    let eval = evaluate_policy(table, gamma, &soft_policy, opts)?;
    let solved = soft.as_ref().unwrap_or(&hard);
    let v_star = start_value(table, &hard.v);
    let v_star_tau = start_value(table, &solved.v);
    let v_pi_tau = start_value(table, &eval.v);
    let reference = Reference {
        gamma,
        tau,
        v_star,
        v_star_tau,
        v_pi_tau,
        gap_soft_value: v_star_tau - v_star,
        gap_policy: v_star - v_pi_tau,
        bound: tau * (table.n_actions as f64).ln() / (1.0 - gamma),
        iterations: solved.iterations,
        residual: solved.residual,
    };
    Ok(Comparison { reference, hard, soft, soft_policy, v_pi_tau: eval.v })
}

/// Start-state soft- and hard-optimal values for one τ: the reference columns of a sweep.
pub fn reference_values(
    table: &TransitionTable,
    gamma: f64,
    tau: f64,
    regularizer: Regularizer,
) -> Result<Reference, ExactError> {
    compare(table, gamma, tau, regularizer).map(|c| c.reference)
}

/// Undiscounted expected returns at the start state within a horizon, the quantity an
/// evaluation episode measures: the sum of rewards until termination or truncation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct HorizonValues {
    /// Steps per episode; `None`: no time limit (iterated until the values settle).
    pub horizon: Option<u32>,
    /// Finite-horizon optimal value: `max` over (time-dependent) policies of the expected
    /// return within the horizon, by backward induction.
    pub optimal: f64,
    /// Expected return of the uniform random policy within the horizon.
    pub uniform: f64,
}

/// Finite-horizon, undiscounted dynamic programming: `V_0 = 0` and
/// `V_k(s) = backup_a Σ P(s',r,done|s,a) (r + (1−done) V_{k−1}(s'))`, where `V_k` is the value
/// with `k` steps left; `V_T` is the value of an episode truncated after `T` steps. Without a
/// horizon the recursion runs until `‖V_k − V_{k−1}‖∞ ≤ 1e-12·max(1, ‖V_k‖∞)`, which happens
/// when the episode ends with probability one (else [`ExactError::NotConverged`]).
fn horizon_values(
    table: &TransitionTable,
    horizon: Option<u32>,
    backup: impl Fn(&[f64]) -> f64,
) -> Result<Vec<f64>, ExactError> {
    check_table(table)?;
    const MAX_ITERATIONS: usize = 10_000_000;
    let steps = horizon.map_or(MAX_ITERATIONS, |t| t as usize);
    let mut v = vec![0.0; table.n_states];
    let mut next = vec![0.0; table.n_states];
    let mut qs = vec![0.0; table.n_actions];
    let mut residual = f64::INFINITY;
    for _ in 0..steps {
        residual = 0.0;
        let mut scale: f64 = 1.0;
        for s in 0..table.n_states {
            q_row(table, 1.0, &v, s, &mut qs);
            next[s] = backup(&qs);
            residual = residual.max((next[s] - v[s]).abs());
            scale = scale.max(next[s].abs());
        }
        std::mem::swap(&mut v, &mut next);
        if horizon.is_none() && residual <= 1e-12 * scale {
            return Ok(v);
        }
    }
    match horizon {
        Some(_) => Ok(v),
        None => Err(ExactError::NotConverged { iterations: MAX_ITERATIONS, residual, tol: 1e-12 }),
    }
}

/// The finite-horizon optimal and uniform-policy returns at the start state, undiscounted,
/// within `horizon` steps (the env's time limit): the two ends of a normalized score.
pub fn horizon_start_values(table: &TransitionTable, horizon: Option<u32>) -> Result<HorizonValues, ExactError> {
    let n = table.n_actions as f64;
    let optimal = horizon_values(table, horizon, max)?;
    let uniform = horizon_values(table, horizon, |qs| qs.iter().sum::<f64>() / n)?;
    Ok(HorizonValues { horizon, optimal: start_value(table, &optimal), uniform: start_value(table, &uniform) })
}

fn iterate(
    table: &TransitionTable,
    gamma: f64,
    opts: SolveOptions,
    backup: impl Fn(&[f64]) -> f64,
) -> Result<Solution, ExactError> {
    iterate_with(table, gamma, opts, |_, qs| backup(qs))
}

/// Jacobi sweeps `V_{k+1}(s) = backup(s, Q_k(s,·))` until the relative residual is below tol.
fn iterate_with(
    table: &TransitionTable,
    gamma: f64,
    opts: SolveOptions,
    backup: impl Fn(usize, &[f64]) -> f64,
) -> Result<Solution, ExactError> {
    let mut v = vec![0.0; table.n_states];
    let mut next = vec![0.0; table.n_states];
    let mut qs = vec![0.0; table.n_actions];
    let mut residual = f64::INFINITY;
    for it in 1..=opts.max_iterations {
        // One sweep takes at most milliseconds on the largest accepted map: poll Ctrl-C per sweep.
        if crate::run::stop_requested() {
            return Err(ExactError::Interrupted { iterations: it - 1 });
        }
        residual = 0.0;
        let mut scale: f64 = 1.0;
        for s in 0..table.n_states {
            q_row(table, gamma, &v, s, &mut qs);
            next[s] = backup(s, &qs);
            residual = residual.max((next[s] - v[s]).abs());
            scale = scale.max(next[s].abs());
        }
        std::mem::swap(&mut v, &mut next);
        if !residual.is_finite() {
            break;
        }
        if residual <= opts.tol * scale {
            let q = (0..table.n_states)
                .map(|s| {
                    let mut row = vec![0.0; table.n_actions];
                    q_row(table, gamma, &v, s, &mut row);
                    row
                })
                .collect();
            return Ok(Solution { v, q, iterations: it, residual });
        }
    }
    Err(ExactError::NotConverged { iterations: opts.max_iterations, residual, tol: opts.tol })
}

fn q_row(table: &TransitionTable, gamma: f64, v: &[f64], s: usize, out: &mut [f64]) {
    for (a, q) in out.iter_mut().enumerate() {
        *q = table.p[s][a]
            .iter()
            .map(|o| {
                let bootstrap = if o.terminated { 0.0 } else { gamma * v[o.next_state] };
                o.prob * (o.reward + bootstrap)
            })
            .sum();
    }
}

fn check_gamma(gamma: f64) -> Result<(), ExactError> {
    if (0.0..1.0).contains(&gamma) {
        Ok(())
    } else {
        Err(ExactError::BadGamma(gamma))
    }
}

fn check_table(t: &TransitionTable) -> Result<(), ExactError> {
    let bad = |why: String| Err(ExactError::BadTable(why));
    if t.n_states == 0 || t.n_actions == 0 {
        return bad(format!("{} states and {} actions; need at least one of each", t.n_states, t.n_actions));
    }
    if t.p.len() != t.n_states {
        return bad(format!("p has {} rows for {} states", t.p.len(), t.n_states));
    }
    for (s, row) in t.p.iter().enumerate() {
        if row.len() != t.n_actions {
            return bad(format!("state {s} has {} actions, expected {}", row.len(), t.n_actions));
        }
        for (a, outcomes) in row.iter().enumerate() {
            let mut total = 0.0;
            for o in outcomes {
                if o.next_state >= t.n_states || !is_probability(o.prob) || !o.reward.is_finite() {
                    return bad(format!("state {s} action {a}: bad outcome {o:?}"));
                }
                total += o.prob;
            }
            if (total - 1.0).abs() > 1e-9 {
                return bad(format!("state {s} action {a}: probabilities sum to {total}, not 1"));
            }
        }
    }
    let total: f64 = t.initial.iter().map(|&(_, p)| p).sum();
    if t.initial.iter().any(|&(s, p)| s >= t.n_states || !is_probability(p)) || (total - 1.0).abs() > 1e-9 {
        return bad(format!("initial distribution {:?} is not a distribution over the states", t.initial));
    }
    Ok(())
}

/// A finite number in [0, 1] (false for NaN).
fn is_probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

fn check_policy(t: &TransitionTable, policy: &[Vec<f64>]) -> Result<(), ExactError> {
    if policy.len() != t.n_states {
        return Err(ExactError::BadPolicy(format!(
            "{} rows for {} states",
            policy.len(),
            t.n_states
        )));
    }
    for (s, p) in policy.iter().enumerate() {
        let total: f64 = p.iter().sum();
        if p.len() != t.n_actions || p.iter().any(|x| !is_probability(*x)) || (total - 1.0).abs() > 1e-9 {
            return Err(ExactError::BadPolicy(format!(
                "state {s}: {p:?} is not a distribution over {} actions",
                t.n_actions
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tame_envs::Outcome;

    /// Two-armed bandit that terminates at once: Q = rewards, no bootstrapping.
    fn bandit(r0: f64, r1: f64) -> TransitionTable {
        let o = |r| vec![Outcome { prob: 1.0, next_state: 0, reward: r, terminated: true }];
        TransitionTable { n_states: 1, n_actions: 2, p: vec![vec![o(r0), o(r1)]], initial: vec![(0, 1.0)] }
    }

    #[test]
    fn terminal_transitions_do_not_bootstrap() {
        let sol = value_iteration(&bandit(1.0, 0.5), 0.9, SolveOptions::default()).unwrap();
        assert_eq!(sol.q[0], vec![1.0, 0.5]);
        assert_eq!(sol.v[0], 1.0);
    }

    #[test]
    fn soft_bandit_is_log_sum_exp() {
        let tau = 0.3;
        let sol = soft_value_iteration(&bandit(1.0, 0.5), 0.9, tau, SolveOptions::default()).unwrap();
        let want = tau * ((1.0f64 / tau).exp() + (0.5f64 / tau).exp()).ln();
        assert!((sol.v[0] - want).abs() < 1e-12);
    }

    /// A corridor 0 → 1 → 2 (goal, reward 1, terminates); action 0 moves right, action 1
    /// stays. Optimal within T steps: 1 if T ≥ 2. Uniform: the goal needs two "right"s in T
    /// coin flips, so P = 1 − (T+1)/2^T for the first T steps.
    fn corridor() -> TransitionTable {
        let go = |s: usize| {
            let (next, reward, terminated) = if s == 1 { (2, 1.0, true) } else { (s + 1, 0.0, false) };
            vec![Outcome { prob: 1.0, next_state: next, reward, terminated }]
        };
        let stay = |s: usize| vec![Outcome { prob: 1.0, next_state: s, reward: 0.0, terminated: false }];
        TransitionTable {
            n_states: 3,
            n_actions: 2,
            p: vec![vec![go(0), stay(0)], vec![go(1), stay(1)], vec![stay(2), stay(2)]],
            initial: vec![(0, 1.0)],
        }
    }

    #[test]
    fn finite_horizon_values_are_exact_on_a_corridor() {
        let t = corridor();
        let one = horizon_start_values(&t, Some(1)).unwrap();
        assert_eq!((one.optimal, one.uniform), (0.0, 0.0), "the goal is two steps away");
        for horizon in [2u32, 3, 5, 10] {
            let h = horizon_start_values(&t, Some(horizon)).unwrap();
            let want = 1.0 - f64::from(horizon + 1) / 2f64.powi(horizon as i32);
            assert_eq!(h.optimal, 1.0);
            assert!((h.uniform - want).abs() < 1e-12, "T {horizon}: {} vs {want}", h.uniform);
        }
        // No limit: the uniform walker gets there with probability 1.
        let inf = horizon_start_values(&t, None).unwrap();
        assert!((inf.uniform - 1.0).abs() < 1e-9 && inf.optimal == 1.0, "{inf:?}");
    }

    #[test]
    fn cliffwalking_without_a_limit_has_the_shortest_path_as_optimum() {
        let t = tame_envs::transition_table("cliffwalking").unwrap();
        let h = horizon_start_values(&t, None).unwrap();
        assert!((h.optimal + 13.0).abs() < 1e-9, "{h:?}");
        assert!(h.uniform < -1000.0, "a random walk falls off the cliff often: {h:?}");
        // A limit of 13 steps is just enough for the safe-shortest path.
        assert!((horizon_start_values(&t, Some(13)).unwrap().optimal + 13.0).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let t = bandit(1.0, 0.0);
        assert!(matches!(value_iteration(&t, 1.0, SolveOptions::default()), Err(ExactError::BadGamma(_))));
        assert!(matches!(soft_value_iteration(&t, 0.9, 0.0, SolveOptions::default()), Err(ExactError::BadTau(_))));
        assert!(matches!(compare(&t, 0.9, f64::NAN, Regularizer::Entropy), Err(ExactError::BadTau(_))));
        let mut broken = t.clone();
        broken.p[0][1][0].prob = 0.5;
        assert!(matches!(value_iteration(&broken, 0.9, SolveOptions::default()), Err(ExactError::BadTable(_))));
        assert!(matches!(evaluate_policy(&t, 0.9, &[vec![0.7, 0.7]], SolveOptions::default()), Err(ExactError::BadPolicy(_))));
    }
}
