//! What a worker proves before it serves a job: that it computes the coordinator's bits. The
//! bitwise claim rests on every machine running the same code on the same maths (libm's
//! `sin_cos`, libtorch's kernels), so each side hashes its version, its protocol, a short
//! canonical rollout of every built-in env kind and a small libtorch computation; a worker
//! whose hash differs from the job's refuses it and says why.

use std::sync::OnceLock;

use tame_envs::{Action, Space};

/// Steps of each canonical rollout: enough to pass through resets and every branch of the
/// dynamics' maths, short enough to cost a few milliseconds.
const STEPS: usize = 300;

/// This process's fingerprint (computed once): `<version>-p<protocol>-<hash of the maths>`.
pub(super) fn fingerprint() -> &'static str {
    static PRINT: OnceLock<String> = OnceLock::new();
    PRINT.get_or_init(|| {
        let mut h = Fnv::new();
        for spec in tame_envs::builtin_specs() {
            h.bytes(spec.name.as_bytes());
            rollout(&spec.name, &mut h);
        }
        torch_maths(&mut h);
        format!("{}-p{}-{:016x}", env!("CARGO_PKG_VERSION"), super::PROTOCOL, h.0)
    })
}

/// Hashes the observations, rewards and flags of a rollout of `env` under fixed actions.
fn rollout(env: &str, h: &mut Fnv) {
    let Ok(mut e) = tame_envs::make(env) else {
        h.bytes(b"unavailable");
        return;
    };
    let mut obs = vec![0.0f32; e.observation_space().dim()];
    e.reset(Some(7), &mut obs);
    let action_space = e.action_space();
    let mut cont = vec![0.0f64; action_space.dim()];
    for t in 0..STEPS {
        let step = match &action_space {
            Space::Discrete(n) => e.step(Action::Discrete((t * 7 + t / 3) % n), &mut obs),
            Space::Box { low, high } => {
                for (j, a) in cont.iter_mut().enumerate() {
                    let u = (0.37 * t as f64 + j as f64).sin() * 0.5 + 0.5;
                    *a = f64::from(low[j]) + u * f64::from(high[j] - low[j]);
                }
                e.step(Action::Continuous(&cont), &mut obs)
            }
        };
        let Ok(r) = step else {
            h.bytes(b"error");
            return;
        };
        obs.iter().for_each(|x| h.bytes(&x.to_bits().to_le_bytes()));
        h.bytes(&r.reward.to_bits().to_le_bytes());
        h.bytes(&[u8::from(r.terminated), u8::from(r.truncated)]);
        if r.terminated || r.truncated {
            e.reset(None, &mut obs);
        }
    }
}

/// A small MLP's forward and backward pass in libtorch on fixed inputs: the kernels SAC's
/// workers train with (matmul, tanh, exp, log, softmax).
fn torch_maths(h: &mut Fnv) {
    use tch::{Kind, Tensor};
    // One thread, so that the hash does not depend on how many the process was given.
    let threads = tch::get_num_threads();
    tch::set_num_threads(1);
    let values = |n: usize, k: f64| -> Vec<f32> { (0..n).map(|i| ((i as f64 * k).sin() * 0.8) as f32).collect() };
    let x = Tensor::from_slice(&values(32 * 17, 0.31)).reshape([32, 17]);
    let w1 = Tensor::from_slice(&values(17 * 64, 0.17)).reshape([17, 64]).set_requires_grad(true);
    let w2 = Tensor::from_slice(&values(64 * 5, 0.23)).reshape([64, 5]).set_requires_grad(true);
    let hidden = x.matmul(&w1).tanh();
    let logits = hidden.matmul(&w2);
    let loss = (logits.log_softmax(-1, Kind::Float).exp() * logits.exp().clamp(1e-6, 1e6).log()).sum(Kind::Float);
    loss.backward();
    let grads = [logits.detach(), w1.grad(), w2.grad()];
    for t in grads {
        let flat: Vec<f32> = match Vec::<f32>::try_from(t.flatten(0, -1)) {
            Ok(v) => v,
            Err(_) => {
                h.bytes(b"torch error");
                continue;
            }
        };
        flat.iter().for_each(|x| h.bytes(&x.to_bits().to_le_bytes()));
    }
    tch::set_num_threads(threads);
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between releases).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fingerprint_is_stable_within_a_process_and_names_version_and_protocol() {
        let a = super::fingerprint();
        assert!(a.starts_with(&format!("{}-p{}-", env!("CARGO_PKG_VERSION"), super::super::PROTOCOL)), "{a}");
        assert_eq!(a, super::fingerprint());
        let mut h = super::Fnv::new();
        super::rollout("pendulum", &mut h);
        let mut g = super::Fnv::new();
        super::rollout("pendulum", &mut g);
        assert_eq!(h.0, g.0, "a rollout hashes the same twice");
        let mut c = super::Fnv::new();
        super::rollout("cartpole", &mut c);
        assert_ne!(h.0, c.0, "different envs hash differently");
    }
}
