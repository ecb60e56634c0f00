//! The v5 keyword arguments of Gymnasium's MuJoCo tasks as env options
//! (`halfcheetah:ctrl_cost_weight=0.2`, `hopper:terminate_when_unhealthy=false`), each checked
//! against what the task has and what its value may be.

use super::tasks::{Task, TaskSpec};
use crate::EnvError;

/// Every option a MuJoCo task can take, with Gymnasium 1.4.0's v5 defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Config {
    pub(crate) task: Task,
    pub(crate) frame_skip: u32,
    pub(crate) forward_reward_weight: f64,
    pub(crate) ctrl_cost_weight: f64,
    pub(crate) contact_cost_weight: f64,
    pub(crate) healthy_reward: f64,
    pub(crate) terminate_when_unhealthy: bool,
    pub(crate) healthy_state_range: (f64, f64),
    pub(crate) healthy_z_range: (f64, f64),
    pub(crate) healthy_angle_range: (f64, f64),
    pub(crate) contact_force_range: (f64, f64),
    pub(crate) contact_cost_range: (f64, f64),
    pub(crate) reset_noise_scale: f64,
    pub(crate) exclude_current_positions_from_observation: bool,
    pub(crate) include_cinert_in_observation: bool,
    pub(crate) include_cvel_in_observation: bool,
    pub(crate) include_qfrc_actuator_in_observation: bool,
    pub(crate) include_cfrc_ext_in_observation: bool,
    pub(crate) reward_dist_weight: f64,
    pub(crate) reward_control_weight: f64,
    pub(crate) reward_near_weight: f64,
    pub(crate) uph_cost_weight: f64,
    pub(crate) impact_cost_weight: f64,
    pub(crate) impact_cost_range: (f64, f64),
}

const INF: f64 = f64::INFINITY;

impl Config {
    /// Gymnasium 1.4.0's defaults for `task` (the `__init__` defaults of each `*_v5.py`).
    pub(crate) fn defaults(task: Task) -> Config {
        let mut c = Config {
            task,
            frame_skip: task.spec().frame_skip,
            forward_reward_weight: 1.0,
            ctrl_cost_weight: 0.1,
            contact_cost_weight: 5e-4,
            healthy_reward: 1.0,
            terminate_when_unhealthy: true,
            healthy_state_range: (-100.0, 100.0),
            healthy_z_range: (0.7, INF),
            healthy_angle_range: (-0.2, 0.2),
            contact_force_range: (-1.0, 1.0),
            contact_cost_range: (-INF, 10.0),
            reset_noise_scale: 0.1,
            exclude_current_positions_from_observation: true,
            include_cinert_in_observation: true,
            include_cvel_in_observation: true,
            include_qfrc_actuator_in_observation: true,
            include_cfrc_ext_in_observation: true,
            reward_dist_weight: 1.0,
            reward_control_weight: 1.0,
            reward_near_weight: 0.5,
            uph_cost_weight: 1.0,
            impact_cost_weight: 5e-7,
            impact_cost_range: (-INF, 10.0),
        };
        match task {
            Task::InvertedPendulum => c.reset_noise_scale = 0.01,
            Task::InvertedDoublePendulum => c.healthy_reward = 10.0,
            Task::Reacher => {}
            Task::Pusher => c.reward_control_weight = 0.1,
            Task::Swimmer => c.ctrl_cost_weight = 1e-4,
            Task::Hopper => {
                c.ctrl_cost_weight = 1e-3;
                c.reset_noise_scale = 5e-3;
            }
            Task::HalfCheetah => {}
            Task::Walker2d => {
                c.ctrl_cost_weight = 1e-3;
                c.healthy_z_range = (0.8, 2.0);
                c.healthy_angle_range = (-1.0, 1.0);
                c.reset_noise_scale = 5e-3;
            }
            Task::Ant => {
                c.ctrl_cost_weight = 0.5;
                c.healthy_z_range = (0.2, 1.0);
            }
            Task::Humanoid => {
                c.forward_reward_weight = 1.25;
                c.contact_cost_weight = 5e-7;
                c.healthy_reward = 5.0;
                c.healthy_z_range = (1.0, 2.0);
                c.reset_noise_scale = 1e-2;
            }
            Task::HumanoidStandup => c.reset_noise_scale = 1e-2,
        }
        c
    }
}

/// Largest magnitude of a weight: rewards stay far inside f32's range once agents see them.
const MAX_WEIGHT: f64 = 1e6;
/// Largest reset noise: beyond it the start states are physically meaningless.
const MAX_NOISE: f64 = 10.0;
const MAX_FRAME_SKIP: u32 = 1000;

/// The kinds of value an option takes.
#[derive(Clone, Copy)]
enum Kind {
    /// A finite number in [-1e6, 1e6].
    Weight,
    /// A finite number in [0, 1e6].
    Cost,
    Bool,
    /// `LOW,HIGH` with LOW < HIGH, each a number or ±inf.
    Range,
    Noise,
    FrameSkip,
}

/// Option names and kinds; which of them a task takes is in its [`TaskSpec`].
const KINDS: &[(&str, Kind)] = &[
    ("frame_skip", Kind::FrameSkip),
    ("forward_reward_weight", Kind::Weight),
    ("ctrl_cost_weight", Kind::Cost),
    ("contact_cost_weight", Kind::Cost),
    ("healthy_reward", Kind::Weight),
    ("terminate_when_unhealthy", Kind::Bool),
    ("healthy_state_range", Kind::Range),
    ("healthy_z_range", Kind::Range),
    ("healthy_angle_range", Kind::Range),
    ("contact_force_range", Kind::Range),
    ("contact_cost_range", Kind::Range),
    ("reset_noise_scale", Kind::Noise),
    ("exclude_current_positions_from_observation", Kind::Bool),
    ("include_cinert_in_observation", Kind::Bool),
    ("include_cvel_in_observation", Kind::Bool),
    ("include_qfrc_actuator_in_observation", Kind::Bool),
    ("include_cfrc_ext_in_observation", Kind::Bool),
    ("reward_dist_weight", Kind::Weight),
    ("reward_control_weight", Kind::Weight),
    ("reward_near_weight", Kind::Weight),
    ("uph_cost_weight", Kind::Weight),
    ("impact_cost_weight", Kind::Cost),
    ("impact_cost_range", Kind::Range),
];

fn accepted(kind: Kind) -> String {
    match kind {
        Kind::Weight => format!("a number from -{MAX_WEIGHT:e} to {MAX_WEIGHT:e}"),
        Kind::Cost => format!("a number from 0 to {MAX_WEIGHT:e}"),
        Kind::Bool => "true or false".to_string(),
        Kind::Range => "LOW,HIGH with LOW < HIGH, each a number or -inf/inf (e.g. 0.7,inf)".to_string(),
        Kind::Noise => format!("a number from 0 to {MAX_NOISE}"),
        Kind::FrameSkip => format!("a whole number from 1 to {MAX_FRAME_SKIP}"),
    }
}

fn number(text: &str) -> Option<f64> {
    match text.trim() {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok().filter(|x| x.is_finite()),
    }
}

enum Value {
    Number(f64),
    Bool(bool),
    Range(f64, f64),
    Count(u32),
}

fn parse_value(kind: Kind, text: &str) -> Option<Value> {
    match kind {
        Kind::Weight => number(text).filter(|x| x.is_finite() && x.abs() <= MAX_WEIGHT).map(Value::Number),
        Kind::Cost => number(text).filter(|x| x.is_finite() && (0.0..=MAX_WEIGHT).contains(x)).map(Value::Number),
        Kind::Noise => number(text).filter(|x| (0.0..=MAX_NOISE).contains(x)).map(Value::Number),
        Kind::Bool => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Kind::Range => {
            let (lo, hi) = text.split_once(',')?;
            let (lo, hi) = (number(lo)?, number(hi)?);
            (lo < hi).then_some(Value::Range(lo, hi))
        }
        Kind::FrameSkip => text.parse::<u32>().ok().filter(|n| (1..=MAX_FRAME_SKIP).contains(n)).map(Value::Count),
    }
}

fn set(c: &mut Config, key: &str, v: Value) {
    match (key, v) {
        ("frame_skip", Value::Count(n)) => c.frame_skip = n,
        ("forward_reward_weight", Value::Number(x)) => c.forward_reward_weight = x,
        ("ctrl_cost_weight", Value::Number(x)) => c.ctrl_cost_weight = x,
        ("contact_cost_weight", Value::Number(x)) => c.contact_cost_weight = x,
        ("healthy_reward", Value::Number(x)) => c.healthy_reward = x,
        ("terminate_when_unhealthy", Value::Bool(b)) => c.terminate_when_unhealthy = b,
        ("healthy_state_range", Value::Range(a, b)) => c.healthy_state_range = (a, b),
        ("healthy_z_range", Value::Range(a, b)) => c.healthy_z_range = (a, b),
        ("healthy_angle_range", Value::Range(a, b)) => c.healthy_angle_range = (a, b),
        ("contact_force_range", Value::Range(a, b)) => c.contact_force_range = (a, b),
        ("contact_cost_range", Value::Range(a, b)) => c.contact_cost_range = (a, b),
        ("reset_noise_scale", Value::Number(x)) => c.reset_noise_scale = x,
        ("exclude_current_positions_from_observation", Value::Bool(b)) => {
            c.exclude_current_positions_from_observation = b
        }
        ("include_cinert_in_observation", Value::Bool(b)) => c.include_cinert_in_observation = b,
        ("include_cvel_in_observation", Value::Bool(b)) => c.include_cvel_in_observation = b,
        ("include_qfrc_actuator_in_observation", Value::Bool(b)) => c.include_qfrc_actuator_in_observation = b,
        ("include_cfrc_ext_in_observation", Value::Bool(b)) => c.include_cfrc_ext_in_observation = b,
        ("reward_dist_weight", Value::Number(x)) => c.reward_dist_weight = x,
        ("reward_control_weight", Value::Number(x)) => c.reward_control_weight = x,
        ("reward_near_weight", Value::Number(x)) => c.reward_near_weight = x,
        ("uph_cost_weight", Value::Number(x)) => c.uph_cost_weight = x,
        ("impact_cost_weight", Value::Number(x)) => c.impact_cost_weight = x,
        ("impact_cost_range", Value::Range(a, b)) => c.impact_cost_range = (a, b),
        // KINDS and this table list the same keys with the same kinds.
        _ => unreachable!("option {key} has no setter"),
    }
}

/// Applies `KEY=VALUE` options (already split, `limit=` handled by the caller) to the task's
/// defaults. Errors name the env, the option and what is accepted.
pub(crate) fn parse_options(name: &str, task: Task, opts: &[(&str, &str)]) -> Result<Config, EnvError> {
    let spec: &TaskSpec = task.spec();
    let bad = |why: String| EnvError::Other(format!("env name '{name}': {why}"));
    let mut c = Config::defaults(task);
    for (key, text) in opts {
        if !spec.options.contains(key) {
            return Err(bad(format!(
                "{} has no option '{key}'; accepted: {}, limit",
                spec.id,
                spec.options.join(", ")
            )));
        }
        let kind = KINDS.iter().find(|(k, _)| k == key).map(|(_, kind)| *kind).unwrap_or(Kind::Weight);
        let v = parse_value(kind, text).ok_or_else(|| bad(format!("{key}={text}; accepted: {}", accepted(kind))))?;
        set(&mut c, key, v);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_option_has_a_kind_and_a_setter() {
        for spec in super::super::TASKS {
            let mut c = Config::defaults(spec.task);
            for key in spec.options {
                let (_, kind) = KINDS.iter().find(|(k, _)| k == key).expect(key);
                let text = match kind {
                    Kind::Bool => "false",
                    Kind::Range => "-1,2",
                    Kind::FrameSkip => "3",
                    _ => "0.5",
                };
                set(&mut c, key, parse_value(*kind, text).unwrap());
            }
        }
    }

    #[test]
    fn values_out_of_range_are_refused_with_what_is_accepted() {
        let e = parse_options("hopper:ctrl_cost_weight=-1", Task::Hopper, &[("ctrl_cost_weight", "-1")]).unwrap_err();
        assert!(e.to_string().contains("accepted: a number from 0"), "{e}");
        let e = parse_options("x", Task::Hopper, &[("healthy_z_range", "2,1")]).unwrap_err();
        assert!(e.to_string().contains("LOW < HIGH"), "{e}");
        let e = parse_options("x", Task::HalfCheetah, &[("healthy_reward", "1")]).unwrap_err().to_string();
        assert!(e.contains("HalfCheetah-v5 has no option 'healthy_reward'") && e.contains("ctrl_cost_weight"), "{e}");
        assert!(parse_options("x", Task::Hopper, &[("frame_skip", "0")]).is_err());
        assert!(parse_options("x", Task::Hopper, &[("reset_noise_scale", "nan")]).is_err());
        assert!(parse_options("x", Task::Hopper, &[("terminate_when_unhealthy", "yes")]).is_err());
        let c = parse_options("x", Task::Hopper, &[("healthy_z_range", "0.5,inf"), ("terminate_when_unhealthy", "false")])
            .unwrap();
        assert_eq!(c.healthy_z_range, (0.5, f64::INFINITY));
        assert!(!c.terminate_when_unhealthy);
    }
}
