//! Small multilayer perceptrons for the gradient agents, and the Polyak update of target
//! networks.
//!
//! An [`Mlp`] can hold an *ensemble* of `members` networks of the same shape in stacked weight
//! tensors (`[members, in, out]`), so that SAC's twin critics run as one batched matmul per
//! layer instead of two: half the op count, same arithmetic.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Kind, Tensor};

/// A ReLU multilayer perceptron with a linear output layer.
#[derive(Debug)]
pub struct Mlp {
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
    /// `None` for a single network (2-D weights), `Some(m)` for a stacked ensemble of `m`.
    members: Option<i64>,
}

impl Mlp {
    /// Creates the variables under `path` with PyTorch's default `nn.Linear` initialisation
    /// (weights and biases uniform in ±1/√fan_in), drawn from `rng` (not tch's process-global
    /// generator, so that agents built in parallel stay reproducible).
    pub fn new(path: &nn::Path, sizes: &[usize], members: Option<usize>, rng: &mut ChaCha8Rng) -> Self {
        Self::build(path, sizes, members, |shape, bound| {
            let n = shape.iter().product::<i64>() as usize;
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound) as f32).collect();
            Tensor::from_slice(&values).view(shape)
        })
    }

    fn build(
        path: &nn::Path,
        sizes: &[usize],
        members: Option<usize>,
        mut init: impl FnMut(&[i64], f64) -> Tensor,
    ) -> Self {
        let members = members.map(|m| m as i64);
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0] as i64, pair[1] as i64);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let (w_shape, b_shape) = match members {
                None => (vec![fan_in, fan_out], vec![fan_out]),
                Some(m) => (vec![m, fan_in, fan_out], vec![m, 1, fan_out]),
            };
            weights.push(path.var_copy(&format!("w{i}"), &init(&w_shape, bound)));
            biases.push(path.var_copy(&format!("b{i}"), &init(&b_shape, bound)));
        }
        Mlp { weights, biases, members }
    }

    /// Forward pass. Input `[batch, in]` (shared by all members) or `[members, batch, in]`;
    /// output `[batch, out]` for a single network, `[members, batch, out]` for an ensemble.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, false)
    }

    /// Forward pass through detached weights: gradients flow to the input only. Used where
    /// the critic scores the actor's action, so that the actor loss's backward pass spends no
    /// FLOPs on critic weight gradients that would be thrown away.
    pub fn forward_frozen(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, true)
    }

    fn forward_with(&self, x: &Tensor, frozen: bool) -> Tensor {
        let last = self.weights.len() - 1;
        let mut h = match self.members {
            Some(m) if x.dim() == 2 => {
                let s = x.size();
                x.unsqueeze(0).expand([m, s[0], s[1]], false)
            }
            _ => x.shallow_clone(),
        };
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let (w, b) = if frozen { (w.detach(), b.detach()) } else { (w.shallow_clone(), b.shallow_clone()) };
            h = match self.members {
                None => b.addmm(&h, &w),
                Some(_) => b.baddbmm(&h, &w, 1.0, 1.0),
            };
            if i < last {
                h = h.relu();
            }
        }
        h
    }

    /// The parameters in a fixed order (layer by layer, weight then bias).
    pub fn params(&self) -> Vec<&Tensor> {
        self.weights.iter().zip(&self.biases).flat_map(|(w, b)| [w, b]).collect()
    }

    /// Copies every parameter of `source` into `self` (same shapes), without gradients.
    pub fn copy_from(&mut self, source: &Mlp) {
        tch::no_grad(|| {
            for (t, s) in self.params_mut().into_iter().zip(source.params()) {
                t.copy_(s);
            }
        });
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.weights.iter_mut().zip(self.biases.iter_mut()).flat_map(|(w, b)| [w, b]).collect()
    }

    /// Multiply-adds of one forward pass over `batch` rows, all members together (×2 = FLOPs).
    pub fn forward_macs(&self, batch: usize) -> f64 {
        let m = self.members.unwrap_or(1) as f64;
        self.weights
            .iter()
            .map(|w| {
                let s = w.size();
                let (i, o) = (s[s.len() - 2], s[s.len() - 1]);
                m * batch as f64 * (i * o) as f64
            })
            .sum()
    }
}

/// Polyak averaging of target networks: θ_target ← (1 − ρ)·θ_target + ρ·θ, with ρ = `polyak`
/// (Lillicrap et al. 2016; SB3 calls it `tau`, which here always means the temperature).
pub fn polyak_update(target: &mut Mlp, source: &Mlp, polyak: f64) {
    tch::no_grad(|| {
        for (t, s) in target.params_mut().into_iter().zip(source.params()) {
            let _ = t.lerp_(s, polyak);
        }
    });
}

/// Creates a fresh copy of `source`'s shape and values under `path` (for target networks).
pub fn clone_mlp(path: &nn::Path, sizes: &[usize], members: Option<usize>, source: &Mlp) -> Mlp {
    let mut m = Mlp::build(path, sizes, members, |shape, _| Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu)));
    m.copy_from(source);
    m
}

/// Checks that a tensor holds only finite values (one host read).
pub fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().to_kind(Kind::Bool).int64_value(&[]) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tch::Device;

    #[test]
    fn ensemble_members_match_separate_networks() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let twin = Mlp::new(&vs.root().sub("twin"), &[3, 8, 2], Some(2), &mut rng);
        let x = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let y = twin.forward(&x);
        assert_eq!(y.size(), vec![2, 5, 2]);
        // Member 1 computed by hand from its slice of the stacked weights.
        let p = twin.params();
        let h = (x.matmul(&p[0].get(1)) + p[1].get(1)).relu();
        let out = h.matmul(&p[2].get(1)) + p[3].get(1);
        let diff = (out - y.get(1)).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "member 1 differs by {diff}");
    }

    #[test]
    fn polyak_moves_target_by_the_given_fraction() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let src = Mlp::new(&vs.root().sub("a"), &[2, 4, 1], None, &mut rng);
        let mut tgt = Mlp::new(&vs.root().sub("b"), &[2, 4, 1], None, &mut rng);
        let before: Vec<Tensor> = tgt.params().iter().map(|t| t.detach().copy()).collect();
        polyak_update(&mut tgt, &src, 0.25);
        for ((t, b), s) in tgt.params().iter().zip(&before).zip(src.params()) {
            let want = b * 0.75 + s.detach() * 0.25;
            let diff = (*t - want).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{diff}");
        }
    }

    #[test]
    fn frozen_forward_gives_no_weight_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(&vs.root(), &[2, 4, 1], None, &mut rng);
        let x = Tensor::randn([3, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        net.forward_frozen(&x).sum(Kind::Float).backward();
        assert!(!net.params()[0].grad().defined());
        assert!(x.grad().defined());
    }
}
