//! Native reinforcement-learning environments with Gymnasium's meaning and dynamics.
//!
//! One small contract, [`Env`]: `reset(seed)` and `step(action)`, writing the observation
//! into a caller-owned buffer so that stepping never allocates. Time limits and episode
//! statistics are wrappers, not part of each env. Gridworlds also hand out their exact
//! transition table ([`TransitionTable`]) for the exact solvers, and every env draws itself
//! on request ([`render`]: RGB frames, gridworld text), on a path separate from stepping.
//!
//! Entry points: [`make`] (one env by name, with Gymnasium's time limit), [`make_vec`]
//! (N copies with auto-reset, for throughput), [`transition_table`] (gridworlds),
//! [`spec`] / [`builtin_specs`] / [`time_limit`], and [`parity`] (replaying Gymnasium traces).

mod acrobot;
mod blackjack;
mod classic;
mod dynamics;
mod grid;
mod mujoco;
pub mod parity;
mod registry;
pub mod render;
mod scenes;
mod snapshot;
mod space;
mod taxi;
mod table;
mod vector;
mod wrappers;

pub use grid::GridLayout;
pub use registry::{builtin_specs, grid_layout, make, make_vec, spec, time_limit, transition_table, EnvSpec, NAME_SYNTAX};
pub use render::{Frame, RenderCtx, Trail};
pub use snapshot::{EnvSnapshot, EpisodePhase, RngState};
pub use space::{Action, Space};
pub use table::{Outcome, TransitionTable};
pub use vector::{VecActions, VecEnv};
pub use wrappers::{EpisodeStatistics, EpisodeStats, TimeLimit};

/// What one `step` returns besides the observation (written into the caller's buffer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepResult {
    pub reward: f64,
    /// The MDP reached a terminal state (goal, hole, pole fell).
    pub terminated: bool,
    /// The episode was cut short from outside the MDP (time limit).
    pub truncated: bool,
}

/// Errors from environments: each names the bad value and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("action {action} is outside the action space Discrete({n}); accepted: 0..{n}")]
    DiscreteOutOfRange { action: usize, n: usize },
    #[error("action has {got} components but the action space has {expected}")]
    WrongActionDim { got: usize, expected: usize },
    #[error("action component {index} is {value}; actions must be finite numbers within f32 range")]
    NonFiniteAction { index: usize, value: f64 },
    #[error("a {got} action was given to an env whose action space is {space}")]
    WrongActionKind { got: &'static str, space: String },
    #[error("step called after the episode ended (terminated or truncated); call reset first")]
    StepAfterDone,
    #[error("step called before reset; call reset first")]
    StepBeforeReset,
    #[error("unknown env '{name}'; known envs: {known}")]
    UnknownEnv { name: String, known: String },
    #[error("bad state {state:?}: {why}")]
    BadState { state: Vec<f64>, why: String },
    #[error("map {origin}: {why}")]
    BadMap { origin: String, why: String },
    #[error("{0}")]
    Other(String),
}

/// A Gymnasium-style environment.
///
/// Observations are `f32` (Gymnasium's dtype); internal state is kept in `f64`.
/// Continuous actions are passed as `f64` and taken as float32 values, the dtype of
/// Gymnasium's Box action spaces (its recorded traces replay bit for bit that way);
/// out-of-bounds actions are clipped as Gymnasium does, but NaN, ±inf and values beyond
/// f32's range are errors.
pub trait Env: Send {
    fn observation_space(&self) -> Space;
    fn action_space(&self) -> Space;
    /// Starts an episode. `Some(seed)` reseeds the env's generator so that the same seed
    /// always gives the same episode; `None` continues from the current generator (an env
    /// never reset with a seed starts from seed 0: no draw ever comes from entropy).
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]);
    /// Advances one step and writes the next observation into `obs`.
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError>;
    /// The exact internal state (CartPole `[x, x_dot, theta, theta_dot]`, Pendulum
    /// `[theta, theta_dot]`, MountainCar `[position, velocity]`, gridworld `[cell index]`).
    fn state(&self) -> Vec<f64>;
    /// Overwrites the internal state (as Gymnasium's `env.unwrapped.state = ...`) and
    /// writes the matching observation. The episode counts as running afterwards.
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError>;
    /// Gridworlds: `Some(true)` once the episode has ended in a goal cell (FrozenLake:
    /// terminated with reward > 0; CliffWalking: terminated), `Some(false)` otherwise.
    /// `None` for envs without a notion of success (classic control).
    fn success(&self) -> Option<bool> {
        None
    }
    /// An RGB picture of the current state (Gymnasium's `rgb_array`), `None` for envs that
    /// cannot draw. A separate path: stepping never records anything for it.
    fn render_rgb(&self, _ctx: &RenderCtx<'_>) -> Option<Frame> {
        None
    }
    /// Gymnasium's `ansi` text of the current state: gridworlds only, `None` otherwise.
    fn render_ansi(&self, _ctx: &RenderCtx<'_>) -> Option<String> {
        None
    }
    /// The last step's `info` as Gymnasium names it (reward terms, positions, velocities):
    /// the MuJoCo tasks fill it, other envs have none. Empty after a reset.
    fn step_info(&self) -> &[(&'static str, f64)] {
        &[]
    }
    /// Everything needed to continue this env exactly (state, generator, episode phase,
    /// wrapper counters), for checkpoints. Envs that cannot be checkpointed say so.
    fn snapshot(&self) -> Result<EnvSnapshot, EnvError> {
        Err(EnvError::Other("this env cannot be checkpointed (it has no snapshot)".into()))
    }
    /// Puts the env back where [`Env::snapshot`] found it and writes the observation.
    fn restore(&mut self, _snapshot: &EnvSnapshot, _obs: &mut [f32]) -> Result<(), EnvError> {
        Err(EnvError::Other("this env cannot be checkpointed (it has no snapshot)".into()))
    }
}

/// Lets wrappers such as [`TimeLimit`] and [`EpisodeStatistics`] wrap a boxed env.
impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        (**self).reset(seed, obs)
    }
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
        (**self).step(action, obs)
    }
    fn state(&self) -> Vec<f64> {
        (**self).state()
    }
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
        (**self).set_state(state, obs)
    }
    fn success(&self) -> Option<bool> {
        (**self).success()
    }
    fn render_rgb(&self, ctx: &RenderCtx<'_>) -> Option<Frame> {
        (**self).render_rgb(ctx)
    }
    fn render_ansi(&self, ctx: &RenderCtx<'_>) -> Option<String> {
        (**self).render_ansi(ctx)
    }
    fn step_info(&self) -> &[(&'static str, f64)] {
        (**self).step_info()
    }
    fn snapshot(&self) -> Result<EnvSnapshot, EnvError> {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        (**self).restore(snapshot, obs)
    }
}
