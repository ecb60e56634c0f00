//! Upper bounds on hyper-parameters, shared by the agents' config checks and the command line,
//! so that a finite but absurd value is refused up front, naming the bound, instead of
//! overflowing f32 or exhausting memory halfway through a run.

/// Largest temperature τ accepted anywhere (fixed τ, `initial_tau`, ES action τ).
///
/// The SAC update computes τ·log π in f32 and squares the TD error built from it. |log π| stays
/// below about 1e3 (log-std clamped to [−20, 2], one-hot or few discrete actions), so at
/// τ ≤ 1e6 the soft term is below 1e9 and its square below 1e18, twenty orders of magnitude
/// inside f32's 3.4e38; at τ = 1e30 the square overflows to inf on the first update.
pub const MAX_TAU: f64 = 1e6;

/// Largest integer that a config (`config.toml`, TOML's signed 64-bit integers) can hold.
pub const MAX_CONFIG_INT: u64 = i64::MAX as u64;

/// Widest hidden layer of any network (a 4096×4096 layer is 16.8 M parameters, 64 MiB in f32).
pub const MAX_HIDDEN_WIDTH: usize = 4096;

/// Most hidden layers of any network.
pub const MAX_HIDDEN_LAYERS: usize = 16;

/// Most parameters of one network (1,048,576: 4 MiB in f32). SAC keeps about eleven copies
/// of its largest one (actor, twin critics and their targets, Adam's two moments of each
/// trained one), and each update costs about 6 × batch × parameters FLOPs per network: near
/// this bound (a 60×60 map, one-hot into 256 units) 300 SAC steps took 54 s on the project's
/// loaded two-core machine.
pub const MAX_NETWORK_PARAMS: usize = 1 << 20;

/// Largest ES population: each member's return and noise seed are kept per generation, and a
/// generation of 100,000 episodes already takes minutes on Pendulum.
pub const MAX_POPULATION: usize = 100_000;

/// Most episodes averaged per ES member or run per evaluation.
pub const MAX_EPISODES: usize = 100_000;

/// Number of parameters of an MLP `input → hidden… → output` (weights and biases).
pub fn mlp_params(input: usize, hidden: &[usize], output: usize) -> usize {
    let mut widths = Vec::with_capacity(hidden.len() + 2);
    widths.push(input);
    widths.extend_from_slice(hidden);
    widths.push(output);
    widths.windows(2).map(|w| w[0].saturating_add(1).saturating_mul(w[1])).fold(0, usize::saturating_add)
}

/// Checks hidden layer widths against [`MAX_HIDDEN_WIDTH`] and [`MAX_HIDDEN_LAYERS`];
/// `what` names the setting (`sac.hidden`).
pub fn check_hidden(what: &str, hidden: &[usize]) -> Result<(), String> {
    if hidden.is_empty() || hidden.len() > MAX_HIDDEN_LAYERS {
        return Err(format!(
            "{what} = {hidden:?} has {} layers; accepted: 1 to {MAX_HIDDEN_LAYERS} layers",
            hidden.len()
        ));
    }
    if let Some(w) = hidden.iter().find(|&&w| w == 0 || w > MAX_HIDDEN_WIDTH) {
        return Err(format!(
            "{what} = {hidden:?} has a layer of width {w}; accepted: widths from 1 to \
             {MAX_HIDDEN_WIDTH} (a {MAX_HIDDEN_WIDTH}x{MAX_HIDDEN_WIDTH} layer is already 64 MiB)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_params_counts_weights_and_biases() {
        assert_eq!(mlp_params(3, &[256, 256], 1), 4 * 256 + 257 * 256 + 257);
        assert_eq!(mlp_params(usize::MAX, &[2], 1), usize::MAX);
        assert!(check_hidden("h", &[256, 256]).is_ok());
        assert!(check_hidden("h", &[]).unwrap_err().contains("1 to 16 layers"));
        assert!(check_hidden("h", &[5000]).unwrap_err().contains("5000"));
    }
}
