//! Value parsers for numeric command-line flags, shared by every subcommand: each refuses a
//! bad value with what is accepted ("accepted: a whole number from 0 to 9223372036854775807"),
//! where clap's own parsers say "invalid digit found in string". Bounds used by configs too
//! live here and in `tame_agents::limits`.

use tame_agents::limits::{MAX_CONFIG_INT, MAX_TAU};
use tame_agents::numfmt::compact;
use tame_agents::run::Tau;

/// Most evaluation episodes per evaluation.
pub const MAX_EVAL_EPISODES: u64 = tame_agents::limits::MAX_EPISODES as u64;
/// Most threads and parallel jobs.
pub const MAX_THREADS: u64 = 1024;
/// Most seeds per point of a sweep grid, and most runs in one sweep.
pub const MAX_SWEEP_SEEDS: u64 = 1000;
pub const MAX_SWEEP_RUNS: usize = 10_000;
/// Largest number of grid points of a certificate sweep (each point is a full certificate).
pub const MAX_SWEEP_POINTS: u64 = 1000;
/// Largest width ε or temperature of `tame certify` (its bounds and grids are meaningful far
/// below it) and largest grid half-width.
pub const MAX_EPS: f64 = MAX_TAU;
pub const MAX_RANGE: f64 = 1e6;
/// Largest ES width σ: parameters are f32, and σ·ε beyond 1e3 only measures noise.
pub const MAX_SIGMA: f64 = 1e3;

/// Why an integer bound is what it is, for the message.
fn int_reason(max: u64) -> &'static str {
    if max == MAX_CONFIG_INT {
        " (the largest integer a TOML config can hold)"
    } else {
        ""
    }
}

/// A whole number in `MIN..=MAX`.
pub fn whole<const MIN: u64, const MAX: u64>(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| (MIN..=MAX).contains(v))
        .ok_or_else(|| format!("accepted: a whole number from {MIN} to {MAX}{}", int_reason(MAX)))
}

/// A count (`usize`) in `MIN..=MAX`.
pub fn count<const MIN: u64, const MAX: u64>(text: &str) -> Result<usize, String> {
    whole::<MIN, MAX>(text).and_then(|v| usize::try_from(v).map_err(|_| format!("{v} does not fit this machine's usize")))
}

/// A seed: 0 ..= i64::MAX.
pub fn seed(text: &str) -> Result<u64, String> {
    whole::<0, MAX_CONFIG_INT>(text)
}

/// Env steps, evaluation periods and other step counts: 1 ..= i64::MAX.
pub fn steps(text: &str) -> Result<u64, String> {
    whole::<1, MAX_CONFIG_INT>(text)
}

/// Evaluation episodes: 1 ..= 100,000.
pub fn episodes(text: &str) -> Result<usize, String> {
    count::<1, MAX_EVAL_EPISODES>(text)
}

/// Threads or parallel jobs: 1 ..= 1024.
pub fn threads(text: &str) -> Result<usize, String> {
    count::<1, MAX_THREADS>(text)
}

/// Hidden layer width: 1 ..= 4096.
pub fn width(text: &str) -> Result<usize, String> {
    count::<1, { tame_agents::limits::MAX_HIDDEN_WIDTH as u64 }>(text)
}

/// A finite number within `[lo, hi]`, each end open or closed as `lo_open`/`hi_open` say.
pub fn number_in(text: &str, lo: f64, lo_open: bool, hi: f64, hi_open: bool) -> Result<f64, String> {
    let ok = |v: f64| v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && (if hi_open { v < hi } else { v <= hi });
    match text.trim().parse::<f64>() {
        Ok(v) if ok(v) => Ok(v),
        _ => Err(format!(
            "accepted: a number {} {} and {} {}",
            if lo_open { ">" } else { ">=" },
            compact(lo),
            if hi_open { "<" } else { "<=" },
            compact(hi)
        )),
    }
}

/// Any finite number.
pub fn finite(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("accepted: a finite number".into()),
    }
}

/// A discount γ in [0, 1) (the discounted solvers diverge at 1).
pub fn discount(text: &str) -> Result<f64, String> {
    number_in(text, 0.0, false, 1.0, true).map_err(|_| "accepted: a number in [0, 1) (the discounted solvers diverge at 1)".into())
}

/// A smoothing width ε > 0 (or temperature τ > 0), at most [`MAX_EPS`].
pub fn width_eps(text: &str) -> Result<f64, String> {
    number_in(text, 0.0, true, MAX_EPS, false)
}

/// An ES parameter-noise width σ in (0, 1000].
pub fn sigma(text: &str) -> Result<f64, String> {
    number_in(text, 0.0, true, MAX_SIGMA, false)
}

/// A temperature of `tame solve`: a number in [0, 1e6]; `auto` is explained, not parsed.
pub fn solve_tau(text: &str) -> Result<f64, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Err(format!(
            "solve takes a number: a temperature 0 <= tau <= {} (0 = hard argmax). 'auto' means \
             tuning tau to a target entropy while an agent learns; the exact solver computes \
             V*_tau for one given tau, so auto has no meaning here (sweep taus instead)",
            compact(MAX_TAU)
        ));
    }
    number_in(text, 0.0, false, MAX_TAU, false).map_err(|e| format!("{e} (0 = hard argmax)"))
}

/// A learning agent's temperature: `auto` or a number in [0, 1e6].
pub fn tau(text: &str) -> Result<Tau, String> {
    let t: Tau = text.parse()?;
    match t {
        Tau::Fixed(v) if v > MAX_TAU => Err(format!(
            "accepted: a number 0 <= tau <= {} or 'auto'; beyond it τ·log π overflows f32 in the \
             update",
            compact(MAX_TAU)
        )),
        _ => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_is_accepted() {
        assert_eq!(seed("7"), Ok(7));
        let e = seed("-1").unwrap_err();
        assert!(e.contains("from 0 to 9223372036854775807") && e.contains("TOML"), "{e}");
        assert!(steps("0").unwrap_err().contains("from 1"));
        assert!(steps("18446744073709551615").is_err());
        assert!(threads("1025").unwrap_err().contains("1 to 1024"));
        assert_eq!(discount("0.99"), Ok(0.99));
        assert!(discount("1").unwrap_err().contains("[0, 1)"));
        assert!(discount("nan").is_err());
        assert!(solve_tau("auto").unwrap_err().contains("solve takes a number"));
        assert!(solve_tau("1e7").unwrap_err().contains("<= 1000000"));
        assert_eq!(tau("auto"), Ok(Tau::Auto));
        assert!(tau("1e30").unwrap_err().contains("f32"));
    }
}
