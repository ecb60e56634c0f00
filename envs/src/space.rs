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
            // Uniform bounds as one number each (as Gymnasium prints them): Humanoid's 348
            // infinities say nothing that `-inf` does not.
            Space::Box { low, high } if low.windows(2).all(|w| w[0] == w[1]) && high.windows(2).all(|w| w[0] == w[1]) && !low.is_empty() => {
                write!(f, "Box(low={:?}, high={:?}, shape=({},))", low[0], high[0], low.len())
            }
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

#[cfg(test)]
mod display_tests {
    use super::Space;

    #[test]
    fn uniform_bounds_print_once_and_mixed_ones_in_full() {
        let uniform = Space::Box { low: vec![f32::NEG_INFINITY; 348], high: vec![f32::INFINITY; 348] };
        assert_eq!(uniform.to_string(), "Box(low=-inf, high=inf, shape=(348,))");
        let mixed = Space::Box { low: vec![-1.0, -2.0], high: vec![1.0, 2.0] };
        assert_eq!(mixed.to_string(), "Box(low=[-1.0, -2.0], high=[1.0, 2.0], shape=(2,))");
    }
}
