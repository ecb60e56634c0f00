//! Small multilayer perceptrons for the gradient agents, with their parameters kept in one
//! flat buffer per set of networks, and the Adam and Polyak updates that act on such a buffer.
//!
//! Why flat: a 3-layer network has 6 parameter tensors, and an optimiser that steps each one
//! pays libtorch's per-op overhead (microseconds) dozens of times per network and update.
//! Every weight and bias here is a view into its [`ParamSet`]'s contiguous buffer, so Adam and
//! Polyak averaging are a handful of ops over the whole set, whatever the layer count.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// A ReLU multilayer perceptron with a linear output layer, `y = x·W + b` per layer.
#[derive(Debug)]
pub struct Mlp {
    /// Per layer, weight `[in, out]` and bias `[out]`: views into the owning [`ParamSet`]'s
    /// buffer that require grad when the set is trainable.
    layers: Vec<(Tensor, Tensor)>,
    /// The same views without grad, for passes that must not train this network.
    frozen: Vec<(Tensor, Tensor)>,
}

impl Mlp {
    /// Forward pass, `[batch, in]` → `[batch, out]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        forward_layers(&self.layers, x)
    }

    /// Forward pass through weights without grad: gradients flow to the input only. Used where
    /// the critic scores the actor's action, so that the actor loss's backward pass spends no
    /// FLOPs on critic weight gradients that would be thrown away.
    pub fn forward_frozen(&self, x: &Tensor) -> Tensor {
        forward_layers(&self.frozen, x)
    }

    /// Multiply-adds of one forward pass over `batch` rows (×2 = FLOPs).
    pub fn forward_macs(&self, batch: usize) -> f64 {
        self.layers.iter().map(|(w, _)| batch as f64 * w.numel() as f64).sum()
    }

    /// Multiply-adds of the first layer over `batch` rows (its input gradient is skipped when
    /// the input needs none).
    pub fn first_layer_macs(&self, batch: usize) -> f64 {
        batch as f64 * self.layers[0].0.numel() as f64
    }
}

fn forward_layers(layers: &[(Tensor, Tensor)], x: &Tensor) -> Tensor {
    let mut h = layers[0].1.addmm(x, &layers[0].0);
    for (w, b) in &layers[1..] {
        // In place: addmm's backward needs its inputs, not its output.
        h = b.addmm(&h.relu_(), w);
    }
    h
}

/// The parameters of one or more [`Mlp`]s in one contiguous `f32` buffer.
#[derive(Debug)]
pub struct ParamSet {
    /// All parameters, network by network, layer by layer, weight then bias. No grad.
    data: Tensor,
    /// Each weight and bias as a view into `data` (requiring grad if trainable), same order.
    leaves: Vec<Tensor>,
    /// Names of `leaves`: `<net>.w<i>` and `<net>.b<i>`.
    names: Vec<String>,
    /// Each network's name and layer sizes.
    layout: Vec<(String, Vec<usize>)>,
}

impl ParamSet {
    /// Builds networks named `nets[k].0` with layer sizes `nets[k].1`, all parameters in one
    /// trainable buffer. Initialisation as PyTorch's default `nn.Linear` (weights and biases
    /// uniform in ±1/√fan_in), drawn from `rng` (not tch's process-global generator, so that
    /// agents built in parallel stay reproducible).
    pub fn new(nets: &[(&str, &[usize])], rng: &mut ChaCha8Rng) -> (ParamSet, Vec<Mlp>) {
        let mut values = Vec::new();
        for (_, sizes) in nets {
            for pair in sizes.windows(2) {
                let bound = 1.0 / (pair[0] as f64).sqrt();
                for _ in 0..(pair[0] + 1) * pair[1] {
                    values.push(rng.random_range(-bound..bound) as f32);
                }
            }
        }
        Self::from_data(nets, Tensor::from_slice(&values), true)
    }

    /// A copy of this set with the same networks and values, not trainable (target networks),
    /// its networks named with `suffix` appended.
    pub fn frozen_copy(&self, suffix: &str) -> (ParamSet, Vec<Mlp>) {
        let names: Vec<String> = self.layout.iter().map(|(net, _)| format!("{net}{suffix}")).collect();
        let nets: Vec<(&str, &[usize])> =
            names.iter().zip(&self.layout).map(|(n, (_, sizes))| (n.as_str(), sizes.as_slice())).collect();
        Self::from_data(&nets, self.data.detach().copy(), false)
    }

    fn from_data(nets: &[(&str, &[usize])], data: Tensor, trainable: bool) -> (ParamSet, Vec<Mlp>) {
        let mut leaves = Vec::new();
        let mut names = Vec::new();
        let mut mlps = Vec::new();
        let mut offset = 0;
        tch::no_grad(|| {
            for (net, sizes) in nets {
                let mut layers = Vec::new();
                let mut frozen = Vec::new();
                for (i, pair) in sizes.windows(2).enumerate() {
                    let (fan_in, fan_out) = (pair[0] as i64, pair[1] as i64);
                    let w = data.narrow(0, offset, fan_in * fan_out).view([fan_in, fan_out]);
                    offset += fan_in * fan_out;
                    let b = data.narrow(0, offset, fan_out);
                    offset += fan_out;
                    // detach(): a leaf of its own that still shares `data`'s storage.
                    let (wl, bl) = (w.detach().set_requires_grad(trainable), b.detach().set_requires_grad(trainable));
                    leaves.push(wl.shallow_clone());
                    leaves.push(bl.shallow_clone());
                    names.push(format!("{net}.w{i}"));
                    names.push(format!("{net}.b{i}"));
                    layers.push((wl, bl));
                    frozen.push((w, b));
                }
                mlps.push(Mlp { layers, frozen });
            }
        });
        assert_eq!(offset, data.numel() as i64, "parameter buffer size does not match the networks");
        let layout = nets.iter().map(|(n, sizes)| (n.to_string(), sizes.to_vec())).collect();
        (ParamSet { data, leaves, names, layout }, mlps)
    }

    /// Number of parameters.
    pub fn numel(&self) -> i64 {
        self.data.numel() as i64
    }

    /// Gradient of the sum of `losses` with respect to every parameter, as one flat tensor in
    /// buffer order. Only the parts of the graph that lead to this set are differentiated, and
    /// nothing is accumulated into `.grad`, so there is nothing to zero between steps.
    pub fn grad(&self, losses: &[&Tensor]) -> Tensor {
        let grads = Tensor::run_backward(losses, &self.leaves, false, false);
        let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
        Tensor::cat(&flat, 0)
    }

    /// Named parameter views (for checkpoints). Writing into them writes the buffer.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        tch::no_grad(|| self.names.iter().zip(&self.leaves).map(|(n, t)| (n.clone(), t.detach())).collect())
    }
}

/// Adam (Kingma & Ba 2015) over a whole [`ParamSet`], with PyTorch's defaults:
///   m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,
///   θ ← θ − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε).
#[derive(Debug)]
pub struct Adam {
    lr: f64,
    m: Tensor,
    v: Tensor,
    t: i32,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

impl Adam {
    pub fn new(params: &ParamSet, lr: f64) -> Self {
        let zeros = || Tensor::zeros([params.numel()], (Kind::Float, tch::Device::Cpu));
        Adam { lr, m: zeros(), v: zeros(), t: 0 }
    }

    /// One step of `params` along the flat gradient `grad` (from [`ParamSet::grad`]).
    pub fn step(&mut self, params: &mut ParamSet, grad: &Tensor) {
        self.t += 1;
        let bias1 = 1.0 - BETA1.powi(self.t);
        let bias2 = 1.0 - BETA2.powi(self.t);
        tch::no_grad(|| {
            // m + (1 − β)(x − m) = βm + (1 − β)x: each moment in one in-place op.
            let _ = self.m.lerp_(grad, 1.0 - BETA1);
            let _ = self.v.lerp_(&grad.square(), 1.0 - BETA2);
            let denom = (&self.v / bias2).sqrt_() + ADAM_EPS;
            let _ = params.data.addcdiv_(&(&self.m * (-self.lr / bias1)), &denom);
        });
    }
}

/// Polyak averaging of target networks: θ_target ← (1 − ρ)·θ_target + ρ·θ, with ρ = `polyak`
/// (Lillicrap et al. 2016; SB3 calls it `tau`, which here always means the temperature).
/// One op over the whole buffer.
pub fn polyak_update(target: &mut ParamSet, source: &ParamSet, polyak: f64) {
    tch::no_grad(|| {
        let _ = target.data.lerp_(&source.data, polyak);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tch::nn::OptimizerConfig;
    use tch::{nn, Device};

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn layers_are_views_of_the_flat_buffer() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (set, nets) = ParamSet::new(&[("a", &[3, 8, 2]), ("b", &[3, 4, 1])], &mut rng);
        assert_eq!(set.numel(), (3 * 8 + 8 + 8 * 2 + 2 + 3 * 4 + 4 + 4 + 1) as i64);
        let x = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let named = set.named();
        let w = |n: &str| named.iter().find(|(k, _)| k == n).map(|(_, t)| t.shallow_clone()).unwrap();
        let by_hand = (x.matmul(&w("b.w0")) + w("b.b0")).relu().matmul(&w("b.w1")) + w("b.b1");
        assert!(max_diff(&nets[1].forward(&x), &by_hand) < 1e-6);
        // Writing the buffer moves every view.
        tch::no_grad(|| {
            let _ = set.data.shallow_clone().fill_(0.5);
        });
        assert!(max_diff(&nets[0].forward(&x), &nets[0].forward_frozen(&x)) == 0.0);
        assert_eq!(w("a.b1").double_value(&[1]), 0.5);
    }

    #[test]
    fn flat_grad_matches_per_parameter_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (set, nets) = ParamSet::new(&[("a", &[3, 8, 2])], &mut rng);
        let x = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let loss = || nets[0].forward(&x).square().sum(Kind::Float);
        let flat = set.grad(&[&loss(), &loss()]);
        loss().backward();
        let per_param: Vec<Tensor> = set.leaves.iter().map(|l| l.grad().reshape([-1]) * 2.0).collect();
        assert!(max_diff(&flat, &Tensor::cat(&per_param, 0)) < 1e-5);
    }

    #[test]
    fn adam_matches_libtorch_adam() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (mut set, nets) = ParamSet::new(&[("a", &[3, 8, 2])], &mut rng);
        let vs = nn::VarStore::new(Device::Cpu);
        let reference: Vec<Tensor> =
            set.named().iter().map(|(n, t)| vs.root().var_copy(&n.replace('.', "_"), t)).collect();
        let mut reference_opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
        let mut adam = Adam::new(&set, 1e-2);
        let x = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        for _ in 0..20 {
            let loss = nets[0].forward(&x).square().mean(Kind::Float);
            let grad = set.grad(&[&loss]);
            adam.step(&mut set, &grad);
            let (w0, b0, w1, b1) = (&reference[0], &reference[1], &reference[2], &reference[3]);
            let out = (b0.addmm(&x, w0)).relu().matmul(w1) + b1;
            reference_opt.backward_step(&out.square().mean(Kind::Float));
        }
        for ((name, ours), theirs) in set.named().iter().zip(&reference) {
            let diff = max_diff(ours, theirs);
            assert!(diff < 1e-5, "{name} differs by {diff}");
        }
        // The run moved the weights: the comparison is not of two untouched copies.
        assert!(max_diff(&set.named()[0].1, &ParamSet::new(&[("a", &[3, 8, 2])], &mut ChaCha8Rng::seed_from_u64(2)).0.named()[0].1) > 1e-3);
    }

    #[test]
    fn polyak_moves_target_by_the_given_fraction() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (src, _) = ParamSet::new(&[("a", &[2, 4, 1])], &mut rng);
        let (other, _) = ParamSet::new(&[("a", &[2, 4, 1])], &mut rng);
        let (mut tgt, _) = other.frozen_copy("_target");
        let before = tgt.data.copy();
        polyak_update(&mut tgt, &src, 0.25);
        let want = before * 0.75 + src.data.detach() * 0.25;
        assert!(max_diff(&tgt.data, &want) < 1e-6);
        assert_eq!(tgt.named()[0].0, "a_target.w0");
        assert!(!tgt.leaves[0].requires_grad());
    }

    #[test]
    fn frozen_forward_gives_no_weight_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (set, nets) = ParamSet::new(&[("a", &[2, 4, 1])], &mut rng);
        let x = Tensor::randn([3, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        nets[0].forward_frozen(&x).sum(Kind::Float).backward();
        assert!(set.leaves.iter().all(|l| !l.grad().defined()));
        assert!(x.grad().defined());
    }
}
