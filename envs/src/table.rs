//! Exact transition tables P(s', r, done | s, a), as Gymnasium's `env.unwrapped.P`.

/// One possible outcome of taking an action in a state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub prob: f64,
    pub next_state: usize,
    pub reward: f64,
    pub terminated: bool,
}

/// The full model of a finite MDP: `p[s][a]` lists the outcomes of action `a` in state `s`,
/// with identical `(next_state, reward, terminated)` outcomes merged (probabilities summed).
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionTable {
    pub n_states: usize,
    pub n_actions: usize,
    pub p: Vec<Vec<Vec<Outcome>>>,
    /// Distribution of the initial state (FrozenLake and CliffWalking start in one cell).
    pub initial: Vec<(usize, f64)>,
}
