//! Wrappers: the time limit, episode statistics, and Box→Discrete(k) action discretization.
//!
//! `TimeLimit` and `EpisodeStatistics` wrap any [`Env`]; `Discretized` wraps a model so that
//! the single and the vectorized env both get it without per-step dynamic dispatch.

use rand_chacha::ChaCha8Rng;

use crate::dynamics::Dynamics;
use crate::render::{Frame, RenderCtx};
use crate::{Action, Env, EnvError, EnvSnapshot, Space, StepResult};

/// Truncates episodes after `max_steps` steps, as Gymnasium's `TimeLimit`.
///
/// The count starts at `reset`; `set_state` keeps it (Gymnasium's traces set the state right
/// after reset and count from there).
pub struct TimeLimit<E: Env> {
    inner: E,
    max_steps: u32,
    elapsed: u32,
    truncated: bool,
}

impl<E: Env> TimeLimit<E> {
    pub fn new(inner: E, max_steps: u32) -> Self {
        TimeLimit { inner, max_steps, elapsed: 0, truncated: false }
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn observation_space(&self) -> Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.elapsed = 0;
        self.truncated = false;
        self.inner.reset(seed, obs);
    }
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
        if self.truncated {
            return Err(EnvError::StepAfterDone);
        }
        let mut r = self.inner.step(action, obs)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_steps {
            r.truncated = true;
            self.truncated = true;
        }
        Ok(r)
    }
    fn state(&self) -> Vec<f64> {
        self.inner.state()
    }
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
        self.inner.set_state(state, obs)?;
        self.truncated = false;
        Ok(())
    }
    fn success(&self) -> Option<bool> {
        self.inner.success()
    }
    fn render_rgb(&self, ctx: &RenderCtx<'_>) -> Option<Frame> {
        self.inner.render_rgb(ctx)
    }
    fn render_ansi(&self, ctx: &RenderCtx<'_>) -> Option<String> {
        self.inner.render_ansi(ctx)
    }
    fn step_info(&self) -> &[(&'static str, f64)] {
        self.inner.step_info()
    }
    fn snapshot(&self) -> Result<EnvSnapshot, EnvError> {
        Ok(EnvSnapshot { time_limit: Some((self.elapsed, self.truncated)), ..self.inner.snapshot()? })
    }
    fn restore(&mut self, snapshot: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        let (elapsed, truncated) = snapshot
            .time_limit
            .ok_or_else(|| EnvError::Other("the snapshot was taken without a time limit".into()))?;
        self.inner.restore(snapshot, obs)?;
        (self.elapsed, self.truncated) = (elapsed, truncated);
        Ok(())
    }
}

/// Return and length of one finished episode.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpisodeStats {
    pub episode_return: f64,
    pub length: u32,
}

/// Accumulates the return and length of each episode (Gymnasium's
/// `RecordEpisodeStatistics`); [`EpisodeStatistics::last_episode`] holds the latest one.
pub struct EpisodeStatistics<E: Env> {
    inner: E,
    running: EpisodeStats,
    last: Option<EpisodeStats>,
}

impl<E: Env> EpisodeStatistics<E> {
    pub fn new(inner: E) -> Self {
        EpisodeStatistics { inner, running: EpisodeStats::default(), last: None }
    }
    /// The most recently finished episode (terminated or truncated), if any.
    pub fn last_episode(&self) -> Option<EpisodeStats> {
        self.last
    }
}

impl<E: Env> Env for EpisodeStatistics<E> {
    fn observation_space(&self) -> Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.running = EpisodeStats::default();
        self.inner.reset(seed, obs);
    }
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
        let r = self.inner.step(action, obs)?;
        self.running.episode_return += r.reward;
        self.running.length += 1;
        if r.terminated || r.truncated {
            self.last = Some(self.running);
        }
        Ok(r)
    }
    fn state(&self) -> Vec<f64> {
        self.inner.state()
    }
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
        self.inner.set_state(state, obs)
    }
    fn success(&self) -> Option<bool> {
        self.inner.success()
    }
    fn render_rgb(&self, ctx: &RenderCtx<'_>) -> Option<Frame> {
        self.inner.render_rgb(ctx)
    }
    fn render_ansi(&self, ctx: &RenderCtx<'_>) -> Option<String> {
        self.inner.render_ansi(ctx)
    }
    fn step_info(&self) -> &[(&'static str, f64)] {
        self.inner.step_info()
    }
    fn snapshot(&self) -> Result<EnvSnapshot, EnvError> {
        let running = (self.running.episode_return, self.running.length);
        Ok(EnvSnapshot { episode: Some(running), ..self.inner.snapshot()? })
    }
    fn restore(&mut self, snapshot: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        let (episode_return, length) = snapshot
            .episode
            .ok_or_else(|| EnvError::Other("the snapshot was taken without episode statistics".into()))?;
        self.inner.restore(snapshot, obs)?;
        self.running = EpisodeStats { episode_return, length };
        Ok(())
    }
}

/// A Box action space replaced by `Discrete(k)`: action `i` is the torque/force
/// `low + (high − low)·i/(k − 1)`, so 0 and k−1 are the bounds and the grid is even.
#[derive(Clone, Debug)]
pub(crate) struct Discretized<D> {
    inner: D,
    levels: Vec<f64>,
}

impl<D: Dynamics<Act = f64>> Discretized<D> {
    /// `k ≥ 2`; the caller checks it and reports bad names.
    pub(crate) fn new(inner: D, k: usize) -> Self {
        let (low, high) = match inner.action_space() {
            Space::Box { low, high } => (low[0] as f64, high[0] as f64),
            Space::Discrete(_) => (0.0, 0.0),
        };
        let levels = (0..k).map(|i| low + (high - low) * i as f64 / (k - 1) as f64).collect();
        Discretized { inner, levels }
    }
}

impl<D: Dynamics<Act = f64>> Dynamics for Discretized<D> {
    type State = D::State;
    type Act = usize;
    fn observation_space(&self) -> Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> Space {
        Space::Discrete(self.levels.len())
    }
    fn obs_dim(&self) -> usize {
        self.inner.obs_dim()
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> D::State {
        self.inner.initial(rng)
    }
    #[inline(always)]
    fn write_obs(&self, s: &D::State, obs: &mut [f32]) {
        self.inner.write_obs(s, obs)
    }
    #[inline(always)]
    fn step(&self, s: &mut D::State, a: usize, rng: &mut ChaCha8Rng) -> (f64, bool) {
        self.inner.step(s, self.levels[a], rng)
    }
    fn state_vec(&self, s: &D::State) -> Vec<f64> {
        self.inner.state_vec(s)
    }
    fn parse_state(&self, s: &[f64]) -> Result<D::State, EnvError> {
        self.inner.parse_state(s)
    }
    fn snapshot_vec(&self, s: &D::State) -> Vec<f64> {
        self.inner.snapshot_vec(s)
    }
    fn restore_vec(&self, s: &[f64]) -> Result<D::State, EnvError> {
        self.inner.restore_vec(s)
    }
    fn success(&self, s: &D::State) -> Option<bool> {
        self.inner.success(s)
    }
    /// Draws the torque/force level that the discrete action stands for.
    fn render_rgb(&self, s: &D::State, ctx: &RenderCtx<'_>) -> Option<Frame> {
        let level;
        let ctx = match ctx.last_action {
            Some(Action::Discrete(a)) if a < self.levels.len() => {
                level = [self.levels[a]];
                RenderCtx { last_action: Some(Action::Continuous(&level)), ..*ctx }
            }
            _ => *ctx,
        };
        self.inner.render_rgb(s, &ctx)
    }
}
