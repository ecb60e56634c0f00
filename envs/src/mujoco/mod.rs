//! Gymnasium 1.4.0's MuJoCo v5 tasks (HalfCheetah, Hopper, Walker2d, Ant, Humanoid, ...),
//! simulated by MuJoCo 3.17.0's own C library through `mujoco-rs`, with Gymnasium's models.
//!
//! Each env owns its `MjData`; models are loaded once per file and shared read-only. Stepping
//! follows Gymnasium's `MujocoEnv`: set `ctrl` to the (unclipped) action, `mj_step` frame-skip
//! times, then `mj_rnePostConstraint`. Rewards copy NumPy's float32 promotion and summation
//! order (`numpy.rs`), so recorded Gymnasium traces replay bit for bit. Reset noise comes from
//! tame's seeded generator, not NumPy's stream.

mod numpy;
mod options;
mod tasks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use mujoco_rs::mujoco_c::{mjtState, mjtWarning};
use rand_chacha::ChaCha8Rng;

use crate::dynamics::rng_for;
use crate::{Action, Env, EnvError, EnvSnapshot, EpisodePhase, RngState, Space, StepResult};

pub(crate) use options::{parse_options, Config};
pub(crate) use tasks::{Task, TASKS};

/// Where the models are looked for unless `TAME_MUJOCO_ASSETS` says otherwise at run time:
/// `.mujoco/assets` of the checkout that built this binary (set by .cargo/config.toml).
const BUILT_ASSETS: Option<&str> = option_env!("TAME_MUJOCO_ASSETS");

const INSTALL_HINT: &str = "run `bash scripts/setup.sh` (or `make`), which unpacks Gymnasium 1.4.0's \
    models into .mujoco/assets, or set TAME_MUJOCO_ASSETS to a directory holding them";

fn assets_dir() -> Result<PathBuf, EnvError> {
    match std::env::var_os("TAME_MUJOCO_ASSETS") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => BUILT_ASSETS.map(PathBuf::from).ok_or_else(|| {
            EnvError::Other(format!("no directory for MuJoCo's model files is known; {INSTALL_HINT}"))
        }),
    }
}

/// The model of `xml`, loaded on first use and shared by every env after that.
fn load_model(xml: &str) -> Result<Arc<MjModel>, EnvError> {
    static MODELS: OnceLock<Mutex<HashMap<PathBuf, Arc<MjModel>>>> = OnceLock::new();
    let path = assets_dir()?.join(xml);
    let mut models = MODELS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = models.get(&path) {
        return Ok(m.clone());
    }
    if !path.is_file() {
        return Err(EnvError::Other(format!(
            "MuJoCo model file {} is missing; {INSTALL_HINT}",
            path.display()
        )));
    }
    let model = MjModel::from_xml(&path).map_err(|e| {
        EnvError::Other(format!(
            "MuJoCo could not load the model file {}: {e:?}; reinstall it with \
             `rm -rf .mujoco && bash scripts/setup.sh`",
            path.display()
        ))
    })?;
    let model = Arc::new(model);
    models.insert(path, model.clone());
    Ok(model)
}

/// The physics state a snapshot restores (`mj_getState` with `mjSTATE_INTEGRATION`: time,
/// qpos, qvel, act, the solver's warm start, controls and applied forces).
const INTEGRATION: u32 = mjtState::mjSTATE_INTEGRATION as u32;

/// Warnings after which a simulation is unstable (MuJoCo then resets the state on its own,
/// which would silently hand the agent a different episode).
const UNSTABLE: [(mjtWarning, &str); 3] = [
    (mjtWarning::mjWARN_BADQPOS, "NaN, Inf or huge value in qpos"),
    (mjtWarning::mjWARN_BADQVEL, "NaN, Inf or huge value in qvel"),
    (mjtWarning::mjWARN_BADQACC, "NaN, Inf or huge value in qacc"),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    NotReset,
    Running,
    Done,
}

/// Body ids that observations and rewards read (`None` where the task has no such body).
#[derive(Clone, Copy, Debug, Default)]
struct Bodies {
    fingertip: usize,
    target: usize,
    tips_arm: usize,
    object: usize,
    goal: usize,
}

/// One MuJoCo task: its configuration, the shared model and its own simulation data.
pub(crate) struct MujocoEnv {
    cfg: Config,
    model: Arc<MjModel>,
    data: MjData<Arc<MjModel>>,
    rng: ChaCha8Rng,
    phase: Phase,
    init_qpos: Vec<f64>,
    init_qvel: Vec<f64>,
    bodies: Bodies,
    action_space: Space,
    obs_dim: usize,
    /// The last observation in Gymnasium's float64.
    obs64: Vec<f64>,
    /// The position the next step's velocity is measured from (x, y): what Gymnasium reads
    /// from `data` before stepping, kept here so that a restored env has it too.
    before: [f64; 2],
    /// Steps since the last reset (named in the message when a simulation goes unstable).
    steps: u64,
    /// The last step's `info`: every reward term and the positions and velocities.
    info: Vec<(&'static str, f64)>,
    action: Vec<f32>,
    scratch: Vec<f64>,
}

impl MujocoEnv {
    pub(crate) fn new(cfg: Config) -> Result<Self, EnvError> {
        let spec = cfg.task.spec();
        let model = load_model(spec.xml)?;
        let data = MjData::new(model.clone());
        let init_qpos = data.qpos().to_vec();
        let init_qvel = data.qvel().to_vec();
        let body = |name: &str| -> Result<usize, EnvError> {
            model.name_to_id(MjtObjBase::mjOBJ_BODY, name).ok_or_else(|| {
                EnvError::Other(format!("the model {} has no body '{name}'; {INSTALL_HINT}", spec.xml))
            })
        };
        let bodies = match cfg.task {
            Task::Reacher => Bodies { fingertip: body("fingertip")?, target: body("target")?, ..Default::default() },
            Task::Pusher => Bodies {
                tips_arm: body("tips_arm")?,
                object: body("object")?,
                goal: body("goal")?,
                ..Default::default()
            },
            _ => Bodies::default(),
        };
        let range = model.actuator_ctrlrange();
        let action_space = Space::Box {
            low: range.iter().map(|r| r[0] as f32).collect(),
            high: range.iter().map(|r| r[1] as f32).collect(),
        };
        let mut env = MujocoEnv {
            obs_dim: 0,
            cfg,
            model,
            data,
            rng: rng_for(0, 0),
            phase: Phase::NotReset,
            init_qpos,
            init_qvel,
            bodies,
            action_space,
            obs64: Vec::new(),
            before: [0.0; 2],
            steps: 0,
            info: Vec::new(),
            action: Vec::new(),
            scratch: Vec::new(),
        };
        // The observation's size depends on the options (exclude/include flags).
        env.data.forward();
        env.observe();
        env.obs_dim = env.obs64.len();
        Ok(env)
    }

    fn nq(&self) -> usize {
        self.init_qpos.len()
    }
    fn nv(&self) -> usize {
        self.init_qvel.len()
    }

    /// Control period: MuJoCo's timestep times the frame skip (Gymnasium's `dt`).
    fn dt(&self) -> f64 {
        self.model.ffi().opt.timestep * self.cfg.frame_skip as f64
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        use rand::Rng;
        low + (high - low) * self.rng.random::<f64>()
    }

    fn normal(&mut self) -> f64 {
        use rand::Rng;
        self.rng.sample(rand_distr::StandardNormal)
    }

    /// Gymnasium's `set_state`: qpos and qvel, then `mj_forward` for everything derived.
    fn put_state(&mut self, qpos: &[f64], qvel: &[f64]) {
        self.data.qpos_mut().copy_from_slice(qpos);
        self.data.qvel_mut().copy_from_slice(qvel);
        self.data.forward();
        self.observe();
        self.before = self.position();
        self.steps = 0;
        self.phase = Phase::Running;
    }

    fn write_obs(&self, obs: &mut [f32]) {
        for (o, x) in obs.iter_mut().zip(&self.obs64) {
            *o = *x as f32;
        }
    }

    /// What was wrong if the last step went unstable.
    fn instability(&self) -> Option<&'static str> {
        let warnings = self.data.warning();
        if let Some((_, what)) = UNSTABLE.iter().find(|(w, _)| warnings[*w as usize].number > 0) {
            return Some(what);
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !finite(self.data.qpos()) || !finite(self.data.qvel()) || !finite(self.data.qacc()) {
            return Some("a non-finite value in qpos, qvel or qacc");
        }
        if !finite(&self.obs64) {
            return Some("a non-finite value in the observation");
        }
        None
    }
}

impl Env for MujocoEnv {
    fn observation_space(&self) -> Space {
        Space::Box { low: vec![f32::NEG_INFINITY; self.obs_dim], high: vec![f32::INFINITY; self.obs_dim] }
    }
    fn action_space(&self) -> Space {
        self.action_space.clone()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = rng_for(seed, 0);
        }
        self.data.reset();
        let (qpos, qvel) = self.initial_state();
        self.put_state(&qpos, &qvel);
        self.info.clear();
        self.write_obs(obs);
    }
    fn step(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepResult, EnvError> {
        match self.phase {
            Phase::NotReset => return Err(EnvError::StepBeforeReset),
            Phase::Done => return Err(EnvError::StepAfterDone),
            Phase::Running => {}
        }
        let a = match action {
            Action::Continuous(a) => a,
            Action::Discrete(_) => {
                return Err(EnvError::WrongActionKind { got: "discrete", space: self.action_space.to_string() })
            }
        };
        let nu = self.action_space.dim();
        if a.len() != nu {
            return Err(EnvError::WrongActionDim { got: a.len(), expected: nu });
        }
        if let Some((index, &value)) = a.iter().enumerate().find(|(_, x)| !x.is_finite() || x.abs() > f32::MAX as f64) {
            return Err(EnvError::NonFiniteAction { index, value });
        }
        // Gymnasium's actions are float32; MuJoCo clamps ctrl to ctrlrange itself, and the
        // control costs use the unclipped action.
        self.action.clear();
        self.action.extend(a.iter().map(|&x| x as f32));
        for (c, &x) in self.data.ctrl_mut().iter_mut().zip(&self.action) {
            *c = x as f64;
        }
        for _ in 0..self.cfg.frame_skip {
            self.data.step();
        }
        self.data.rne_post_constraint();
        self.steps += 1;
        self.observe();
        if let Some(what) = self.instability() {
            self.phase = Phase::Done;
            return Err(EnvError::Other(format!(
                "{}: the simulation became unstable at step {} of the episode (MuJoCo: {what}); \
                 the episode ends here without an observation. Smaller actions, a smaller \
                 frame_skip or reset_noise_scale keep it stable",
                self.cfg.task.spec().id,
                self.steps
            )));
        }
        let (reward, terminated) = self.reward_and_termination();
        self.before = self.position();
        self.write_obs(obs);
        if terminated {
            self.phase = Phase::Done;
        }
        Ok(StepResult { reward, terminated, truncated: false })
    }
    /// `qpos` followed by `qvel` (Reacher's goal and Pusher's object and goal included).
    fn state(&self) -> Vec<f64> {
        let mut s = self.data.qpos().to_vec();
        s.extend_from_slice(self.data.qvel());
        s
    }
    fn set_state(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
        let (nq, nv) = (self.nq(), self.nv());
        crate::dynamics::check_state(state, nq + nv, &format!("(qpos: {nq}, then qvel: {nv})"))?;
        let (qpos, qvel) = state.split_at(nq);
        self.put_state(qpos, qvel);
        self.info.clear();
        self.write_obs(obs);
        Ok(())
    }
    fn step_info(&self) -> &[(&'static str, f64)] {
        &self.info
    }
    /// `[steps, before_x, before_y, observation..., integration state...]`: the derived
    /// quantities in the observation (`cfrc_ext`, body positions) come from inside the last
    /// step and cannot be recomputed from the state, so they travel as they are.
    fn snapshot(&self) -> Result<EnvSnapshot, EnvError> {
        let phase = match self.phase {
            Phase::NotReset => EpisodePhase::NotReset,
            Phase::Running => EpisodePhase::Running,
            Phase::Done => EpisodePhase::Done,
        };
        let mut state = Vec::new();
        if phase != EpisodePhase::NotReset {
            state.push(self.steps as f64);
            state.extend_from_slice(&self.before);
            state.extend_from_slice(&self.obs64);
            state.extend_from_slice(&self.data.state(INTEGRATION));
        }
        Ok(EnvSnapshot { state, rng: RngState::of(&self.rng), phase, time_limit: None, episode: None })
    }
    fn restore(&mut self, snapshot: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        let rng = snapshot.rng.restore().map_err(EnvError::Other)?;
        self.data.reset();
        if snapshot.phase == EpisodePhase::NotReset {
            self.data.forward();
            self.observe();
        } else {
            let n_int = self.model.state_size(INTEGRATION);
            let expected = 3 + self.obs_dim + n_int;
            let s = &snapshot.state;
            if s.len() != expected {
                return Err(EnvError::BadState {
                    state: s.clone(),
                    why: format!(
                        "a {} snapshot has {expected} numbers (steps, 2 positions, {} observation \
                         components, {n_int} of MuJoCo's integration state), not {}",
                        self.cfg.task.spec().id,
                        self.obs_dim,
                        s.len()
                    ),
                });
            }
            if s[0] < 0.0 || s[0].fract() != 0.0 {
                return Err(EnvError::BadState { state: s.clone(), why: format!("step count {} is not a whole number", s[0]) });
            }
            self.data
                .set_state(&s[3 + self.obs_dim..], INTEGRATION)
                .map_err(|e| EnvError::Other(format!("MuJoCo refused the snapshot's state: {e:?}")))?;
            self.steps = s[0] as u64;
            self.before = [s[1], s[2]];
            self.obs64.clear();
            self.obs64.extend_from_slice(&s[3..3 + self.obs_dim]);
        }
        self.rng = rng;
        self.info.clear();
        self.phase = match snapshot.phase {
            EpisodePhase::NotReset => Phase::NotReset,
            EpisodePhase::Running => Phase::Running,
            EpisodePhase::Done => Phase::Done,
        };
        self.write_obs(obs);
        Ok(())
    }
}

/// The spaces of a configured task (loads its model).
pub(crate) fn spaces(cfg: &Config) -> Result<(Space, Space), EnvError> {
    let env = MujocoEnv::new(cfg.clone())?;
    Ok((env.observation_space(), env.action_space()))
}
