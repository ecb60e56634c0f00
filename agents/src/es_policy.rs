//! MLP policies for evolution strategies, held as flat `f32` parameter vectors and evaluated
//! for [`LANES`] population members at once.
//!
//! ES never backpropagates, so a policy is only a forward pass. Every member of a population
//! has its own parameters, so the batch is not one matrix product but `LANES` matrix-vector
//! products run side by side: each parameter and each activation is stored lane-interleaved
//! (value `v` of lane `l` at `v * LANES + l`) and every arithmetic operation is a vertical
//! `LANES`-wide operation the compiler turns into SIMD. Lanes never mix, so a member's output
//! is bit-identical whichever lanes, chunk or thread it ran in.

use rand::Rng;
use rand_distr::StandardNormal;

/// Members evaluated together: one 256-bit register of `f32`.
pub(crate) const LANES: usize = 8;

/// Layer sizes of a tanh MLP, `[obs_features, hidden.., outputs]`.
///
/// Flat parameter layout, layer after layer: the weight `W` (`n_in × n_out`, row-major, so
/// the layer computes `y = tanh(x·W + b)`), then the bias `b` (`n_out`). The last layer has
/// no activation; the action head decides what to do with its outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MlpShape {
    pub sizes: Vec<usize>,
}

/// One layer's place in the flat parameter vector.
#[derive(Clone, Copy, Debug)]
struct Layer {
    n_in: usize,
    n_out: usize,
    /// Offset of `W` in the flat vector; `b` follows it.
    w: usize,
}

impl Layer {
    fn b(&self) -> usize {
        self.w + self.n_in * self.n_out
    }
}

impl MlpShape {
    pub fn new(inputs: usize, hidden: &[usize], outputs: usize) -> Self {
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(outputs);
        MlpShape { sizes }
    }

    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    pub fn outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    fn layers(&self) -> impl Iterator<Item = Layer> + '_ {
        let mut offset = 0;
        self.sizes.windows(2).map(move |w| {
            let layer = Layer {
                n_in: w[0],
                n_out: w[1],
                w: offset,
            };
            offset += w[0] * w[1] + w[1];
            layer
        })
    }

    pub fn num_params(&self) -> usize {
        self.sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Widest layer, for sizing activation buffers.
    fn widest(&self) -> usize {
        self.sizes.iter().copied().max().unwrap_or(0)
    }

    /// Initial parameters: LeCun-normal hidden weights (std `1/√n_in`), zero biases, and an
    /// output layer scaled down by 100 so that the first policies are nearly uniform
    /// (discrete) or centred (continuous), as Salimans et al. (2017) initialise theirs.
    pub fn init(&self, rng: &mut impl Rng) -> Vec<f32> {
        let mut theta = vec![0.0f32; self.num_params()];
        let n_layers = self.sizes.len() - 1;
        for (k, layer) in self.layers().enumerate() {
            let scale = if k + 1 == n_layers { 0.01 } else { 1.0 };
            let std = scale / (layer.n_in as f32).sqrt();
            for w in &mut theta[layer.w..layer.b()] {
                let z: f32 = rng.sample(StandardNormal);
                *w = std * z;
            }
        }
        theta
    }
}

/// Scratch space for a lane-interleaved forward pass.
#[derive(Clone, Debug)]
pub(crate) struct Activations {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Activations {
    pub fn new(shape: &MlpShape) -> Self {
        let n = shape.widest() * LANES;
        Activations {
            a: vec![0.0; n],
            b: vec![0.0; n],
        }
    }
}

/// Forward pass of `LANES` members at once.
///
/// `params` holds `num_params × LANES` values, `x` holds `inputs × LANES`, `out` receives
/// `outputs × LANES`, all lane-interleaved. Uses AVX2 + FMA when the CPU has them. Every path
/// runs the same sequence of correctly rounded IEEE operations (`mul_add` is one rounding
/// whether done by the FMA unit or in software), so the numbers never depend on the path;
/// only CPUs without FMA pay for software fused multiply-adds.
pub(crate) fn forward(
    shape: &MlpShape,
    params: &[f32],
    x: &[f32],
    act: &mut Activations,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { avx2::forward(shape, params, x, act, out) };
        return;
    }
    forward_portable(shape, params, x, act, out);
}

/// The layer loop shared by every path; `dense(tanh, w, b, x, y, n_in, n_out)` is the kernel.
#[inline(always)]
fn forward_layers(
    shape: &MlpShape,
    params: &[f32],
    x: &[f32],
    act: &mut Activations,
    out: &mut [f32],
    mut dense: impl FnMut(bool, &[f32], &[f32], &[f32], &mut [f32], usize, usize),
) {
    let n_layers = shape.sizes.len() - 1;
    let Activations { a, b } = act;
    a[..x.len()].copy_from_slice(x);
    let (mut src, mut dst) = (a, b);
    for (k, layer) in shape.layers().enumerate() {
        let w = &params[layer.w * LANES..layer.b() * LANES];
        let bias = &params[layer.b() * LANES..(layer.b() + layer.n_out) * LANES];
        let input = &src[..layer.n_in * LANES];
        if k + 1 == n_layers {
            let y = &mut out[..layer.n_out * LANES];
            dense(false, w, bias, input, y, layer.n_in, layer.n_out);
        } else {
            let y = &mut dst[..layer.n_out * LANES];
            dense(true, w, bias, input, y, layer.n_in, layer.n_out);
            std::mem::swap(&mut src, &mut dst);
        }
    }
}

/// The reference path, written so that it needs no SIMD support at all.
fn forward_portable(
    shape: &MlpShape,
    params: &[f32],
    x: &[f32],
    act: &mut Activations,
    out: &mut [f32],
) {
    forward_layers(shape, params, x, act, out, |tanh, w, b, x, y, n_in, n_out| {
        if tanh {
            dense::<true>(w, b, x, y, n_in, n_out)
        } else {
            dense::<false>(w, b, x, y, n_in, n_out)
        }
    });
}

/// `y = x·W + b` for every lane, then tanh if `TANH`. Eight outputs are accumulated together
/// so that eight independent add chains hide the adder's latency.
#[inline(always)]
fn dense<const TANH: bool>(
    w: &[f32],
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
    n_in: usize,
    n_out: usize,
) {
    const TILE: usize = 8;
    let mut j = 0;
    while j + TILE <= n_out {
        let mut acc = [[0.0f32; LANES]; TILE];
        for (t, acc_t) in acc.iter_mut().enumerate() {
            acc_t.copy_from_slice(&b[(j + t) * LANES..(j + t + 1) * LANES]);
        }
        for (i, xi) in x.chunks_exact(LANES).enumerate().take(n_in) {
            let row = &w[(i * n_out + j) * LANES..(i * n_out + j + TILE) * LANES];
            for (acc_t, w_t) in acc.iter_mut().zip(row.chunks_exact(LANES)) {
                for l in 0..LANES {
                    acc_t[l] = w_t[l].mul_add(xi[l], acc_t[l]);
                }
            }
        }
        for (t, acc_t) in acc.iter_mut().enumerate() {
            if TANH {
                acc_t.iter_mut().for_each(|z| *z = tanh(*z));
            }
            y[(j + t) * LANES..(j + t + 1) * LANES].copy_from_slice(acc_t);
        }
        j += TILE;
    }
    // Fewer than eight outputs left (a policy head): split each sum over the inputs into
    // four interleaved partial sums instead, for the same reason.
    for j in j..n_out {
        let mut part = [[0.0f32; LANES]; 4];
        for (i, xi) in x.chunks_exact(LANES).enumerate().take(n_in) {
            let w_ij = &w[(i * n_out + j) * LANES..(i * n_out + j + 1) * LANES];
            let p = &mut part[i % 4];
            for l in 0..LANES {
                p[l] = w_ij[l].mul_add(xi[l], p[l]);
            }
        }
        let mut acc = [0.0f32; LANES];
        for l in 0..LANES {
            acc[l] = b[j * LANES + l] + ((part[0][l] + part[1][l]) + (part[2][l] + part[3][l]));
        }
        if TANH {
            acc.iter_mut().for_each(|z| *z = tanh(*z));
        }
        y[j * LANES..(j + 1) * LANES].copy_from_slice(&acc);
    }
}

/// tanh of every lane of `v` in place, on the same path as [`forward`].
pub(crate) fn tanh_lanes(v: &mut [f32; LANES]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { avx2::tanh_lanes(v) };
        return;
    }
    v.iter_mut().for_each(|z| *z = tanh(*z));
}

/// Coefficients of 2^r = Σ (r·ln2)^n / n!, highest first, shared by every tanh path.
const EXP2_POLY: [f32; 7] = [
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
    1.0,
    1.0,
];
/// Adding and subtracting 1.5·2^23 rounds a float of magnitude < 2^22 to an integer.
const ROUND: f32 = 12_582_912.0;

/// Hand-written AVX2 kernels. LLVM kept the portable tanh scalar (the bit casts stop its
/// vectorizer), which made it cost more than all the multiply-adds; here every operation is
/// the 8-lane twin of the portable one, in the same order, so the results are bit-identical.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{forward_layers, Activations, MlpShape, EXP2_POLY, LANES, ROUND};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn forward(
        shape: &MlpShape,
        params: &[f32],
        x: &[f32],
        act: &mut Activations,
        out: &mut [f32],
    ) {
        forward_layers(shape, params, x, act, out, |tanh, w, b, x, y, n_in, n_out| {
            // SAFETY: this closure only runs inside this AVX2 + FMA function.
            unsafe { dense(tanh, w, b, x, y, n_in, n_out) }
        });
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tanh_lanes(v: &mut [f32; LANES]) {
        // SAFETY: `v` holds exactly one 8-lane vector.
        unsafe { _mm256_storeu_ps(v.as_mut_ptr(), tanh8(_mm256_loadu_ps(v.as_ptr()))) }
    }

    /// The twin of `super::dense`; see there.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dense(
        tanh: bool,
        w: &[f32],
        b: &[f32],
        x: &[f32],
        y: &mut [f32],
        n_in: usize,
        n_out: usize,
    ) {
        const TILE: usize = 8;
        // Checked once here so that the loops below can use raw pointers.
        assert!(
            w.len() >= n_in * n_out * LANES
                && b.len() >= n_out * LANES
                && x.len() >= n_in * LANES
                && y.len() >= n_out * LANES
        );
        let (w, b, x, y) = (w.as_ptr(), b.as_ptr(), x.as_ptr(), y.as_mut_ptr());
        let lane = |p: *const f32, v: usize| _mm256_loadu_ps(p.add(v * LANES));
        let tiles = n_out / TILE;
        for tile in 0..tiles {
            let j = TILE * tile;
            let mut acc: [__m256; TILE] = std::array::from_fn(|t| lane(b, j + t));
            for i in 0..n_in {
                let xi = lane(x, i);
                let row = w.add((i * n_out + j) * LANES);
                for (t, acc_t) in acc.iter_mut().enumerate() {
                    *acc_t = _mm256_fmadd_ps(lane(row, t), xi, *acc_t);
                }
            }
            for (t, &acc_t) in acc.iter().enumerate() {
                let v = if tanh { tanh8(acc_t) } else { acc_t };
                _mm256_storeu_ps(y.add((j + t) * LANES), v);
            }
        }
        for j in tiles * TILE..n_out {
            // Input i goes to part[i % 4], as in the portable loop, but with constant indices
            // so that the partial sums stay in registers.
            let mut part = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 4 <= n_in {
                for (q, p) in part.iter_mut().enumerate() {
                    *p = _mm256_fmadd_ps(lane(w, (i + q) * n_out + j), lane(x, i + q), *p);
                }
                i += 4;
            }
            for (q, p) in part.iter_mut().enumerate().take(n_in - i) {
                *p = _mm256_fmadd_ps(lane(w, (i + q) * n_out + j), lane(x, i + q), *p);
            }
            let sum = _mm256_add_ps(
                _mm256_add_ps(part[0], part[1]),
                _mm256_add_ps(part[2], part[3]),
            );
            let acc = _mm256_add_ps(lane(b, j), sum);
            let v = if tanh { tanh8(acc) } else { acc };
            _mm256_storeu_ps(y.add(j * LANES), v);
        }
    }

    /// The twin of `super::tanh`, step for step.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn tanh8(x: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let one = _mm256_set1_ps(1.0);
        let round = _mm256_set1_ps(ROUND);
        // min(NaN, 9) is 9 here as in f32::min, since minps returns its second operand.
        let a = _mm256_min_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(9.0));
        let t = _mm256_mul_ps(_mm256_set1_ps(-2.0 * std::f32::consts::LOG2_E), a);
        let shifted = _mm256_add_ps(t, round);
        let k = _mm256_sub_ps(shifted, round);
        let r = _mm256_sub_ps(t, k);
        let u = _mm256_mul_ps(r, _mm256_set1_ps(std::f32::consts::LN_2));
        let mut p = _mm256_set1_ps(EXP2_POLY[0]);
        for &c in &EXP2_POLY[1..] {
            p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(c));
        }
        let k_int = _mm256_sub_epi32(
            _mm256_castps_si256(shifted),
            _mm256_set1_epi32(ROUND.to_bits() as i32),
        );
        let scale =
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k_int, _mm256_set1_epi32(127)), 23));
        let e = _mm256_mul_ps(p, scale);
        let mag = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
        // mag ≥ 0, so OR-ing in x's sign bit is copysign.
        _mm256_or_ps(mag, _mm256_and_ps(x, sign))
    }
}

/// tanh from plain arithmetic so that it vectorizes (the libm call does not).
///
/// tanh(x) = sign(x)·(1 − e)/(1 + e) with e = exp(−2|x|) = 2^(−2|x|·log2 e). The power of two
/// is split into an integer part k (written straight into the exponent bits) and a fraction
/// r ∈ [−½, ½], whose 2^r comes from its degree-6 Taylor polynomial (error below 2e-7).
/// Absolute error of the result is below 1e-6; |x| ≥ 9 gives ±1 to f32 precision anyway.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    let a = x.abs().min(9.0);
    let t = -2.0 * LOG2_E * a; // exp(−2a) = 2^t, t ∈ [−26, 0]
    let shifted = t + ROUND;
    let k = shifted - ROUND;
    let r = t - k;
    // 2^r = e^(r·ln2) = Σ (r·ln2)^n / n!
    let u = r * std::f32::consts::LN_2;
    let mut p = EXP2_POLY[0];
    for &c in &EXP2_POLY[1..] {
        p = p.mul_add(u, c);
    }
    // The integer k sits in the low mantissa bits of `shifted`; 2^k is k + 127 in the exponent.
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(k_int.wrapping_add(127) << 23);
    let e = p * scale;
    let mag = (1.0 - e) / (1.0 + e);
    mag.copysign(x)
}

/// Writes one member's flat parameters into lane `lane` of an interleaved buffer.
pub(crate) fn scatter_lane(flat: &[f32], interleaved: &mut [f32], lane: usize) {
    for (p, v) in flat.iter().enumerate() {
        interleaved[p * LANES + lane] = *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Straightforward one-member forward pass with the library tanh, as the reference.
    fn reference(shape: &MlpShape, theta: &[f32], x: &[f32]) -> Vec<f64> {
        let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let n_layers = shape.sizes.len() - 1;
        for (k, layer) in shape.layers().enumerate() {
            let mut y = vec![0.0f64; layer.n_out];
            for (j, yj) in y.iter_mut().enumerate() {
                *yj = theta[layer.b() + j] as f64;
                for (i, hi) in h.iter().enumerate() {
                    *yj += theta[layer.w + i * layer.n_out + j] as f64 * hi;
                }
                if k + 1 < n_layers {
                    *yj = yj.tanh();
                }
            }
            h = y;
        }
        h
    }

    #[test]
    fn fast_tanh_matches_libm() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let err = (tanh(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "worst abs error {worst}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert!(tanh(f32::INFINITY) == 1.0);
    }

    #[test]
    fn simd_tanh_is_bit_identical_to_scalar() {
        let mut xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 7.3e-5).collect();
        xs.extend([0.0, -0.0, 9.0, -9.0, 1e-30, f32::MAX, f32::INFINITY, f32::NEG_INFINITY]);
        xs.resize(xs.len().next_multiple_of(LANES), 0.5);
        for chunk in xs.chunks_exact(LANES) {
            let mut v: [f32; LANES] = chunk.try_into().unwrap();
            tanh_lanes(&mut v);
            for (x, y) in chunk.iter().zip(v) {
                assert_eq!(y.to_bits(), tanh(*x).to_bits(), "tanh({x})");
            }
        }
        let mut nan = [f32::NAN; LANES];
        tanh_lanes(&mut nan);
        assert!(nan.iter().all(|y| y.to_bits() == tanh(f32::NAN).to_bits()));
    }

    #[test]
    fn batched_forward_matches_per_member_reference() {
        // 13 outputs exercise both the 8-wide tile and the remainder loop.
        let shape = MlpShape::new(5, &[16, 11], 13);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut params = vec![0.0f32; shape.num_params() * LANES];
        let mut x = vec![0.0f32; shape.inputs() * LANES];
        let mut thetas = Vec::new();
        for lane in 0..LANES {
            // Larger weights than `init` gives, so that the tanh saturation is exercised too.
            let theta: Vec<f32> = (0..shape.num_params())
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            scatter_lane(&theta, &mut params, lane);
            for i in 0..shape.inputs() {
                x[i * LANES + lane] = rng.sample(StandardNormal);
            }
            thetas.push(theta);
        }
        let mut act = Activations::new(&shape);
        let mut out = vec![0.0f32; shape.outputs() * LANES];
        forward(&shape, &params, &x, &mut act, &mut out);
        let mut portable = vec![0.0f32; out.len()];
        forward_portable(&shape, &params, &x, &mut act, &mut portable);
        assert_eq!(
            out, portable,
            "SIMD and portable paths must agree bit for bit"
        );
        for (lane, theta) in thetas.iter().enumerate() {
            let xs: Vec<f32> = (0..shape.inputs()).map(|i| x[i * LANES + lane]).collect();
            let want = reference(&shape, theta, &xs);
            for (j, w) in want.iter().enumerate() {
                let got = out[j * LANES + lane] as f64;
                assert!(
                    (got - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "lane {lane} out {j}: {got} vs {w}"
                );
            }
        }
    }

    #[test]
    fn init_has_expected_scale() {
        let shape = MlpShape::new(4, &[64, 64], 2);
        let theta = shape.init(&mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(theta.len(), 4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2);
        let layers: Vec<Layer> = shape.layers().collect();
        let std_of =
            |s: &[f32]| (s.iter().map(|v| (v * v) as f64).sum::<f64>() / s.len() as f64).sqrt();
        let hidden = std_of(&theta[layers[1].w..layers[1].b()]);
        assert!((hidden - 1.0 / 8.0).abs() < 0.01, "hidden std {hidden}");
        let head = std_of(&theta[layers[2].w..layers[2].b()]);
        assert!(head < 0.01 / 8.0 * 1.5 && head > 0.0, "head std {head}");
        assert!(theta[layers[1].b()..layers[2].w].iter().all(|&b| b == 0.0));
    }
}
