//! Native reinforcement-learning environments with Gymnasium's meaning and dynamics.
//!
//! One small contract, [`Env`]: `reset(seed)` and `step(action)`, writing the observation
//! into a caller-owned buffer so that stepping never allocates. Time limits and episode
//! statistics are wrappers, not part of each env. Gridworlds also hand out their exact
//! transition table ([`TransitionTable`]) for the exact solvers.

mod space;
mod table;

pub use space::{Action, Space};
pub use table::{Outcome, TransitionTable};

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
    #[error("action component {index} is {value}; actions must be finite numbers")]
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
/// Continuous actions are `f64`, so that replaying Gymnasium's traces is exact; out-of-bounds
/// continuous actions are clipped as Gymnasium does, but NaN/inf are errors.
pub trait Env: Send {
    fn observation_space(&self) -> Space;
    fn action_space(&self) -> Space;
    /// Starts an episode. `Some(seed)` reseeds the env's generator so that the same seed
    /// always gives the same episode; `None` continues from the current generator.
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]);
    /// Advances one step and writes the next observation into `obs`.
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError>;
    /// The exact internal state (CartPole `[x, x_dot, theta, theta_dot]`, Pendulum
    /// `[theta, theta_dot]`, MountainCar `[position, velocity]`, gridworld `[cell index]`).
    fn state(&self) -> Vec<f64>;
    /// Overwrites the internal state (as Gymnasium's `env.unwrapped.state = ...`) and
    /// writes the matching observation. The episode counts as running afterwards.
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError>;
}
