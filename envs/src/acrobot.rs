//! Acrobot-v1 and MountainCar-v0 (discrete actions) with Gymnasium 1.4.0's dynamics.
//!
//! Acrobot integrates Sutton and Barto's "book" equations with one classic RK4 step of
//! 0.2 s in f64, in the same order of floating-point operations as Gymnasium, so that its
//! traces replay bit for bit. Its reset state is drawn in f64 and rounded to float32, as
//! Gymnasium's `astype(np.float32)` does; later states stay f64.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

use crate::dynamics::{check_state, Dynamics};
use crate::render::{Frame, RenderCtx};
use crate::scenes;
use crate::{EnvError, Space};

/// Acrobot-v1: two links hanging from a pivot; torque −1, 0 or +1 on the joint between them
/// (actions 0, 1, 2). −1 per step until the tip rises one link length above the pivot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Acrobot;

const AC_DT: f64 = 0.2;
const AC_L1: f64 = 1.0;
const AC_M1: f64 = 1.0;
const AC_M2: f64 = 1.0;
const AC_LC1: f64 = 0.5;
const AC_LC2: f64 = 0.5;
const AC_MOI: f64 = 1.0;
const AC_G: f64 = 9.8;
const AC_MAX_VEL_1: f64 = 4.0 * PI;
const AC_MAX_VEL_2: f64 = 9.0 * PI;
const AC_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];

/// `x**2` as NumPy computes it on a float64 scalar: libm's `pow(x, 2.0)`, which differs
/// from `x * x` in the last bit about once in a thousand. `black_box` keeps the compiler
/// from turning the call into that product.
#[inline(always)]
fn np_square(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// The time derivative of `[θ1, θ2, θ̇1, θ̇2]` under torque `a` ("book" dynamics); each
/// product is grouped as Python evaluates Gymnasium's expressions, left to right.
#[inline(always)]
fn dsdt(s: [f64; 4], a: f64) -> [f64; 4] {
    let (m1, m2, l1, lc1, lc2, i1, i2, g) = (AC_M1, AC_M2, AC_L1, AC_LC1, AC_LC2, AC_MOI, AC_MOI, AC_G);
    let [theta1, theta2, dtheta1, dtheta2] = s;
    let (sin2, cos2) = (theta2.sin(), theta2.cos());
    let d1 = m1 * (lc1 * lc1) + m2 * ((l1 * l1 + lc2 * lc2) + 2.0 * l1 * lc2 * cos2) + i1 + i2;
    let d2 = m2 * (lc2 * lc2 + l1 * lc2 * cos2) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * np_square(dtheta2) * sin2 - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * np_square(dtheta1) * sin2 - phi2)
        / (m2 * (lc2 * lc2) + i2 - np_square(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2]
}

/// One RK4 step over `[0, dt]`, as Gymnasium's `rk4` with two time points.
#[inline(always)]
fn rk4(y0: [f64; 4], a: f64) -> [f64; 4] {
    let dt = AC_DT - 0.0;
    let dt2 = dt / 2.0;
    let add = |y: [f64; 4], h: f64, k: [f64; 4]| std::array::from_fn(|i| y[i] + h * k[i]);
    let k1 = dsdt(y0, a);
    let k2 = dsdt(add(y0, dt2, k1), a);
    let k3 = dsdt(add(y0, dt2, k2), a);
    let k4 = dsdt(add(y0, dt, k3), a);
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Gymnasium's `wrap`: whole turns added or removed one at a time (not a modulo: the bits
/// differ).
fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

fn acrobot_terminal(s: &[f64; 4]) -> bool {
    -s[0].cos() - (s[1] + s[0]).cos() > 1.0
}

impl Dynamics for Acrobot {
    /// `[θ1, θ2, θ̇1, θ̇2]`.
    type State = [f64; 4];
    type Act = usize;

    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, 1.0, 1.0, AC_MAX_VEL_1 as f32, AC_MAX_VEL_2 as f32];
        Space::Box { low: high.iter().map(|h| -h).collect(), high: high.to_vec() }
    }
    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }
    fn obs_dim(&self) -> usize {
        6
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> [f64; 4] {
        std::array::from_fn(|_| rng.random_range(-0.1..0.1) as f32 as f64)
    }
    #[inline(always)]
    fn write_obs(&self, s: &[f64; 4], obs: &mut [f32]) {
        let (s0, c0) = s[0].sin_cos();
        let (s1, c1) = s[1].sin_cos();
        obs[..6].copy_from_slice(&[c0 as f32, s0 as f32, c1 as f32, s1 as f32, s[2] as f32, s[3] as f32]);
    }
    #[inline(always)]
    fn step(&self, s: &mut [f64; 4], a: usize, _rng: &mut ChaCha8Rng) -> (f64, bool) {
        let mut ns = rk4(*s, AC_TORQUE[a]);
        ns[0] = wrap(ns[0], -PI, PI);
        ns[1] = wrap(ns[1], -PI, PI);
        ns[2] = ns[2].max(-AC_MAX_VEL_1).min(AC_MAX_VEL_1);
        ns[3] = ns[3].max(-AC_MAX_VEL_2).min(AC_MAX_VEL_2);
        *s = ns;
        let terminated = acrobot_terminal(s);
        (if terminated { 0.0 } else { -1.0 }, terminated)
    }
    fn state_vec(&self, s: &[f64; 4]) -> Vec<f64> {
        s.to_vec()
    }
    fn parse_state(&self, s: &[f64]) -> Result<[f64; 4], EnvError> {
        check_state(s, 4, "[theta1, theta2, theta1_dot, theta2_dot]")?;
        Ok([s[0], s[1], s[2], s[3]])
    }
    fn render_rgb(&self, s: &[f64; 4], _ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::acrobot(s[0], s[1]))
    }
}

/// MountainCar-v0: push left (0), nothing (1) or right (2) to drive the car up the right
/// hill; −1 per step, the episode ends at position ≥ 0.5. Its state stays f64 throughout
/// (unlike the continuous version, whose float32 action makes NumPy switch dtypes).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MountainCarDiscrete;

const MD_MIN_POSITION: f64 = -1.2;
const MD_MAX_POSITION: f64 = 0.6;
const MD_MAX_SPEED: f64 = 0.07;
pub(crate) const MD_GOAL_POSITION: f64 = 0.5;
const MD_FORCE: f64 = 0.001;
const MD_GRAVITY: f64 = 0.0025;

impl Dynamics for MountainCarDiscrete {
    /// `[position, velocity]`.
    type State = [f64; 2];
    type Act = usize;

    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![MD_MIN_POSITION as f32, -MD_MAX_SPEED as f32],
            high: vec![MD_MAX_POSITION as f32, MD_MAX_SPEED as f32],
        }
    }
    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }
    fn obs_dim(&self) -> usize {
        2
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> [f64; 2] {
        [rng.random_range(-0.6..-0.4), 0.0]
    }
    #[inline(always)]
    fn write_obs(&self, s: &[f64; 2], obs: &mut [f32]) {
        obs[0] = s[0] as f32;
        obs[1] = s[1] as f32;
    }
    #[inline(always)]
    fn step(&self, s: &mut [f64; 2], a: usize, _rng: &mut ChaCha8Rng) -> (f64, bool) {
        let [mut position, mut velocity] = *s;
        velocity += (a as f64 - 1.0) * MD_FORCE + (3.0 * position).cos() * (-MD_GRAVITY);
        velocity = velocity.clamp(-MD_MAX_SPEED, MD_MAX_SPEED);
        position += velocity;
        position = position.clamp(MD_MIN_POSITION, MD_MAX_POSITION);
        if position == MD_MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        *s = [position, velocity];
        (-1.0, position >= MD_GOAL_POSITION && velocity >= 0.0)
    }
    fn state_vec(&self, s: &[f64; 2]) -> Vec<f64> {
        s.to_vec()
    }
    fn parse_state(&self, s: &[f64]) -> Result<[f64; 2], EnvError> {
        check_state(s, 2, "[position, velocity]")?;
        Ok([s[0], s[1]])
    }
    fn render_rgb(&self, s: &[f64; 2], _ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::mountaincar(s[0], MD_GOAL_POSITION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_stays_in_one_turn() {
        assert_eq!(wrap(3.5, -PI, PI), 3.5 - 2.0 * PI);
        assert_eq!(wrap(-7.0, -PI, PI), -7.0 + 2.0 * PI);
        assert_eq!(wrap(-10.0, -PI, PI), -10.0 + 2.0 * PI + 2.0 * PI);
        assert_eq!(wrap(1.0, -PI, PI), 1.0);
    }

    #[test]
    fn hanging_still_stays_still_and_is_not_terminal() {
        let mut s = [0.0; 4];
        let mut rng = crate::dynamics::rng_for(0, 0);
        let (r, done) = Acrobot.step(&mut s, 1, &mut rng);
        assert_eq!((r, done), (-1.0, false));
        assert!(s.iter().all(|x| x.abs() < 1e-12), "{s:?}");
        assert!(acrobot_terminal(&[PI, 0.0, 0.0, 0.0]));
    }
}
