//! Exact snapshots of an env in mid-episode, for checkpoints that resume bit for bit.
//!
//! [`Env::state`](crate::Env::state) is the physical state a user sets; a snapshot adds what
//! continuing exactly also needs: the generator's position, where the episode stands, and the
//! wrappers' counters. Every field round-trips through JSON exactly (f64 values are written
//! in their shortest round-trip form and parsed back with correct rounding).

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The position of a `ChaCha8Rng`: its key, stream and word position. Restoring it makes
/// the generator continue with exactly the draws it would have made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte key, as 64 hex digits.
    pub seed: String,
    pub stream: u64,
    /// Words consumed so far (a u128, written in decimal: JSON numbers stop at 2⁵³).
    pub word_pos: String,
}

impl RngState {
    pub fn of(rng: &ChaCha8Rng) -> RngState {
        let seed = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        RngState { seed, stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    /// The generator at this position; errors say which field is malformed.
    pub fn restore(&self) -> Result<ChaCha8Rng, String> {
        use rand::SeedableRng;
        let hex = self.seed.as_bytes();
        if hex.len() != 64 {
            return Err(format!("generator seed '{}' is not 64 hex digits", self.seed));
        }
        let mut seed = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| format!("generator seed '{}' is not hex", self.seed))?;
            seed[i] = u8::from_str_radix(text, 16).map_err(|_| format!("generator seed '{}' is not hex", self.seed))?;
        }
        let word_pos: u128 =
            self.word_pos.parse().map_err(|_| format!("generator word position '{}' is not a whole number", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// Where an episode stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodePhase {
    NotReset,
    Running,
    /// Terminated; `reset` comes next.
    Done,
}

/// Everything an env needs to continue exactly where it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvSnapshot {
    /// The model's exact state, including any flag the user-facing [`Env::state`] leaves out
    /// (MountainCar's float32 phase).
    ///
    /// [`Env::state`]: crate::Env::state
    pub state: Vec<f64>,
    pub rng: RngState,
    pub phase: EpisodePhase,
    /// [`TimeLimit`](crate::TimeLimit): steps taken in this episode and whether it was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit: Option<(u32, bool)>,
    /// [`EpisodeStatistics`](crate::EpisodeStatistics): return and length so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<(f64, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn rng_state_continues_the_same_draws() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        rng.set_stream(7);
        for _ in 0..13 {
            rng.random::<u32>();
        }
        let json = serde_json::to_string(&RngState::of(&rng)).unwrap();
        let mut copy = serde_json::from_str::<RngState>(&json).unwrap().restore().unwrap();
        let a: Vec<u64> = (0..50).map(|_| rng.random()).collect();
        let b: Vec<u64> = (0..50).map(|_| copy.random()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_rng_states_are_named() {
        let good = RngState::of(&ChaCha8Rng::seed_from_u64(1));
        let err = RngState { seed: "zz".into(), ..good.clone() }.restore().unwrap_err();
        assert!(err.contains("'zz'"), "{err}");
        let err = RngState { word_pos: "-1".into(), ..good }.restore().unwrap_err();
        assert!(err.contains("'-1'"), "{err}");
    }
}
