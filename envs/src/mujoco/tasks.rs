//! The eleven v5 tasks: names, models, defaults, and each one's start state, observation,
//! reward and termination, written from Gymnasium 1.4.0's `*_v5.py` formulas with NumPy's
//! float32 promotion kept (a float32 action makes `w * np.sum(np.square(a))` float32).

use super::numpy::{norm, pairwise_sum, sum_of_squares, sum_of_squares_f32};
use super::MujocoEnv;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    InvertedPendulum,
    InvertedDoublePendulum,
    Reacher,
    Pusher,
    Swimmer,
    Hopper,
    HalfCheetah,
    Walker2d,
    Ant,
    Humanoid,
    HumanoidStandup,
}

/// One task as listed: tame's name, Gymnasium's id, its model file, frame skip, time limit.
pub(crate) struct TaskSpec {
    pub(crate) task: Task,
    pub(crate) name: &'static str,
    pub(crate) id: &'static str,
    pub(crate) xml: &'static str,
    pub(crate) frame_skip: u32,
    pub(crate) limit: u32,
    pub(crate) description: &'static str,
    pub(crate) options: &'static [&'static str],
}

const LOCOMOTION: &[&str] = &[
    "frame_skip",
    "forward_reward_weight",
    "ctrl_cost_weight",
    "reset_noise_scale",
    "exclude_current_positions_from_observation",
];
const HOPPER: &[&str] = &[
    "frame_skip",
    "forward_reward_weight",
    "ctrl_cost_weight",
    "healthy_reward",
    "terminate_when_unhealthy",
    "healthy_state_range",
    "healthy_z_range",
    "healthy_angle_range",
    "reset_noise_scale",
    "exclude_current_positions_from_observation",
];
const WALKER: &[&str] = &[
    "frame_skip",
    "forward_reward_weight",
    "ctrl_cost_weight",
    "healthy_reward",
    "terminate_when_unhealthy",
    "healthy_z_range",
    "healthy_angle_range",
    "reset_noise_scale",
    "exclude_current_positions_from_observation",
];
const ANT: &[&str] = &[
    "frame_skip",
    "forward_reward_weight",
    "ctrl_cost_weight",
    "contact_cost_weight",
    "healthy_reward",
    "terminate_when_unhealthy",
    "healthy_z_range",
    "contact_force_range",
    "reset_noise_scale",
    "exclude_current_positions_from_observation",
    "include_cfrc_ext_in_observation",
];
const HUMANOID: &[&str] = &[
    "frame_skip",
    "forward_reward_weight",
    "ctrl_cost_weight",
    "contact_cost_weight",
    "contact_cost_range",
    "healthy_reward",
    "terminate_when_unhealthy",
    "healthy_z_range",
    "reset_noise_scale",
    "exclude_current_positions_from_observation",
    "include_cinert_in_observation",
    "include_cvel_in_observation",
    "include_qfrc_actuator_in_observation",
    "include_cfrc_ext_in_observation",
];
const STANDUP: &[&str] = &[
    "frame_skip",
    "uph_cost_weight",
    "ctrl_cost_weight",
    "impact_cost_weight",
    "impact_cost_range",
    "reset_noise_scale",
    "exclude_current_positions_from_observation",
    "include_cinert_in_observation",
    "include_cvel_in_observation",
    "include_qfrc_actuator_in_observation",
    "include_cfrc_ext_in_observation",
];

pub(crate) const TASKS: &[TaskSpec] = &[
    TaskSpec {
        task: Task::InvertedPendulum,
        name: "invertedpendulum",
        id: "InvertedPendulum-v5",
        xml: "inverted_pendulum.xml",
        frame_skip: 2,
        limit: 1000,
        description: "MuJoCo: balance a pole on a cart; +1 per step",
        options: &["frame_skip", "reset_noise_scale"],
    },
    TaskSpec {
        task: Task::InvertedDoublePendulum,
        name: "inverteddoublependulum",
        id: "InvertedDoublePendulum-v5",
        xml: "inverted_double_pendulum.xml",
        frame_skip: 5,
        limit: 1000,
        description: "MuJoCo: balance two poles on a cart",
        options: &["frame_skip", "healthy_reward", "reset_noise_scale"],
    },
    TaskSpec {
        task: Task::Reacher,
        name: "reacher",
        id: "Reacher-v5",
        xml: "reacher.xml",
        frame_skip: 2,
        limit: 50,
        description: "MuJoCo: move a 2-joint arm's tip to a random target",
        options: &["frame_skip", "reward_dist_weight", "reward_control_weight"],
    },
    TaskSpec {
        task: Task::Pusher,
        name: "pusher",
        id: "Pusher-v5",
        xml: "pusher_v5.xml",
        frame_skip: 5,
        limit: 100,
        description: "MuJoCo: push a cylinder to a goal with a 7-joint arm",
        options: &["frame_skip", "reward_near_weight", "reward_dist_weight", "reward_control_weight"],
    },
    TaskSpec {
        task: Task::Swimmer,
        name: "swimmer",
        id: "Swimmer-v5",
        xml: "swimmer.xml",
        frame_skip: 4,
        limit: 1000,
        description: "MuJoCo: a 3-link swimmer moving forward in a viscous fluid",
        options: LOCOMOTION,
    },
    TaskSpec {
        task: Task::Hopper,
        name: "hopper",
        id: "Hopper-v5",
        xml: "hopper.xml",
        frame_skip: 4,
        limit: 1000,
        description: "MuJoCo: a one-legged hopper moving forward",
        options: HOPPER,
    },
    TaskSpec {
        task: Task::HalfCheetah,
        name: "halfcheetah",
        id: "HalfCheetah-v5",
        xml: "half_cheetah.xml",
        frame_skip: 5,
        limit: 1000,
        description: "MuJoCo: a planar cheetah running forward",
        options: LOCOMOTION,
    },
    TaskSpec {
        task: Task::Walker2d,
        name: "walker2d",
        id: "Walker2d-v5",
        xml: "walker2d_v5.xml",
        frame_skip: 4,
        limit: 1000,
        description: "MuJoCo: a planar biped walking forward",
        options: WALKER,
    },
    TaskSpec {
        task: Task::Ant,
        name: "ant",
        id: "Ant-v5",
        xml: "ant.xml",
        frame_skip: 5,
        limit: 1000,
        description: "MuJoCo: a four-legged ant moving forward",
        options: ANT,
    },
    TaskSpec {
        task: Task::Humanoid,
        name: "humanoid",
        id: "Humanoid-v5",
        xml: "humanoid.xml",
        frame_skip: 5,
        limit: 1000,
        description: "MuJoCo: a 3D humanoid walking forward without falling",
        options: HUMANOID,
    },
    TaskSpec {
        task: Task::HumanoidStandup,
        name: "humanoidstandup",
        id: "HumanoidStandup-v5",
        xml: "humanoidstandup.xml",
        frame_skip: 5,
        limit: 1000,
        description: "MuJoCo: a humanoid lying down that should stand up",
        options: STANDUP,
    },
];

impl Task {
    pub(crate) fn spec(self) -> &'static TaskSpec {
        TASKS.iter().find(|s| s.task == self).expect("every task is listed")
    }

    /// The task called `base` (tame's name or the Gymnasium id, any case).
    pub(crate) fn from_name(base: &str) -> Option<Task> {
        TASKS
            .iter()
            .find(|s| s.name == base || s.id.eq_ignore_ascii_case(base))
            .map(|s| s.task)
    }
}

fn clip(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}

impl MujocoEnv {
    /// Gymnasium's `reset_model` start state, drawn from tame's generator.
    pub(super) fn initial_state(&mut self) -> (Vec<f64>, Vec<f64>) {
        let s = self.cfg.reset_noise_scale;
        let mut qpos = self.init_qpos.clone();
        let mut qvel = self.init_qvel.clone();
        match self.cfg.task {
            Task::Reacher => {
                for q in qpos.iter_mut() {
                    *q += self.uniform(-0.1, 0.1);
                }
                let goal = loop {
                    let g = [self.uniform(-0.2, 0.2), self.uniform(-0.2, 0.2)];
                    if norm(&g) < 0.2 {
                        break g;
                    }
                };
                let nq = qpos.len();
                qpos[nq - 2..].copy_from_slice(&goal);
                for v in qvel.iter_mut() {
                    *v += self.uniform(-0.005, 0.005);
                }
                let nv = qvel.len();
                qvel[nv - 2..].fill(0.0);
            }
            Task::Pusher => {
                let cylinder = loop {
                    let c = [self.uniform(-0.3, 0.0), self.uniform(-0.2, 0.2)];
                    if norm(&c) > 0.17 {
                        break c;
                    }
                };
                let nq = qpos.len();
                qpos[nq - 4..nq - 2].copy_from_slice(&cylinder);
                qpos[nq - 2..].fill(0.0);
                for v in qvel.iter_mut() {
                    *v += self.uniform(-0.005, 0.005);
                }
                let nv = qvel.len();
                qvel[nv - 4..].fill(0.0);
            }
            task => {
                for q in qpos.iter_mut() {
                    *q += self.uniform(-s, s);
                }
                let gaussian = matches!(task, Task::HalfCheetah | Task::Ant | Task::InvertedDoublePendulum);
                for v in qvel.iter_mut() {
                    *v += if gaussian { s * self.normal() } else { self.uniform(-s, s) };
                }
            }
        }
        (qpos, qvel)
    }

    /// The position velocities are measured from: the torso's x (and y where it moves in
    /// the plane), Ant's main body, Humanoid's centre of mass.
    pub(super) fn position(&self) -> [f64; 2] {
        let qpos = self.data.qpos();
        match self.cfg.task {
            Task::HalfCheetah | Task::Hopper | Task::Walker2d => [qpos[0], 0.0],
            Task::Swimmer => [qpos[0], qpos[1]],
            Task::Ant => {
                let p = self.data.xpos()[1];
                [p[0], p[1]]
            }
            Task::Humanoid => self.mass_center(),
            _ => [0.0, 0.0],
        }
    }

    /// `np.einsum('b,bj->j', body_mass, xipos) / body_mass.sum()`, its x and y.
    fn mass_center(&self) -> [f64; 2] {
        let mass = self.model.body_mass();
        let xipos = self.data.xipos();
        let mut num = [0.0f64; 2];
        for (m, p) in mass.iter().zip(xipos) {
            num[0] += m * p[0];
            num[1] += m * p[1];
        }
        let total = pairwise_sum(mass);
        [num[0] / total, num[1] / total]
    }

    /// Writes Gymnasium's float64 observation of the current data into `obs64`.
    pub(super) fn observe(&mut self) {
        let c = &self.cfg;
        let d = &self.data;
        let o = &mut self.obs64;
        o.clear();
        let qpos = d.qpos();
        let qvel = d.qvel();
        let skip = |n: usize| if c.exclude_current_positions_from_observation { n } else { 0 };
        match c.task {
            Task::InvertedPendulum => {
                o.extend_from_slice(qpos);
                o.extend_from_slice(qvel);
            }
            Task::InvertedDoublePendulum => {
                o.push(qpos[0]);
                o.extend(qpos[1..].iter().map(|q| q.sin()));
                o.extend(qpos[1..].iter().map(|q| q.cos()));
                o.extend(qvel.iter().map(|v| clip(*v, -10.0, 10.0)));
                o.push(clip(d.qfrc_constraint()[0], -10.0, 10.0));
            }
            Task::Reacher => {
                o.extend(qpos[..2].iter().map(|q| q.cos()));
                o.extend(qpos[..2].iter().map(|q| q.sin()));
                o.extend_from_slice(&qpos[2..]);
                o.extend_from_slice(&qvel[..2]);
                let (tip, target) = (d.xpos()[self.bodies.fingertip], d.xpos()[self.bodies.target]);
                o.extend([tip[0] - target[0], tip[1] - target[1]]);
            }
            Task::Pusher => {
                o.extend_from_slice(&qpos[..7]);
                o.extend_from_slice(&qvel[..7]);
                for b in [self.bodies.tips_arm, self.bodies.object, self.bodies.goal] {
                    o.extend_from_slice(&d.xpos()[b]);
                }
            }
            Task::Swimmer | Task::Hopper | Task::HalfCheetah | Task::Walker2d => {
                let n = skip(if c.task == Task::Swimmer { 2 } else { 1 });
                o.extend_from_slice(&qpos[n..]);
                if matches!(c.task, Task::Hopper | Task::Walker2d) {
                    o.extend(qvel.iter().map(|v| clip(*v, -10.0, 10.0)));
                } else {
                    o.extend_from_slice(qvel);
                }
            }
            Task::Ant => {
                o.extend_from_slice(&qpos[skip(2)..]);
                o.extend_from_slice(qvel);
                if c.include_cfrc_ext_in_observation {
                    let (lo, hi) = c.contact_force_range;
                    for f in &d.cfrc_ext()[1..] {
                        o.extend(f.iter().map(|x| clip(*x, lo, hi)));
                    }
                }
            }
            Task::Humanoid | Task::HumanoidStandup => {
                o.extend_from_slice(&qpos[skip(2)..]);
                o.extend_from_slice(qvel);
                if c.include_cinert_in_observation {
                    d.cinert()[1..].iter().for_each(|x| o.extend_from_slice(x));
                }
                if c.include_cvel_in_observation {
                    d.cvel()[1..].iter().for_each(|x| o.extend_from_slice(x));
                }
                if c.include_qfrc_actuator_in_observation {
                    o.extend_from_slice(&d.qfrc_actuator()[6..]);
                }
                if c.include_cfrc_ext_in_observation {
                    d.cfrc_ext()[1..].iter().for_each(|x| o.extend_from_slice(x));
                }
            }
        }
    }

    /// `w * np.sum(np.square(action))` with a float32 action: float32 throughout.
    fn ctrl_cost_f32(&self, w: f64) -> f32 {
        w as f32 * sum_of_squares_f32(&self.action)
    }

    /// `np.sum(np.square(x))` over all of `cfrc_ext` (every body, world included), each
    /// component passed through `f` first.
    fn cfrc_ext_squares(&mut self, f: impl Fn(f64) -> f64) -> f64 {
        let forces = self.data.cfrc_ext();
        sum_of_squares(forces.iter().flatten().map(|x| f(*x)), &mut self.scratch)
    }

    fn ctrl_squares(&mut self) -> f64 {
        sum_of_squares(self.data.ctrl().iter().copied(), &mut self.scratch)
    }

    /// After a step: the reward, whether the episode terminated, and `info`.
    pub(super) fn reward_and_termination(&mut self) -> (f64, bool) {
        let c = self.cfg.clone();
        let dt = self.dt();
        let before = self.before;
        let after = self.position();
        let qpos0 = self.data.qpos()[0];
        let qpos1 = self.data.qpos()[1];
        let mut info: Vec<(&'static str, f64)> = Vec::with_capacity(12);
        let (reward, terminated) = match c.task {
            Task::InvertedPendulum => {
                let terminated = !self.obs64.iter().all(|x| x.is_finite()) || self.obs64[1].abs() > 0.2;
                let reward = if terminated { 0.0 } else { 1.0 };
                info.push(("reward_survive", reward));
                (reward, terminated)
            }
            Task::InvertedDoublePendulum => {
                let site = self.data.site_xpos()[0];
                let (x, y) = (site[0], site[2]);
                let terminated = y <= 1.0;
                let qvel = self.data.qvel();
                let (v1, v2) = (qvel[1], qvel[2]);
                let dist_penalty = 0.01 * (x * x) + (y - 2.0) * (y - 2.0);
                let vel_penalty = 0.001 * (v1 * v1) + 0.005 * (v2 * v2);
                let alive_bonus = c.healthy_reward * if terminated { 0.0 } else { 1.0 };
                let reward = alive_bonus - dist_penalty - vel_penalty;
                info.extend([
                    ("reward_survive", alive_bonus),
                    ("distance_penalty", -dist_penalty),
                    ("velocity_penalty", -vel_penalty),
                ]);
                (reward, terminated)
            }
            Task::Reacher => {
                let xpos = self.data.xpos();
                let (tip, target) = (xpos[self.bodies.fingertip], xpos[self.bodies.target]);
                let vec = [tip[0] - target[0], tip[1] - target[1], tip[2] - target[2]];
                let reward_dist = -norm(&vec) * c.reward_dist_weight;
                let reward_ctrl = -sum_of_squares_f32(&self.action) * c.reward_control_weight as f32;
                let reward = reward_dist + reward_ctrl as f64;
                info.extend([("reward_dist", reward_dist), ("reward_ctrl", reward_ctrl as f64)]);
                (reward, false)
            }
            Task::Pusher => {
                let xpos = self.data.xpos();
                let (tips, object, goal) = (xpos[self.bodies.tips_arm], xpos[self.bodies.object], xpos[self.bodies.goal]);
                let v1: Vec<f64> = (0..3).map(|i| object[i] - tips[i]).collect();
                let v2: Vec<f64> = (0..3).map(|i| object[i] - goal[i]).collect();
                let reward_near = -norm(&v1) * c.reward_near_weight;
                let reward_dist = -norm(&v2) * c.reward_dist_weight;
                let reward_ctrl = -sum_of_squares_f32(&self.action) * c.reward_control_weight as f32;
                let reward = reward_dist + reward_ctrl as f64 + reward_near;
                info.extend([
                    ("reward_dist", reward_dist),
                    ("reward_ctrl", reward_ctrl as f64),
                    ("reward_near", reward_near),
                ]);
                (reward, false)
            }
            Task::HalfCheetah | Task::Swimmer => {
                let x_velocity = (after[0] - before[0]) / dt;
                let forward_reward = c.forward_reward_weight * x_velocity;
                let ctrl_cost = self.ctrl_cost_f32(c.ctrl_cost_weight);
                let reward = forward_reward - ctrl_cost as f64;
                if c.task == Task::Swimmer {
                    let y_velocity = (after[1] - before[1]) / dt;
                    info.extend([
                        ("x_position", after[0]),
                        ("y_position", after[1]),
                        ("distance_from_origin", norm(&after)),
                        ("x_velocity", x_velocity),
                        ("y_velocity", y_velocity),
                    ]);
                } else {
                    info.extend([("x_position", after[0]), ("x_velocity", x_velocity)]);
                }
                info.extend([("reward_forward", forward_reward), ("reward_ctrl", -ctrl_cost as f64)]);
                (reward, false)
            }
            Task::Hopper | Task::Walker2d => {
                let x_velocity = (after[0] - before[0]) / dt;
                let qpos = self.data.qpos();
                let (z, angle) = (qpos[1], qpos[2]);
                let within = |x: f64, (lo, hi): (f64, f64)| lo < x && x < hi;
                let mut healthy = within(z, c.healthy_z_range) && within(angle, c.healthy_angle_range);
                if c.task == Task::Hopper {
                    let state_ok = qpos[2..].iter().chain(self.data.qvel()).all(|x| within(*x, c.healthy_state_range));
                    healthy = healthy && state_ok;
                }
                let forward_reward = c.forward_reward_weight * x_velocity;
                let healthy_reward = if healthy { c.healthy_reward } else { 0.0 };
                let rewards = forward_reward + healthy_reward;
                let ctrl_cost = self.ctrl_cost_f32(c.ctrl_cost_weight);
                let reward = rewards - ctrl_cost as f64;
                info.extend([
                    ("x_position", after[0]),
                    ("z_distance_from_origin", qpos1 - self.init_qpos[1]),
                    ("x_velocity", x_velocity),
                    ("reward_forward", forward_reward),
                    ("reward_ctrl", -ctrl_cost as f64),
                    ("reward_survive", healthy_reward),
                ]);
                (reward, !healthy && c.terminate_when_unhealthy)
            }
            Task::Ant => {
                let x_velocity = (after[0] - before[0]) / dt;
                let y_velocity = (after[1] - before[1]) / dt;
                let finite = self.data.qpos().iter().chain(self.data.qvel()).all(|x| x.is_finite());
                let z = self.data.qpos()[2];
                let healthy = finite && c.healthy_z_range.0 <= z && z <= c.healthy_z_range.1;
                let forward_reward = x_velocity * c.forward_reward_weight;
                let healthy_reward = if healthy { c.healthy_reward } else { 0.0 };
                let rewards = forward_reward + healthy_reward;
                let ctrl_cost = self.ctrl_cost_f32(c.ctrl_cost_weight);
                let (lo, hi) = c.contact_force_range;
                let contact_cost = c.contact_cost_weight * self.cfrc_ext_squares(|x| clip(x, lo, hi));
                let costs = ctrl_cost as f64 + contact_cost;
                let reward = rewards - costs;
                info.extend([
                    ("x_position", qpos0),
                    ("y_position", qpos1),
                    ("distance_from_origin", norm(&[qpos0, qpos1])),
                    ("x_velocity", x_velocity),
                    ("y_velocity", y_velocity),
                    ("reward_forward", forward_reward),
                    ("reward_ctrl", -ctrl_cost as f64),
                    ("reward_contact", -contact_cost),
                    ("reward_survive", healthy_reward),
                ]);
                (reward, !healthy && c.terminate_when_unhealthy)
            }
            Task::Humanoid => {
                let x_velocity = (after[0] - before[0]) / dt;
                let y_velocity = (after[1] - before[1]) / dt;
                let z = self.data.qpos()[2];
                let healthy = c.healthy_z_range.0 < z && z < c.healthy_z_range.1;
                let forward_reward = c.forward_reward_weight * x_velocity;
                let healthy_reward = if healthy { c.healthy_reward } else { 0.0 };
                let rewards = forward_reward + healthy_reward;
                let ctrl_cost = c.ctrl_cost_weight * self.ctrl_squares();
                let contact_cost = clip(
                    c.contact_cost_weight * self.cfrc_ext_squares(|x| x),
                    c.contact_cost_range.0,
                    c.contact_cost_range.1,
                );
                let costs = ctrl_cost + contact_cost;
                let reward = rewards - costs;
                info.extend([
                    ("x_position", qpos0),
                    ("y_position", qpos1),
                    ("distance_from_origin", norm(&[qpos0, qpos1])),
                    ("x_velocity", x_velocity),
                    ("y_velocity", y_velocity),
                    ("reward_survive", healthy_reward),
                    ("reward_forward", forward_reward),
                    ("reward_ctrl", -ctrl_cost),
                    ("reward_contact", -contact_cost),
                ]);
                (reward, !healthy && c.terminate_when_unhealthy)
            }
            Task::HumanoidStandup => {
                let z = self.data.qpos()[2];
                let timestep = self.model.ffi().opt.timestep;
                let uph_cost = (z - 0.0) / timestep * c.uph_cost_weight;
                let quad_ctrl_cost = c.ctrl_cost_weight * self.ctrl_squares();
                let quad_impact_cost = clip(
                    c.impact_cost_weight * self.cfrc_ext_squares(|x| x),
                    c.impact_cost_range.0,
                    c.impact_cost_range.1,
                );
                let reward = uph_cost - quad_ctrl_cost - quad_impact_cost + 1.0;
                info.extend([
                    ("x_position", qpos0),
                    ("y_position", qpos1),
                    ("z_distance_from_origin", z - self.init_qpos[2]),
                    ("reward_linup", uph_cost),
                    ("reward_quadctrl", -quad_ctrl_cost),
                    ("reward_impact", -quad_impact_cost),
                ]);
                (reward, false)
            }
        };
        self.info = info;
        (reward, terminated)
    }
}
