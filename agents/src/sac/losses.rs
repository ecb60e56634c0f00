//! SAC's losses as pure functions over host rows: each takes what the networks computed for a
//! minibatch and returns the loss with its gradient with respect to those outputs, written out
//! by hand (the derivation beside the code). `update` runs the networks and calls these; the
//! unit tests below check every value and gradient against tch autograd on the same formula.
//!
//! Notation: B rows, τ the temperature (the papers' α), c the regularizer's reference (0 for
//! entropy, log|A| for KL to uniform), Q̄ the target critics, d the termination flag.

use super::Noise;
use crate::math::{argmax, log_softmax_rows};
use crate::replay::Batch;

/// Bounds of log σ of the Gaussian actor (SB3: [-20, 2]).
pub(super) const LOG_STD_MIN: f64 = -20.0;
pub(super) const LOG_STD_MAX: f64 = 2.0;

/// The constants of one update's losses.
#[derive(Clone, Copy, Debug)]
pub(super) struct LossConsts {
    pub tau: f64,
    pub gamma: f64,
    /// c of the soft term τ·(log π + c).
    pub log_reference: f64,
    pub hard: bool,
    pub discrete: bool,
    /// Observation columns of a continuous critic's input `[s, a]`.
    pub obs_dim: usize,
    /// Floats per stored action (the dimension d of a continuous action).
    pub action_dim: usize,
    /// Outputs of a critic: |A| for Q(s, ·) when discrete, 1 for Q(s, a).
    pub outputs: usize,
    /// Rows of the minibatch: every loss is a mean over them.
    pub batch: f64,
}

/// A continuous policy's actions at the actor's outputs, with what its backward pass needs.
pub(super) struct Squashed {
    /// a ∈ [-1, 1]^d, row-major `[rows, d]`.
    pub action: Vec<f32>,
    /// log π(a|s) per row; empty at τ = 0.
    pub log_pi: Vec<f64>,
    /// σ·ε and whether log σ was inside its clamp, `[rows, d]`; empty at τ = 0.
    pub std_eps: Vec<f32>,
    pub clamp_open: Vec<bool>,
}

/// The continuous policy at actor outputs `out` = `[μ | log σ]` (row-major `[rows, 2d]`),
/// row by row on the host.
///
/// Reparameterised squashed Gaussian (Haarnoja et al. 2018, appendix C):
///   u = μ(s) + σ(s)·ε, ε ~ N(0, I);  a = tanh(u);
///   log π(a|s) = Σ_j [log N(u_j; μ_j, σ_j) − log(1 − tanh²(u_j))]
///              = Σ_j [log N(ε_j; 0, 1) − log σ_j − 2(log 2 − u_j − softplus(−2u_j))],
/// using log(1 − tanh² u) = 2(log 2 − u − softplus(−2u)) for stability; the ε-only terms
/// come precomputed with the noise. At τ = 0 the policy is its σ → 0 limit a = tanh(μ(s)),
/// whose τ·log π term is zero.
pub(super) fn squash(out: &[f32], d: usize, noise: &Noise, hard: bool) -> Squashed {
    let rows = out.len() / (2 * d);
    let mut s = Squashed { action: Vec::with_capacity(rows * d), log_pi: Vec::new(), std_eps: Vec::new(), clamp_open: Vec::new() };
    for r in 0..rows {
        let (mean, raw_log_std) = out[r * 2 * d..(r + 1) * 2 * d].split_at(d);
        if hard {
            s.action.extend(mean.iter().map(|m| m.tanh()));
            continue;
        }
        let mut log_pi = noise.log_density[r] as f64;
        for j in 0..d {
            let log_std = (raw_log_std[j] as f64).clamp(LOG_STD_MIN, LOG_STD_MAX);
            let std_eps = log_std.exp() * noise.eps[r * d + j] as f64;
            let u = mean[j] as f64 + std_eps;
            log_pi -= log_std + 2.0 * (std::f64::consts::LN_2 - u - softplus(-2.0 * u));
            s.action.push(u.tanh() as f32);
            s.std_eps.push(std_eps as f32);
            s.clamp_open.push((LOG_STD_MIN..=LOG_STD_MAX).contains(&(raw_log_std[j] as f64)));
        }
        s.log_pi.push(log_pi);
    }
    s
}

/// softplus(x) = log(1 + eˣ), without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The soft TD target of the critic loss (Haarnoja et al. 2018, eq. 5 with the twin-min
/// target of eq. 7; Christodoulou 2019, eq. 10 for discrete):
///
///   y = r + γ(1 − d)·V̄(s'),  V̄(s') = E_{a'~π}[min_i Q̄_i(s', a') − τ·(log π(a'|s') + c)].
///
/// Continuous: one reparameterised a' per row (`policy_next`), `target_next[i]` = Q̄_i(s', a').
/// Discrete: E_{a'} is the exact sum over actions from the actor's `next_logits`, with
/// `target_next[i]` = Q̄_i(s', ·); at τ = 0 it is one-hot on argmax_a' min_i Q_i(s', a') of the
/// online critics (`online_next`, clipped double Q). y carries no gradient.
pub(super) fn td_targets(
    k: &LossConsts,
    batch: &Batch,
    policy_next: Option<&Squashed>,
    next_logits: &[f32],
    target_next: [&[f32]; 2],
    online_next: [&[f32]; 2],
) -> Vec<f64> {
    let (rows, n) = (batch.len(), k.outputs);
    let log_probs_next = if k.discrete && !k.hard { log_softmax_rows(next_logits, n) } else { Vec::new() };
    let online_min: Vec<f32> = online_next[0].iter().zip(online_next[1]).map(|(a, b)| a.min(*b)).collect();
    (0..rows)
        .map(|r| {
            let min_target = |a: usize| target_next[0][r * n + a].min(target_next[1][r * n + a]) as f64;
            let v = match policy_next {
                Some(_) if k.hard => min_target(0),
                Some(s) => min_target(0) - k.tau * (s.log_pi[r] + k.log_reference),
                None if k.hard => min_target(argmax(&online_min[r * n..(r + 1) * n])),
                None => (0..n)
                    .map(|a| {
                        let lp = log_probs_next[r * n + a];
                        lp.exp() * (min_target(a) - k.tau * (lp + k.log_reference))
                    })
                    .sum(),
            };
            let not_done = if batch.terminated(r) { 0.0 } else { 1.0 };
            batch.reward(r) as f64 + not_done * k.gamma * v
        })
        .collect()
}

/// One critic's loss and its gradient.
pub(super) struct CriticLoss {
    /// J_Q, the mean squared TD error.
    pub loss: f64,
    /// Mean Q_i(s, a) over the minibatch (CleanRL's `qf1_values`).
    pub mean_q: f64,
    /// ∂J_Q/∂Q_i, row-major `[rows, outputs]`.
    pub dq: Vec<f32>,
}

/// The critic loss (Haarnoja et al. 2018, eq. 5): J_Q = (1/B)·Σ_rows (Q_i(s, a) − y)², with
/// ∂J_Q/∂Q_i = (2/B)·(Q_i − y). `q` is Q_i(s, a) per row, or Q_i(s, ·) when discrete, where
/// only the stored action's entry enters the loss.
pub(super) fn critic_loss(k: &LossConsts, batch: &Batch, y: &[f64], q: &[f32]) -> CriticLoss {
    let (n, b_inv) = (k.outputs, 1.0 / k.batch);
    let (mut sse, mut sum_q) = (0.0, 0.0);
    let mut dq = vec![0f32; y.len() * n];
    for (r, y) in y.iter().enumerate() {
        let i = r * n + if k.discrete { batch.action_row(r)[0] as usize } else { 0 };
        let err = q[i] as f64 - y;
        sse += err * err;
        sum_q += q[i] as f64;
        dq[i] = (2.0 * b_inv * err) as f32;
    }
    CriticLoss { loss: sse * b_inv, mean_q: sum_q * b_inv, dq }
}

/// The actor loss and its gradient with respect to the actor's outputs.
pub(super) struct ActorLoss {
    /// J_π.
    pub loss: f64,
    /// E[log π(a|s)] over the minibatch (0 at τ = 0): minus the policy's entropy.
    pub mean_log_pi: f64,
    /// ∂J_π/∂(actor outputs), row-major like the outputs.
    pub d_out: Vec<f32>,
}

/// The continuous actor loss (Haarnoja et al. 2018, eq. 7 with the reparameterisation of
/// eq. 11):
///
///   J_π = (1/B)·Σ_rows [τ·log π(a|s) − min_i Q_i(s, a)],  a = tanh(μ(s) + σ(s)·ε),
///
/// and at τ = 0 DDPG's −min_i Q_i(s, tanh μ(s)). `policy` is the squashed sample at the actor's
/// outputs `[μ | log σ]`; `q[i]` is Q_i(s, a) per row and `dx[i]` is −(1/B)·∂Q_i/∂[s, a],
/// row-major `[rows, obs_dim + d]`. The critics pass gradients to the action only.
pub(super) fn actor_loss_continuous(k: &LossConsts, s: &Squashed, q: [&[f32]; 2], dx: [&[f32]; 2]) -> ActorLoss {
    let (d, b_inv) = (k.action_dim, 1.0 / k.batch);
    let rows = q[0].len();
    let mut d_out = vec![0f32; rows * 2 * d];
    let (mut loss, mut log_pi) = (0.0, 0.0);
    // ∂J/∂Q_i = −1/B on the rows where Q_i is the minimum, then back to the action a. Each
    // critic formed −(1/B)·∂Q_i/∂[s, a] on every row; rows are independent, so choosing the
    // rows afterwards is the same as masking them before.
    // Through a = tanh(u): ∂a/∂u = 1 − a². With u = μ + σε and
    // log π = Σ_j [log N(ε_j) − log σ_j − log(1 − a_j²)]: ∂log π/∂u = 2a and
    // ∂log π/∂log σ = −1 besides the path through u (∂u/∂log σ = σε). log σ's clamp
    // passes no gradient where it binds. At τ = 0, J = −Q(s, tanh μ), log σ unused.
    let width = k.obs_dim + d;
    for r in 0..rows {
        let (q, dx) = if q[0][r] <= q[1][r] { (q[0][r], dx[0]) } else { (q[1][r], dx[1]) };
        let q = q as f64;
        loss += if k.hard { -q } else { k.tau * s.log_pi[r] - q };
        if !k.hard {
            log_pi += s.log_pi[r];
        }
        for j in 0..d {
            let a = s.action[r * d + j] as f64;
            let mut d_u = dx[r * width + k.obs_dim + j] as f64 * (1.0 - a * a);
            if !k.hard {
                d_u += 2.0 * k.tau * a * b_inv;
                if s.clamp_open[r * d + j] {
                    d_out[r * 2 * d + d + j] = (d_u * s.std_eps[r * d + j] as f64 - k.tau * b_inv) as f32;
                }
            }
            d_out[r * 2 * d + j] = d_u as f32;
        }
    }
    ActorLoss { loss: loss * b_inv, mean_log_pi: log_pi * b_inv, d_out }
}

/// The discrete actor loss (Christodoulou 2019, eq. 12), an exact sum over actions:
///
///   J_π = (1/B)·Σ_rows Σ_a π(a|s)·[τ·log π(a|s) − min_i Q_i(s, a)],  π = softmax(z),
///
/// from the actor's logits `z` and `q[i]` = Q_i(s, ·), both row-major `[rows, |A|]`.
pub(super) fn actor_loss_discrete(k: &LossConsts, logits: &[f32], q: [&[f32]; 2]) -> ActorLoss {
    let (n, b_inv) = (k.outputs, 1.0 / k.batch);
    let rows = logits.len() / n;
    let mut d_out = vec![0f32; logits.len()];
    let (mut loss, mut log_pi) = (0.0, 0.0);
    // Per state J = Σ_a π_a·f_a with f = τ·log π − min_i Q_i. Through the softmax,
    // ∂J/∂z_k = π_k·(f_k − J) (the τ·Σ_a π_a·∂log π_a/∂z_k part sums to zero).
    let log_probs = log_softmax_rows(logits, n);
    let f: Vec<f64> = (0..rows * n).map(|i| k.tau * log_probs[i] - q[0][i].min(q[1][i]) as f64).collect();
    for r in 0..rows {
        let row = r * n..(r + 1) * n;
        let j: f64 = row.clone().map(|i| log_probs[i].exp() * f[i]).sum();
        for i in row {
            let p = log_probs[i].exp();
            d_out[i] = (p * (f[i] - j) * b_inv) as f32;
            log_pi += p * log_probs[i];
        }
        loss += j;
    }
    ActorLoss { loss: loss * b_inv, mean_log_pi: log_pi * b_inv, d_out }
}

/// The temperature loss (Haarnoja et al. 2018, eq. 18), on log τ as SB3 does:
///
///   J(τ) = E_s E_{a~π}[−log τ·(log π(a|s) + H̄)],  ∂J/∂log τ = −(E[log π] + H̄),
///
/// which raises τ when the entropy −E[log π] is below the target H̄ and lowers it above.
/// Returns (J, ∂J/∂log τ).
pub(super) fn temperature_loss(log_tau: f64, mean_log_pi: f64, target_entropy: f64) -> (f64, f64) {
    (-log_tau * (mean_log_pi + target_entropy), -(mean_log_pi + target_entropy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;
    use tch::{Kind, Tensor};

    const NONE: &[f32] = &[];

    fn consts(tau: f64, hard: bool, discrete: bool, outputs: usize, rows: usize) -> LossConsts {
        let action_dim = if discrete { 1 } else { 2 };
        LossConsts { tau, gamma: 0.9, log_reference: 0.4, hard, discrete, obs_dim: 3, action_dim, outputs, batch: rows as f64 }
    }

    /// A minibatch of `rows` random transitions with 3-dimensional observations; actions are
    /// indices below `n` when discrete, else 2-dimensional in [-1, 1].
    fn batch(rows: usize, discrete: Option<usize>, rng: &mut ChaCha8Rng) -> Batch {
        let mut host = Vec::new();
        for r in 0..rows {
            host.extend((0..3).map(|_| rng.sample::<f32, _>(StandardNormal)));
            match discrete {
                Some(n) => host.push(rng.random_range(0..n) as f32),
                None => host.extend((0..2).map(|_| rng.random_range(-1.0f32..1.0))),
            }
            host.extend((0..3).map(|_| rng.sample::<f32, _>(StandardNormal)));
            host.push(rng.sample::<f32, _>(StandardNormal));
            host.push((r % 3 == 0) as u8 as f32);
        }
        Batch::from_rows(host, 3, if discrete.is_some() { 1 } else { 2 })
    }

    fn normal(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
    }

    fn leaf(values: &[f32], cols: usize) -> Tensor {
        Tensor::from_slice(values).view([-1, cols as i64]).set_requires_grad(true)
    }

    fn grad(loss: &Tensor, x: &Tensor) -> Vec<f32> {
        let g = Tensor::run_backward(&[loss], &[x], false, false);
        Vec::<f32>::try_from(g[0].reshape([-1])).unwrap()
    }

    fn close(ours: &[f32], want: &[f32], what: &str) {
        assert_eq!(ours.len(), want.len(), "{what}: lengths");
        let diff = ours.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "{what}: differs by {diff}");
        assert!(want.iter().any(|g| g.abs() > 1e-3), "{what}: a vanishing gradient proves nothing");
    }

    fn rewards_and_not_done(b: &Batch) -> (Tensor, Tensor) {
        let r: Vec<f32> = (0..b.len()).map(|i| b.reward(i)).collect();
        let nd: Vec<f32> = (0..b.len()).map(|i| if b.terminated(i) { 0.0 } else { 1.0 }).collect();
        (Tensor::from_slice(&r), Tensor::from_slice(&nd))
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.reshape([-1]).to_kind(Kind::Double)).unwrap()
    }

    #[test]
    fn td_targets_follow_the_soft_bellman_backup() {
        let (rows, n) = (8, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let b = batch(rows, Some(n), &mut rng);
        let (r, nd) = rewards_and_not_done(&b);
        let (t1, t2, o1, o2, z) = (normal(rows * n, &mut rng), normal(rows * n, &mut rng), normal(rows * n, &mut rng),
            normal(rows * n, &mut rng), normal(rows * n, &mut rng));
        let tensor = |v: &[f32]| Tensor::from_slice(v).view([rows as i64, n as i64]);
        let min_target = tensor(&t1).minimum(&tensor(&t2));
        // Discrete soft: V̄ = Σ_a π_a·(min Q̄ − τ(log π_a + c)).
        let k = consts(0.3, false, true, n, rows);
        let logp = tensor(&z).log_softmax(-1, Kind::Float);
        let v = (logp.exp() * (&min_target - (&logp + k.log_reference) * k.tau)).sum_dim_intlist(-1, false, Kind::Float);
        let want = values(&(&r + &nd * k.gamma * v));
        let ours = td_targets(&k, &b, None, &z, [&t1, &t2], [NONE, NONE]);
        assert!(ours.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "discrete soft: {ours:?} vs {want:?}");
        // Discrete hard: min Q̄ at the online critics' argmax.
        let k = consts(0.0, true, true, n, rows);
        let online = tensor(&o1).minimum(&tensor(&o2)).argmax(-1, true);
        let want = values(&(&r + &nd * k.gamma * min_target.gather(-1, &online, false).view([-1])));
        let ours = td_targets(&k, &b, None, &[], [&t1, &t2], [&o1, &o2]);
        assert!(ours.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "discrete hard: {ours:?} vs {want:?}");
        // Continuous soft: one sample a' per row, V̄ = min Q̄(s', a') − τ(log π(a'|s') + c).
        let b = batch(rows, None, &mut rng);
        let (r, nd) = rewards_and_not_done(&b);
        let k = consts(0.3, false, false, 1, rows);
        let (t1, t2) = (normal(rows, &mut rng), normal(rows, &mut rng));
        let s = Squashed { action: vec![0.0; rows * 2], log_pi: normal(rows, &mut rng).iter().map(|&v| v as f64).collect(),
            std_eps: Vec::new(), clamp_open: Vec::new() };
        let log_pi = Tensor::from_slice(&s.log_pi).to_kind(Kind::Float);
        let v = Tensor::from_slice(&t1).minimum(&Tensor::from_slice(&t2)) - (log_pi + k.log_reference) * k.tau;
        let want = values(&(&r + &nd * k.gamma * v));
        let ours = td_targets(&k, &b, Some(&s), &[], [&t1, &t2], [NONE, NONE]);
        assert!(ours.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "continuous soft: {ours:?} vs {want:?}");
    }

    #[test]
    fn critic_loss_and_gradient_match_autograd() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for discrete in [Some(4), None] {
            let (rows, n) = (10, discrete.unwrap_or(1));
            let b = batch(rows, discrete, &mut rng);
            let k = consts(0.2, false, discrete.is_some(), n, rows);
            let q = normal(rows * n, &mut rng);
            let y: Vec<f64> = normal(rows, &mut rng).iter().map(|&v| v as f64).collect();
            let ours = critic_loss(&k, &b, &y, &q);
            let q_t = leaf(&q, n);
            let taken: Vec<i64> = (0..rows).map(|r| if discrete.is_some() { b.action_row(r)[0] as i64 } else { 0 }).collect();
            let q_sa = q_t.gather(-1, &Tensor::from_slice(&taken).view([-1, 1]), false).view([-1]);
            let loss = (&q_sa - Tensor::from_slice(&y).to_kind(Kind::Float)).square().mean(Kind::Float);
            assert!((ours.loss - loss.double_value(&[])).abs() < 1e-5, "{discrete:?}: loss");
            assert!((ours.mean_q - q_sa.mean(Kind::Float).double_value(&[])).abs() < 1e-5, "{discrete:?}: mean Q");
            close(&ours.dq, &grad(&loss, &q_t), &format!("{discrete:?}: ∂J_Q/∂Q"));
        }
    }

    #[test]
    fn discrete_actor_loss_and_gradient_match_autograd() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (rows, n) = (9, 5);
        let k = consts(0.4, false, true, n, rows);
        let (z, q1, q2) = (normal(rows * n, &mut rng), normal(rows * n, &mut rng), normal(rows * n, &mut rng));
        let ours = actor_loss_discrete(&k, &z, [&q1, &q2]);
        let z_t = leaf(&z, n);
        let logp = z_t.log_softmax(-1, Kind::Float);
        let min_q = leaf(&q1, n).detach().minimum(&leaf(&q2, n).detach());
        let loss = (logp.exp() * (&logp * k.tau - min_q)).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float);
        assert!((ours.loss - loss.double_value(&[])).abs() < 1e-5, "loss {} vs {}", ours.loss, loss.double_value(&[]));
        let mean_log_pi = (logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float).double_value(&[]);
        assert!((ours.mean_log_pi - mean_log_pi).abs() < 1e-5);
        close(&ours.d_out, &grad(&loss, &z_t), "∂J_π/∂z");
    }

    /// Q_i(s, a) = Σ_j w_ij·a_j + v_i·Σ_j a_j², differentiable in a for autograd.
    fn twin_q(a: &Tensor, i: usize) -> Tensor {
        let (w, v) = [([0.7f32, -1.3], 0.5f32), ([-0.2, 0.9], -0.8)][i];
        (a * Tensor::from_slice(&w)).sum_dim_intlist(-1, false, Kind::Float) + a.square().sum_dim_intlist(-1, false, Kind::Float) * v as f64
    }

    #[test]
    fn continuous_actor_loss_and_gradient_match_autograd() {
        let (rows, d) = (8, 2);
        for (tau, hard) in [(0.3, false), (0.0, true)] {
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            let k = consts(tau, hard, false, 1, rows);
            let mut out = normal(rows * 2 * d, &mut rng);
            out[2 * d + d] = 2.5; // one log σ beyond its clamp: no gradient there
            let noise = Noise::draw(rows, d, &mut rng);
            let s = squash(&out, d, &noise, hard);
            // What the critics give the actor loss: Q_i at the sampled a and −(1/B)·∂Q_i/∂[s, a].
            let (mut q, mut dx) = (Vec::new(), Vec::new());
            for i in 0..2 {
                let a = leaf(&s.action, d);
                let qi = twin_q(&a, i);
                let da = grad(&(qi.sum(Kind::Float) * (-1.0 / rows as f64)), &a);
                dx.push((0..rows).flat_map(|r| [0.0; 3].into_iter().chain(da[r * d..(r + 1) * d].iter().copied())).collect::<Vec<f32>>());
                q.push(Vec::<f32>::try_from(qi.detach()).unwrap());
            }
            let ours = actor_loss_continuous(&k, &s, [&q[0], &q[1]], [&dx[0], &dx[1]]);
            // The loss as the paper writes it, through a = tanh(μ + σε).
            let out_t = leaf(&out, 2 * d);
            let parts = out_t.chunk(2, -1);
            let (a, log_pi) = if hard {
                (parts[0].tanh(), Tensor::zeros([rows as i64], (Kind::Float, tch::Device::Cpu)))
            } else {
                let eps = Tensor::from_slice(&noise.eps).view([rows as i64, d as i64]);
                let log_std = parts[1].clamp(LOG_STD_MIN, LOG_STD_MAX);
                let a = (&parts[0] + log_std.exp() * &eps).tanh();
                let log_normal = eps.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln();
                let one_minus_a2: Tensor = 1.0 - a.square();
                (a, (log_normal - one_minus_a2.log()).sum_dim_intlist(-1, false, Kind::Float))
            };
            let loss = (&log_pi * tau - twin_q(&a, 0).minimum(&twin_q(&a, 1))).mean(Kind::Float);
            let name = if hard { "hard" } else { "soft" };
            assert!((ours.loss - loss.double_value(&[])).abs() < 1e-4, "{name}: loss {} vs {}", ours.loss, loss.double_value(&[]));
            if !hard {
                let mean_log_pi = log_pi.mean(Kind::Float).double_value(&[]);
                assert!((ours.mean_log_pi - mean_log_pi).abs() < 1e-4, "{name}: E[log π]");
            }
            close(&ours.d_out, &grad(&loss, &out_t), &format!("{name}: ∂J_π/∂[μ, log σ]"));
            assert_eq!(ours.d_out[2 * d + d], 0.0, "{name}: the clamp binds");
        }
    }

    #[test]
    fn temperature_loss_and_gradient_match_autograd() {
        let (mean_log_pi, target) = (-0.7, -2.0);
        for log_tau in [-1.5f64, 0.0, 0.8] {
            let (loss, d) = temperature_loss(log_tau, mean_log_pi, target);
            let x = Tensor::from_slice(&[log_tau]).set_requires_grad(true);
            let want = (&x * -(mean_log_pi + target)).sum(Kind::Double);
            assert!((loss - want.double_value(&[])).abs() < 1e-12);
            let g = Tensor::run_backward(&[&want], &[&x], false, false);
            assert!((d - g[0].double_value(&[0])).abs() < 1e-12);
            assert!(d > 0.0, "entropy above the target: the gradient lowers τ");
        }
    }
}
