//! Classic control with Gymnasium 1.4.0's exact dynamics and constants: CartPole-v1,
//! Pendulum-v1 and MountainCarContinuous-v0.
//!
//! Formulas and the order of floating-point operations follow Gymnasium's sources so that
//! traces recorded there replay here within 1e-5 (see `tests/envs_parity.rs`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::dynamics::{check_state, Dynamics};
use crate::render::{scalar_action, Frame, RenderCtx};
use crate::scenes;
use crate::{EnvError, Space};

/// CartPole-v1: push the cart left (0) or right (1) to keep the pole upright; +1 per step.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CartPole;

const CP_GRAVITY: f64 = 9.8;
const CP_MASSCART: f64 = 1.0;
const CP_MASSPOLE: f64 = 0.1;
const CP_LENGTH: f64 = 0.5; // half the pole's length
const CP_FORCE_MAG: f64 = 10.0;
const CP_DT: f64 = 0.02;
const CP_X_THRESHOLD: f64 = 2.4;

fn cp_theta_threshold() -> f64 {
    12.0 * 2.0 * std::f64::consts::PI / 360.0
}

impl Dynamics for CartPole {
    /// `[x, x_dot, theta, theta_dot]`.
    type State = [f64; 4];
    type Act = usize;

    fn observation_space(&self) -> Space {
        let t = cp_theta_threshold();
        let high = [(CP_X_THRESHOLD * 2.0) as f32, f32::MAX, (t * 2.0) as f32, f32::MAX];
        Space::Box { low: high.iter().map(|h| -h).collect(), high: high.to_vec() }
    }
    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }
    fn obs_dim(&self) -> usize {
        4
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> [f64; 4] {
        std::array::from_fn(|_| rng.random_range(-0.05..0.05))
    }
    #[inline(always)]
    fn write_obs(&self, s: &[f64; 4], obs: &mut [f32]) {
        for (o, x) in obs.iter_mut().zip(s) {
            *o = *x as f32;
        }
    }
    #[inline(always)]
    fn step(&self, s: &mut [f64; 4], a: usize, _rng: &mut ChaCha8Rng) -> (f64, bool) {
        let total_mass = CP_MASSPOLE + CP_MASSCART;
        let polemass_length = CP_MASSPOLE * CP_LENGTH;
        let [x, x_dot, theta, theta_dot] = *s;
        let force = if a == 1 { CP_FORCE_MAG } else { -CP_FORCE_MAG };
        let (sintheta, costheta) = theta.sin_cos();
        let temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
        let thetaacc = (CP_GRAVITY * sintheta - costheta * temp)
            / (CP_LENGTH * (4.0 / 3.0 - CP_MASSPOLE * (costheta * costheta) / total_mass));
        let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
        // Explicit Euler, Gymnasium's default integrator.
        *s = [
            x + CP_DT * x_dot,
            x_dot + CP_DT * xacc,
            theta + CP_DT * theta_dot,
            theta_dot + CP_DT * thetaacc,
        ];
        let t = cp_theta_threshold();
        let terminated =
            s[0] < -CP_X_THRESHOLD || s[0] > CP_X_THRESHOLD || s[2] < -t || s[2] > t;
        (1.0, terminated)
    }
    fn state_vec(&self, s: &[f64; 4]) -> Vec<f64> {
        s.to_vec()
    }
    fn render_rgb(&self, s: &[f64; 4], _ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::cartpole(s[0], s[2]))
    }
    fn parse_state(&self, s: &[f64]) -> Result<[f64; 4], EnvError> {
        check_state(s, 4, "[x, x_dot, theta, theta_dot]")?;
        Ok([s[0], s[1], s[2], s[3]])
    }
}

/// Pendulum-v1: swing up and balance with a torque in [-2, 2]; reward
/// −(θ² + 0.1 θ̇² + 0.001 u²) with θ normalised to [−π, π) and u the clipped torque.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pendulum;

const PD_MAX_SPEED: f64 = 8.0;
pub(crate) const PD_MAX_TORQUE: f64 = 2.0;
const PD_DT: f64 = 0.05;
const PD_G: f64 = 10.0;
const PD_M: f64 = 1.0;
const PD_L: f64 = 1.0;

/// Pendulum state with the sine and cosine of θ cached: the observation needs them and
/// the next step needs the sine, so each step evaluates one `sin_cos` instead of three calls.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PendulumState {
    th: f64,
    thdot: f64,
    sin: f64,
    cos: f64,
}

impl PendulumState {
    fn new(th: f64, thdot: f64) -> Self {
        let (sin, cos) = th.sin_cos();
        PendulumState { th, thdot, sin, cos }
    }
}

/// Gymnasium's `((x + π) mod 2π) − π` with Python's floored modulo.
#[inline(always)]
fn angle_normalize(x: f64) -> f64 {
    use std::f64::consts::PI;
    let c = 2.0 * PI;
    let y = x + PI;
    // One period either side, rem_euclid's result is y, y − c (exact by Sterbenz's lemma, as
    // fmod is) or y + c (the same rounded addition rem_euclid and NumPy do); skipping the
    // fmod call there gives identical bits at a fraction of the cost.
    let m = if (0.0..c).contains(&y) {
        y
    } else if (c..2.0 * c).contains(&y) {
        y - c
    } else if (-c..0.0).contains(&y) {
        y + c
    } else {
        y.rem_euclid(c)
    };
    m - PI
}

impl Dynamics for Pendulum {
    type State = PendulumState;
    type Act = f64;

    fn observation_space(&self) -> Space {
        Space::Box { low: vec![-1.0, -1.0, -PD_MAX_SPEED as f32], high: vec![1.0, 1.0, PD_MAX_SPEED as f32] }
    }
    fn action_space(&self) -> Space {
        Space::Box { low: vec![-PD_MAX_TORQUE as f32], high: vec![PD_MAX_TORQUE as f32] }
    }
    fn obs_dim(&self) -> usize {
        3
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> PendulumState {
        let th = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let thdot = rng.random_range(-1.0..1.0);
        PendulumState::new(th, thdot)
    }
    #[inline(always)]
    fn write_obs(&self, s: &PendulumState, obs: &mut [f32]) {
        obs[0] = s.cos as f32;
        obs[1] = s.sin as f32;
        obs[2] = s.thdot as f32;
    }
    #[inline(always)]
    fn step(&self, s: &mut PendulumState, a: f64, _rng: &mut ChaCha8Rng) -> (f64, bool) {
        // The action is a float32 (the action space's dtype), and NumPy keeps float32 in
        // `scalar * u` terms; mirroring that makes Gymnasium's traces replay bit for bit.
        let u = (a as f32).clamp(-PD_MAX_TORQUE as f32, PD_MAX_TORQUE as f32);
        let an = angle_normalize(s.th);
        let costs = an * an + 0.1 * (s.thdot * s.thdot) + (0.001f32 * (u * u)) as f64;
        let torque_term = ((3.0 / (PD_M * PD_L * PD_L)) as f32 * u) as f64;
        let newthdot = s.thdot + (3.0 * PD_G / (2.0 * PD_L) * s.sin + torque_term) * PD_DT;
        let newthdot = newthdot.clamp(-PD_MAX_SPEED, PD_MAX_SPEED);
        let newth = s.th + newthdot * PD_DT;
        *s = PendulumState::new(newth, newthdot);
        (-costs, false)
    }
    fn render_rgb(&self, s: &PendulumState, ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::pendulum(s.th, scalar_action(ctx, PD_MAX_TORQUE)))
    }
    fn state_vec(&self, s: &PendulumState) -> Vec<f64> {
        vec![s.th, s.thdot]
    }
    fn parse_state(&self, s: &[f64]) -> Result<PendulumState, EnvError> {
        check_state(s, 2, "[theta, theta_dot]")?;
        Ok(PendulumState::new(s[0], s[1]))
    }
}

/// MountainCarContinuous-v0: drive an underpowered car up the right hill with a force in
/// [-1, 1]; +100 at the goal, −0.1·a² per step with a the UNclipped action (as Gymnasium).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MountainCarContinuous;

const MC_MIN_POSITION: f64 = -1.2;
const MC_MAX_POSITION: f64 = 0.6;
const MC_MAX_SPEED: f64 = 0.07;
const MC_GOAL_POSITION: f64 = 0.45;
const MC_GOAL_VELOCITY: f64 = 0.0;
const MC_POWER: f64 = 0.0015;

/// MountainCar state. Gymnasium keeps it as float64 after `reset` and as float32 after
/// every `step`, and NumPy then does part of the arithmetic in float32; `f32_state` says
/// which case applies, so that traces replay bit for bit.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MountainCarState {
    position: f64,
    velocity: f64,
    f32_state: bool,
}

impl Dynamics for MountainCarContinuous {
    type State = MountainCarState;
    type Act = f64;

    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![MC_MIN_POSITION as f32, -MC_MAX_SPEED as f32],
            high: vec![MC_MAX_POSITION as f32, MC_MAX_SPEED as f32],
        }
    }
    fn action_space(&self) -> Space {
        Space::Box { low: vec![-1.0], high: vec![1.0] }
    }
    fn obs_dim(&self) -> usize {
        2
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> MountainCarState {
        MountainCarState { position: rng.random_range(-0.6..-0.4), velocity: 0.0, f32_state: false }
    }
    #[inline(always)]
    fn write_obs(&self, s: &MountainCarState, obs: &mut [f32]) {
        obs[0] = s.position as f32;
        obs[1] = s.velocity as f32;
    }
    #[inline(always)]
    fn step(&self, s: &mut MountainCarState, a: f64, _rng: &mut ChaCha8Rng) -> (f64, bool) {
        let MountainCarState { mut position, mut velocity, f32_state } = *s;
        let a32 = a as f32;
        let three_pos = if f32_state { (3.0f32 * position as f32) as f64 } else { 3.0 * position };
        let hill = 0.0025 * three_pos.cos();
        // velocity += force·power − 0.0025·cos(3·position); an unclipped force is a float32
        // and keeps the difference in float32, a clipped one is a Python float.
        let dv = if (-1.0..=1.0).contains(&a32) {
            (a32 * MC_POWER as f32 - hill as f32) as f64
        } else {
            a32.clamp(-1.0, 1.0) as f64 * MC_POWER - hill
        };
        velocity = if f32_state { (velocity as f32 + dv as f32) as f64 } else { velocity + dv };
        velocity = velocity.clamp(-MC_MAX_SPEED, MC_MAX_SPEED);
        position = if f32_state { (position as f32 + velocity as f32) as f64 } else { position + velocity };
        position = position.clamp(MC_MIN_POSITION, MC_MAX_POSITION);
        if position == MC_MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated = position >= MC_GOAL_POSITION && velocity >= MC_GOAL_VELOCITY;
        let a = a32 as f64;
        let reward = if terminated { 100.0 } else { 0.0 } - a * a * 0.1;
        *s = MountainCarState {
            position: position as f32 as f64,
            velocity: velocity as f32 as f64,
            f32_state: true,
        };
        (reward, terminated)
    }
    fn render_rgb(&self, s: &MountainCarState, _ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::mountaincar(s.position, MC_GOAL_POSITION))
    }
    fn state_vec(&self, s: &MountainCarState) -> Vec<f64> {
        vec![s.position, s.velocity]
    }
    fn parse_state(&self, s: &[f64]) -> Result<MountainCarState, EnvError> {
        check_state(s, 2, "[position, velocity]")?;
        Ok(MountainCarState { position: s[0], velocity: s[1], f32_state: false })
    }
    /// The float32 phase is part of the dynamics (Gymnasium's dtype after the first step).
    fn snapshot_vec(&self, s: &MountainCarState) -> Vec<f64> {
        vec![s.position, s.velocity, if s.f32_state { 1.0 } else { 0.0 }]
    }
    fn restore_vec(&self, s: &[f64]) -> Result<MountainCarState, EnvError> {
        check_state(s, 3, "[position, velocity, float32 phase]")?;
        Ok(MountainCarState { position: s[0], velocity: s[1], f32_state: s[2] != 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_normalize_matches_floored_modulo() {
        use std::f64::consts::PI;
        for k in -4000..4000 {
            let x = k as f64 * 0.00731 + if k % 2 == 0 { 1e-13 } else { 0.0 };
            let y = x + PI;
            assert_eq!(angle_normalize(x).to_bits(), (y.rem_euclid(2.0 * PI) - PI).to_bits(), "x = {x}");
        }
        for &x in &[-10.0, -PI, -1.0, 0.0, 1.0, PI, 3.5, 100.0] {
            let floored = ((x + PI) - (2.0 * PI) * ((x + PI) / (2.0 * PI)).floor()) - PI;
            assert!((angle_normalize(x) - floored).abs() < 1e-12, "x = {x}");
            assert!((-PI..PI).contains(&angle_normalize(x)) || angle_normalize(x) == PI);
        }
    }

    #[test]
    fn pendulum_clips_torque_in_reward_and_dynamics() {
        let mut rng = crate::dynamics::rng_for(0, 0);
        let mut a = PendulumState::new(0.3, 0.1);
        let mut b = a;
        let ra = Pendulum.step(&mut a, 5.0, &mut rng).0;
        let rb = Pendulum.step(&mut b, 2.0, &mut rng).0;
        assert_eq!(ra, rb);
        assert_eq!(a.th, b.th);
    }

    #[test]
    fn mountaincar_reward_uses_unclipped_action() {
        let mut rng = crate::dynamics::rng_for(0, 0);
        let mut a = MountainCarContinuous.parse_state(&[-0.5, 0.0]).unwrap();
        let mut b = a;
        let ra = MountainCarContinuous.step(&mut a, 3.0, &mut rng).0;
        let rb = MountainCarContinuous.step(&mut b, 1.0, &mut rng).0;
        let state = |s| MountainCarContinuous.state_vec(&s);
        assert_eq!(state(a), state(b), "dynamics see the clipped force");
        assert!((ra - (-0.9)).abs() < 1e-12 && (rb - (-0.1)).abs() < 1e-12);
    }
}
