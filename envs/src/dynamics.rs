//! The per-copy model every env is built from, and the single-env adapter [`Single`].
//!
//! A [`Dynamics`] value holds only constants (a map, physical parameters); the state lives
//! outside it. That split lets the same monomorphised `step` drive one env ([`Single`]) or
//! thousands of copies over a contiguous state array (`vector::VecEnv`).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::render::{Frame, RenderCtx};
use crate::{Action, Env, EnvError, EnvSnapshot, EpisodePhase, RngState, Space, StepResult};

/// How an env's action type is read from the public action forms, with validation.
pub(crate) trait ActKind: Copy + Send + Sync + 'static {
    /// Element type of a vectorized action buffer (`usize` indices or `f32` values).
    type Src: Copy + Send + Sync + 'static;
    /// Validates and converts one action given to [`Env::step`].
    fn from_action(a: Action<'_>, space: &Space) -> Result<Self, EnvError>;
    /// Validates a whole vectorized action buffer and returns its typed view.
    fn vec_slice<'a>(
        a: crate::VecActions<'a>,
        n_envs: usize,
        space: &Space,
    ) -> Result<&'a [Self::Src], EnvError>;
    /// Converts an already validated element.
    fn from_src(s: Self::Src) -> Self;
}

fn discrete_n(space: &Space) -> usize {
    match space {
        Space::Discrete(n) => *n,
        Space::Box { .. } => 0,
    }
}

impl ActKind for usize {
    type Src = usize;
    fn from_action(a: Action<'_>, space: &Space) -> Result<Self, EnvError> {
        let n = discrete_n(space);
        match a {
            Action::Discrete(i) if i < n => Ok(i),
            Action::Discrete(i) => Err(EnvError::DiscreteOutOfRange { action: i, n }),
            Action::Continuous(_) => {
                Err(EnvError::WrongActionKind { got: "continuous", space: space.to_string() })
            }
        }
    }
    fn vec_slice<'a>(
        a: crate::VecActions<'a>,
        n_envs: usize,
        space: &Space,
    ) -> Result<&'a [usize], EnvError> {
        let n = discrete_n(space);
        match a {
            crate::VecActions::Discrete(v) => {
                if v.len() != n_envs {
                    return Err(EnvError::WrongActionDim { got: v.len(), expected: n_envs });
                }
                // One pass that the compiler vectorises; the error path finds the culprit.
                if v.iter().fold(0, |m, &x| m.max(x)) >= n {
                    let bad = v.iter().copied().find(|&x| x >= n).unwrap_or(n);
                    return Err(EnvError::DiscreteOutOfRange { action: bad, n });
                }
                Ok(v)
            }
            crate::VecActions::Continuous(_) => {
                Err(EnvError::WrongActionKind { got: "continuous", space: space.to_string() })
            }
        }
    }
    #[inline(always)]
    fn from_src(s: usize) -> Self {
        s
    }
}

/// A one-dimensional continuous action, a float32 value like Gymnasium's Box dtype;
/// out-of-bounds values are clipped by each env as Gymnasium does (some rewards use the
/// unclipped value).
impl ActKind for f64 {
    type Src = f32;
    fn from_action(a: Action<'_>, space: &Space) -> Result<Self, EnvError> {
        match a {
            Action::Continuous(v) => {
                if v.len() != 1 {
                    return Err(EnvError::WrongActionDim { got: v.len(), expected: 1 });
                }
                // f64 values beyond f32's range would become ±inf in the f32 action dtype.
                if !v[0].is_finite() || v[0].abs() > f32::MAX as f64 {
                    return Err(EnvError::NonFiniteAction { index: 0, value: v[0] });
                }
                // Rounded to f32, the action space's dtype, as Gymnasium's traces were made.
                Ok(v[0] as f32 as f64)
            }
            Action::Discrete(_) => {
                Err(EnvError::WrongActionKind { got: "discrete", space: space.to_string() })
            }
        }
    }
    fn vec_slice<'a>(
        a: crate::VecActions<'a>,
        n_envs: usize,
        space: &Space,
    ) -> Result<&'a [f32], EnvError> {
        match a {
            crate::VecActions::Continuous(v) => {
                if v.len() != n_envs {
                    return Err(EnvError::WrongActionDim { got: v.len(), expected: n_envs });
                }
                if !v.iter().fold(true, |ok, x| ok & x.is_finite()) {
                    let (index, value) =
                        v.iter().enumerate().find(|(_, x)| !x.is_finite()).unwrap_or((0, &0.0));
                    return Err(EnvError::NonFiniteAction { index, value: *value as f64 });
                }
                Ok(v)
            }
            crate::VecActions::Discrete(_) => {
                Err(EnvError::WrongActionKind { got: "discrete", space: space.to_string() })
            }
        }
    }
    #[inline(always)]
    fn from_src(s: f32) -> Self {
        s as f64
    }
}

/// The model of one environment: constants in `self`, the state passed in.
pub(crate) trait Dynamics: Clone + Send + Sync + 'static {
    type State: Copy + Send + Sync + Default;
    type Act: ActKind;
    fn observation_space(&self) -> Space;
    fn action_space(&self) -> Space;
    /// Number of f32 components of an observation.
    fn obs_dim(&self) -> usize;
    /// Draws a start state, as Gymnasium's `reset` does.
    fn initial(&self, rng: &mut ChaCha8Rng) -> Self::State;
    fn write_obs(&self, s: &Self::State, obs: &mut [f32]);
    /// One transition; returns `(reward, terminated)`.
    fn step(&self, s: &mut Self::State, a: Self::Act, rng: &mut ChaCha8Rng) -> (f64, bool);
    fn state_vec(&self, s: &Self::State) -> Vec<f64>;
    fn parse_state(&self, s: &[f64]) -> Result<Self::State, EnvError>;
    /// The exact state for a snapshot: [`Dynamics::state_vec`] unless the state holds more.
    fn snapshot_vec(&self, s: &Self::State) -> Vec<f64> {
        self.state_vec(s)
    }
    /// Reads [`Dynamics::snapshot_vec`] back.
    fn restore_vec(&self, s: &[f64]) -> Result<Self::State, EnvError> {
        self.parse_state(s)
    }
    /// Whether the episode that ended in `s` counts as a success (gridworld goal).
    fn success(&self, _s: &Self::State) -> Option<bool> {
        None
    }
    /// A picture of `s` (see `crate::render`); never called while stepping.
    fn render_rgb(&self, _s: &Self::State, _ctx: &RenderCtx<'_>) -> Option<Frame> {
        None
    }
    /// Gymnasium's `ansi` text of `s`, for envs that have one (gridworlds).
    fn render_ansi(&self, _s: &Self::State, _ctx: &RenderCtx<'_>) -> Option<String> {
        None
    }
}

/// The generator for copy `stream` of an env seeded with `seed` (copy 0 = a single env).
pub(crate) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Where an episode stands, so that misuse is an error rather than silent nonsense.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    NotReset,
    Running,
    Done,
}

/// One env over a [`Dynamics`]: implements [`Env`] with validation of every action.
#[derive(Clone)]
pub(crate) struct Single<D: Dynamics> {
    dynamics: D,
    state: D::State,
    rng: ChaCha8Rng,
    phase: Phase,
    action_space: Space,
}

impl<D: Dynamics> Single<D> {
    /// Until the first seeded reset the generator is seeded with 0 (never from entropy).
    pub(crate) fn new(dynamics: D) -> Self {
        let action_space = dynamics.action_space();
        Single { dynamics, state: D::State::default(), rng: rng_for(0, 0), phase: Phase::NotReset, action_space }
    }
}

impl<D: Dynamics> Env for Single<D> {
    fn observation_space(&self) -> Space {
        self.dynamics.observation_space()
    }
    fn action_space(&self) -> Space {
        self.action_space.clone()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = rng_for(seed, 0);
        }
        self.state = self.dynamics.initial(&mut self.rng);
        self.dynamics.write_obs(&self.state, obs);
        self.phase = Phase::Running;
    }
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
        match self.phase {
            Phase::NotReset => return Err(EnvError::StepBeforeReset),
            Phase::Done => return Err(EnvError::StepAfterDone),
            Phase::Running => {}
        }
        let a = D::Act::from_action(action, &self.action_space)?;
        let (reward, terminated) = self.dynamics.step(&mut self.state, a, &mut self.rng);
        self.dynamics.write_obs(&self.state, obs);
        if terminated {
            self.phase = Phase::Done;
        }
        Ok(StepResult { reward, terminated, truncated: false })
    }
    fn state(&self) -> Vec<f64> {
        self.dynamics.state_vec(&self.state)
    }
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
        self.state = self.dynamics.parse_state(state)?;
        self.dynamics.write_obs(&self.state, obs);
        self.phase = Phase::Running;
        Ok(())
    }
    fn success(&self) -> Option<bool> {
        // Goal cells are terminal, so being in one means the episode ended there.
        self.dynamics.success(&self.state)
    }
    fn render_rgb(&self, ctx: &RenderCtx<'_>) -> Option<Frame> {
        self.dynamics.render_rgb(&self.state, ctx)
    }
    fn render_ansi(&self, ctx: &RenderCtx<'_>) -> Option<String> {
        self.dynamics.render_ansi(&self.state, ctx)
    }
    fn snapshot(&self) -> Result<EnvSnapshot, EnvError> {
        let phase = match self.phase {
            Phase::NotReset => EpisodePhase::NotReset,
            Phase::Running => EpisodePhase::Running,
            Phase::Done => EpisodePhase::Done,
        };
        Ok(EnvSnapshot {
            state: self.dynamics.snapshot_vec(&self.state),
            rng: RngState::of(&self.rng),
            phase,
            time_limit: None,
            episode: None,
        })
    }
    fn restore(&mut self, snapshot: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        let rng = snapshot.rng.restore().map_err(EnvError::Other)?;
        self.state = match snapshot.phase {
            EpisodePhase::NotReset => D::State::default(),
            _ => self.dynamics.restore_vec(&snapshot.state)?,
        };
        self.rng = rng;
        self.phase = match snapshot.phase {
            EpisodePhase::NotReset => Phase::NotReset,
            EpisodePhase::Running => Phase::Running,
            EpisodePhase::Done => Phase::Done,
        };
        self.dynamics.write_obs(&self.state, obs);
        Ok(())
    }
}

/// Checks that a state vector has `n` finite components.
pub(crate) fn check_state(state: &[f64], n: usize, names: &str) -> Result<(), EnvError> {
    if state.len() != n {
        return Err(EnvError::BadState {
            state: state.to_vec(),
            why: format!("expected {n} components {names}"),
        });
    }
    if let Some(x) = state.iter().find(|x| !x.is_finite()) {
        return Err(EnvError::BadState {
            state: state.to_vec(),
            why: format!("component {x} is not a finite number"),
        });
    }
    Ok(())
}
