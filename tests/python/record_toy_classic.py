"""Records Gymnasium 1.4.0 reference data for Acrobot-v1, MountainCar-v0, Taxi-v4 (plain and
rainy and fickle), CliffWalkingSlippery-v1 and Blackjack-v1, into tests/fixtures/gymnasium/.

Not needed by the tests (they read the committed JSON). To re-record:

    python3 -m venv /tmp/gymvenv && /tmp/gymvenv/bin/pip install gymnasium==1.4.0
    /tmp/gymvenv/bin/python tests/python/record_toy_classic.py

Each trace runs one env for STEPS steps from `reset(seed=seed)`, resetting (unseeded) after
every episode; a step entry {"reset": state} marks such a reset and gives the internal state
it drew, which the replay sets (tame's reset draws come from its own generator). Actions mix a
simple goal-seeking policy with uniform random ones, so that episodes both end and run out.
"""

import json
import random
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

assert gym.__version__ == "1.4.0", gym.__version__
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "gymnasium"
STEPS = 2000
SEEDS = [0, 1, 2]


def f32(x):
    # The shortest text of the float32 value: it reads back as the same float32.
    return float(repr(np.float32(x)).removeprefix("np.float32(").removesuffix(")"))


def acrobot_policy(obs, rng):
    # Torque along the second joint's angular velocity pumps energy in.
    return (2 if obs[5] > 0 else 0) if rng.random() < 0.6 else rng.randrange(3)


def mountaincar_policy(obs, rng):
    return (2 if obs[1] >= 0 else 0) if rng.random() < 0.8 else rng.randrange(3)


def taxi_greedy(env):
    """Greedy actions of value iteration on the dry table (gamma 0.95)."""
    P = env.unwrapped.P
    v = np.zeros(500)
    for _ in range(200):
        q = np.array([[sum(p * (r + (0 if t else 0.95 * v[s2])) for p, s2, r, t in P[s][a]) for a in range(6)] for s in range(500)])
        v = q.max(axis=1)
    return q.argmax(axis=1)


def trace(env_id, kwargs, seed, state_of, obs_of, policy):
    env = gym.make(env_id, **kwargs)
    rng = random.Random(seed)
    obs, _ = env.reset(seed=seed)
    entry = {"env": env_id, "gymnasium": gym.__version__, "kwargs": kwargs, "seed": seed,
             "exact": True, "init_state": state_of(env), "steps": []}
    for _ in range(STEPS):
        a = int(policy(obs, rng))
        obs, r, term, trunc, _ = env.step(a)
        entry["steps"].append({"action": a, "obs": obs_of(obs), "reward": float(r),
                               "terminated": bool(term), "truncated": bool(trunc)})
        if term or trunc:
            obs, _ = env.reset()
            entry["steps"].append({"reset": state_of(env)})
    return entry


def table(env_id, kwargs):
    env = gym.make(env_id, **kwargs).unwrapped
    P = {str(s): {str(a): [[float(p), int(s2), float(r), bool(t)] for p, s2, r, t in outs]
                  for a, outs in acts.items()} for s, acts in env.P.items()}
    return {"env": env_id, "gymnasium": gym.__version__, "kwargs": kwargs,
            "n_states": len(P), "n_actions": len(P["0"]), "P": P,
            "initial": [[int(s), float(p)] for s, p in enumerate(env.initial_state_distrib) if p > 0]}


def main():
    traces = {}
    cont = lambda env: [float(x) for x in env.unwrapped.state]
    for seed in SEEDS:
        traces[f"acrobot_{seed}"] = trace("Acrobot-v1", {}, seed, cont, lambda o: [f32(x) for x in o], acrobot_policy)
        traces[f"mountaincar_discrete_{seed}"] = trace("MountainCar-v0", {}, seed, cont, lambda o: [f32(x) for x in o], mountaincar_policy)
    greedy = taxi_greedy(gym.make("Taxi-v4"))
    taxi_policy = lambda obs, rng: greedy[obs] if rng.random() < 0.7 else rng.randrange(6)
    cliff_policy = lambda obs, rng: rng.choice([0, 1, 1, 1, 2, 3])
    cell = lambda env: [int(env.unwrapped.s)]
    for seed in SEEDS:
        traces[f"taxi_{seed}"] = trace("Taxi-v4", {}, seed, cell, lambda o: [int(o)], taxi_policy)
        # Stochastic: replayed against the table (each outcome must be possible), not step by step.
        for name, env_id, kwargs, pol in [("taxi_rainy", "Taxi-v4", {"is_rainy": True}, taxi_policy),
                                          ("cliffwalking_slippery", "CliffWalkingSlippery-v1", {}, cliff_policy)]:
            e = trace(env_id, kwargs, seed, cell, lambda o: [int(o)], pol)
            e["stochastic"] = True
            # The state before each step, for the table check.
            prev = e["init_state"]
            for st in e["steps"]:
                if "reset" in st:
                    prev = st["reset"]
                else:
                    st["state"] = prev
                    prev = st["obs"]
            traces[f"{name}_{seed}"] = e
    (OUT / "toy_classic_traces.json").write_text(json.dumps(traces, separators=(",", ":")))

    tables = {"taxi": table("Taxi-v4", {}), "taxi_rainy": table("Taxi-v4", {"is_rainy": True}),
              "cliffwalking_slippery": table("CliffWalkingSlippery-v1", {})}
    (OUT / "toy_text_tables_23.json").write_text(json.dumps(tables, separators=(",", ":")))

    # Blackjack: episodes of a threshold policy with random deviations; the test compares the
    # outcome frequencies of each (observation, action) with tame's table. One row per step:
    # [sum, dealer, ace, action, next sum, next dealer, next ace, reward, terminated].
    bj = {}
    for kwargs, name in [({}, "blackjack_sab"), ({"sab": False, "natural": True}, "blackjack_natural")]:
        env = gym.make("Blackjack-v1", **kwargs)
        rng = random.Random(7)
        rows, starts = [], []
        obs, _ = env.reset(seed=7)
        while len(rows) < 5 * STEPS:
            starts.append(list(map(int, obs)))
            done = False
            while not done:
                a = (1 if obs[0] < 17 else 0) if rng.random() < 0.7 else rng.randrange(2)
                nxt, r, term, trunc, _ = env.step(a)
                rows.append([*map(int, obs), a, *map(int, nxt), float(r), bool(term)])
                obs, done = nxt, term or trunc
            obs, _ = env.reset()
        bj[name] = {"env": "Blackjack-v1", "gymnasium": gym.__version__, "kwargs": kwargs, "seed": 7,
                    "starts": starts, "steps": rows}
    (OUT / "blackjack_trace.json").write_text(json.dumps(bj, separators=(",", ":")))

    # Fickle Taxi has no P: one row per step, [state, action, next state, reward, terminated,
    # truncated, fickle], where fickle is the episode's draw at reset (env.unwrapped.fickle_step
    # before the episode's first step); tests/envs_parity.rs checks each step against the dry
    # table and the one destination change Gymnasium's rule allows.
    fickle = {}
    for seed in SEEDS:
        env = gym.make("Taxi-v4", fickle_passenger=True)
        rng = random.Random(seed)
        obs, _ = env.reset(seed=seed)
        flag = bool(env.unwrapped.fickle_step)
        rows = []
        while len(rows) < 2 * STEPS:
            a = int(taxi_policy(obs, rng))
            nxt, r, term, trunc, _ = env.step(a)
            rows.append([int(obs), a, int(nxt), float(r), bool(term), bool(trunc), flag])
            obs = nxt
            if term or trunc:
                obs, _ = env.reset()
                flag = bool(env.unwrapped.fickle_step)
        fickle[f"taxi_fickle_{seed}"] = {"env": "Taxi-v4", "gymnasium": gym.__version__,
                                         "kwargs": {"fickle_passenger": True}, "seed": seed, "steps": rows}
    (OUT / "taxi_fickle_trace.json").write_text(json.dumps(fickle, separators=(",", ":")))
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
