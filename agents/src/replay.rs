//! Experience replay for off-policy agents, as flat contiguous `f32` arrays (one row per
//! transition), the layout Stable-Baselines3 uses. A Pendulum buffer of 1,000,000 transitions
//! takes (3 + 3 + 1 + 1 + 1) × 4 bytes × 10⁶ = 36 MB, and memory grows only as it fills.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// A ring buffer of `(obs, action, reward, next_obs, terminated)` transitions.
///
/// Only `terminated` is stored, not `truncated`: a time-limit cut is not a terminal state, so
/// its target still bootstraps from `next_obs` (the true final observation, not the reset one).
#[derive(Debug)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    action_dim: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<f32>,
    /// Next row to write once full.
    cursor: usize,
    len: usize,
}

/// A sampled minibatch, as tensors for the networks and as host rows for the losses'
/// per-row arithmetic. obs `[B, obs_dim]` and next_obs `[B, obs_dim]` are views into one
/// tensor of rows `[obs | action | next_obs | reward | terminated]` (one copy into libtorch,
/// not five), and `obs_actions` is `[obs | action]`, the continuous critic's input, without a
/// concatenation.
pub struct Batch {
    pub obs: Tensor,
    pub obs_actions: Tensor,
    pub next_obs: Tensor,
    /// The same rows on the host.
    host: Vec<f32>,
    obs_dim: usize,
    action_dim: usize,
}

impl Batch {
    /// A batch of `host` rows laid out `[obs | action | next_obs | reward | terminated]`.
    pub fn from_rows(host: Vec<f32>, obs_dim: usize, action_dim: usize) -> Batch {
        let width = 2 * obs_dim + action_dim + 2;
        assert_eq!(host.len() % width, 0, "batch rows of {width} floats");
        let all = Tensor::from_slice(&host).view([(host.len() / width) as i64, width as i64]);
        let (od, ad) = (obs_dim as i64, action_dim as i64);
        Batch {
            obs: all.narrow(1, 0, od),
            obs_actions: all.narrow(1, 0, od + ad),
            next_obs: all.narrow(1, od + ad, od),
            host,
            obs_dim,
            action_dim,
        }
    }

    /// Number of transitions.
    pub fn len(&self) -> usize {
        self.host.len() / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }

    /// Floats per observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    fn width(&self) -> usize {
        2 * self.obs_dim + self.action_dim + 2
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.host[r * self.width()..(r + 1) * self.width()]
    }

    pub fn obs_row(&self, r: usize) -> &[f32] {
        &self.row(r)[..self.obs_dim]
    }

    pub fn action_row(&self, r: usize) -> &[f32] {
        &self.row(r)[self.obs_dim..self.obs_dim + self.action_dim]
    }

    pub fn next_obs_row(&self, r: usize) -> &[f32] {
        let start = self.obs_dim + self.action_dim;
        &self.row(r)[start..start + self.obs_dim]
    }

    pub fn reward(&self, r: usize) -> f32 {
        self.row(r)[2 * self.obs_dim + self.action_dim]
    }

    pub fn terminated(&self, r: usize) -> bool {
        self.row(r)[2 * self.obs_dim + self.action_dim + 1] != 0.0
    }
}

impl ReplayBuffer {
    pub fn new(capacity: usize, obs_dim: usize, action_dim: usize) -> Self {
        assert!(capacity > 0, "replay capacity must be positive");
        ReplayBuffer {
            capacity,
            obs_dim,
            action_dim,
            obs: Vec::new(),
            next_obs: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            terminated: Vec::new(),
            cursor: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated for transitions (capacity, not just the filled part).
    pub fn bytes(&self) -> usize {
        4 * (self.obs.capacity()
            + self.next_obs.capacity()
            + self.actions.capacity()
            + self.rewards.capacity()
            + self.terminated.capacity())
    }

    pub fn push(&mut self, obs: &[f32], action: &[f32], reward: f32, next_obs: &[f32], terminated: bool) {
        debug_assert_eq!(obs.len(), self.obs_dim);
        debug_assert_eq!(next_obs.len(), self.obs_dim);
        debug_assert_eq!(action.len(), self.action_dim);
        let t = if terminated { 1.0 } else { 0.0 };
        if self.len < self.capacity {
            if self.rewards.len() == self.rewards.capacity() {
                self.grow();
            }
            self.obs.extend_from_slice(obs);
            self.next_obs.extend_from_slice(next_obs);
            self.actions.extend_from_slice(action);
            self.rewards.push(reward);
            self.terminated.push(t);
            self.len += 1;
        } else {
            let i = self.cursor;
            let (o, a) = (i * self.obs_dim, i * self.action_dim);
            self.obs[o..o + self.obs_dim].copy_from_slice(obs);
            self.next_obs[o..o + self.obs_dim].copy_from_slice(next_obs);
            self.actions[a..a + self.action_dim].copy_from_slice(action);
            self.rewards[i] = reward;
            self.terminated[i] = t;
        }
        self.cursor = (self.cursor + 1) % self.capacity;
    }

    /// Grows storage by at most `GROW_ROWS` rows, never past capacity: memory follows the fill
    /// without `Vec`'s doubling overshoot (a full 10⁶ buffer would otherwise hold 2²⁰ rows).
    fn grow(&mut self) {
        const GROW_ROWS: usize = 1 << 16;
        let rows = GROW_ROWS.min(self.capacity - self.len);
        self.obs.reserve_exact(rows * self.obs_dim);
        self.next_obs.reserve_exact(rows * self.obs_dim);
        self.actions.reserve_exact(rows * self.action_dim);
        self.rewards.reserve_exact(rows);
        self.terminated.reserve_exact(rows);
    }

    /// Every stored transition and the write position, for checkpoints.
    pub fn save(&self, out: &mut crate::checkpoint::CheckpointWriter) -> anyhow::Result<()> {
        out.f32s("replay.obs", &self.obs);
        out.f32s("replay.next_obs", &self.next_obs);
        out.f32s("replay.actions", &self.actions);
        out.f32s("replay.rewards", &self.rewards);
        out.f32s("replay.terminated", &self.terminated);
        out.put("replay", &serde_json::json!({ "len": self.len, "cursor": self.cursor, "capacity": self.capacity }))
    }

    /// Restores [`ReplayBuffer::save`] into a buffer of the same widths. Its capacity may be
    /// larger than the saved one (an extended run) as long as the saved buffer never wrapped.
    pub fn restore(&mut self, ckpt: &crate::checkpoint::Checkpoint) -> anyhow::Result<()> {
        #[derive(serde::Deserialize)]
        struct Meta {
            len: usize,
            cursor: usize,
            capacity: usize,
        }
        let m: Meta = ckpt.get("replay")?;
        // A buffer whose oldest row is not at 0 has wrapped, so only the same capacity
        // continues it; any other holds its rows in order and fits a capacity it does not exceed.
        // A full buffer whose cursor is back at 0 holds its rows in order too (it filled
        // exactly, as a run of `steps` <= buffer_size does): an extended run may grow it.
        let full = m.len == m.capacity;
        let wrapped = full && m.cursor != 0;
        if m.len > self.capacity || (wrapped && m.capacity != self.capacity) || m.cursor >= m.capacity.max(1) {
            anyhow::bail!(
                "checkpoint {}: a replay buffer of {} transitions (capacity {}) does not fit this run's capacity {}",
                ckpt.dir.display(), m.len, m.capacity, self.capacity
            );
        }
        self.obs = ckpt.f32s("replay.obs", m.len * self.obs_dim)?;
        self.next_obs = ckpt.f32s("replay.next_obs", m.len * self.obs_dim)?;
        self.actions = ckpt.f32s("replay.actions", m.len * self.action_dim)?;
        self.rewards = ckpt.f32s("replay.rewards", m.len)?;
        self.terminated = ckpt.f32s("replay.terminated", m.len)?;
        self.len = m.len;
        self.cursor = if wrapped { m.cursor } else { m.len % self.capacity };
        Ok(())
    }

    /// Samples `batch` transitions uniformly with replacement (as SB3 does) from `rng`.
    pub fn sample(&self, batch: usize, rng: &mut ChaCha8Rng) -> Batch {
        assert!(self.len > 0, "sampling from an empty replay buffer");
        let (od, ad) = (self.obs_dim, self.action_dim);
        let width = 2 * od + ad + 2;
        let mut rows = Vec::with_capacity(batch * width);
        for _ in 0..batch {
            let i = rng.random_range(0..self.len);
            rows.extend_from_slice(&self.obs[i * od..(i + 1) * od]);
            rows.extend_from_slice(&self.actions[i * ad..(i + 1) * ad]);
            rows.extend_from_slice(&self.next_obs[i * od..(i + 1) * od]);
            rows.push(self.rewards[i]);
            rows.push(self.terminated[i]);
        }
        Batch::from_rows(rows, od, ad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ring_overwrites_oldest_and_samples_stored_rows() {
        let mut rb = ReplayBuffer::new(3, 2, 1);
        for k in 0..5 {
            let x = k as f32;
            rb.push(&[x, x], &[x], x, &[x + 1.0, x + 1.0], k == 4);
        }
        assert_eq!(rb.len(), 3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let b = rb.sample(64, &mut rng);
        let obs = Vec::<f32>::try_from(b.obs.flatten(0, -1)).unwrap();
        let next = Vec::<f32>::try_from(b.next_obs.flatten(0, -1)).unwrap();
        assert_eq!(b.len(), 64);
        for j in 0..b.len() {
            let r = b.reward(j);
            assert!((2.0..=4.0).contains(&r), "row {r} should have been overwritten");
            assert_eq!(obs[2 * j], r);
            assert_eq!(next[2 * j], r + 1.0);
            assert_eq!((b.obs_row(j), b.action_row(j), b.next_obs_row(j)), (&[r, r][..], &[r][..], &[r + 1.0, r + 1.0][..]));
            assert_eq!(b.terminated(j), r == 4.0);
        }
    }

    #[test]
    fn obs_actions_is_obs_then_action() {
        let mut rb = ReplayBuffer::new(8, 2, 1);
        for k in 0..8 {
            let x = k as f32;
            rb.push(&[x, 10.0 + x], &[-x], x, &[0.0, 0.0], false);
        }
        let b = rb.sample(16, &mut ChaCha8Rng::seed_from_u64(1));
        let joint = Vec::<f32>::try_from(b.obs_actions.flatten(0, -1)).unwrap();
        for j in 0..b.len() {
            let r = b.reward(j);
            assert_eq!(&joint[3 * j..3 * j + 3], &[r, 10.0 + r, -r]);
        }
    }

    #[test]
    fn pendulum_sized_buffer_stays_under_40_mb() {
        let mut rb = ReplayBuffer::new(1_000_000, 3, 1);
        for _ in 0..1_000_000 {
            rb.push(&[0.0; 3], &[0.0], 0.0, &[0.0; 3], false);
        }
        assert!(rb.bytes() <= 40_000_000, "{} bytes", rb.bytes());
    }
}
