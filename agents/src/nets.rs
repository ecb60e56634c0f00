//! Small multilayer perceptrons for the gradient agents: parameters in one flat buffer per
//! set of networks, forward passes, hand-written backward passes that write straight into a
//! gradient buffer laid out like the parameters, and the Adam and Polyak updates on a buffer.
//!
//! Why flat and why by hand: an SAC update is about fifty matrix products on operands of a
//! few hundred rows. Autograd adds graph bookkeeping to every op and hands back one gradient
//! per tensor that then has to be gathered; both cost as much as the arithmetic at this size.
//! Here a layer's backward pass is its three textbook products, the gradient lands in place,
//! and Adam and Polyak averaging are a handful of ops over a whole set. The tests check every
//! backward pass and the Adam step against libtorch's autograd and optimiser.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// A ReLU multilayer perceptron with a linear output layer, `y = x·W + b` per layer, whose
/// weights are views into a [`ParamSet`]'s buffer.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Layer>,
}

#[derive(Debug)]
struct Layer {
    /// `[in, out]` and `[out]` views into the set's buffer, and `w` transposed.
    w: Tensor,
    b: Tensor,
    wt: Tensor,
    /// Where `w` starts in the buffer (`b` follows it).
    offset: i64,
}

impl Layer {
    fn new(w: Tensor, b: Tensor, offset: i64) -> Layer {
        Layer { wt: w.tr(), w, b, offset }
    }
}

/// Per layer, the weight and bias views of one gradient buffer that [`Mlp::backward`]
/// writes (made once per buffer: views cost a libtorch call each).
pub struct GradViews {
    buffer: Tensor,
    layers: Vec<(Tensor, Tensor)>,
}

impl GradViews {
    /// The whole gradient buffer the views are of.
    pub fn buffer(&self) -> &Tensor {
        &self.buffer
    }
}

/// What a forward pass keeps for its backward pass: every layer's input. A hidden layer's
/// input is the previous layer's ReLU output, which also says where the ReLU was open.
pub struct Tape {
    inputs: Vec<Tensor>,
}

impl Tape {
    /// The tape of rows `start..start + len` alone (views, no copy), for a backward pass over
    /// part of the batch.
    pub fn rows(&self, start: i64, len: i64) -> Tape {
        Tape { inputs: self.inputs.iter().map(|x| x.narrow(0, start, len)).collect() }
    }
}

impl Mlp {
    /// Forward pass, `[batch, in]` → `[batch, out]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.run(x, None)
    }

    /// Forward pass that records what [`Mlp::backward`] needs.
    pub fn forward_taped(&self, x: &Tensor) -> (Tensor, Tape) {
        let mut inputs = Vec::with_capacity(self.layers.len());
        let y = self.run(x, Some(&mut inputs));
        (y, Tape { inputs })
    }

    fn run(&self, x: &Tensor, mut tape: Option<&mut Vec<Tensor>>) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            if i > 0 {
                // In place: the pre-activation is not needed again.
                let _ = h.relu_();
            }
            if let Some(t) = tape.as_deref_mut() {
                t.push(h.shallow_clone());
            }
            h = layer.b.addmm(&h, &layer.w);
        }
        h
    }

    /// Backward pass of `y = forward(x)` taped in `tape`, given `dy` = ∂L/∂y `[batch, out]`:
    /// per layer, ∂L/∂W = xᵀ·dy, ∂L/∂b = Σ_rows dy, ∂L/∂x = dy·Wᵀ (masked by the ReLU below).
    /// Writes ∂L/∂θ of this network into its region of a gradient buffer (laid out like the
    /// network's [`ParamSet`], overwriting that region) through `grad` when given; returns
    /// ∂L/∂x when `input_grad` (skipping the first layer's input product otherwise).
    pub fn backward(&self, tape: &Tape, dy: &Tensor, grad: Option<&GradViews>, input_grad: bool) -> Option<Tensor> {
        let mut dy = dy.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let x = &tape.inputs[i];
            if let Some(g) = grad {
                let (gw, gb) = &g.layers[i];
                let _ = x.tr().mm_out(gw, &dy);
                let _ = dy.sum_intlist_out(gb, [0i64].as_slice(), false, Kind::Float);
            }
            if i == 0 && !input_grad {
                return None;
            }
            let dx = dy.mm(&layer.wt);
            // ReLU'(h) = [h > 0], read off the ReLU output x = max(h, 0).
            dy = if i > 0 { x.threshold_backward(&dx, 0.0) } else { dx };
        }
        Some(dy)
    }

    /// Another handle on the same weights (tch tensors are `Send` but not `Sync`, so each
    /// worker thread of an update holds its own).
    pub fn handle(&self) -> Mlp {
        let layers = self.layers.iter().map(|l| Layer::new(l.w.shallow_clone(), l.b.shallow_clone(), l.offset)).collect();
        Mlp { layers }
    }

    /// This network's layer views of `buffer`, a gradient buffer of its set.
    pub fn grad_views(&self, buffer: &Tensor) -> GradViews {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let (fan_in, fan_out) = (l.w.size()[0], l.w.size()[1]);
                let gw = buffer.narrow(0, l.offset, fan_in * fan_out).view([fan_in, fan_out]);
                (gw, buffer.narrow(0, l.offset + fan_in * fan_out, fan_out))
            })
            .collect();
        GradViews { buffer: buffer.shallow_clone(), layers }
    }

    /// Multiply-adds of one forward pass over `batch` rows (×2 = FLOPs).
    pub fn forward_macs(&self, batch: usize) -> f64 {
        self.layers.iter().map(|l| batch as f64 * l.w.numel() as f64).sum()
    }

    /// Multiply-adds of the first layer over `batch` rows (its input gradient is skipped when
    /// the input needs none).
    pub fn first_layer_macs(&self, batch: usize) -> f64 {
        batch as f64 * self.layers[0].w.numel() as f64
    }
}

/// The parameters of one or more [`Mlp`]s in one contiguous `f32` buffer.
#[derive(Debug)]
pub struct ParamSet {
    /// All parameters, network by network, layer by layer, weight then bias.
    data: Tensor,
    /// Each weight and bias as a view into `data`, same order, with its name `<net>.w<i>` /
    /// `<net>.b<i>`.
    named: Vec<(String, Tensor)>,
    /// Each network's name and layer sizes.
    layout: Vec<(String, Vec<usize>)>,
}

impl ParamSet {
    /// Builds networks named `nets[k].0` with layer sizes `nets[k].1`, all parameters in one
    /// buffer. Initialisation as PyTorch's default `nn.Linear` (weights and biases uniform in
    /// ±1/√fan_in), drawn from `rng` (not tch's process-global generator, so that agents
    /// built in parallel stay reproducible).
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
        Self::from_data(nets, Tensor::from_slice(&values))
    }

    /// A copy of this set with the same networks and values (target networks), its networks
    /// named with `suffix` appended.
    pub fn copy(&self, suffix: &str) -> (ParamSet, Vec<Mlp>) {
        let names: Vec<String> = self.layout.iter().map(|(net, _)| format!("{net}{suffix}")).collect();
        let nets: Vec<(&str, &[usize])> =
            names.iter().zip(&self.layout).map(|(n, (_, sizes))| (n.as_str(), sizes.as_slice())).collect();
        Self::from_data(&nets, self.data.copy())
    }

    fn from_data(nets: &[(&str, &[usize])], data: Tensor) -> (ParamSet, Vec<Mlp>) {
        let mut named = Vec::new();
        let mut mlps = Vec::new();
        let mut offset = 0;
        for (net, sizes) in nets {
            let mut layers = Vec::new();
            for (i, pair) in sizes.windows(2).enumerate() {
                let (fan_in, fan_out) = (pair[0] as i64, pair[1] as i64);
                let w = data.narrow(0, offset, fan_in * fan_out).view([fan_in, fan_out]);
                let b = data.narrow(0, offset + fan_in * fan_out, fan_out);
                named.push((format!("{net}.w{i}"), w.shallow_clone()));
                named.push((format!("{net}.b{i}"), b.shallow_clone()));
                layers.push(Layer::new(w, b, offset));
                offset += (fan_in + 1) * fan_out;
            }
            mlps.push(Mlp { layers });
        }
        assert_eq!(offset, data.numel() as i64, "parameter buffer size does not match the networks");
        let layout = nets.iter().map(|(n, sizes)| (n.to_string(), sizes.to_vec())).collect();
        (ParamSet { data, named, layout }, mlps)
    }

    /// Number of parameters.
    pub fn numel(&self) -> i64 {
        self.data.numel() as i64
    }

    /// A zeroed buffer laid out like this set, for [`Mlp::backward`] to write gradients into.
    pub fn grad_buffer(&self) -> Tensor {
        self.data.zeros_like()
    }

    /// Named parameter views (for checkpoints). Writing into them writes the buffer.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        self.named.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()
    }
}

/// Adam (Kingma & Ba 2015) on a [`ParamSet`], with PyTorch's defaults:
///   m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,
///   θ ← θ − lr · m̂ / (√v̂ + ε),  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ),
/// for one slice of the set's buffer, so that the slices of one set can be stepped on
/// different threads. A step is one loop over the slice (libtorch would take eight passes of
/// separate ops): it sums the slice of every gradient buffer, steps the parameters, and, for
/// critics, Polyak-averages the target networks toward the new parameters,
///   θ̄ ← (1 − ρ)·θ̄ + ρ·θ
/// (Lillicrap et al. 2016; SB3 calls ρ `tau`, which here always means the temperature).
#[derive(Debug)]
pub struct AdamSlice {
    lr: f64,
    t: i32,
    m: Vec<f32>,
    v: Vec<f32>,
    /// This slice of the parameters, of each gradient buffer and of the target set.
    params: Tensor,
    grads: Vec<Tensor>,
    target: Option<(Tensor, f32)>,
}

/// An [`AdamSlice`]'s state, for checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamMoments {
    pub t: i32,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f32 = 1e-8;

impl AdamSlice {
    /// Adam with learning rate `lr` on `params`, whose gradient is the sum of `grads`
    /// (buffers laid out like the set, written by [`Mlp::backward`]), cut into `slices`
    /// contiguous slices. With `average` = (target, ρ) each step also averages the target.
    pub fn split(params: &ParamSet, lr: f64, grads: &[Tensor], average: Option<(&ParamSet, f64)>, slices: usize) -> Vec<AdamSlice> {
        let n = params.numel();
        for buffer in grads.iter().chain(average.map(|(t, _)| &t.data)) {
            assert_eq!(buffer.numel() as i64, n, "gradient or target buffer laid out for another set");
        }
        // Boundaries on 16-float multiples: whole SIMD vectors and cache lines per slice.
        let width = ((n + slices as i64 - 1) / slices as i64 + 15) / 16 * 16;
        (0..slices as i64)
            .map(|k| {
                let start = (k * width).min(n);
                let len = width.min(n - start);
                let part = |t: &Tensor| t.narrow(0, start, len);
                AdamSlice {
                    lr,
                    t: 0,
                    m: vec![0.0; len as usize],
                    v: vec![0.0; len as usize],
                    params: part(&params.data),
                    grads: grads.iter().map(part).collect(),
                    target: average.map(|(target, rho)| (part(&target.data), rho as f32)),
                }
            })
            .collect()
    }

    /// The optimiser's state: step count and moments.
    pub fn moments(&self) -> AdamMoments {
        AdamMoments { t: self.t, m: self.m.clone(), v: self.v.clone() }
    }

    /// Restores [`AdamSlice::moments`]; they must be laid out for this slice.
    pub fn set_moments(&mut self, moments: AdamMoments) -> anyhow::Result<()> {
        if moments.m.len() != self.m.len() || moments.v.len() != self.v.len() || moments.t < 0 {
            anyhow::bail!("Adam moments of {} elements do not fit a slice of {}", moments.m.len(), self.m.len());
        }
        (self.t, self.m, self.v) = (moments.t, moments.m, moments.v);
        Ok(())
    }

    /// One step of this slice: θ ← θ − lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ),
    /// computed as PyTorch does, √v̂ = √v/√(1 − β₂ᵗ) (multiplying by 1/√(1 − β₂ᵗ): one
    /// division fewer per parameter, a rounding apart).
    pub fn step(&mut self) {
        self.t += 1;
        let step_size = (self.lr / (1.0 - BETA1.powi(self.t))) as f32;
        let inv_bias2_sqrt = (1.0 / (1.0 - BETA2.powi(self.t)).sqrt()) as f32;
        // SAFETY: the parameter and target slices belong to this AdamSlice alone (the
        // slices of a set are disjoint), the gradient buffers are only read, and no libtorch
        // op on these buffers runs during a step.
        let theta = unsafe { elements_mut(&self.params) };
        let grads: Vec<&[f32]> = self.grads.iter().map(|g| &*unsafe { elements_mut(g) }).collect();
        let target = self.target.as_ref().map(|(t, rho)| (unsafe { elements_mut(t) }, *rho));
        let operands = AdamOperands { step_size, inv_bias2_sqrt, theta, grads: &grads, m: &mut self.m, v: &mut self.v, target };
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2. Same operations in the same order, so the same bits.
            unsafe { adam_loops_avx2(operands) }
        } else {
            adam_loops(operands)
        }
    }
}

/// What one Adam step runs over: its constants, the parameters, the gradient parts, the
/// moments and the target with its rate when averaging.
struct AdamOperands<'a> {
    step_size: f32,
    inv_bias2_sqrt: f32,
    theta: &'a mut [f32],
    grads: &'a [&'a [f32]],
    m: &'a mut [f32],
    v: &'a mut [f32],
    target: Option<(&'a mut [f32], f32)>,
}

/// [`adam_loops`] compiled for AVX2: eight lanes instead of four for the divisions and
/// square roots that bound the step.
#[target_feature(enable = "avx2")]
unsafe fn adam_loops_avx2(operands: AdamOperands<'_>) {
    adam_loops(operands)
}

/// The loops of [`AdamSlice::step`].
#[inline(always)]
fn adam_loops(operands: AdamOperands<'_>) {
    let AdamOperands { step_size, inv_bias2_sqrt, theta, grads, m, v, target } = operands;
    let (b1, b2) = (BETA1 as f32, BETA2 as f32);
    let adam = |theta: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
        *m = flush_subnormal(b1 * *m + (1.0 - b1) * g);
        *v = flush_subnormal(b2 * *v + (1.0 - b2) * g * g);
        *theta -= step_size * *m / (v.sqrt() * inv_bias2_sqrt + ADAM_EPS);
    };
    match (target, grads) {
        // The SAC update's two cases as vectorisable loops: a critic (one gradient, a
        // target) and half the actor (the gradients of two halves of the rows).
        (Some((target, rho)), [g]) => {
            for (((theta, t), &g), (m, v)) in theta.iter_mut().zip(target).zip(g.iter()).zip(m.iter_mut().zip(v.iter_mut())) {
                adam(theta, g, m, v);
                *t += rho * (*theta - *t);
            }
        }
        (None, [g0, g1]) => {
            let g = g0.iter().zip(g1.iter()).map(|(a, b)| a + b);
            for ((theta, g), (m, v)) in theta.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut())) {
                adam(theta, g, m, v);
            }
        }
        (mut target, _) => {
            for i in 0..theta.len() {
                let g = grads.iter().fold(0.0, |acc, g| acc + g[i]);
                adam(&mut theta[i], g, &mut m[i], &mut v[i]);
                if let Some((target, rho)) = &mut target {
                    target[i] += *rho * (theta[i] - target[i]);
                }
            }
        }
    }
}

/// `x`, or 0 if it is subnormal. A moment of a parameter whose gradient stays zero (a dead
/// ReLU unit's) decays geometrically into the subnormal range, where x86 arithmetic costs a
/// hundred cycles per operation: 12–18% of the first moments got there within 1,000 SAC
/// updates and made the Adam step about four times slower. Such values are far below any effect on the
/// step (ε = 1e-8), so they are set to zero.
#[inline]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// The elements of a contiguous CPU `f32` tensor as a slice, for loops that fuse what would
/// otherwise be several passes of libtorch ops.
///
/// # Safety
/// Nothing else may read or write the tensor's elements while the slice lives.
#[allow(clippy::mut_from_ref)]
unsafe fn elements_mut(t: &Tensor) -> &mut [f32] {
    assert!(
        t.kind() == Kind::Float && t.device() == tch::Device::Cpu && t.is_contiguous(),
        "expected a contiguous CPU f32 tensor, got {:?} on {:?}",
        t.kind(),
        t.device()
    );
    let n = t.numel();
    if n == 0 {
        return &mut [];
    }
    // SAFETY: a contiguous f32 tensor of n elements starts at data_ptr; exclusivity is the
    // caller's promise.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n) }
}

/// The networks rebuilt from plain libtorch ops, for tests to differentiate with autograd.
#[cfg(test)]
pub(crate) mod reference {
    use super::ParamSet;
    use tch::Tensor;

    /// The network `net` of `set`, its parameters copied into autograd leaves (`trainable`)
    /// or constants, weight then bias per layer.
    pub(crate) fn autograd_net(set: &ParamSet, net: &str, trainable: bool) -> Vec<Tensor> {
        set.named()
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{net}.")))
            .map(|(_, t)| t.copy().set_requires_grad(trainable))
            .collect()
    }

    /// y = x·W + b per layer, ReLU between layers.
    pub(crate) fn autograd_forward(layers: &[Tensor], x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, pair) in layers.chunks(2).enumerate() {
            if i > 0 {
                h = h.relu();
            }
            h = h.matmul(&pair[0]) + &pair[1];
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::reference::autograd_forward;
    use super::*;
    use rand::SeedableRng;
    use tch::nn::OptimizerConfig;
    use tch::{nn, Device};

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    fn randn(shape: &[i64]) -> Tensor {
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    fn autograd_copy(set: &ParamSet, net: &str) -> Vec<Tensor> {
        reference::autograd_net(set, net, true)
    }

    #[test]
    fn layers_are_views_of_the_flat_buffer() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (set, nets) = ParamSet::new(&[("a", &[3, 8, 2]), ("b", &[3, 4, 1])], &mut rng);
        assert_eq!(set.numel(), (3 * 8 + 8 + 8 * 2 + 2 + 3 * 4 + 4 + 4 + 1) as i64);
        let x = randn(&[5, 3]);
        let named = set.named();
        let w = |n: &str| named.iter().find(|(k, _)| k == n).map(|(_, t)| t.shallow_clone()).unwrap();
        let by_hand = (x.matmul(&w("b.w0")) + w("b.b0")).relu().matmul(&w("b.w1")) + w("b.b1");
        assert!(max_diff(&nets[1].forward(&x), &by_hand) < 1e-6);
        // Writing the buffer moves every view and every handle.
        let _ = set.data.shallow_clone().fill_(0.5);
        assert_eq!(w("a.b1").double_value(&[1]), 0.5);
        assert_eq!(nets[0].handle().forward(&x).size(), [5, 2]);
        assert!(max_diff(&nets[0].handle().forward(&x), &nets[0].forward(&x)) == 0.0);
    }

    #[test]
    fn backward_matches_autograd() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (set, nets) = ParamSet::new(&[("first", &[3, 5, 2]), ("a", &[3, 16, 8, 2])], &mut rng);
        let x = randn(&[7, 3]);
        let upstream = randn(&[7, 2]);
        // L = Σ y ⊙ upstream, so ∂L/∂y = upstream.
        let (y, tape) = nets[1].forward_taped(&x);
        let grad = set.grad_buffer();
        let dx = nets[1].backward(&tape, &upstream, Some(&nets[1].grad_views(&grad)), true).unwrap();

        let leaves = autograd_copy(&set, "a");
        let x_leaf = x.copy().set_requires_grad(true);
        let y_ref = autograd_forward(&leaves, &x_leaf);
        assert!(max_diff(&y, &y_ref) < 1e-6);
        (y_ref * &upstream).sum(Kind::Float).backward();
        assert!(max_diff(&dx, &x_leaf.grad()) < 1e-5);
        let offset = 3 * 5 + 5 + 5 * 2 + 2;
        let mut at = offset;
        for leaf in &leaves {
            let n = leaf.numel() as i64;
            let ours = grad.narrow(0, at, n).view(leaf.size().as_slice());
            assert!(max_diff(&ours, &leaf.grad()) < 1e-5, "parameter at {at}");
            at += n;
        }
        // The other network's region is left alone, and without `input_grad` no ∂L/∂x.
        assert_eq!(grad.narrow(0, 0, offset).abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert!(nets[1].backward(&tape, &upstream, None, false).is_none());
    }

    #[test]
    fn adam_on_summed_parts_matches_libtorch_adam() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (set, nets) = ParamSet::new(&[("a", &[3, 8, 2])], &mut rng);
        let initial = set.data.copy();
        let vs = nn::VarStore::new(Device::Cpu);
        let reference: Vec<Tensor> =
            set.named().iter().map(|(n, t)| vs.root().var_copy(&n.replace('.', "_"), t)).collect();
        let mut reference_opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
        let parts = [set.grad_buffer(), set.grad_buffer()];
        // Three slices, so that one boundary falls inside a layer.
        let mut adam = AdamSlice::split(&set, 1e-2, &parts, None, 3);
        let x = randn(&[16, 3]);
        let halves = [x.narrow(0, 0, 8), x.narrow(0, 8, 8)];
        for _ in 0..20 {
            // L = mean over 16 rows of y², as two halves whose gradients add up.
            for (half, g) in halves.iter().zip(&parts) {
                let (y, tape) = nets[0].forward_taped(half);
                nets[0].backward(&tape, &(&y * (2.0 / 32.0)), Some(&nets[0].grad_views(g)), false);
            }
            adam.iter_mut().for_each(AdamSlice::step);
            let out = autograd_forward(&reference, &x);
            reference_opt.backward_step(&out.square().mean(Kind::Float));
        }
        for ((name, ours), theirs) in set.named().iter().zip(&reference) {
            let diff = max_diff(ours, theirs);
            assert!(diff < 1e-5, "{name} differs by {diff}");
        }
        // The run moved the weights: the comparison is not of two untouched copies.
        assert!(max_diff(&set.data, &initial) > 1e-3);
    }

    #[test]
    fn adam_slices_cover_the_buffer_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (sizes, parts) in [([3usize, 8, 2], 3usize), ([3, 8, 2], 1), ([3, 30, 2], 2), ([3, 30, 2], 5)] {
            let (set, _) = ParamSet::new(&[("a", &sizes)], &mut rng);
            let grads = [set.grad_buffer().fill_(1.0)];
            let mut slices = AdamSlice::split(&set, 1e-2, &grads, None, parts);
            assert_eq!(slices.iter().map(|s| s.m.len() as i64).sum::<i64>(), set.numel());
            let before = set.data.copy();
            slices.iter_mut().for_each(AdamSlice::step);
            // Adam's first step moves every parameter by lr·g/(|g| + ε) ≈ lr: each exactly once.
            let moved = (&before - &set.data).min().double_value(&[]);
            let most = (&before - &set.data).max().double_value(&[]);
            assert!((moved - 1e-2).abs() < 1e-6 && (most - 1e-2).abs() < 1e-6, "{sizes:?} in {parts}: {moved} .. {most}");
        }
    }

    #[test]
    fn step_averages_the_target_toward_the_new_parameters() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (src, _) = ParamSet::new(&[("a", &[2, 4, 1])], &mut rng);
        let (other, _) = ParamSet::new(&[("a", &[2, 4, 1])], &mut rng);
        let (tgt, _) = other.copy("_target");
        let before = tgt.data.copy();
        let grads = [src.grad_buffer().fill_(0.5), src.grad_buffer().fill_(-0.25)];
        let mut slices = AdamSlice::split(&src, 1e-3, &grads, Some((&tgt, 0.25)), 2);
        slices.iter_mut().for_each(AdamSlice::step);
        let want = before * 0.75 + &src.data * 0.25;
        assert!(max_diff(&tgt.data, &want) < 1e-6);
        assert_eq!(tgt.named()[0].0, "a_target.w0");
        // A copy, not a view: the source is untouched by the averaging.
        assert!(max_diff(&other.data, &tgt.data) > 1e-3);
    }
}
