//! Taxi-v4 (Dietterich's taxi; Gymnasium 1.4.0 registers v4, and tame also accepts Taxi-v3),
//! with Gymnasium's `is_rainy` (`taxi:rainy=true`) and `fickle_passenger`
//! (`taxi:fickle=true`) options.
//!
//! The env samples its own exact table, built here from the map, so that the solvers and the
//! agents see one model. A fickle passenger changes destination at most once per episode, so
//! that option is not Markov in the 500 states: it has no table.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::dynamics::Dynamics;
use crate::render::{Frame, RenderCtx};
use crate::scenes;
use crate::{Action, EnvError, Outcome, Space, TransitionTable};

/// The map: `:` between two cells lets the taxi cross, `|` is a wall.
pub(crate) const TAXI_MAP: [&str; 7] =
    ["+---------+", "|R: | : :G|", "| : | : : |", "| : : : : |", "| | : | : |", "|Y| : |B: |", "+---------+"];
/// Pick-up and drop-off cells (row, col): Red, Green, Yellow, Blue.
pub(crate) const TAXI_LOCS: [(usize, usize); 4] = [(0, 0), (0, 4), (4, 0), (4, 3)];
const N_STATES: usize = 500;
const N_ACTIONS: usize = 6;
const RAINY_PROBABILITY: f64 = 0.8;
const FICKLE_PROBABILITY: f64 = 0.3;

pub(crate) fn encode(row: usize, col: usize, pass: usize, dest: usize) -> usize {
    ((row * 5 + col) * 5 + pass) * 4 + dest
}

pub(crate) fn decode(s: usize) -> (usize, usize, usize, usize) {
    (s / 100, s / 20 % 5, s / 4 % 5, s % 4)
}

fn map_char(row: usize, i: usize) -> u8 {
    TAXI_MAP[1 + row].as_bytes()[i]
}

/// Whether the taxi can go east (`dc = 1`) or west (`dc = -1`) from `col` in `row`.
fn open(row: usize, col: usize, dc: i64) -> bool {
    let i = if dc > 0 { 2 * col + 2 } else { 2 * col };
    map_char(row, i) == b':'
}

/// Where a lateral (slipped) move lands: the grid's edge clamps it, a wall cancels it.
fn lateral(row: usize, col: usize, (dr, dc): (i64, i64)) -> (usize, usize) {
    let r = (row as i64 + dr).clamp(0, 4) as usize;
    let c = (col as i64 + dc).clamp(0, 4) as usize;
    let blocked = (dc == 1 && map_char(r, 2 * c) != b':') || (dc == -1 && map_char(r, 2 * c + 2) != b':');
    if blocked {
        (row, col)
    } else {
        (r, c)
    }
}

/// The outcome of pick-up (4) or drop-off (5): (passenger, reward, terminated).
fn pickup_dropoff(a: usize, row: usize, col: usize, pass: usize, dest: usize) -> (usize, f64, bool) {
    let here = (row, col);
    if a == 4 {
        return if pass < 4 && TAXI_LOCS[pass] == here { (4, -1.0, false) } else { (pass, -10.0, false) };
    }
    if pass == 4 && TAXI_LOCS[dest] == here {
        (dest, 20.0, true)
    } else if let (4, Some(i)) = (pass, TAXI_LOCS.iter().position(|&l| l == here)) {
        (i, -1.0, false)
    } else {
        (pass, -10.0, false)
    }
}

/// Taxi's exact table, dry or rainy (the intended move with probability 0.8, each lateral
/// one with 0.1; pick-up and drop-off stay deterministic).
pub(crate) fn taxi_table(rainy: bool) -> TransitionTable {
    let lateral_p = (1.0 - RAINY_PROBABILITY) / 2.0;
    // Each move's (intended, left, right) directions, as (d_row, d_col).
    let moves: [[(i64, i64); 3]; 4] =
        [[(1, 0), (0, 1), (0, -1)], [(-1, 0), (0, -1), (0, 1)], [(0, 1), (-1, 0), (1, 0)], [(0, -1), (1, 0), (-1, 0)]];
    let mut p = Vec::with_capacity(N_STATES);
    let mut initial = Vec::new();
    for s in 0..N_STATES {
        let (row, col, pass, dest) = decode(s);
        if pass < 4 && pass != dest {
            initial.push(s);
        }
        let mut per_action = Vec::with_capacity(N_ACTIONS);
        for a in 0..N_ACTIONS {
            let o = |prob, next, reward, terminated| Outcome { prob, next_state: next, reward, terminated };
            let outs = if a >= 4 {
                let (pass2, r, t) = pickup_dropoff(a, row, col, pass, dest);
                vec![o(1.0, encode(row, col, pass2, dest), r, t)]
            } else {
                let possible = match a {
                    0 => row < 4,
                    1 => row > 0,
                    2 => open(row, col, 1),
                    _ => open(row, col, -1),
                };
                let (dr, dc) = moves[a][0];
                let intended = if possible {
                    ((row as i64 + dr).clamp(0, 4) as usize, (col as i64 + dc).clamp(0, 4) as usize)
                } else {
                    (row, col)
                };
                let at = |(r, c): (usize, usize)| encode(r, c, pass, dest);
                if !rainy {
                    vec![o(1.0, at(intended), -1.0, false)]
                } else {
                    let (left, right) = if possible {
                        (lateral(row, col, moves[a][1]), lateral(row, col, moves[a][2]))
                    } else {
                        ((row, col), (row, col))
                    };
                    merge(vec![
                        o(RAINY_PROBABILITY, at(intended), -1.0, false),
                        o(lateral_p, at(left), -1.0, false),
                        o(lateral_p, at(right), -1.0, false),
                    ])
                }
            };
            per_action.push(outs);
        }
        p.push(per_action);
    }
    let q = 1.0 / initial.len() as f64;
    TransitionTable { n_states: N_STATES, n_actions: N_ACTIONS, p, initial: initial.into_iter().map(|s| (s, q)).collect() }
}

/// Sums identical outcomes, keeping the order of first appearance.
fn merge(raw: Vec<Outcome>) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::with_capacity(raw.len());
    for o in raw {
        match out.iter_mut().find(|m| (m.next_state, m.reward, m.terminated) == (o.next_state, o.reward, o.terminated)) {
            Some(m) => m.prob += o.prob,
            None => out.push(o),
        }
    }
    out
}

/// The taxi model: its table flattened for sampling, and whether the passenger is fickle.
#[derive(Clone, Debug)]
pub(crate) struct Taxi {
    table: TransitionTable,
    fickle: bool,
}

impl Taxi {
    pub(crate) fn new(rainy: bool, fickle: bool) -> Taxi {
        Taxi { table: taxi_table(rainy), fickle }
    }
    pub(crate) fn table(&self) -> Option<&TransitionTable> {
        (!self.fickle).then_some(&self.table)
    }
}

/// The state index, and whether a fickle passenger may still change destination.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TaxiState {
    s: usize,
    fickle_step: bool,
}

impl Dynamics for Taxi {
    type State = TaxiState;
    type Act = usize;

    fn observation_space(&self) -> Space {
        Space::Discrete(N_STATES)
    }
    fn action_space(&self) -> Space {
        Space::Discrete(N_ACTIONS)
    }
    fn obs_dim(&self) -> usize {
        1
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> TaxiState {
        let s = self.table.initial[rng.random_range(0..self.table.initial.len())].0;
        let fickle_step = self.fickle && rng.random::<f64>() < FICKLE_PROBABILITY;
        TaxiState { s, fickle_step }
    }
    #[inline(always)]
    fn write_obs(&self, s: &TaxiState, obs: &mut [f32]) {
        obs[0] = s.s as f32;
    }
    fn step(&self, st: &mut TaxiState, a: usize, rng: &mut ChaCha8Rng) -> (f64, bool) {
        let outcomes = &self.table.p[st.s][a];
        // Deterministic moves draw nothing, so the generator only advances in the rain.
        let o = if outcomes.len() == 1 {
            outcomes[0]
        } else {
            let u: f64 = rng.random();
            let mut cum = 0.0;
            *outcomes.iter().find(|o| {
                cum += o.prob;
                cum > u
            }).unwrap_or(&outcomes[outcomes.len() - 1])
        };
        let (row0, col0, pass0, dest0) = decode(st.s);
        let (row, col, pass, _) = decode(o.next_state);
        let mut next = o.next_state;
        if st.fickle_step && pass0 == 4 && (row, col) != (row0, col0) {
            st.fickle_step = false;
            let others: Vec<usize> = (0..4).filter(|&d| d != dest0).collect();
            next = encode(row, col, pass, others[rng.random_range(0..3)]);
        }
        st.s = next;
        (o.reward, o.terminated)
    }
    fn state_vec(&self, s: &TaxiState) -> Vec<f64> {
        vec![s.s as f64]
    }
    fn parse_state(&self, s: &[f64]) -> Result<TaxiState, EnvError> {
        let bad = |why: String| EnvError::BadState { state: s.to_vec(), why };
        if s.len() != 1 {
            return Err(bad("expected 1 component [state index]".to_string()));
        }
        let x = s[0];
        if !(x >= 0.0 && x < N_STATES as f64 && x.fract() == 0.0) {
            return Err(bad(format!("the state index must be an integer in 0..{N_STATES}")));
        }
        Ok(TaxiState { s: x as usize, fickle_step: false })
    }
    fn snapshot_vec(&self, s: &TaxiState) -> Vec<f64> {
        vec![s.s as f64, if s.fickle_step { 1.0 } else { 0.0 }]
    }
    fn restore_vec(&self, s: &[f64]) -> Result<TaxiState, EnvError> {
        crate::dynamics::check_state(s, 2, "[state index, fickle step]")?;
        let mut st = self.parse_state(&s[..1])?;
        st.fickle_step = s[1] != 0.0;
        Ok(st)
    }
    fn success(&self, s: &TaxiState) -> Option<bool> {
        let (_, _, pass, dest) = decode(s.s);
        Some(pass == dest)
    }
    fn render_rgb(&self, s: &TaxiState, _ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::taxi(s.s))
    }
    fn render_ansi(&self, s: &TaxiState, ctx: &RenderCtx<'_>) -> Option<String> {
        Some(taxi_ansi(s.s, ctx))
    }
}

/// Gymnasium's `ansi` text: the map with the taxi highlighted (yellow, green once the
/// passenger is in), the passenger's cell in bold blue, the destination in magenta, and the
/// last action's name.
fn taxi_ansi(s: usize, ctx: &RenderCtx<'_>) -> String {
    let mut out: Vec<Vec<String>> = TAXI_MAP.iter().map(|l| l.chars().map(|c| c.to_string()).collect()).collect();
    let (row, col, pass, dest) = decode(s);
    let paint = |cell: &mut String, code: &str| *cell = format!("\x1b[{code}m{cell}\x1b[0m");
    if pass < 4 {
        paint(&mut out[1 + row][2 * col + 1], "43");
        let (pi, pj) = TAXI_LOCS[pass];
        paint(&mut out[1 + pi][2 * pj + 1], "34;1");
    } else {
        let cell = &mut out[1 + row][2 * col + 1];
        if cell == " " {
            *cell = "_".to_string();
        }
        paint(cell, "42");
    }
    let (di, dj) = TAXI_LOCS[dest];
    paint(&mut out[1 + di][2 * dj + 1], "35");
    let mut text: String = out.iter().map(|r| r.concat()).collect::<Vec<_>>().join("\n");
    text.push('\n');
    match ctx.last_action {
        Some(Action::Discrete(a)) if a < N_ACTIONS => {
            let names = ["South", "North", "East", "West", "Pickup", "Dropoff"];
            text.push_str(&format!("  ({})\n", names[a]));
        }
        _ => text.push('\n'),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_agree() {
        for s in 0..N_STATES {
            let (r, c, p, d) = decode(s);
            assert_eq!(encode(r, c, p, d), s);
        }
    }

    #[test]
    fn delivery_pays_20_and_ends() {
        let t = taxi_table(false);
        // Passenger in the taxi at Green (0, 4), destination Green.
        let s = encode(0, 4, 4, 1);
        assert_eq!(t.p[s][5], vec![Outcome { prob: 1.0, next_state: encode(0, 4, 1, 1), reward: 20.0, terminated: true }]);
        assert_eq!(t.initial.len(), 300);
    }

    #[test]
    fn a_fickle_passenger_changes_destination_once() {
        let taxi = Taxi::new(false, true);
        let mut rng = crate::dynamics::rng_for(0, 0);
        // At Red with the passenger aboard, bound for Blue, fickleness pending: moving south.
        let mut st = TaxiState { s: encode(0, 0, 4, 3), fickle_step: true };
        taxi.step(&mut st, 0, &mut rng);
        let (r, c, p, d) = decode(st.s);
        assert_eq!((r, c, p), (1, 0, 4));
        assert_ne!(d, 3);
        assert!(!st.fickle_step);
    }
}
