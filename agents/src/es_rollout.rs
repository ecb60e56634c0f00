//! Lock-step episodes for a chunk of [`LANES`] policies: the environment side of evolution
//! strategies.
//!
//! A [`Chunk`] owns `LANES` environments and a lane-interleaved parameter buffer. All its
//! episodes advance one step at a time together, so each step is one batched forward pass
//! (see `es_policy`) followed by one `step` per still-running environment. The chunk's
//! parameters stay in cache for the whole episode. Each lane draws its action noise from its
//! own seeded generator, so a lane's episode does not depend on its neighbours.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tame_envs::{Action, Env, EnvError, Space};

use crate::es_policy::{forward, tanh_lanes, Activations, MlpShape, LANES};

/// How observations become policy inputs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ObsEncoding {
    /// A `Box` observation of this many components, normalised by running statistics.
    Box(usize),
    /// A `Discrete(n)` observation (a cell index), one-hot encoded; never normalised.
    OneHot(usize),
}

impl ObsEncoding {
    pub fn features(&self) -> usize {
        match self {
            ObsEncoding::Box(d) | ObsEncoding::OneHot(d) => *d,
        }
    }
}

/// How the policy's outputs become an action.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Head {
    /// Logits of a categorical policy: sample softmax(logits/τ), or argmax at τ = 0.
    Discrete(usize),
    /// tanh-squashed mean m ∈ (−1, 1)^d, plus τ·N(0, I) noise, clipped to [−1, 1] and mapped
    /// affinely onto the action box: a = center + half_width·clip(m + τξ, −1, 1).
    Continuous {
        center: Vec<f64>,
        half_width: Vec<f64>,
    },
}

impl Head {
    pub fn outputs(&self) -> usize {
        match self {
            Head::Discrete(n) => *n,
            Head::Continuous { center, .. } => center.len(),
        }
    }
}

/// Everything needed to turn parameters into behaviour in a given env.
#[derive(Clone, Debug)]
pub(crate) struct PolicySpec {
    pub obs: ObsEncoding,
    pub shape: MlpShape,
    pub head: Head,
}

/// What the policy head cannot handle, in words (the caller wraps it in its error type).
pub(crate) fn spec_for(
    observation_space: &Space,
    action_space: &Space,
    hidden: &[usize],
) -> Result<PolicySpec, String> {
    let obs = match observation_space {
        Space::Box { low, .. } if !low.is_empty() => ObsEncoding::Box(low.len()),
        Space::Discrete(n) if *n > 0 => ObsEncoding::OneHot(*n),
        other => return Err(format!("observation space {other} is not supported")),
    };
    let head = match action_space {
        Space::Discrete(n) if *n >= 1 => Head::Discrete(*n),
        Space::Box { low, high }
            if !low.is_empty()
                && low
                    .iter()
                    .zip(high)
                    .all(|(l, h)| l.is_finite() && h.is_finite() && l < h) =>
        {
            Head::Continuous {
                center: low
                    .iter()
                    .zip(high)
                    .map(|(&l, &h)| (l as f64 + h as f64) / 2.0)
                    .collect(),
                half_width: low
                    .iter()
                    .zip(high)
                    .map(|(&l, &h)| (h as f64 - l as f64) / 2.0)
                    .collect(),
            }
        }
        other => {
            return Err(format!(
                "action space {other} is not supported; accepted: Discrete(n), or a Box with \
                 finite bounds low < high in every component"
            ))
        }
    };
    let shape = MlpShape::new(obs.features(), hidden, head.outputs());
    Ok(PolicySpec { obs, shape, head })
}

/// A snapshot of the observation normalisation, x = clip((obs − mean)/std, −5, 5),
/// fixed for a whole generation so that every member sees the same function.
#[derive(Clone, Debug, PartialEq)]
pub struct ObsNorm {
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

impl ObsNorm {
    pub fn identity(dim: usize) -> Self {
        ObsNorm {
            mean: vec![0.0; dim],
            inv_std: vec![1.0; dim],
        }
    }
}

/// What one lane is asked to do in a rollout.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LaneTask {
    /// Lanes past the end of the population stay idle.
    pub active: bool,
    pub env_seed: u64,
    pub action_seed: u64,
    /// Accumulate this lane's raw observations into the normalisation statistics.
    pub record_obs: bool,
}

/// One lane's finished episode. What training reads of it also travels between a distributed
/// ES run's workers and its coordinator (`tame train --redis`), so it is serialisable; f64s
/// round-trip exactly through JSON.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    pub ret: f64,
    pub len: u64,
    /// Σ obs, Σ obs², count over the steps, when `record_obs` was set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obs_sum: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obs_sumsq: Vec<f64>,
    #[serde(default)]
    pub obs_count: u64,
    /// Σ of the policy's entropy at the visited states, when asked for (discrete heads).
    #[serde(skip)]
    pub entropy_sum: f64,
    /// The env's own verdict at the episode's end (a gridworld's goal reached); `None` for
    /// envs without a notion of success.
    #[serde(skip)]
    pub success: Option<bool>,
    /// Cut (time limit or step cap) rather than terminated; only evaluations read it.
    #[serde(skip)]
    pub truncated: bool,
}

/// How a chunk acts during one rollout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActSettings {
    /// Temperature of the actions taken.
    pub tau: f64,
    /// If set, record the entropy of softmax(logits/τ) at this τ at every visited state.
    pub entropy_tau: Option<f64>,
    /// Hard cap on episode length, for envs without a time limit.
    pub max_steps: u64,
}

struct Lane {
    env: Box<dyn Env>,
    obs: Vec<f32>,
    action: Vec<f64>,
    rng: ChaCha8Rng,
    episode: Episode,
    done: bool,
    record_obs: bool,
}

/// `LANES` environments and the parameters of the `LANES` policies that act in them.
pub(crate) struct Chunk {
    lanes: Vec<Lane>,
    /// Lane-interleaved parameters; the owner fills them before each rollout.
    pub params: Vec<f32>,
    /// The owner's scratch for the perturbations ε of this chunk's `LANES/2` mirrored pairs,
    /// kept from the rollout to the update as a distributed worker would keep its own.
    pub noise: Vec<f32>,
    x: Vec<f32>,
    out: Vec<f32>,
    act: Activations,
}

impl Chunk {
    pub fn new(
        spec: &PolicySpec,
        make_env: &(dyn Fn() -> Result<Box<dyn Env>, EnvError> + Sync),
    ) -> Result<Self, EnvError> {
        let obs_dim = match spec.obs {
            ObsEncoding::Box(d) => d,
            ObsEncoding::OneHot(_) => 1,
        };
        let lanes = (0..LANES)
            .map(|_| {
                Ok(Lane {
                    env: make_env()?,
                    obs: vec![0.0; obs_dim],
                    action: vec![0.0; spec.head.outputs()],
                    rng: ChaCha8Rng::seed_from_u64(0),
                    episode: Episode::default(),
                    done: true,
                    record_obs: false,
                })
            })
            .collect::<Result<Vec<_>, EnvError>>()?;
        Ok(Chunk {
            lanes,
            params: vec![0.0; spec.shape.num_params() * LANES],
            noise: vec![0.0; spec.shape.num_params() * (LANES / 2)],
            x: vec![0.0; spec.shape.inputs() * LANES],
            out: vec![0.0; spec.shape.outputs() * LANES],
            act: Activations::new(&spec.shape),
        })
    }

    /// Runs one episode in every active lane, all in lock step, and returns them per lane.
    pub fn rollout(
        &mut self,
        spec: &PolicySpec,
        norm: &ObsNorm,
        settings: ActSettings,
        tasks: &[LaneTask; LANES],
    ) -> Result<Vec<Episode>, EnvError> {
        let obs_dim = self.lanes[0].obs.len();
        for (lane, task) in self.lanes.iter_mut().zip(tasks) {
            lane.done = !task.active;
            lane.record_obs = task.record_obs;
            lane.episode = Episode::default();
            if task.record_obs {
                lane.episode.obs_sum = vec![0.0; obs_dim];
                lane.episode.obs_sumsq = vec![0.0; obs_dim];
            }
            if task.active {
                lane.rng = ChaCha8Rng::seed_from_u64(task.action_seed);
                lane.env.reset(Some(task.env_seed), &mut lane.obs);
            }
        }
        while self.lanes.iter().any(|l| !l.done) {
            self.encode(spec, norm);
            forward(
                &spec.shape,
                &self.params,
                &self.x,
                &mut self.act,
                &mut self.out,
            );
            if let Head::Continuous { .. } = spec.head {
                // The squashing tanh of the mean, all lanes at once.
                self.out.as_chunks_mut::<LANES>().0.iter_mut().for_each(tanh_lanes);
            }
            for (l, lane) in self.lanes.iter_mut().enumerate() {
                if lane.done {
                    continue;
                }
                if let Some(t) = settings.entropy_tau {
                    if let Head::Discrete(n) = spec.head {
                        lane.episode.entropy_sum += softmax_entropy(&self.out, l, n, t);
                    }
                }
                let action = match &spec.head {
                    Head::Discrete(n) => Action::Discrete(sample_discrete(
                        &self.out,
                        l,
                        *n,
                        settings.tau,
                        &mut lane.rng,
                    )),
                    Head::Continuous { center, half_width } => {
                        for (d, a) in lane.action.iter_mut().enumerate() {
                            let mean = self.out[d * LANES + l] as f64;
                            let noise = if settings.tau > 0.0 {
                                settings.tau * lane.rng.sample::<f64, _>(StandardNormal)
                            } else {
                                0.0
                            };
                            *a = center[d] + half_width[d] * (mean + noise).clamp(-1.0, 1.0);
                        }
                        Action::Continuous(&lane.action)
                    }
                };
                let result = lane.env.step(action, &mut lane.obs)?;
                lane.episode.ret += result.reward;
                lane.episode.len += 1;
                lane.done =
                    result.terminated || result.truncated || lane.episode.len >= settings.max_steps;
                if lane.done {
                    lane.episode.success = lane.env.success();
                    lane.episode.truncated = !result.terminated;
                }
            }
        }
        Ok(self
            .lanes
            .iter_mut()
            .map(|l| std::mem::take(&mut l.episode))
            .collect())
    }

    /// Writes every running lane's observation into the interleaved input `x` (normalised, or
    /// one-hot), recording raw observations for the statistics where asked.
    fn encode(&mut self, spec: &PolicySpec, norm: &ObsNorm) {
        for (l, lane) in self.lanes.iter_mut().enumerate() {
            if lane.done {
                continue;
            }
            match spec.obs {
                ObsEncoding::Box(dim) => {
                    // Raw here; normalised below for all lanes at once.
                    for i in 0..dim {
                        self.x[i * LANES + l] = lane.obs[i];
                    }
                    if lane.record_obs {
                        let ep = &mut lane.episode;
                        for (i, &o) in lane.obs.iter().enumerate() {
                            ep.obs_sum[i] += o as f64;
                            ep.obs_sumsq[i] += o as f64 * o as f64;
                        }
                        ep.obs_count += 1;
                    }
                }
                ObsEncoding::OneHot(n) => {
                    let cell = lane.obs[0] as usize;
                    for i in 0..n {
                        self.x[i * LANES + l] = if i == cell { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        if let ObsEncoding::Box(_) = spec.obs {
            // One vector operation per component. Finished lanes' stale inputs are normalised
            // again, which is harmless: lanes never mix and their outputs are not used.
            let rows = self.x.as_chunks_mut::<LANES>().0;
            for ((row, &mean), &inv_std) in rows.iter_mut().zip(&norm.mean).zip(&norm.inv_std) {
                for z in row {
                    *z = ((*z - mean) * inv_std).clamp(-5.0, 5.0);
                }
            }
        }
    }
}

/// Samples a ~ softmax(logits/τ) with one uniform draw, or takes the argmax (first on ties)
/// at τ = 0, the hard limit of the same distribution.
fn sample_discrete(out: &[f32], lane: usize, n: usize, tau: f64, rng: &mut ChaCha8Rng) -> usize {
    let logit = |a: usize| out[a * LANES + lane] as f64;
    let best = crate::math::argmax_by(n, logit);
    if tau == 0.0 {
        return best;
    }
    // Subtracting the max keeps exp() in range; the weights are then in (0, 1].
    let max = logit(best);
    let total: f64 = (0..n).map(|a| ((logit(a) - max) / tau).exp()).sum();
    let mut u = rng.random::<f64>() * total;
    for a in 0..n {
        u -= ((logit(a) - max) / tau).exp();
        if u < 0.0 {
            return a;
        }
    }
    best
}

/// H(softmax(logits/τ)) of one lane's logits; 0 at τ = 0.
fn softmax_entropy(out: &[f32], lane: usize, n: usize, tau: f64) -> f64 {
    if tau == 0.0 {
        return 0.0;
    }
    let logits: Vec<f64> = (0..n).map(|a| out[a * LANES + lane] as f64).collect();
    crate::math::softmax_entropy(&logits, tau)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(values: &[f32], lane: usize) -> Vec<f32> {
        let mut out = vec![0.0; values.len() * LANES];
        for (a, v) in values.iter().enumerate() {
            out[a * LANES + lane] = *v;
        }
        out
    }

    #[test]
    fn zero_temperature_is_argmax_and_small_temperature_approaches_it() {
        let out = logits(&[0.1, 0.7, 0.3], 3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sample_discrete(&out, 3, 3, 0.0, &mut rng), 1);
        let picks = (0..1000)
            .filter(|_| sample_discrete(&out, 3, 3, 0.01, &mut rng) == 1)
            .count();
        assert_eq!(picks, 1000);
    }

    #[test]
    fn sampling_frequencies_follow_the_softmax() {
        let out = logits(&[0.0, 1.0], 0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 100_000;
        let ones = (0..n)
            .filter(|_| sample_discrete(&out, 0, 2, 1.0, &mut rng) == 1)
            .count();
        let p = 1.0 / (1.0 + (-1.0f64).exp());
        let freq = ones as f64 / n as f64;
        // Five binomial standard deviations.
        assert!(
            (freq - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
            "{freq} vs {p}"
        );
    }

    #[test]
    fn entropy_spans_zero_to_log_n() {
        let out = logits(&[2.0, 0.0, -1.0, 0.5], 5);
        assert_eq!(softmax_entropy(&out, 5, 4, 0.0), 0.0);
        assert!(softmax_entropy(&out, 5, 4, 1e-3) < 1e-6);
        assert!((softmax_entropy(&out, 5, 4, 1e6) - 4f64.ln()).abs() < 1e-5);
        let p: Vec<f64> = [2.0f64, 0.0, -1.0, 0.5].iter().map(|v| v.exp()).collect();
        let z: f64 = p.iter().sum();
        let h: f64 = -p.iter().map(|v| v / z * (v / z).ln()).sum::<f64>();
        assert!((softmax_entropy(&out, 5, 4, 1.0) - h).abs() < 1e-12);
    }

    #[test]
    fn unsupported_spaces_are_named() {
        let obs = Space::Box {
            low: vec![-1.0],
            high: vec![1.0],
        };
        let unbounded = Space::Box {
            low: vec![f32::NEG_INFINITY],
            high: vec![f32::INFINITY],
        };
        let err = spec_for(&obs, &unbounded, &[8]).unwrap_err();
        assert!(
            err.contains("not supported") && err.contains("Discrete(n)"),
            "{err}"
        );
        assert!(spec_for(&obs, &Space::Discrete(0), &[8]).is_err());
        let spec = spec_for(&Space::Discrete(16), &Space::Discrete(4), &[8]).unwrap();
        assert_eq!(spec.shape.sizes, vec![16, 8, 4]);
    }
}
