//! Gridworlds: FrozenLake (4x4, 8x8, slippery or not), CliffWalking, and maps read from text.
//!
//! Every gridworld is built from its exact transition table, so the table the exact solvers
//! get and the env the agents step are the same model by construction.
//!
//! Map text: one row per line, cells `S` start, `F` frozen, `H` hole (terminal, reward 0),
//! `G` goal (terminal, reward 1), `C` cliff (reward −100, back to a start cell, not terminal),
//! `W` wall (moving into it leaves the agent where it was). Blank lines and lines starting
//! with `#` are skipped. Several `S` cells give a uniform start distribution.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::dynamics::Dynamics;
use crate::render::{Frame, RenderCtx};
use crate::scenes;
use crate::{EnvError, Outcome, Space, TransitionTable};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    Start,
    Frozen,
    Hole,
    Goal,
    Cliff,
    Wall,
}

impl Cell {
    fn from_char(c: char) -> Option<Cell> {
        Some(match c {
            'S' => Cell::Start,
            'F' => Cell::Frozen,
            'H' => Cell::Hole,
            'G' => Cell::Goal,
            'C' => Cell::Cliff,
            'W' => Cell::Wall,
            _ => return None,
        })
    }
    /// The map letter, as `from_char` reads it.
    pub(crate) fn letter(self) -> char {
        match self {
            Cell::Start => 'S',
            Cell::Frozen => 'F',
            Cell::Hole => 'H',
            Cell::Goal => 'G',
            Cell::Cliff => 'C',
            Cell::Wall => 'W',
        }
    }
}

/// Most cells of a map (256×256). Exact solvers sweep every cell thousands of times, and the
/// agents see a gridworld's state one-hot, one network input per cell; see the README's limits.
pub const MAX_CELLS: usize = 1 << 16;

/// Most outcomes in a map's transition table (32 bytes each: 128 MiB). Cliffs send the agent
/// to every start cell, so a map with many cliffs and many starts can exceed it.
pub const MAX_OUTCOMES: usize = 1 << 22;

/// Largest map file read (a 256×256 map with generous comments is far below it).
pub const MAX_MAP_BYTES: u64 = 4 << 20;

const ACCEPTED_CELLS: &str =
    "S (start), F (frozen), H (hole), G (goal), C (cliff), W (wall)";

pub(crate) const FROZENLAKE_4X4: &str = "SFFF\nFHFH\nFFFH\nHFFG\n";
pub(crate) const FROZENLAKE_8X8: &str = "SFFFFFFF\nFFFFFFFF\nFFFHFFFF\nFFFFFHFF\n\
                                         FFFHFFFF\nFHHFFFHF\nFHFFHFHF\nFFFHFFFG\n";
pub(crate) const CLIFFWALKING: &str =
    "FFFFFFFFFFFF\nFFFFFFFFFFFF\nFFFFFFFFFFFF\nSCCCCCCCCCCG\n";

/// Parses map text; `origin` names it in errors (a path, or a built-in's name).
pub(crate) fn parse_map(text: &str, origin: &str) -> Result<Vec<Vec<Cell>>, EnvError> {
    let bad = |why: String| EnvError::BadMap { origin: origin.to_string(), why };
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut first_line = 0;
    let mut cells_so_far = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut row = Vec::with_capacity(line.len());
        for (j, c) in line.chars().enumerate() {
            let cell = Cell::from_char(c).ok_or_else(|| {
                bad(format!(
                    "line {line_no}, column {}: unexpected character {c:?}; accepted: {ACCEPTED_CELLS}",
                    j + 1
                ))
            })?;
            row.push(cell);
        }
        cells_so_far += row.len();
        if cells_so_far > MAX_CELLS {
            return Err(bad(format!(
                "more than {MAX_CELLS} cells by line {line_no}; accepted: maps of at most {MAX_CELLS} cells \
                 (e.g. 256x256): the exact solvers sweep every cell thousands of times and agents see \
                 one input per cell"
            )));
        }
        if let Some(first) = rows.first() {
            if row.len() != first.len() {
                return Err(bad(format!(
                    "line {line_no} has {} cells but line {first_line} has {}; all rows must have the same length",
                    row.len(),
                    first.len()
                )));
            }
        } else {
            first_line = line_no;
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(bad(format!("no rows; a map is lines of {ACCEPTED_CELLS}")));
    }
    let all = || rows.iter().flatten();
    if !all().any(|&c| c == Cell::Start) {
        return Err(bad("no start cell 'S'".to_string()));
    }
    if !all().any(|&c| c == Cell::Goal) {
        return Err(bad("no goal cell 'G'".to_string()));
    }
    Ok(rows)
}

/// Rewards, action numbering and slipping of a gridworld family.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    /// `(d_row, d_col)` of each action, in the family's numbering.
    moves: [(i64, i64); 4],
    step_reward: f64,
    goal_reward: f64,
    cliff_reward: f64,
    /// FrozenLake lists terminal cells as self-loops with reward 0; CliffWalking computes
    /// its goal cell's moves like any other.
    absorbing_terminals: bool,
    /// Probability of the intended move; the rest is split evenly between the two
    /// perpendicular moves (Gymnasium's `success_rate`; 1 = not slippery).
    success_rate: f64,
}

impl Rules {
    /// FrozenLake: LEFT 0, DOWN 1, RIGHT 2, UP 3; reward 1 at the goal only.
    pub(crate) fn frozenlake(success_rate: f64) -> Rules {
        Rules {
            moves: [(0, -1), (1, 0), (0, 1), (-1, 0)],
            step_reward: 0.0,
            goal_reward: 1.0,
            cliff_reward: -100.0,
            absorbing_terminals: true,
            success_rate,
        }
    }
    /// CliffWalking: UP 0, RIGHT 1, DOWN 2, LEFT 3; −1 per step, −100 for the cliff.
    /// Slippery (Gymnasium's `is_slippery`): `success_rate` 1/3, each perpendicular 1/3.
    pub(crate) fn cliffwalking(success_rate: f64) -> Rules {
        Rules {
            moves: [(-1, 0), (0, 1), (1, 0), (0, -1)],
            step_reward: -1.0,
            goal_reward: -1.0,
            cliff_reward: -100.0,
            absorbing_terminals: false,
            success_rate,
        }
    }
}

/// What a gridworld looks like, for pictures drawn outside this crate (policy maps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridLayout {
    pub ncol: usize,
    /// Each cell's map letter (`S F H G C W`), row-major from the top left.
    pub cells: Vec<char>,
    /// `(d_row, d_col)` of each action, in the env's numbering.
    pub moves: [(i64, i64); 4],
}

/// A gridworld model: its exact table plus flat arrays for fast sampling.
#[derive(Clone, Debug)]
pub(crate) struct GridWorld {
    cells: Vec<Cell>,
    /// Row length, and each action's move: what drawing needs besides the cells.
    ncol: usize,
    moves: [(i64, i64); 4],
    table: TransitionTable,
    /// Outcomes of `(s, a)` are `offsets[s*4+a]..offsets[s*4+a+1]` in the arrays below.
    offsets: Vec<u32>,
    cum_prob: Vec<f64>,
    next_state: Vec<u32>,
    reward: Vec<f64>,
    terminated: Vec<bool>,
    initial_cum: Vec<(f64, usize)>,
}

/// Counts the outcomes the transition table of `rows` under `rules` will list (before merging
/// duplicates), and refuses a table beyond [`MAX_OUTCOMES`], naming its size.
pub(crate) fn check_table_size(rows: &[Vec<Cell>], rules: &Rules, origin: &str) -> Result<(), EnvError> {
    let (nrow, ncol) = (rows.len(), rows[0].len());
    let cell = |r: usize, c: usize| rows[r][c];
    let starts = rows.iter().flatten().filter(|&&c| c == Cell::Start).count();
    let dirs: &[usize] = if rules.success_rate < 1.0 { &[3, 0, 1] } else { &[0] };
    let mut outcomes = 0usize;
    for r in 0..nrow {
        for c in 0..ncol {
            let terminal = matches!(cell(r, c), Cell::Goal | Cell::Hole);
            if rules.absorbing_terminals && terminal {
                outcomes += 4;
                continue;
            }
            for a in 0..4 {
                for &turn in dirs {
                    let (dr, dc) = rules.moves[(a + turn) % 4];
                    let tr = (r as i64 + dr).clamp(0, nrow as i64 - 1) as usize;
                    let tc = (c as i64 + dc).clamp(0, ncol as i64 - 1) as usize;
                    outcomes += if cell(tr, tc) == Cell::Cliff { starts } else { 1 };
                }
            }
        }
    }
    if outcomes > MAX_OUTCOMES {
        return Err(EnvError::BadMap {
            origin: origin.to_string(),
            why: format!(
                "its transition table would list {outcomes} outcomes ({} MiB; every step into a cliff \
                 lists one outcome per start cell, and this map has {starts}); accepted: at most \
                 {MAX_OUTCOMES} outcomes ({} MiB): use fewer start cells or cliffs",
                outcomes * std::mem::size_of::<Outcome>() >> 20,
                MAX_OUTCOMES * std::mem::size_of::<Outcome>() >> 20
            ),
        });
    }
    Ok(())
}

impl GridWorld {
    pub(crate) fn new(rows: &[Vec<Cell>], rules: &Rules) -> GridWorld {
        let nrow = rows.len();
        let ncol = rows[0].len();
        let cells: Vec<Cell> = rows.iter().flatten().copied().collect();
        let n = cells.len();
        let starts: Vec<usize> = (0..n).filter(|&s| cells[s] == Cell::Start).collect();
        let start_p = 1.0 / starts.len() as f64;

        // Where moving `dir` from `s` lands, split over start cells for the cliff.
        let land = |s: usize, dir: usize, p: f64, out: &mut Vec<Outcome>| {
            let (dr, dc) = rules.moves[dir];
            let r = ((s / ncol) as i64 + dr).clamp(0, nrow as i64 - 1) as usize;
            let c = ((s % ncol) as i64 + dc).clamp(0, ncol as i64 - 1) as usize;
            let t = r * ncol + c;
            let t = if cells[t] == Cell::Wall { s } else { t };
            let o = |next_state, reward, terminated| Outcome { prob: p, next_state, reward, terminated };
            match cells[t] {
                Cell::Goal => out.push(o(t, rules.goal_reward, true)),
                Cell::Hole => out.push(o(t, rules.step_reward, true)),
                Cell::Cliff => {
                    for &st in &starts {
                        out.push(Outcome { prob: p * start_p, ..o(st, rules.cliff_reward, false) });
                    }
                }
                _ => out.push(o(t, rules.step_reward, false)),
            }
        };

        let mut p = Vec::with_capacity(n);
        for (s, cell) in cells.iter().enumerate() {
            let mut per_action = Vec::with_capacity(4);
            for a in 0..4 {
                let mut raw = Vec::new();
                let terminal = matches!(cell, Cell::Goal | Cell::Hole);
                if rules.absorbing_terminals && terminal {
                    raw.push(Outcome { prob: 1.0, next_state: s, reward: 0.0, terminated: true });
                } else if rules.success_rate < 1.0 {
                    let side = (1.0 - rules.success_rate) / 2.0;
                    land(s, (a + 3) % 4, side, &mut raw);
                    land(s, a, rules.success_rate, &mut raw);
                    land(s, (a + 1) % 4, side, &mut raw);
                } else {
                    land(s, a, 1.0, &mut raw);
                }
                per_action.push(merge(raw));
            }
            p.push(per_action);
        }
        let table = TransitionTable {
            n_states: n,
            n_actions: 4,
            p,
            initial: starts.iter().map(|&s| (s, start_p)).collect(),
        };

        let mut g = GridWorld {
            cells,
            ncol,
            moves: rules.moves,
            offsets: vec![0],
            cum_prob: Vec::new(),
            next_state: Vec::new(),
            reward: Vec::new(),
            terminated: Vec::new(),
            initial_cum: Vec::new(),
            table,
        };
        for outcomes in g.table.p.iter().flatten() {
            let mut cum = 0.0;
            for o in outcomes {
                cum += o.prob;
                g.cum_prob.push(cum);
                g.next_state.push(o.next_state as u32);
                g.reward.push(o.reward);
                g.terminated.push(o.terminated);
            }
            g.offsets.push(g.cum_prob.len() as u32);
        }
        let mut cum = 0.0;
        for &(s, q) in &g.table.initial {
            cum += q;
            g.initial_cum.push((cum, s));
        }
        g
    }

    pub(crate) fn table(&self) -> &TransitionTable {
        &self.table
    }

    pub(crate) fn layout(&self) -> GridLayout {
        GridLayout { ncol: self.ncol, cells: self.cells.iter().map(|c| c.letter()).collect(), moves: self.moves }
    }

    /// The map letter of every cell, row-major: what the scenes draw.
    fn letters(&self) -> Vec<char> {
        self.cells.iter().map(|c| c.letter()).collect()
    }
}

/// Sums the probabilities of identical `(next_state, reward, terminated)` outcomes, keeping
/// the order of first appearance (Gymnasium lists a wall bump once per slip direction).
/// A hash index keeps it linear: a cliff next to many start cells gives long lists.
fn merge(raw: Vec<Outcome>) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::with_capacity(raw.len());
    let mut index = std::collections::HashMap::with_capacity(raw.len());
    for o in raw {
        // Rewards are never NaN here; -0.0 and 0.0 are the same reward.
        let key = (o.next_state, (o.reward + 0.0).to_bits(), o.terminated);
        match index.get(&key) {
            Some(&i) => {
                let m: &mut Outcome = &mut out[i];
                m.prob += o.prob;
            }
            None => {
                index.insert(key, out.len());
                out.push(o);
            }
        }
    }
    out
}

impl Dynamics for GridWorld {
    /// The cell index, row-major.
    type State = usize;
    type Act = usize;

    fn observation_space(&self) -> Space {
        Space::Discrete(self.cells.len())
    }
    fn action_space(&self) -> Space {
        Space::Discrete(4)
    }
    fn obs_dim(&self) -> usize {
        1
    }
    fn initial(&self, rng: &mut ChaCha8Rng) -> usize {
        if self.initial_cum.len() == 1 {
            return self.initial_cum[0].1;
        }
        let u: f64 = rng.random();
        self.initial_cum.iter().find(|(c, _)| *c > u).unwrap_or(&self.initial_cum[self.initial_cum.len() - 1]).1
    }
    #[inline(always)]
    fn write_obs(&self, s: &usize, obs: &mut [f32]) {
        obs[0] = *s as f32;
    }
    #[inline(always)]
    fn step(&self, s: &mut usize, a: usize, rng: &mut ChaCha8Rng) -> (f64, bool) {
        let k = *s * 4 + a;
        let (lo, hi) = (self.offsets[k] as usize, self.offsets[k + 1] as usize);
        // Deterministic moves draw nothing, so the generator only advances on slips.
        let i = if hi - lo == 1 {
            lo
        } else {
            let u: f64 = rng.random();
            (lo..hi).find(|&i| self.cum_prob[i] > u).unwrap_or(hi - 1)
        };
        *s = self.next_state[i] as usize;
        (self.reward[i], self.terminated[i])
    }
    fn state_vec(&self, s: &usize) -> Vec<f64> {
        vec![*s as f64]
    }
    fn parse_state(&self, s: &[f64]) -> Result<usize, EnvError> {
        let n = self.cells.len();
        let bad = |why: String| EnvError::BadState { state: s.to_vec(), why };
        if s.len() != 1 {
            return Err(bad("expected 1 component [cell index]".to_string()));
        }
        let x = s[0];
        if !(x >= 0.0 && x < n as f64 && x.fract() == 0.0) {
            return Err(bad(format!("the cell index must be an integer in 0..{n}")));
        }
        let i = x as usize;
        if self.cells[i] == Cell::Wall {
            return Err(bad(format!("cell {i} is a wall")));
        }
        Ok(i)
    }
    fn success(&self, s: &usize) -> Option<bool> {
        Some(self.cells[*s] == Cell::Goal)
    }
    fn render_rgb(&self, s: &usize, ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::grid(&self.letters(), self.ncol, *s, ctx.path))
    }
    fn render_ansi(&self, s: &usize, ctx: &RenderCtx<'_>) -> Option<String> {
        let names = self.moves.map(|m| match m {
            (0, -1) => "Left",
            (1, 0) => "Down",
            (0, 1) => "Right",
            _ => "Up",
        });
        Some(scenes::grid_ansi(&self.letters(), self.ncol, *s, &names, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_map(text, "test.map").unwrap_err().to_string()
    }

    #[test]
    fn malformed_maps_name_line_and_column() {
        assert!(err("SFF\nFxG\n").contains("line 2, column 2"), "{}", err("SFF\nFxG\n"));
        assert!(err("SFF\nFG\n").contains("line 2 has 2 cells but line 1 has 3"));
        assert!(err("FFF\nFFG\n").contains("no start"));
        assert!(err("SFF\nFFF\n").contains("no goal"));
        assert!(err("# only a comment\n\n").contains("no rows"));
    }

    #[test]
    fn walls_block_and_cliffs_send_back_to_start() {
        let rows = parse_map("SWG\nFCF\n", "t").unwrap();
        let g = GridWorld::new(&rows, &Rules::frozenlake(1.0));
        let t = g.table();
        // RIGHT (2) from the start bumps into the wall.
        assert_eq!(t.p[0][2], vec![Outcome { prob: 1.0, next_state: 0, reward: 0.0, terminated: false }]);
        // RIGHT from cell 3 (row 1, col 0) falls off the cliff at cell 4.
        assert_eq!(t.p[3][2], vec![Outcome { prob: 1.0, next_state: 0, reward: -100.0, terminated: false }]);
        // UP (3) from cell 5 reaches the goal.
        assert_eq!(t.p[5][3], vec![Outcome { prob: 1.0, next_state: 2, reward: 1.0, terminated: true }]);
    }

    #[test]
    fn slippery_rows_sum_to_one() {
        let rows = parse_map(FROZENLAKE_8X8, "8x8").unwrap();
        let g = GridWorld::new(&rows, &Rules::frozenlake(1.0 / 3.0));
        for outcomes in g.table().p.iter().flatten() {
            let total: f64 = outcomes.iter().map(|o| o.prob).sum();
            assert!((total - 1.0).abs() < 1e-12);
        }
    }
}
