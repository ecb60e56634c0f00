//! The vectorized env: N copies of one model stepped together, with auto-reset, the time
//! limit and episode statistics built in.
//!
//! Copies live in contiguous arrays and are stepped by a monomorphised loop (no allocation,
//! no dynamic dispatch or locking per step); rayon splits the copies into chunks across the
//! current thread pool. Copy `i` draws from its own generator (seed, stream `i`), so results
//! do not depend on the number of threads or on the chunking.

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dynamics::{rng_for, ActKind, Dynamics};
use crate::{EnvError, EpisodeStats, Space};

/// Actions for all copies at once: one index or one value per copy (1-D action spaces).
#[derive(Clone, Copy, Debug)]
pub enum VecActions<'a> {
    Discrete(&'a [usize]),
    Continuous(&'a [f32]),
}

/// N copies of an env, stepped in lock-step.
///
/// Auto-reset ("same-step", as Stable-Baselines3): when copy `i` terminates or is truncated,
/// `obs()` already holds the first observation of its next episode; the last observation of
/// the finished episode is in `final_obs()` (needed to bootstrap through truncation), and
/// `episode(i)` / `success(i)` describe the finished episode until the next `step`.
pub trait VecEnv: Send {
    fn num_envs(&self) -> usize;
    fn observation_space(&self) -> Space;
    fn action_space(&self) -> Space;
    /// Components per observation; `obs()` is `num_envs × obs_dim`, row-major.
    fn obs_dim(&self) -> usize;
    /// Restarts every copy; copy `i` draws from the generator (seed, stream i), so copy 0
    /// replays exactly what a single env reset with `Some(seed)` does.
    fn reset(&mut self, seed: u64);
    /// Steps every copy. The whole batch is validated first; on error nothing moves.
    fn step(&mut self, actions: VecActions<'_>) -> Result<(), EnvError>;
    fn obs(&self) -> &[f32];
    fn rewards(&self) -> &[f64];
    fn terminated(&self) -> &[bool];
    fn truncated(&self) -> &[bool];
    /// Rows valid for copies that just ended (terminated or truncated).
    fn final_obs(&self) -> &[f32];
    /// Return and length of the episode copy `i` finished on the last step, if it did.
    fn episode(&self, i: usize) -> Option<EpisodeStats>;
    /// On gridworlds: whether the episode copy `i` finished on the last step reached a goal.
    fn success(&self, i: usize) -> Option<bool>;
}

/// Per-copy bookkeeping kept next to the state for locality.
#[derive(Clone, Copy, Default)]
struct Slot<S> {
    state: S,
    elapsed: u32,
    episode_return: f64,
    last: EpisodeStats,
    last_success: Option<bool>,
}

/// Below this many copies per chunk, rayon's hand-off costs more than it saves.
const MIN_CHUNK: usize = 256;

pub(crate) struct VecEnvImpl<D: Dynamics> {
    dynamics: D,
    max_steps: u32,
    action_space: Space,
    slots: Vec<Slot<D::State>>,
    rngs: Vec<ChaCha8Rng>,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
}

impl<D: Dynamics> VecEnvImpl<D> {
    pub(crate) fn new(dynamics: D, time_limit: Option<u32>, num_envs: usize, seed: u64) -> Self {
        let od = dynamics.obs_dim();
        let mut v = VecEnvImpl {
            max_steps: time_limit.unwrap_or(u32::MAX),
            action_space: dynamics.action_space(),
            slots: vec![Slot::default(); num_envs],
            rngs: (0..num_envs).map(|i| rng_for(seed, i as u64)).collect(),
            obs: vec![0.0; num_envs * od],
            final_obs: vec![0.0; num_envs * od],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            dynamics,
        };
        v.reset(seed);
        v
    }
}

/// Steps one chunk of copies; all slices are the chunk's parts of the env's arrays.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_chunk<D: Dynamics>(
    d: &D,
    max_steps: u32,
    slots: &mut [Slot<D::State>],
    rngs: &mut [ChaCha8Rng],
    actions: &[<D::Act as ActKind>::Src],
    obs: &mut [f32],
    final_obs: &mut [f32],
    rewards: &mut [f64],
    terminated: &mut [bool],
    truncated: &mut [bool],
) {
    let od = d.obs_dim();
    for (i, slot) in slots.iter_mut().enumerate() {
        let rng = &mut rngs[i];
        let (r, term) = d.step(&mut slot.state, D::Act::from_src(actions[i]), rng);
        slot.elapsed += 1;
        slot.episode_return += r;
        let trunc = slot.elapsed >= max_steps;
        rewards[i] = r;
        terminated[i] = term;
        truncated[i] = trunc;
        if term || trunc {
            d.write_obs(&slot.state, &mut final_obs[i * od..(i + 1) * od]);
            slot.last = EpisodeStats { episode_return: slot.episode_return, length: slot.elapsed };
            slot.last_success = d.success(&slot.state);
            slot.state = d.initial(rng);
            slot.elapsed = 0;
            slot.episode_return = 0.0;
        }
        d.write_obs(&slot.state, &mut obs[i * od..(i + 1) * od]);
    }
}

impl<D: Dynamics> VecEnv for VecEnvImpl<D> {
    fn num_envs(&self) -> usize {
        self.slots.len()
    }
    fn observation_space(&self) -> Space {
        self.dynamics.observation_space()
    }
    fn action_space(&self) -> Space {
        self.action_space.clone()
    }
    fn obs_dim(&self) -> usize {
        self.dynamics.obs_dim()
    }
    fn reset(&mut self, seed: u64) {
        let od = self.dynamics.obs_dim();
        for (i, (slot, rng)) in self.slots.iter_mut().zip(&mut self.rngs).enumerate() {
            *rng = rng_for(seed, i as u64);
            *slot = Slot { state: self.dynamics.initial(rng), ..Slot::default() };
            self.dynamics.write_obs(&slot.state, &mut self.obs[i * od..(i + 1) * od]);
        }
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
    }
    fn step(&mut self, actions: VecActions<'_>) -> Result<(), EnvError> {
        let n = self.slots.len();
        let acts = D::Act::vec_slice(actions, n, &self.action_space)?;
        let d = &self.dynamics;
        let max_steps = self.max_steps;
        let od = d.obs_dim();
        let threads = rayon::current_num_threads();
        if threads == 1 || n < 2 * MIN_CHUNK {
            step_chunk(
                d,
                max_steps,
                &mut self.slots,
                &mut self.rngs,
                acts,
                &mut self.obs,
                &mut self.final_obs,
                &mut self.rewards,
                &mut self.terminated,
                &mut self.truncated,
            );
            return Ok(());
        }
        // Two chunks per thread lets work stealing even out episode resets.
        let c = n.div_ceil(2 * threads).max(MIN_CHUNK);
        self.slots
            .par_chunks_mut(c)
            .zip(self.rngs.par_chunks_mut(c))
            .zip(acts.par_chunks(c))
            .zip(self.obs.par_chunks_mut(c * od))
            .zip(self.final_obs.par_chunks_mut(c * od))
            .zip(self.rewards.par_chunks_mut(c))
            .zip(self.terminated.par_chunks_mut(c))
            .zip(self.truncated.par_chunks_mut(c))
            .for_each(|(((((((s, r), a), o), f), rw), te), tr)| {
                step_chunk(d, max_steps, s, r, a, o, f, rw, te, tr)
            });
        Ok(())
    }
    fn obs(&self) -> &[f32] {
        &self.obs
    }
    fn rewards(&self) -> &[f64] {
        &self.rewards
    }
    fn terminated(&self) -> &[bool] {
        &self.terminated
    }
    fn truncated(&self) -> &[bool] {
        &self.truncated
    }
    fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }
    fn episode(&self, i: usize) -> Option<EpisodeStats> {
        let done = *self.terminated.get(i)? || self.truncated[i];
        done.then(|| self.slots[i].last)
    }
    fn success(&self, i: usize) -> Option<bool> {
        let done = *self.terminated.get(i)? || self.truncated[i];
        if done {
            self.slots[i].last_success
        } else {
            None
        }
    }
}
