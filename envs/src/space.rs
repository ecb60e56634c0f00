//! Observation and action spaces (`Discrete(n)` and `Box`) and the action type.

use std::fmt;

/// A Gymnasium space. `Box` is one-dimensional here: its shape is `[low.len()]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    Discrete(usize),
    Box { low: Vec<f32>, high: Vec<f32> },
}

impl Space {
    /// Number of components an element of this space has once flattened
    /// (1 for `Discrete`, which observations carry as a single index).
    pub fn dim(&self) -> usize {
        match self {
            Space::Discrete(_) => 1,
            Space::Box { low, .. } => low.len(),
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Space::Discrete(n) => write!(f, "Discrete({n})"),
            Space::Box { low, high } => {
                write!(f, "Box(low={low:?}, high={high:?}, shape=({},))", low.len())
            }
        }
    }
}

/// An action handed to [`crate::Env::step`].
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    Discrete(usize),
    Continuous(&'a [f64]),
}
