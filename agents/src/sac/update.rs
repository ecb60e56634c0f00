//! One SAC update, scheduled on two fixed workers: worker i runs critic i with its target, and
//! the two take half of the actor's rows each, so every large matrix product spans the whole
//! minibatch. Between the phases the losses (`losses`) run on the host over the rows the
//! networks returned. What a worker computes does not depend on the thread that runs it, so
//! neither do the numbers.

use anyhow::Context;
use tch::Tensor;

use super::losses::{actor_loss_continuous, actor_loss_discrete, critic_loss, squash, td_targets, temperature_loss, LossConsts};
use super::{finite, host, Head, Noise, NonFinite, SacAgent, Temperature, UpdateLosses};
use crate::helper::Helper;
use crate::nets::{AdamSlice, GradViews, Mlp, Tape};
use crate::replay::Batch;

/// Workers of an update: two, for the two cores this toolkit is tuned on, one per critic.
/// Fixed, so the result does not depend on how many threads run them.
pub(super) const WORKERS: usize = 2;

/// Matrix work per update below which a helper thread costs more than it saves (measured
/// with `tame bench sac`: 64-64 networks, 0.036 GFLOP, ran at 0.7–0.85x with it; 128-128,
/// 0.14 GFLOP, at 1.6–1.9x; 256-256, 0.55 GFLOP, at about 2x).
pub(super) const HELPER_MIN_GFLOP: f64 = 0.1;

/// One worker of an update: critic i with its target, its own handles on the actor (tch
/// tensors are not `Sync`), and the buffers its gradients go to.
pub(super) struct Worker {
    pub actor: Mlp,
    pub critic: Mlp,
    pub target: Mlp,
    /// Where the critic's backward pass writes its gradient, and the critic's optimiser
    /// (which also averages the target).
    pub critic_grad: GradViews,
    pub critic_adam: AdamSlice,
    /// Where this worker's rows of the actor's backward pass write, and its half of the
    /// actor's optimiser.
    pub actor_grad: GradViews,
    pub actor_adam: AdamSlice,
    /// The critic's taped forward pass at the stored (s, a), kept for its backward pass.
    pub tape: Option<Tape>,
}

/// Where the second worker lives.
pub(super) enum Second {
    Here(Box<Worker>),
    Helper(Helper<Worker>),
    /// Only while [`SacAgent::use_helper`] moves it.
    Starting,
}

/// What a worker's critic read in the target phase, row-major on the host.
struct CriticOut {
    /// Q̄_i at s' (and the policy's a' when continuous).
    target_next: Vec<f32>,
    /// Q_i(s', ·), only for the hard discrete policy.
    online_next: Vec<f32>,
    /// Q_i at the stored s (and a when continuous).
    q: Vec<f32>,
}

/// How the actor loss reads a critic.
enum Probe {
    /// Continuous: Q_i at `[s, a]` and `scale`·∂Q_i/∂[s, a].
    Gradient(Tensor, f64),
    /// Discrete: Q_i(s, ·).
    Values(Tensor),
    /// No actor step (τ = 0 discrete).
    Skip,
}

impl Worker {
    /// Phase 2 of an update: the target critic at `next_input` (and the online one too when
    /// `online_next`), and the critic, taped, at `input`.
    fn critic_forward(&mut self, next_input: &Tensor, input: &Tensor, online_next: bool) -> CriticOut {
        let target_next = host(&self.target.forward(next_input));
        let online_next = if online_next { host(&self.critic.forward(next_input)) } else { Vec::new() };
        let (q, tape) = self.critic.forward_taped(input);
        self.tape = Some(tape);
        CriticOut { target_next, online_next, q: host(&q) }
    }

    /// Phase 3: the critic's backward pass from `dq` = ∂J_Q/∂Q_i and, when `apply`, its Adam
    /// step; then the updated critic read as `probe` says. Returns Q_i and the scaled input
    /// gradient there (empty when not asked for).
    fn critic_step(&mut self, dq: Tensor, apply: bool, probe: Probe) -> (Vec<f32>, Vec<f32>) {
        let tape = self.tape.take().expect("the critic's forward pass comes first");
        self.critic.backward(&tape, &dq, Some(&self.critic_grad), false);
        if apply {
            self.critic_adam.step();
        }
        match probe {
            Probe::Gradient(input, scale) => {
                let (q, tape) = self.critic.forward_taped(&input);
                let dx = self.critic.backward(&tape, &q.full_like(scale), None, true).expect("input gradient asked for");
                (host(&q), host(&dx))
            }
            Probe::Values(input) => (host(&self.critic.forward(&input)), Vec::new()),
            Probe::Skip => (Vec::new(), Vec::new()),
        }
    }

    /// Phase 4: the actor's backward pass over this worker's rows into its gradient buffer.
    fn actor_backward(&mut self, tape: &Tape, d_out: &Tensor) {
        self.actor.backward(tape, d_out, Some(&self.actor_grad), false);
    }
}

impl SacAgent {
    /// One gradient step on critics, actor and temperature, with the Polyak update of the
    /// targets. Returns `None`, skipping the optimiser step of that loss, if a loss is NaN or
    /// infinite.
    ///
    /// Two workers share the work by network, so that every large matrix product spans the
    /// whole minibatch: worker i runs critic i and its target, and the two split the actor.
    /// Between the phases the per-row arithmetic of the losses (squashed Gaussian, TD target,
    /// twin minimum) runs here on the host. Critics are stepped first, then the actor against
    /// the updated critics (as SB3 and CleanRL order them). What a worker computes does not
    /// depend on which thread runs it, so neither do the numbers.
    pub fn update(&mut self, batch: &Batch) -> Result<UpdateLosses, NonFinite> {
        // ε for the target's a' and for the actor loss's a (continuous soft only).
        let (noise_next, noise_now) = if self.discrete() || self.hard {
            (Noise::none(), Noise::none())
        } else {
            let d = self.stored_action_dim();
            let mut draw = || Noise::draw(batch.len(), d, &mut self.noise_rng);
            (draw(), draw())
        };
        self.step(batch, &noise_next, &noise_now, true)
    }

    /// [`SacAgent::update`] at the given noise. With `apply` false nothing is stepped and only
    /// the gradient buffers are written (the actor's against the current critics), for tests.
    fn step(&mut self, batch: &Batch, noise_next: &Noise, noise_now: &Noise, apply: bool) -> Result<UpdateLosses, NonFinite> {
        let k = self.loss_consts(batch.len());
        let (rows, b_inv, d) = (batch.len(), 1.0 / k.batch, k.action_dim);
        // At τ = 0 discrete the policy is argmax Q itself, with no parameters to train.
        let actor_step = !(k.discrete && k.hard);

        // Phase 1: the actor at s' (for the target) and, taped for its backward pass, at s.
        let (next_out, now_out, actor_tape) = if actor_step {
            let (next_obs, obs) = (batch.next_obs.shallow_clone(), batch.obs.shallow_clone());
            let [(next_out, _), (now_out, tape)] = self.on_workers(
                move |w| (host(&w.actor.forward(&next_obs)), None),
                move |w| {
                    let (out, tape) = w.actor.forward_taped(&obs);
                    (host(&out), Some(tape))
                },
            );
            (next_out, now_out, tape)
        } else {
            (Vec::new(), Vec::new(), None)
        };

        // Phase 2: the target critics at s' and, taped, the critics at the stored (s, a); the
        // hard discrete policy also reads the online critics at s'.
        let policy_next = (!k.discrete).then(|| squash(&next_out, d, noise_next, k.hard));
        let next_input = match &policy_next {
            Some(s) => state_action(batch, true, &s.action, d),
            None => batch.next_obs.shallow_clone(),
        };
        let input = if k.discrete { batch.obs.shallow_clone() } else { batch.obs_actions.shallow_clone() };
        let online = k.discrete && k.hard;
        let (next_input2, input2) = (next_input.shallow_clone(), input.shallow_clone());
        let [c1, c2] = self.on_workers(
            move |w| w.critic_forward(&next_input, &input, online),
            move |w| w.critic_forward(&next_input2, &input2, online),
        );

        // The critic loss of each critic at the soft TD targets y (`losses`).
        let y = td_targets(&k, batch, policy_next.as_ref(), &next_out, [&c1.target_next, &c2.target_next],
            [&c1.online_next, &c2.online_next]);
        let [l1, l2] = [&c1, &c2].map(|c| critic_loss(&k, batch, &y, &c.q));
        // Checked before any parameter moves, so the state stays the last finite one.
        finite(&[("losses/qf1_loss", l1.loss), ("losses/qf2_loss", l2.loss), ("losses/qf1_values", l1.mean_q),
            ("losses/qf2_values", l2.mean_q)])?;
        let [dq1, dq2] = [&l1, &l2].map(|l| Tensor::from_slice(&l.dq).view([rows as i64, k.outputs as i64]));

        // Phase 3: each critic's backward pass and Adam step, with its target's averaging
        // θ̄ ← (1 − ρ)θ̄ + ρθ in the same pass; then the updated critic where the actor loss
        // reads it.
        let policy_now = (actor_step && !k.discrete).then(|| squash(&now_out, d, noise_now, k.hard));
        let probe_input = match &policy_now {
            Some(s) => Some(state_action(batch, false, &s.action, d)),
            None => actor_step.then(|| batch.obs.shallow_clone()),
        };
        let probe = || match &probe_input {
            None => Probe::Skip,
            Some(x) if k.discrete => Probe::Values(x.shallow_clone()),
            Some(x) => Probe::Gradient(x.shallow_clone(), -b_inv),
        };
        let (probe1, probe2) = (probe(), probe());
        let [(q1, dx1), (q2, dx2)] =
            self.on_workers(move |w| w.critic_step(dq1, apply, probe1), move |w| w.critic_step(dq2, apply, probe2));

        let mut losses = UpdateLosses {
            qf1: l1.loss,
            qf2: l2.loss,
            qf1_values: l1.mean_q,
            qf2_values: l2.mean_q,
            actor: None,
            tau: k.tau,
            tau_loss: None,
            entropy: None,
        };
        if !actor_step {
            return Ok(losses);
        }

        // The actor loss against the updated critics (`losses`).
        let actor = match &policy_now {
            Some(s) => actor_loss_continuous(&k, s, [&q1, &q2], [&dx1, &dx2]),
            None => actor_loss_discrete(&k, &now_out, [&q1, &q2]),
        };
        finite(&[("losses/actor_loss", actor.loss)])?;

        // Phases 4 and 5: the actor's backward pass, half the rows each, then its Adam step,
        // half the parameters each over the sum of both halves' gradients.
        let tape = actor_tape.expect("phase 1 tapes the actor whenever it is trained");
        let d_out = Tensor::from_slice(&actor.d_out).view([rows as i64, (now_out.len() / rows) as i64]);
        let [(tape1, d_out1), (tape2, d_out2)] = std::array::from_fn(|i| {
            let (start, end) = (rows * i / WORKERS, rows * (i + 1) / WORKERS);
            (tape.rows(start as i64, (end - start) as i64), d_out.narrow(0, start as i64, (end - start) as i64))
        });
        self.on_workers(
            move |w| w.actor_backward(&tape1, &d_out1),
            move |w| w.actor_backward(&tape2, &d_out2),
        );
        if apply {
            self.on_workers(|w| w.actor_adam.step(), |w| w.actor_adam.step());
        }
        losses.actor = Some(actor.loss);

        // The temperature's step on log τ (`losses`), and the policy's entropy H = −E[log π],
        // exact for discrete, one sample per state continuous.
        if !k.hard {
            losses.entropy = Some(-actor.mean_log_pi);
            if let (Temperature::Auto { log_tau, opt, target_entropy }, true) = (&mut self.temperature, apply) {
                let (loss, grad) = temperature_loss(*log_tau, actor.mean_log_pi, *target_entropy);
                losses.tau_loss = Some(loss);
                opt.step(log_tau, grad);
                finite(&[("losses/alpha_loss", loss), ("losses/alpha", log_tau.exp())])?;
            }
        }
        Ok(losses)
    }

    /// The constants of an update's losses over a minibatch of `rows` rows.
    fn loss_consts(&self, rows: usize) -> LossConsts {
        LossConsts {
            tau: self.tau_value(),
            gamma: self.gamma,
            log_reference: self.log_reference,
            hard: self.hard,
            discrete: self.discrete(),
            obs_dim: self.obs.dim(),
            action_dim: self.stored_action_dim(),
            outputs: match self.head {
                Head::Discrete { n } => n,
                Head::Continuous { .. } => 1,
            },
            batch: rows as f64,
        }
    }

    /// Runs `first` and `second` on the two workers, side by side when the second lives on a
    /// helper thread; results in worker order.
    pub(super) fn on_workers<R: Send + 'static>(
        &mut self,
        first: impl FnOnce(&mut Worker) -> R,
        second: impl FnOnce(&mut Worker) -> R + Send + 'static,
    ) -> [R; WORKERS] {
        match &mut self.second {
            Second::Here(worker) => [first(&mut self.first), second(worker)],
            Second::Helper(helper) => {
                let (a, b) = helper.join(|| first(&mut self.first), second);
                [a, b]
            }
            Second::Starting => unreachable!("the second worker is only in transit inside use_helper"),
        }
    }

    /// Moves the second worker onto a helper thread of its own, so that the two run side by
    /// side in every update.
    pub fn use_helper(&mut self) -> anyhow::Result<()> {
        if let Second::Here(_) = self.second {
            let Second::Here(worker) = std::mem::replace(&mut self.second, Second::Starting) else { unreachable!() };
            let helper = Helper::spawn("sac-worker-1", *worker).context("starting the SAC update's helper thread")?;
            self.second = Second::Helper(helper);
        }
        Ok(())
    }
}

/// `[s, a]` per row of `batch` (s' when `next`), a continuous critic's input at the policy's
/// actions `action` (row-major `[rows, d]`).
fn state_action(batch: &Batch, next: bool, action: &[f32], d: usize) -> Tensor {
    let rows = batch.len();
    let width = batch.obs_dim() + d;
    let mut x = Vec::with_capacity(rows * width);
    for r in 0..rows {
        x.extend_from_slice(if next { batch.next_obs_row(r) } else { batch.obs_row(r) });
        x.extend_from_slice(&action[r * d..(r + 1) * d]);
    }
    Tensor::from_slice(&x).view([rows as i64, width as i64])
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;
    use tame_envs::Space;
    use tch::Kind;

    use super::*;
    use crate::nets::reference::{autograd_forward, autograd_net};
    use crate::nets::ParamSet;
    use crate::run::Tau;
    use crate::sac::losses::{LOG_STD_MAX, LOG_STD_MIN};
    use crate::sac::SacConfig;
    use crate::soft::Regularizer;

    /// Autograd's gradient of `loss` with respect to `leaves`, flattened in buffer order.
    fn flat_grad(loss: &Tensor, leaves: &[Tensor]) -> Tensor {
        let grads = Tensor::run_backward(&[loss], leaves, false, false);
        Tensor::cat(&grads.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(), 0)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// The squashed Gaussian as the paper writes it, with tensor ops autograd can follow:
    /// a = tanh(μ + σε), log π = Σ_j [log N(u_j; μ_j, σ_j) − log(1 − tanh² u_j)].
    fn reference_squash(out: &Tensor, noise: &Noise, hard: bool) -> (Tensor, Tensor) {
        let parts = out.chunk(2, -1);
        if hard {
            return (parts[0].tanh(), Tensor::new());
        }
        let eps = Tensor::from_slice(&noise.eps).view([-1, out.size()[1] / 2]);
        let log_std = parts[1].clamp(LOG_STD_MIN, LOG_STD_MAX);
        let u = &parts[0] + log_std.exp() * &eps;
        let a = u.tanh();
        let log_normal = eps.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let one_minus_a2: Tensor = 1.0 - a.square();
        let log_pi = (log_normal - one_minus_a2.log()).sum_dim_intlist(-1, true, Kind::Float);
        (a, log_pi)
    }

    /// The hand-written critic and actor gradients of an update equal autograd's gradients of
    /// the losses as the papers write them, for every variant.
    #[test]
    fn hand_written_gradients_match_autograd_on_the_papers_losses() {
        let boxed = |d: usize| Space::Box { low: vec![-1.0; d], high: vec![1.0; d] };
        let cases = [
            ("continuous soft", boxed(3), boxed(2), Tau::Fixed(0.3), Regularizer::Entropy),
            ("continuous soft, KL", boxed(3), boxed(2), Tau::Fixed(0.3), Regularizer::KlUniform),
            ("continuous hard", boxed(3), boxed(2), Tau::Fixed(0.0), Regularizer::Entropy),
            ("discrete soft", boxed(3), Space::Discrete(4), Tau::Fixed(0.3), Regularizer::KlUniform),
            ("discrete hard", boxed(3), Space::Discrete(4), Tau::Fixed(0.0), Regularizer::Entropy),
        ];
        for (name, obs_space, action_space, tau, regularizer) in cases {
            let mut config = SacConfig { hidden: vec![16, 8], regularizer, ..Default::default() };
            config.resolve(&action_space, tau).unwrap();
            let mut agent = SacAgent::new(&config, tau, &obs_space, &action_space, ChaCha8Rng::seed_from_u64(7)).unwrap();
            // Move the targets off the online critics, so that a mix-up would show.
            for (_, mut t) in agent.target_params.iter().flat_map(ParamSet::named) {
                let _ = t.g_add_scalar_(0.05);
            }
            let rows = 12usize;
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let stored_action = |rng: &mut ChaCha8Rng| match action_space {
                Space::Discrete(n) => vec![rng.random_range(0..n) as f32],
                _ => (0..2).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            };
            let mut host_rows = Vec::new();
            for r in 0..rows {
                host_rows.extend((0..3).map(|_| rng.sample::<f32, _>(StandardNormal)));
                host_rows.extend(stored_action(&mut rng));
                host_rows.extend((0..3).map(|_| rng.sample::<f32, _>(StandardNormal)));
                host_rows.push(rng.sample::<f32, _>(StandardNormal));
                host_rows.push((r % 2) as f32);
            }
            let batch = Batch::from_rows(host_rows, 3, agent.stored_action_dim());
            let column = |f: &dyn Fn(usize) -> Vec<f32>| {
                let v: Vec<f32> = (0..rows).flat_map(f).collect();
                Tensor::from_slice(&v).view([rows as i64, -1])
            };
            let obs = column(&|r| batch.obs_row(r).to_vec());
            let next_obs = column(&|r| batch.next_obs_row(r).to_vec());
            let actions = column(&|r| batch.action_row(r).to_vec());
            let rewards = column(&|r| vec![batch.reward(r)]).view([-1]);
            let terminated = column(&|r| vec![batch.terminated(r) as u8 as f32]).view([-1]);
            let k = agent.loss_consts(rows);
            let discrete = k.discrete;
            let (noise_next, noise_now) = if discrete || k.hard {
                (Noise::none(), Noise::none())
            } else {
                (agent.normal_noise(rows, &mut rng), agent.normal_noise(rows, &mut rng))
            };
            let ours = agent.step(&batch, &noise_next, &noise_now, false).ok().expect("finite losses");
            let second = match &agent.second {
                Second::Here(w) => w,
                _ => unreachable!("no helper started"),
            };
            let workers = [&agent.first, second.as_ref()];

            // Critics: J_Q = Σ_i mean((Q_i(s, a) − y)²), y = r + γ(1 − d)·V̄(s') without grad.
            let critic_leaves: Vec<Vec<Tensor>> =
                ["critic1", "critic2"].iter().zip(&agent.critic_params).map(|(n, p)| autograd_net(p, n, true)).collect();
            let targets: Vec<Vec<Tensor>> = ["critic1_target", "critic2_target"]
                .iter()
                .zip(&agent.target_params)
                .map(|(n, p)| autograd_net(p, n, false))
                .collect();
            let actor = autograd_net(&agent.actor_params, "actor", false);
            let min_target = |x: &Tensor| autograd_forward(&targets[0], x).minimum(&autograd_forward(&targets[1], x));
            // log|A| = log 4 discrete; log-volume of [-1, 1]² = 2·log 2 continuous.
            let c = if regularizer == Regularizer::KlUniform { 4f64.ln() } else { 0.0 };
            let tau_v = k.tau;
            let v_next = if discrete {
                let q = min_target(&next_obs);
                if k.hard {
                    let online = autograd_forward(&critic_leaves[0], &next_obs).minimum(&autograd_forward(&critic_leaves[1], &next_obs));
                    q.gather(-1, &online.argmax(-1, true), false)
                } else {
                    let logp = autograd_forward(&actor, &next_obs).log_softmax(-1, Kind::Float);
                    (logp.exp() * (q - (&logp + c) * tau_v)).sum_dim_intlist(-1, true, Kind::Float)
                }
            } else {
                let (a, log_pi) = reference_squash(&autograd_forward(&actor, &next_obs), &noise_next, k.hard);
                let q = min_target(&Tensor::cat(&[&next_obs, &a], -1));
                if k.hard { q } else { q - (log_pi + c) * tau_v }
            }
            .detach();
            let not_done: Tensor = 1.0 - &terminated;
            let y = rewards.unsqueeze(-1) + not_done.unsqueeze(-1) * k.gamma * v_next;
            let q_taken = |leaves: &[Tensor]| {
                if discrete {
                    autograd_forward(leaves, &obs).gather(-1, &actions.to_kind(Kind::Int64), false)
                } else {
                    autograd_forward(leaves, &Tensor::cat(&[&obs, &actions], -1))
                }
            };
            let losses: Vec<Tensor> = critic_leaves.iter().map(|l| (q_taken(l) - &y).square().mean(Kind::Float)).collect();
            let ours_loss = [ours.qf1, ours.qf2];
            let ours_q = [ours.qf1_values, ours.qf2_values];
            for (i, loss) in losses.iter().enumerate() {
                let (loss, ours_loss) = (loss.double_value(&[]), ours_loss[i]);
                assert!((ours_loss - loss).abs() < 1e-4 * (1.0 + loss.abs()), "{name}: critic {i} loss {ours_loss} vs {loss}");
                let mean_q = q_taken(&critic_leaves[i]).mean(Kind::Float).double_value(&[]);
                assert!((ours_q[i] - mean_q).abs() < 1e-4 * (1.0 + mean_q.abs()), "{name}: critic {i} mean Q {} vs {mean_q}", ours_q[i]);
                let want = flat_grad(&losses[i], &critic_leaves[i]);
                let diff = max_diff(workers[i].critic_grad.buffer(), &want);
                assert!(diff < 1e-4, "{name}: critic {i} gradient differs by {diff}");
            }

            // Actor: J_π = mean(E_{a~π}[τ·(log π(a|s)) − min_i Q_i(s, a)]), critics constant.
            if discrete && k.hard {
                assert!(ours.actor.is_none(), "{name}: the hard discrete policy has no actor step");
                continue;
            }
            let actor = autograd_net(&agent.actor_params, "actor", true);
            let critics: Vec<Vec<Tensor>> =
                ["critic1", "critic2"].iter().zip(&agent.critic_params).map(|(n, p)| autograd_net(p, n, false)).collect();
            let min_q = |x: &Tensor| autograd_forward(&critics[0], x).minimum(&autograd_forward(&critics[1], x));
            let loss = if discrete {
                let logp = autograd_forward(&actor, &obs).log_softmax(-1, Kind::Float);
                (logp.exp() * (&logp * tau_v - min_q(&obs))).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float)
            } else {
                let (a, log_pi) = reference_squash(&autograd_forward(&actor, &obs), &noise_now, k.hard);
                let q = min_q(&Tensor::cat(&[&obs, &a], -1));
                if k.hard { (-q).mean(Kind::Float) } else { (log_pi * tau_v - q).mean(Kind::Float) }
            };
            let ours = ours.actor.expect("an actor step");
            assert!((ours - loss.double_value(&[])).abs() < 1e-4 * (1.0 + ours.abs()), "{name}: actor loss {ours}");
            let want = flat_grad(&loss, &actor);
            // Each worker's gradient covers its half of the rows; Adam sums them.
            let diff = max_diff(&(workers[0].actor_grad.buffer() + workers[1].actor_grad.buffer()), &want);
            assert!(diff < 1e-4, "{name}: actor gradient differs by {diff}");
            assert!(want.abs().max().double_value(&[]) > 1e-3, "{name}: a vanishing gradient proves nothing");
        }
    }
}
