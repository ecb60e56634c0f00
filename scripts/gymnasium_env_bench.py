"""Steps per second of Gymnasium 1.4.0 (single env) and, where installed, envpool (a batch of
64), for the references beside `tame env bench`'s figures in the README.

Not a dependency of the project; run it in a throwaway venv:
    python3 -m venv /tmp/gymvenv && /tmp/gymvenv/bin/pip install gymnasium==1.4.0 numpy
    (optional) /tmp/gymvenv/bin/pip install envpool==1.2.5
    /tmp/gymvenv/bin/python scripts/gymnasium_env_bench.py [--steps 200000]
Actions are drawn up front from a seeded NumPy generator, as tame's bench pre-draws its pool,
so the figure is the env's own cost (plus Gymnasium's wrappers: time limit, order enforcing,
passive env checker, as `gym.make` builds them).
"""

import argparse
import time

import gymnasium as gym
import numpy as np

# (Gymnasium id, envpool id: envpool 1.2.5 has Taxi-v3, the same dynamics as Taxi-v4 unrained)
ENVS = [("Acrobot-v1", "Acrobot-v1"), ("MountainCar-v0", "MountainCar-v0"), ("Taxi-v4", "Taxi-v3"),
        ("Blackjack-v1", "Blackjack-v1"), ("CliffWalkingSlippery-v1", None)]


def gymnasium_rate(env_id, steps):
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, steps)
    t = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t)


def envpool_rate(env_id, steps, num_envs=64):
    try:
        import envpool
    except ImportError:
        return None
    if env_id not in envpool.list_all_envs():
        return None
    env = envpool.make_gymnasium(env_id, num_envs=num_envs, seed=0)
    env.reset()
    n = env.action_space.n
    rng = np.random.default_rng(0)
    batches = max(1, steps // num_envs)
    actions = rng.integers(0, n, (batches, num_envs))
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    return batches * num_envs / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200_000)
    args = p.parse_args()
    for env_id, pool_id in ENVS:
        g = gymnasium_rate(env_id, args.steps)
        e = envpool_rate(pool_id, args.steps * 10) if pool_id else None
        pool = f"{e / 1e3:8.0f} k steps/s (64 envs)" if e else "not installed / not available"
        print(f"{env_id:26s} gymnasium {g / 1e3:8.1f} k steps/s   envpool {pool}")


if __name__ == "__main__":
    main()
