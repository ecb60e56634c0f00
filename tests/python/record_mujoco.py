"""Records Gymnasium 1.4.0's MuJoCo v5 tasks (mujoco 3.17.0) into
tests/fixtures/gymnasium/mujoco_v5.json, the reference that tame's native MuJoCo envs are
held to bit for bit (tests/envs_parity.rs, `tame env check-trace`).

Not needed by the tests. To re-record, in a virtualenv of its own:

    python3 -m venv /tmp/gymvenv
    /tmp/gymvenv/bin/pip install "gymnasium[mujoco]==1.4.0" mujoco==3.17.0
    /tmp/gymvenv/bin/python tests/python/record_mujoco.py tests/fixtures/gymnasium/mujoco_v5.json

Each trace: gym.make(id, **kwargs), reset(seed), init_state = qpos ++ qvel of that reset
(Gymnasium's own noisy start; set again with set_state, as the replay does), then float32
actions drawn uniformly from 1.3x the control range (so about a quarter of the components
lie outside it; MuJoCo clamps them, the control costs see them unclipped), until
terminated, truncated or STEPS steps. Stored per step: the action, the observation rounded
to float32 (tame's observations are float32), the float64 reward, the flags and every
scalar info entry.
"""

import json
import sys

import gymnasium as gym
import mujoco
import numpy as np

STEPS = 300

# (trace name, Gymnasium id, kwargs, time limit override, reset seed)
TRACES = [
    ("halfcheetah_0", "HalfCheetah-v5", {}, None, 0),
    ("halfcheetah_1", "HalfCheetah-v5", {"ctrl_cost_weight": 0.2, "exclude_current_positions_from_observation": False}, None, 1),
    ("hopper_0", "Hopper-v5", {}, None, 0),
    ("hopper_1", "Hopper-v5", {"terminate_when_unhealthy": False}, None, 1),
    ("walker2d_0", "Walker2d-v5", {}, None, 0),
    ("walker2d_1", "Walker2d-v5", {"terminate_when_unhealthy": False, "healthy_reward": 2.0}, None, 1),
    ("invertedpendulum_0", "InvertedPendulum-v5", {}, None, 0),
    ("invertedpendulum_1", "InvertedPendulum-v5", {"reset_noise_scale": 0.05}, None, 1),
    ("swimmer_0", "Swimmer-v5", {}, None, 0),
    ("swimmer_1", "Swimmer-v5", {"ctrl_cost_weight": 0.01, "frame_skip": 2}, None, 1),
    ("inverteddoublependulum_0", "InvertedDoublePendulum-v5", {}, None, 0),
    ("inverteddoublependulum_1", "InvertedDoublePendulum-v5", {"healthy_reward": 5.0}, None, 1),
    ("reacher_0", "Reacher-v5", {}, None, 0),
    ("reacher_1", "Reacher-v5", {"reward_control_weight": 0.5}, 300, 1),
    ("pusher_0", "Pusher-v5", {}, None, 0),
    ("pusher_1", "Pusher-v5", {"reward_near_weight": 1.0}, 300, 1),
    ("ant_0", "Ant-v5", {}, None, 0),
    ("ant_1", "Ant-v5", {"terminate_when_unhealthy": False, "contact_cost_weight": 0.001}, None, 1),
    ("humanoid_0", "Humanoid-v5", {}, None, 0),
    ("humanoid_1", "Humanoid-v5", {"terminate_when_unhealthy": False, "include_cinert_in_observation": False,
                                   "include_cvel_in_observation": False}, None, 1),
    ("humanoidstandup_0", "HumanoidStandup-v5", {}, None, 0),
    ("humanoidstandup_1", "HumanoidStandup-v5", {"include_cinert_in_observation": False,
                                                 "include_cvel_in_observation": False}, None, 1),
]


def tame_name(env_id, kwargs, limit):
    """tame's env name for these kwargs: the id, then each as :key=value."""
    parts = [env_id]
    for k, v in kwargs.items():
        parts.append(f"{k}={str(v).lower() if isinstance(v, bool) else v}")
    if limit is not None:
        parts.append(f"limit={limit}")
    return ":".join(parts)


def f32(x):
    # The shortest decimal that reads back as this float32.
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def record(name, env_id, kwargs, limit, seed):
    extra = {} if limit is None else {"max_episode_steps": limit}
    env = gym.make(env_id, **kwargs, **extra)
    u = env.unwrapped
    env.reset(seed=seed)
    qpos, qvel = u.data.qpos.copy(), u.data.qvel.copy()
    u.set_state(qpos, qvel)
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(1000 + seed)
    steps = []
    for _ in range(STEPS):
        a = rng.uniform(1.3 * low, 1.3 * high).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(a)
        steps.append({
            "action": [f32(x) for x in a],
            "obs": [f32(x) for x in obs],
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "info": {k: float(v) for k, v in info.items() if np.ndim(v) == 0},
        })
        if terminated or truncated:
            break
    return {
        "env": tame_name(env_id, kwargs, limit),
        "gymnasium_id": env_id,
        "kwargs": kwargs,
        "gymnasium": gym.__version__,
        "mujoco": mujoco.__version__,
        "exact": True,
        "reset_seed": seed,
        "init_state": [float(x) for x in np.concatenate([qpos, qvel])],
        "steps": steps,
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/gymnasium/mujoco_v5.json"
    traces = {}
    for t in TRACES:
        traces[t[0]] = record(*t)
        print(f"{t[0]}: {len(traces[t[0]]['steps'])} steps", file=sys.stderr)
    with open(out, "w") as f:
        json.dump(traces, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
