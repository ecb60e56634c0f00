//! Env names: parsing CLI names, Gymnasium ids and map files into models, and building
//! single envs, vectorized envs and transition tables from them.
//!
//! Syntax: `BASE[:OPTION=VALUE]...` (see [`NAME_SYNTAX`]).

use crate::acrobot::{Acrobot, MountainCarDiscrete};
use crate::blackjack::{self, Blackjack};
use crate::taxi::Taxi;
use crate::classic::{CartPole, MountainCarContinuous, Pendulum};
use crate::dynamics::{Dynamics, Single};
use crate::grid::{self, GridWorld, Rules};
use crate::mujoco::{self, MujocoEnv, Task};
use crate::vector::{VecEnv, VecEnvImpl};
use crate::wrappers::{Discretized, TimeLimit};
use crate::{Env, EnvError, Space, TransitionTable};

/// How env names are written, for `tame env list` and error messages.
pub const NAME_SYNTAX: &str = "\
Names: BASE[:OPTION=VALUE]... (case-insensitive BASE)
  BASE: a name from the list, its Gymnasium id, or map:PATH for a map file
        (PATH without ':'; cells S start, F frozen, H hole, G goal, C cliff, W wall,
        one row per line, '#' lines are comments)
  Options:
    slippery=true|false  FrozenLake-style slipping (FrozenLake-v1: intended move 1/3,
                         each perpendicular move 1/3); frozenlake and maps; on cliffwalking
                         CliffWalkingSlippery-v1's slipping (= cliffwalking-slippery)
    slip=P               probability P in [0, 1] of slipping to one of the two perpendicular
                         moves (P/2 each); frozenlake and maps (maps default to slip=0)
    discrete=K           replace a Box action space by K evenly spaced actions from low
                         to high, 2 <= K <= 1024 (e.g. pendulum:discrete=5)
    limit=N|none         override the time limit (steps per episode)
    rainy=true|false     taxi: a move goes the intended way with 0.8, each side 0.1
                         (Taxi-v4's is_rainy)
    fickle=true|false    taxi: with probability 0.3 (drawn at reset) the passenger changes
                         destination once, after the taxi's first move with them aboard
                         (Taxi-v4's fickle_passenger; no transition table)
    sab=true|false       blackjack: Sutton & Barto's rules (a natural draws against a dealer
                         natural, else wins 1); default true, as Blackjack-v1 is registered
    natural=true|false   blackjack with sab=false: a natural that wins pays 1.5
  Each option at most once; slippery and slip exclude each other. Maps: at most 65536
  cells (e.g. 256x256) and 4 MiB of text.
  Examples: frozenlake:slippery=false, frozenlake-noslip, map:configs/maps/bridge.txt:slip=0.1,
            Pendulum-v1:discrete=9, taxi:rainy=true, blackjack:sab=false:natural=true
  Success on gridworlds: an episode succeeds when it ends in a goal cell G
  (FrozenLake: terminated with reward > 0; CliffWalking: terminated). Env::success and
  VecEnv::success report it.";

/// One built-in env as listed by `tame env list`.
#[derive(Clone, Debug)]
pub struct EnvSpec {
    /// The CLI name.
    pub name: String,
    pub gymnasium_id: Option<&'static str>,
    pub observation_space: Space,
    pub action_space: Space,
    /// Steps after which an episode is truncated; `None` = no limit.
    pub time_limit: Option<u32>,
    pub description: &'static str,
}

/// Built-in bases: (CLI name, Gymnasium id, default time limit, description).
const BUILTINS: &[(&str, Option<&str>, Option<u32>, &str)] = &[
    ("cartpole", Some("CartPole-v1"), Some(500), "balance a pole on a cart; +1 per step"),
    ("pendulum", Some("Pendulum-v1"), Some(200), "swing up a pendulum; torque in [-2, 2]"),
    ("mountaincar", Some("MountainCarContinuous-v0"), Some(999), "drive up a hill; +100 at the goal"),
    ("frozenlake", Some("FrozenLake-v1"), Some(100), "4x4 lake, slippery; reward 1 at the goal"),
    ("frozenlake8x8", Some("FrozenLake8x8-v1"), Some(100), "8x8 lake, slippery; reward 1 at the goal"),
    ("frozenlake-noslip", None, Some(100), "4x4 lake, not slippery (= frozenlake:slippery=false)"),
    ("frozenlake8x8-noslip", None, Some(100), "8x8 lake, not slippery"),
    ("cliffwalking", Some("CliffWalking-v1"), None, "4x12 cliff; -1 per step, -100 for the cliff"),
    // Issue 23: the rest of Gymnasium's classic control and toy text.
    ("acrobot", Some("Acrobot-v1"), Some(500), "swing a two-link arm's tip above the bar; -1 per step"),
    ("mountaincar-discrete", Some("MountainCar-v0"), Some(200), "drive up a hill, actions left/none/right; -1 per step"),
    ("cliffwalking-slippery", Some("CliffWalkingSlippery-v1"), None, "4x12 cliff, slippery (= cliffwalking:slippery=true)"),
    ("taxi", Some("Taxi-v4"), Some(200), "5x5 taxi: pick up, deliver (+20); options :rainy=, :fickle=; Taxi-v3 too"),
    ("blackjack", Some("Blackjack-v1"), None, "blackjack, infinite deck; options :sab= (default true), :natural="),
];

/// Most actions of a discretized Box action space (`discrete=K`): agents keep one output per
/// action.
const MAX_DISCRETE: usize = 1024;

/// Time limit for map files unless `limit=` says otherwise (FrozenLake's).
const MAP_TIME_LIMIT: u32 = 100;

fn known_names() -> String {
    let mut v: Vec<String> = BUILTINS
        .iter()
        .map(|(n, id, _, _)| match id {
            Some(id) => format!("{n} ({id})"),
            None => n.to_string(),
        })
        .collect();
    v.extend(mujoco::TASKS.iter().map(|t| format!("{} ({})", t.name, t.id)));
    v.push("map:PATH".to_string());
    format!("{}; options :slippery=, :slip=, :discrete=K, :limit=, taxi's :rainy= and :fickle=, blackjack's :sab= and :natural=, and the MuJoCo tasks' v5 options (see `tame env list`)", v.join(", "))
}

#[derive(Clone)]
enum Model {
    CartPole,
    Pendulum,
    MountainCar,
    Acrobot,
    MountainCarDiscrete,
    Taxi { rainy: bool, fickle: bool },
    Blackjack(blackjack::Rules),
    Grid(Box<GridWorld>),
    Mujoco(Box<mujoco::Config>),
}

/// `limit=N` (1 to u32::MAX) or `limit=none`, the option every env takes.
fn parse_limit(name: &str, value: &str) -> Result<Option<u32>, EnvError> {
    if value == "none" {
        return Ok(None);
    }
    value.parse().ok().filter(|n| *n >= 1).map(Some).ok_or_else(|| {
        bad_option(name, format!("limit={value}; accepted: an integer from 1 to {} or none", u32::MAX))
    })
}

struct Parsed {
    model: Model,
    limit: Option<u32>,
    discrete: Option<usize>,
}

fn bad_option(name: &str, why: String) -> EnvError {
    EnvError::Other(format!("env name '{name}': {why}"))
}

/// A MuJoCo task's name: `limit=` here, its v5 options in `mujoco::parse_options`.
fn parse_mujoco<'a>(name: &str, task: Task, parts: impl Iterator<Item = &'a str>) -> Result<Parsed, EnvError> {
    let spec = task.spec();
    let mut limit = Some(spec.limit);
    let mut opts: Vec<(&str, &str)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for opt in parts {
        let (key, value) = opt.split_once('=').ok_or_else(|| {
            bad_option(name, format!("option '{opt}' is not KEY=VALUE; accepted keys: {}, limit", spec.options.join(", ")))
        })?;
        if seen.contains(&key) {
            return Err(bad_option(name, format!("option '{key}' is given twice; accepted: each option at most once")));
        }
        seen.push(key);
        if key == "limit" {
            limit = parse_limit(name, value)?;
            continue;
        }
        opts.push((key, value));
    }
    let cfg = mujoco::parse_options(name, task, &opts)?;
    Ok(Parsed { model: Model::Mujoco(Box::new(cfg)), limit, discrete: None })
}

/// Taxi's and Blackjack's names: their boolean options and `limit=`.
fn parse_toy<'a>(name: &str, base: &str, parts: impl Iterator<Item = &'a str>) -> Result<Parsed, EnvError> {
    let taxi = base == "taxi";
    let keys: &[&str] = if taxi { &["rainy", "fickle", "limit"] } else { &["sab", "natural", "limit"] };
    let mut limit = if taxi { Some(200) } else { None };
    let mut flags = [None, None];
    let mut seen: Vec<&str> = Vec::new();
    for opt in parts {
        let (key, value) = opt.split_once('=').ok_or_else(|| {
            bad_option(name, format!("option '{opt}' is not KEY=VALUE; accepted keys: {}", keys.join(", ")))
        })?;
        if seen.contains(&key) {
            return Err(bad_option(name, format!("option '{key}' is given twice; accepted: each option at most once")));
        }
        seen.push(key);
        match keys.iter().position(|k| *k == key) {
            Some(2) => {
                limit = parse_limit(name, value)?
            }
            Some(i) => {
                flags[i] = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad_option(name, format!("{key}={value}; accepted: true, false"))),
                })
            }
            None => {
                return Err(bad_option(name, format!("unknown option '{key}'; accepted: {}", keys.join(", "))))
            }
        }
    }
    let model = if taxi {
        Model::Taxi { rainy: flags[0].unwrap_or(false), fickle: flags[1].unwrap_or(false) }
    } else {
        // Blackjack-v1 registers sab=True, under which Gymnasium ignores `natural`: refused
        // here rather than ignored.
        let sab = flags[0].unwrap_or(true);
        let natural = flags[1].unwrap_or(false);
        if sab && natural {
            return Err(bad_option(
                name,
                "natural=true has no effect under Sutton and Barto's rules (sab=true, the default); accepted: \
                 blackjack:sab=false:natural=true"
                    .to_string(),
            ));
        }
        Model::Blackjack(blackjack::Rules { sab, natural })
    };
    Ok(Parsed { model, limit, discrete: None })
}

fn parse(name: &str) -> Result<Parsed, EnvError> {
    let mut parts = name.split(':');
    let base_raw = parts.next().unwrap_or("");
    let base = base_raw.to_ascii_lowercase();
    if let Some(task) = Task::from_name(&base) {
        return parse_mujoco(name, task, parts);
    }
    // Issue 23: Taxi (v4, and v3's id) and Blackjack take their own options.
    match base.as_str() {
        "taxi" | "taxi-v4" | "taxi-v3" => return parse_toy(name, "taxi", parts),
        "blackjack" | "blackjack-v1" => return parse_toy(name, "blackjack", parts),
        _ => {}
    }
    let builtin = BUILTINS.iter().position(|(n, id, _, _)| {
        *n == base || id.is_some_and(|id| id.to_ascii_lowercase() == base)
    });
    let map_path = if base == "map" {
        match parts.next() {
            Some(p) if !p.is_empty() => Some(p.to_string()),
            _ => return Err(bad_option(name, "map: needs a path, as map:PATH".to_string())),
        }
    } else {
        None
    };
    if builtin.is_none() && map_path.is_none() {
        return Err(EnvError::UnknownEnv { name: name.to_string(), known: known_names() });
    }

    let mut limit = match builtin {
        Some(i) => BUILTINS[i].2,
        None => Some(MAP_TIME_LIMIT),
    };
    let mut success_rate: Option<f64> = None;
    let mut discrete = None;
    // Each option once: a repeated one (slippery=true:slippery=false) would let the last
    // silently win, and slippery and slip both set the slip probability.
    let mut seen: Vec<&str> = Vec::new();
    for opt in parts {
        let (key, value) = opt.split_once('=').ok_or_else(|| {
            bad_option(name, format!("option '{opt}' is not KEY=VALUE; accepted keys: slippery, slip, discrete, limit"))
        })?;
        if seen.contains(&key) {
            return Err(bad_option(name, format!("option '{key}' is given twice; accepted: each option at most once")));
        }
        if let Some(other) = seen.iter().find(|k| matches!((**k, key), ("slip", "slippery") | ("slippery", "slip"))) {
            return Err(bad_option(
                name,
                format!("options '{other}' and '{key}' both set the slip probability; accepted: one of them"),
            ));
        }
        seen.push(key);
        match key {
            "slippery" => {
                success_rate = Some(match value {
                    "true" => 1.0 / 3.0,
                    "false" => 1.0,
                    _ => return Err(bad_option(name, format!("slippery={value}; accepted: true, false"))),
                })
            }
            "slip" => {
                let p: f64 = value.parse().ok().filter(|p: &f64| (0.0..=1.0).contains(p)).ok_or_else(|| {
                    bad_option(name, format!("slip={value}; accepted: a probability in [0, 1]"))
                })?;
                success_rate = Some(1.0 - p);
            }
            "discrete" => {
                let k: usize = value.parse().ok().filter(|k| (2..=MAX_DISCRETE).contains(k)).ok_or_else(|| {
                    bad_option(name, format!("discrete={value}; accepted: an integer K from 2 to {MAX_DISCRETE}"))
                })?;
                discrete = Some(k);
            }
            "limit" => {
                limit = parse_limit(name, value)?;
            }
            _ => {
                return Err(bad_option(
                    name,
                    format!("unknown option '{key}'; accepted: slippery, slip, discrete, limit"),
                ))
            }
        }
    }

    let lake = |text: &str, origin: &str, default_rate: f64| -> Result<Model, EnvError> {
        let rows = grid::parse_map(text, origin)?;
        let rules = Rules::frozenlake(success_rate.unwrap_or(default_rate));
        grid::check_table_size(&rows, &rules, origin)?;
        Ok(Model::Grid(Box::new(GridWorld::new(&rows, &rules))))
    };
    let model = match (map_path, builtin.map(|i| BUILTINS[i].0)) {
        (Some(path), _) => {
            let text = read_map_file(&path)?;
            lake(&text, &path, 1.0)?
        }
        (None, Some("cartpole")) => Model::CartPole,
        (None, Some("pendulum")) => Model::Pendulum,
        (None, Some("mountaincar")) => Model::MountainCar,
        (None, Some("acrobot")) => Model::Acrobot,
        (None, Some("mountaincar-discrete")) => Model::MountainCarDiscrete,
        (None, Some("frozenlake")) => lake(grid::FROZENLAKE_4X4, "frozenlake", 1.0 / 3.0)?,
        (None, Some("frozenlake8x8")) => lake(grid::FROZENLAKE_8X8, "frozenlake8x8", 1.0 / 3.0)?,
        (None, Some("frozenlake-noslip")) => lake(grid::FROZENLAKE_4X4, "frozenlake", 1.0)?,
        (None, Some("frozenlake8x8-noslip")) => lake(grid::FROZENLAKE_8X8, "frozenlake8x8", 1.0)?,
        (None, Some("cliffwalking-slippery")) => {
            let rows = grid::parse_map(grid::CLIFFWALKING, "cliffwalking")?;
            Model::Grid(Box::new(GridWorld::new(&rows, &Rules::cliffwalking(success_rate.unwrap_or(1.0 / 3.0)))))
        }
        (None, _) => {
            let rows = grid::parse_map(grid::CLIFFWALKING, "cliffwalking")?;
            Model::Grid(Box::new(GridWorld::new(&rows, &Rules::cliffwalking(success_rate.unwrap_or(1.0)))))
        }
    };
    let is_grid = matches!(builtin.map(|i| BUILTINS[i].0), Some(n) if n.starts_with("frozenlake") || n.starts_with("cliffwalking"));
    if success_rate.is_some() && !(is_grid || base == "map") {
        return Err(bad_option(name, "slippery= and slip= apply only to frozenlake, cliffwalking and map: envs".to_string()));
    }
    if discrete.is_some() && !matches!(model, Model::Pendulum | Model::MountainCar) {
        return Err(bad_option(
            name,
            "discrete= applies only to Box action spaces (pendulum, mountaincar)".to_string(),
        ));
    }
    Ok(Parsed { model, limit, discrete })
}

/// A map file's text, read up to [`grid::MAX_MAP_BYTES`] (+1 to tell a longer one): a size
/// from the metadata would miss pipes and devices such as /dev/zero.
fn read_map_file(path: &str) -> Result<String, EnvError> {
    use std::io::Read as _;
    let bad = |why: String| EnvError::BadMap { origin: path.to_string(), why };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read the file: {e}")))?;
    let mut bytes = Vec::new();
    file.take(grid::MAX_MAP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > grid::MAX_MAP_BYTES {
        return Err(bad(format!(
            "the file has more than {} bytes; accepted: map files of at most {} bytes (maps hold at most {} cells)",
            grid::MAX_MAP_BYTES,
            grid::MAX_MAP_BYTES,
            grid::MAX_CELLS
        )));
    }
    String::from_utf8(bytes).map_err(|e| bad(format!("the file is not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))
}

/// Something generic over the model type, so that each model gets its own monomorphised code.
trait WithDynamics {
    type Out;
    fn with<D: Dynamics>(self, d: D, limit: Option<u32>) -> Self::Out;
    /// MuJoCo tasks keep their state in MuJoCo's `MjData`, outside [`Dynamics`].
    fn with_mujoco(self, cfg: mujoco::Config, limit: Option<u32>) -> Self::Out;
}

fn dispatch<W: WithDynamics>(p: Parsed, w: W) -> W::Out {
    match (p.model, p.discrete) {
        (Model::CartPole, _) => w.with(CartPole, p.limit),
        (Model::Pendulum, None) => w.with(Pendulum, p.limit),
        (Model::Pendulum, Some(k)) => w.with(Discretized::new(Pendulum, k), p.limit),
        (Model::MountainCar, None) => w.with(MountainCarContinuous, p.limit),
        (Model::MountainCar, Some(k)) => w.with(Discretized::new(MountainCarContinuous, k), p.limit),
        (Model::Acrobot, _) => w.with(Acrobot, p.limit),
        (Model::MountainCarDiscrete, _) => w.with(MountainCarDiscrete, p.limit),
        (Model::Taxi { rainy, fickle }, _) => w.with(Taxi::new(rainy, fickle), p.limit),
        (Model::Blackjack(rules), _) => w.with(Blackjack { rules }, p.limit),
        (Model::Grid(g), _) => w.with(*g, p.limit),
        (Model::Mujoco(cfg), _) => w.with_mujoco(*cfg, p.limit),
    }
}

struct MakeSingle;
impl WithDynamics for MakeSingle {
    type Out = Result<Box<dyn Env>, EnvError>;
    fn with<D: Dynamics>(self, d: D, limit: Option<u32>) -> Self::Out {
        Ok(match limit {
            Some(l) => Box::new(TimeLimit::new(Single::new(d), l)),
            None => Box::new(Single::new(d)),
        })
    }
    fn with_mujoco(self, cfg: mujoco::Config, limit: Option<u32>) -> Self::Out {
        let env = MujocoEnv::new(cfg)?;
        Ok(match limit {
            Some(l) => Box::new(TimeLimit::new(env, l)),
            None => Box::new(env),
        })
    }
}

struct MakeVec {
    num_envs: usize,
    seed: u64,
}
impl WithDynamics for MakeVec {
    type Out = Result<Box<dyn VecEnv>, EnvError>;
    fn with<D: Dynamics>(self, d: D, limit: Option<u32>) -> Self::Out {
        Ok(Box::new(VecEnvImpl::new(d, limit, self.num_envs, self.seed)))
    }
    fn with_mujoco(self, cfg: mujoco::Config, _limit: Option<u32>) -> Self::Out {
        Err(EnvError::Other(format!(
            "{} has a {}-dimensional action space, and vectorized envs take one action value per \
             copy; accepted: single envs (make), one per thread",
            cfg.task.spec().id,
            MujocoEnv::new(cfg.clone())?.action_space().dim()
        )))
    }
}

struct Spaces;
impl WithDynamics for Spaces {
    type Out = Result<(Space, Space), EnvError>;
    fn with<D: Dynamics>(self, d: D, _limit: Option<u32>) -> Self::Out {
        Ok((d.observation_space(), d.action_space()))
    }
    fn with_mujoco(self, cfg: mujoco::Config, _limit: Option<u32>) -> Self::Out {
        mujoco::spaces(&cfg)
    }
}

/// The env called `name`, with its time limit applied (Gymnasium's `gym.make`).
pub fn make(name: &str) -> Result<Box<dyn Env>, EnvError> {
    dispatch(parse(name)?, MakeSingle)
}

/// `num_envs` copies of the env called `name`, with auto-reset, reset with `seed`.
pub fn make_vec(name: &str, num_envs: usize, seed: u64) -> Result<Box<dyn VecEnv>, EnvError> {
    if num_envs == 0 {
        return Err(EnvError::Other("num_envs is 0; a vectorized env needs at least 1 copy".to_string()));
    }
    dispatch(parse(name)?, MakeVec { num_envs, seed })
}

/// The exact transition table of a gridworld; an error for envs without one.
pub fn transition_table(name: &str) -> Result<TransitionTable, EnvError> {
    match parse(name)?.model {
        Model::Grid(g) => Ok(g.table().clone()),
        Model::Taxi { rainy, fickle } => Taxi::new(rainy, fickle).table().cloned().ok_or_else(|| {
            EnvError::Other(format!(
                "env '{name}' has no transition table: a fickle passenger changes destination at most once \
                 per episode, which the 500 states do not record; accepted: taxi, taxi:rainy=true"
            ))
        }),
        Model::Blackjack(rules) => Ok(blackjack::blackjack_table(rules)),
        _ => Err(EnvError::Other(format!(
            "env '{name}' has no transition table; tabular envs: frozenlake, frozenlake8x8, \
             frozenlake-noslip, frozenlake8x8-noslip, cliffwalking, cliffwalking-slippery, taxi, \
             taxi:rainy=true, blackjack, map:PATH"
        ))),
    }
}

/// The map of a gridworld (cells and action moves); an error for other envs.
pub fn grid_layout(name: &str) -> Result<crate::GridLayout, EnvError> {
    match parse(name)?.model {
        Model::Grid(g) => Ok(g.layout()),
        _ => Err(EnvError::Other(format!("env '{name}' is not a gridworld; it has no map"))),
    }
}

/// The time limit of the env called `name` (`None`: episodes only end by termination).
pub fn time_limit(name: &str) -> Result<Option<u32>, EnvError> {
    Ok(parse(name)?.limit)
}

/// Spaces and time limit of the env called `name`.
pub fn spec(name: &str) -> Result<EnvSpec, EnvError> {
    let p = parse(name)?;
    let limit = p.limit;
    let (observation_space, action_space) = dispatch(p, Spaces)?;
    let builtin = BUILTINS.iter().find(|b| b.0 == name || b.1 == Some(name));
    let task = mujoco::TASKS.iter().find(|t| t.name == name || t.id == name);
    Ok(EnvSpec {
        name: name.to_string(),
        gymnasium_id: builtin.and_then(|b| b.1).or(task.map(|t| t.id)),
        observation_space,
        action_space,
        time_limit: limit,
        description: builtin.map(|b| b.3).or(task.map(|t| t.description)).unwrap_or(""),
    })
}

/// Every built-in env, in listing order; MuJoCo tasks whose model cannot be loaded are left
/// out (making one gives the reason and how to install the models).
pub fn builtin_specs() -> Vec<EnvSpec> {
    let classic = BUILTINS.iter().filter_map(|b| spec(b.0).ok());
    classic.chain(mujoco::TASKS.iter().filter_map(|t| spec(t.name).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_agree() {
        for (cli, id) in [("cartpole", "CartPole-v1"), ("pendulum", "Pendulum-v1"), ("frozenlake", "FrozenLake-v1")] {
            assert_eq!(spec(cli).unwrap().time_limit, spec(id).unwrap().time_limit);
            assert_eq!(spec(cli).unwrap().action_space, spec(id).unwrap().action_space);
        }
        assert_eq!(transition_table("frozenlake-noslip").unwrap(), transition_table("frozenlake:slippery=false").unwrap());
        assert_ne!(transition_table("frozenlake").unwrap(), transition_table("frozenlake-noslip").unwrap());
    }

    #[test]
    fn bad_names_are_errors() {
        let e = make("cartpool").err().unwrap().to_string();
        assert!(e.contains("cartpole") && e.contains("Pendulum-v1"), "{e}");
        assert!(make("pendulum:discrete=1").is_err());
        assert!(make("cartpole:discrete=3").is_err());
        assert!(make("cartpole:slip=0.1").is_err());
        assert!(make("frozenlake:slip=1.5").is_err());
        assert!(make("frozenlake:color=red").is_err());
        assert!(make("map:").is_err());
        assert!(transition_table("pendulum").is_err());
        assert!(make_vec("cartpole", 0, 0).is_err());
    }

    #[test]
    fn the_syntax_help_lists_options_that_parse() {
        // Every example of NAME_SYNTAX builds (map paths are relative to the repository).
        let examples = NAME_SYNTAX.split("Examples:").nth(1).unwrap().split("Success").next().unwrap();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../");
        for ex in examples.split(',').map(str::trim) {
            let name = ex.replace("map:", &format!("map:{root}"));
            assert!(make(&name).is_ok(), "{ex}: {:?}", make(&name).err());
        }
        // And every option it lists is one some env accepts.
        for opt in ["slippery=", "slip=", "discrete=", "limit=", "rainy=", "fickle=", "sab=", "natural="] {
            assert!(NAME_SYNTAX.contains(&format!("    {opt}")), "{opt}");
        }
        for name in ["cliffwalking:slippery=true", "taxi:fickle=true", "blackjack:sab=true", "taxi:rainy=false:limit=50"] {
            assert!(make(name).is_ok(), "{name}: {:?}", make(name).err());
        }
    }

    #[test]
    fn discretized_pendulum_spans_the_torque_range() {
        assert_eq!(spec("pendulum:discrete=5").unwrap().action_space, Space::Discrete(5));
        let d = Discretized::new(Pendulum, 5);
        let mut s1 = d.parse_state(&[0.5, 0.0]).unwrap();
        let mut s2 = Pendulum.parse_state(&[0.5, 0.0]).unwrap();
        let mut rng = crate::dynamics::rng_for(0, 0);
        let r1 = d.step(&mut s1, 4, &mut rng).0;
        let r2 = Pendulum.step(&mut s2, 2.0, &mut rng).0;
        assert_eq!(r1, r2);
        assert_eq!(Pendulum.state_vec(&s1), Pendulum.state_vec(&s2));
    }
}
