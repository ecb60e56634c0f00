"""Times Gymnasium 1.4.0's rgb_array and ansi frames, the reference for `tame bench render`.

Not a dependency of tame; run it in a throwaway venv:
    python3 -m venv /tmp/gymvenv && /tmp/gymvenv/bin/pip install gymnasium==1.4.0 pygame
    /tmp/gymvenv/bin/python scripts/gymnasium_render_bench.py
"""

import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
import gymnasium as gym  # noqa: E402

FRAMES = 500
for env_id, kwargs, mode in [
    ("CartPole-v1", {}, "rgb_array"),
    ("Pendulum-v1", {}, "rgb_array"),
    ("MountainCarContinuous-v0", {}, "rgb_array"),
    ("FrozenLake-v1", {}, "rgb_array"),
    ("FrozenLake-v1", {}, "ansi"),
]:
    env = gym.make(env_id, render_mode=mode, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    env.render()  # loads images and fonts once
    total = 0.0
    for _ in range(FRAMES):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        t = time.perf_counter()
        frame = env.render()
        total += time.perf_counter() - t
        if terminated or truncated:
            env.reset()
    size = "x".join(map(str, frame.shape[1::-1])) if mode == "rgb_array" else "text"
    print(f"{env_id} {mode} {size}: {total / FRAMES * 1e6:.0f} us/frame")
