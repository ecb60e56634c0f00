//! Parity with Gymnasium: replays recorded traces and compares transition tables.
//!
//! File format: `tests/fixtures/gymnasium/README.md`. A trace is replayed as it was recorded:
//! `make(id)`, `reset(Some(0))`, `set_state(init_state)`, then every action in turn.
//! Traces marked `"exact": true` (the MuJoCo tasks) are held to bit parity: each observation
//! equals Gymnasium's rounded to float32, and rewards and `info` terms are the same f64 bits.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::{make, transition_table, Action, EnvError};

/// Largest accepted absolute deviation of an observation component.
pub const OBS_TOL: f64 = 1e-5;
/// Largest accepted relative deviation of a reward (absolute where the reference is 0).
pub const REWARD_REL_TOL: f64 = 1e-5;
/// Largest accepted deviation of a transition probability (sums of thirds round differently
/// by at most a few ulps; tables are otherwise compared exactly).
pub const PROB_TOL: f64 = 1e-12;

/// What replaying one entry of a fixture file found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceReport {
    pub name: String,
    pub env: String,
    /// Steps replayed (traces) or `(state, action)` pairs compared (tables).
    pub steps: usize,
    pub max_obs_dev: f64,
    pub max_reward_rel_dev: f64,
    /// First step whose `terminated` / `truncated` flags differ from the reference.
    pub first_flag_mismatch: Option<usize>,
    /// Tables only: the largest probability deviation after merging identical outcomes.
    pub max_prob_dev: Option<f64>,
    /// Bit parity required (`"exact": true`): every deviation must be 0.
    pub exact: bool,
    /// Exact traces: the largest absolute deviation of an `info` term.
    pub max_info_dev: f64,
    /// Exact traces: the first step where anything differs from the reference.
    pub first_mismatch: Option<usize>,
    /// Frequency checks (Blackjack): the largest deviation of an observed outcome count from
    /// the table's expectation, in standard deviations.
    pub max_z: Option<f64>,
    /// Something that stopped the comparison (bad entry, env error, differing outcomes).
    pub error: Option<String>,
    pub ok: bool,
}

impl TraceReport {
    fn new(name: &str, env: &str) -> Self {
        TraceReport {
            name: name.to_string(),
            env: env.to_string(),
            steps: 0,
            max_obs_dev: 0.0,
            max_reward_rel_dev: 0.0,
            first_flag_mismatch: None,
            max_prob_dev: None,
            exact: false,
            max_info_dev: 0.0,
            first_mismatch: None,
            max_z: None,
            error: None,
            ok: false,
        }
    }
    fn finish(mut self) -> Self {
        let (obs_tol, reward_tol) = if self.exact { (0.0, 0.0) } else { (OBS_TOL, REWARD_REL_TOL) };
        self.ok = self.error.is_none()
            && self.first_flag_mismatch.is_none()
            && self.max_obs_dev <= obs_tol
            && self.max_reward_rel_dev <= reward_tol
            && self.max_info_dev == 0.0
            && self.first_mismatch.is_none()
            && self.max_prob_dev.is_none_or(|d| d <= PROB_TOL);
        self
    }
}

/// Replays every entry of a fixture file.
pub fn check_file(path: &Path) -> Result<Vec<TraceReport>, EnvError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EnvError::Other(format!("cannot read {}: {e}", path.display())))?;
    check_json(&text).map_err(|e| EnvError::Other(format!("{}: {e}", path.display())))
}

/// Replays every entry of a fixture file's text (an object of traces or tables).
pub fn check_json(text: &str) -> Result<Vec<TraceReport>, EnvError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| EnvError::Other(format!("not valid JSON: {e}")))?;
    let entries = root.as_object().ok_or_else(|| {
        EnvError::Other("expected a JSON object mapping trace names to traces".to_string())
    })?;
    Ok(entries
        .iter()
        .map(|(name, entry)| {
            let env = entry.get("env").and_then(Value::as_str).unwrap_or("?");
            let mut report = TraceReport::new(name, env);
            let result = if entry.get("P").is_some() {
                compare_table(entry, &mut report)
            } else if entry.get("starts").is_some() {
                compare_frequencies(entry, &mut report)
            } else {
                replay_trace(entry, &mut report)
            };
            if let Err(e) = result {
                report.error = Some(e);
            }
            report.finish()
        })
        .collect())
}

fn replay_trace(entry: &Value, report: &mut TraceReport) -> Result<(), String> {
    let init: Vec<f64> = entry
        .get("init_state")
        .and_then(Value::as_array)
        .ok_or("missing init_state")?
        .iter()
        .map(|x| x.as_f64().ok_or("init_state holds a non-number"))
        .collect::<Result<_, _>>()?;
    let steps = entry.get("steps").and_then(Value::as_array).ok_or("missing steps")?;
    report.exact = entry.get("exact").and_then(Value::as_bool).unwrap_or(false);
    let name = trace_env_name(entry)?;
    let mut env = make(&name).map_err(|e| e.to_string())?;
    let mut obs = vec![0.0f32; env.observation_space().dim()];
    env.reset(Some(0), &mut obs);
    env.set_state(&init, &mut obs).map_err(|e| e.to_string())?;
    // Stochastic envs draw their noise from NumPy there and from tame's generator here, so
    // their traces are checked against the exact table: every recorded outcome must be one
    // the table gives a positive probability, and the time limit must cut where it did.
    let stochastic = entry.get("stochastic").and_then(Value::as_bool).unwrap_or(false);
    let table = if stochastic { Some(transition_table(&name).map_err(|e| e.to_string())?) } else { None };
    let limit = crate::time_limit(&name).map_err(|e| e.to_string())?;
    let mut episode_steps = 0u32;
    let mut action_buf = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        if let Some(state) = step.get("reset") {
            let state: Vec<f64> = state
                .as_array()
                .ok_or(format!("step {k}: reset is not a list"))?
                .iter()
                .map(|x| x.as_f64().ok_or(format!("step {k}: reset holds a non-number")))
                .collect::<Result<_, _>>()?;
            env.reset(None, &mut obs);
            env.set_state(&state, &mut obs).map_err(|e| format!("step {k}: {e}"))?;
            episode_steps = 0;
            continue;
        }
        if let Some(table) = &table {
            check_outcome(table, step, k, limit, &mut episode_steps, report)?;
            report.steps += 1;
            continue;
        }
        let field = |key: &str| step.get(key).ok_or(format!("step {k}: missing {key}"));
        let action = match field("action")? {
            Value::Array(v) => {
                action_buf.clear();
                for x in v {
                    action_buf.push(x.as_f64().ok_or(format!("step {k}: non-number action"))?);
                }
                Action::Continuous(&action_buf)
            }
            v => Action::Discrete(
                v.as_u64().ok_or(format!("step {k}: action {v} is not an index or a list"))? as usize,
            ),
        };
        let r = env.step(action, &mut obs).map_err(|e| format!("step {k}: {e}"))?;
        let ref_obs = field("obs")?.as_array().ok_or(format!("step {k}: obs is not a list"))?;
        if ref_obs.len() != obs.len() {
            return Err(format!("step {k}: obs has {} components, reference {}", obs.len(), ref_obs.len()));
        }
        let mut differs = false;
        for (o, x) in obs.iter().zip(ref_obs) {
            let x = x.as_f64().ok_or(format!("step {k}: obs holds a non-number"))?;
            // Exact traces hold Gymnasium's float64 observation rounded to float32.
            let x = if report.exact { x as f32 as f64 } else { x };
            report.max_obs_dev = report.max_obs_dev.max((*o as f64 - x).abs());
            differs |= *o as f64 != x;
        }
        let ref_r = field("reward")?.as_f64().ok_or(format!("step {k}: reward is not a number"))?;
        let dev = (r.reward - ref_r).abs() / if ref_r == 0.0 { 1.0 } else { ref_r.abs() };
        report.max_reward_rel_dev = report.max_reward_rel_dev.max(dev);
        differs |= r.reward.to_bits() != ref_r.to_bits();
        if let Some(info) = step.get("info").and_then(Value::as_object) {
            let ours = env.step_info();
            for (key, x) in info {
                let x = x.as_f64().ok_or(format!("step {k}: info {key} is not a number"))?;
                let (_, mine) = ours
                    .iter()
                    .find(|(name, _)| name == key)
                    .ok_or(format!("step {k}: {} has no info term {key}", report.env))?;
                report.max_info_dev = report.max_info_dev.max((mine - x).abs());
                differs |= mine.to_bits() != x.to_bits();
            }
        }
        if report.exact && differs && report.first_mismatch.is_none() {
            report.first_mismatch = Some(k);
        }
        let flag = |key: &str| field(key)?.as_bool().ok_or(format!("step {k}: {key} is not a bool"));
        if report.first_flag_mismatch.is_none()
            && (flag("terminated")? != r.terminated || flag("truncated")? != r.truncated)
        {
            report.first_flag_mismatch = Some(k);
        }
        report.steps += 1;
    }
    Ok(())
}

/// Largest accepted deviation of an outcome count from its expectation n·p: Z_MAX standard
/// deviations plus SLACK counts, so that rare outcomes seen once in few visits (where the
/// normal approximation fails) pass, while a wrong probability on common outcomes does not.
pub const Z_MAX: f64 = 5.0;
const SLACK: f64 = 3.0;

/// Checks a Blackjack trace's outcome frequencies, and its start frequencies, against the
/// table computed from the card probabilities.
fn compare_frequencies(entry: &Value, report: &mut TraceReport) -> Result<(), String> {
    let kwargs = entry.get("kwargs").and_then(Value::as_object);
    let flag = |k: &str, default: bool| kwargs.and_then(|m| m.get(k)).and_then(Value::as_bool).unwrap_or(default);
    let (sab, natural) = (flag("sab", true), flag("natural", false));
    let name = if sab { "blackjack".to_string() } else { format!("blackjack:sab=false:natural={natural}") };
    report.env = name.clone();
    let table = transition_table(&name).map_err(|e| e.to_string())?;
    let ints = |v: &Value, what: &str| -> Result<Vec<f64>, String> {
        v.as_array().ok_or(format!("{what} is not a list"))?.iter().map(|x| {
            x.as_f64().or_else(|| x.as_bool().map(|b| b as u8 as f64)).ok_or(format!("{what} holds {x}"))
        }).collect()
    };
    let state = |sum: f64, d: f64, ace: f64, nat: bool| {
        crate::blackjack::state_of_tuple(sum as usize, d as usize, ace as usize, nat)
            .ok_or(format!("observation ({sum}, {d}, {ace}) is outside Blackjack's tuple space"))
    };
    let mut max_z: f64 = 0.0;
    let mut check = |counts: &BTreeMap<(usize, u64), f64>, n: f64, probs: &[(usize, u64, f64)], what: String| -> Result<(), String> {
        for (key, k) in counts {
            if !probs.iter().any(|(s, r, p)| (*s, *r) == *key && *p > 0.0) {
                return Err(format!("{what}: outcome {key:?} seen {k} times has probability 0 in the table"));
            }
        }
        for &(s, r, p) in probs {
            let k = counts.get(&(s, r)).copied().unwrap_or(0.0);
            let sd = (n * p * (1.0 - p)).sqrt();
            let dev = (k - n * p).abs();
            if dev > Z_MAX * sd + SLACK {
                return Err(format!("{what}: outcome (state {s}, reward {}) seen {k} times in {n}, expected {:.2}", f64::from_bits(r), n * p));
            }
            if sd > 0.0 {
                max_z = max_z.max((dev - SLACK).max(0.0) / sd);
            }
        }
        Ok(())
    };
    // Starts: a two-card 21 is a natural.
    let mut start_counts: BTreeMap<(usize, u64), f64> = BTreeMap::new();
    let starts = entry.get("starts").and_then(Value::as_array).ok_or("missing starts")?;
    for st in starts {
        let o = ints(st, "a start")?;
        let s = state(o[0], o[1], o[2], o[0] == 21.0 && o[2] == 1.0)?;
        *start_counts.entry((s, 0)).or_insert(0.0) += 1.0;
    }
    let initial: Vec<_> = table.initial.iter().map(|&(s, p)| (s, 0u64, p)).collect();
    check(&start_counts, starts.len() as f64, &initial, "start states".to_string())?;
    // Steps: [sum, dealer, ace, action, next sum, next dealer, next ace, reward, terminated].
    let mut visits: BTreeMap<(usize, usize), (f64, BTreeMap<(usize, u64), f64>)> = BTreeMap::new();
    let mut first = true;
    for (k, row) in entry.get("steps").and_then(Value::as_array).ok_or("missing steps")?.iter().enumerate() {
        let r = ints(row, &format!("step {k}"))?;
        if r.len() != 9 {
            return Err(format!("step {k}: expected 9 fields, got {}", r.len()));
        }
        let nat = first && r[0] == 21.0 && r[2] == 1.0;
        let s = state(r[0], r[1], r[2], nat)?;
        let a = r[3] as usize;
        let next = if a == 0 { s } else { state(r[4], r[5], r[6], false)? };
        let terminated = r[8] != 0.0;
        let expected_term = table.p[s].get(a).and_then(|os| os.iter().find(|o| o.next_state == next && o.reward == r[7])).map(|o| o.terminated);
        if expected_term.is_some_and(|t| t != terminated) {
            report.first_flag_mismatch.get_or_insert(k);
        }
        let v = visits.entry((s, a)).or_default();
        v.0 += 1.0;
        *v.1.entry((next, (r[7] + 0.0).to_bits())).or_insert(0.0) += 1.0;
        first = terminated;
        report.steps += 1;
    }
    for ((s, a), (n, counts)) in &visits {
        let outcomes = table.p[*s].get(*a).ok_or(format!("action {a} is not Blackjack's (0 stick, 1 hit)"))?;
        let probs: Vec<_> = outcomes.iter().map(|o| (o.next_state, (o.reward + 0.0).to_bits(), o.prob)).collect();
        check(counts, *n, &probs, format!("state {s}, action {a}"))?;
    }
    report.max_z = Some(max_z);
    Ok(())
}

/// Checks one recorded step of a stochastic trace against the exact table.
fn check_outcome(
    table: &crate::TransitionTable,
    step: &Value,
    k: usize,
    limit: Option<u32>,
    episode_steps: &mut u32,
    report: &mut TraceReport,
) -> Result<(), String> {
    let index = |key: &str| -> Result<usize, String> {
        let v = step.get(key).ok_or(format!("step {k}: missing {key}"))?;
        let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
        v.as_u64().map(|x| x as usize).ok_or(format!("step {k}: {key} is not a state index"))
    };
    let (s, a, next) = (index("state")?, index("action")?, index("obs")?);
    let reward = step.get("reward").and_then(Value::as_f64).ok_or(format!("step {k}: missing reward"))?;
    let flag = |key: &str| step.get(key).and_then(Value::as_bool).ok_or(format!("step {k}: missing {key}"));
    let (terminated, truncated) = (flag("terminated")?, flag("truncated")?);
    let outcomes = table.p.get(s).and_then(|row| row.get(a)).ok_or(format!("step {k}: no (state {s}, action {a}) in the table"))?;
    if !outcomes.iter().any(|o| o.prob > 0.0 && o.next_state == next && o.reward == reward && o.terminated == terminated) {
        return Err(format!("step {k}: outcome ({next}, {reward}, {terminated}) of state {s}, action {a} has probability 0 in the table: {outcomes:?}"));
    }
    *episode_steps += 1;
    let cut = !terminated && limit.is_some_and(|l| *episode_steps >= l);
    if report.first_flag_mismatch.is_none() && cut != truncated {
        report.first_flag_mismatch = Some(k);
    }
    Ok(())
}

/// Our name for a trace entry: its Gymnasium id, with its kwargs as options.
fn trace_env_name(entry: &Value) -> Result<String, String> {
    let id = entry.get("env").and_then(Value::as_str).ok_or("missing env")?;
    let toy_text = ["FrozenLake-v1", "CliffWalking-v1", "CliffWalkingSlippery-v1", "Taxi-v3", "Taxi-v4"];
    match entry.get("kwargs").and_then(Value::as_object) {
        Some(m) if !m.is_empty() && toy_text.contains(&id) => table_env_name(entry),
        _ => Ok(id.to_string()),
    }
}

/// Our name for a table entry's Gymnasium id and kwargs.
fn table_env_name(entry: &Value) -> Result<String, String> {
    let id = entry.get("env").and_then(Value::as_str).ok_or("missing env")?;
    let kwargs = entry.get("kwargs").and_then(Value::as_object);
    let get = |k: &str| kwargs.and_then(|m| m.get(k));
    let flag = |k: &str| get(k).and_then(Value::as_bool).unwrap_or(false);
    match id {
        "Taxi-v3" | "Taxi-v4" => Ok(format!("taxi:rainy={}:fickle={}", flag("is_rainy"), flag("fickle_passenger"))),
        "CliffWalkingSlippery-v1" => Ok("cliffwalking:slippery=true".to_string()),
        "FrozenLake-v1" => {
            let base = match get("map_name").and_then(Value::as_str).unwrap_or("4x4") {
                "4x4" => "frozenlake",
                "8x8" => "frozenlake8x8",
                other => return Err(format!("map_name {other} is not a built-in map")),
            };
            let slippery = get("is_slippery").and_then(Value::as_bool).unwrap_or(true);
            Ok(format!("{base}:slippery={slippery}"))
        }
        "CliffWalking-v1" => Ok(format!("cliffwalking:slippery={}", flag("is_slippery"))),
        other => Err(format!("no tabular env for {other}")),
    }
}

type Key = (usize, u64, bool);

fn compare_table(entry: &Value, report: &mut TraceReport) -> Result<(), String> {
    let name = table_env_name(entry)?;
    let ours = transition_table(&name).map_err(|e| e.to_string())?;
    let p = entry.get("P").and_then(Value::as_object).ok_or("P is not an object")?;
    if p.len() != ours.n_states {
        return Err(format!("reference has {} states, {name} has {}", p.len(), ours.n_states));
    }
    let mut max_dev: f64 = 0.0;
    for (s, actions) in p {
        let s: usize = s.parse().map_err(|_| format!("state key {s} is not an index"))?;
        let actions = actions.as_object().ok_or(format!("P[{s}] is not an object"))?;
        if s >= ours.n_states || actions.len() != ours.n_actions {
            return Err(format!("P[{s}] does not match {name}'s {} states x {} actions", ours.n_states, ours.n_actions));
        }
        for (a, outcomes) in actions {
            let a: usize = a.parse().map_err(|_| format!("action key {a} is not an index"))?;
            let mut reference: BTreeMap<Key, f64> = BTreeMap::new();
            for o in outcomes.as_array().ok_or(format!("P[{s}][{a}] is not a list"))? {
                let o = o.as_array().filter(|o| o.len() == 4).ok_or(format!("P[{s}][{a}]: bad outcome {o}"))?;
                let (prob, next, reward, term) = (o[0].as_f64(), o[1].as_u64(), o[2].as_f64(), o[3].as_bool());
                let (Some(prob), Some(next), Some(reward), Some(term)) = (prob, next, reward, term) else {
                    return Err(format!("P[{s}][{a}]: bad outcome {o:?}"));
                };
                *reference.entry((next as usize, reward.to_bits(), term)).or_insert(0.0) += prob;
            }
            let mine: BTreeMap<Key, f64> = ours
                .p
                .get(s)
                .and_then(|row| row.get(a))
                .ok_or(format!("{name} has no action {a} in state {s}"))?
                .iter()
                .map(|o| ((o.next_state, o.reward.to_bits(), o.terminated), o.prob))
                .collect();
            if reference.keys().ne(mine.keys()) {
                return Err(format!("P[{s}][{a}]: outcomes differ: reference {reference:?}, ours {mine:?}"));
            }
            for (k, q) in &reference {
                max_dev = max_dev.max((q - mine[k]).abs());
            }
            report.steps += 1;
        }
    }
    if let Some(initial) = entry.get("initial").and_then(Value::as_array) {
        let mut reference = vec![0.0; ours.n_states];
        for pair in initial {
            let (s, q) = (pair.get(0).and_then(Value::as_u64), pair.get(1).and_then(Value::as_f64));
            let (Some(s), Some(q)) = (s, q) else { return Err(format!("initial: bad entry {pair}")) };
            *reference.get_mut(s as usize).ok_or(format!("initial: state {s} out of range"))? += q;
        }
        let mut mine = vec![0.0; ours.n_states];
        for &(s, q) in &ours.initial {
            mine[s] += q;
        }
        for (s, (q, m)) in reference.iter().zip(&mine).enumerate() {
            if (*q > 0.0) != (*m > 0.0) {
                return Err(format!("initial state {s}: reference probability {q}, ours {m}"));
            }
            max_dev = max_dev.max((q - m).abs());
        }
    }
    report.max_prob_dev = Some(max_dev);
    Ok(())
}
