"""Computes rliable's aggregates, probability of improvement and performance profiles, with
their stratified bootstrap CIs, for score matrices given as JSON; used by tests/stats_rliable.rs
and `tame bench stats` (which times it).

Input (argv[1]): {"methods": {name: [[score per task] per run]}, "pairs": [[x, y], ...],
"thresholds": [...], "reps": 2000, "seed": 0}. Output (stdout): JSON with, per method,
"aggregates" (IQM, median, mean, optimality gap), "aggregate_cis" ([lows], [highs]),
"profile" and "profile_cis"; per pair "poi" and "poi_ci"; and "seconds" per part.
"""
import json
import sys
import time

import numpy as np
from rliable import library as rly
from rliable import metrics


def aggregates(x):
    return np.array([
        metrics.aggregate_iqm(x),
        metrics.aggregate_median(x),
        metrics.aggregate_mean(x),
        metrics.aggregate_optimality_gap(x),
    ])


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    reps = spec["reps"]
    # rliable's StratifiedBootstrap draws from numpy's global generator.
    np.random.seed(spec.get("seed", 0))
    scores = {k: np.array(v, dtype=float) for k, v in spec["methods"].items()}
    out = {"methods": {}, "pairs": [], "seconds": {}}

    t = time.perf_counter()
    points, cis = rly.get_interval_estimates(scores, aggregates, reps=reps)
    out["seconds"]["aggregates"] = time.perf_counter() - t

    t = time.perf_counter()
    thresholds = np.array(spec["thresholds"], dtype=float)
    profiles, profile_cis = rly.create_performance_profile(scores, thresholds, reps=reps)
    out["seconds"]["profiles"] = time.perf_counter() - t

    for k in scores:
        out["methods"][k] = {
            "aggregates": points[k].tolist(),
            "aggregate_cis": cis[k].tolist(),
            "profile": profiles[k].tolist(),
            "profile_cis": profile_cis[k].tolist(),
        }

    t = time.perf_counter()
    for x, y in spec["pairs"]:
        pair = {"p": [scores[x], scores[y]]}
        p, ci = rly.get_interval_estimates(pair, metrics.probability_of_improvement, reps=reps)
        out["pairs"].append({"x": x, "y": y, "poi": float(p["p"]), "poi_ci": np.ravel(ci["p"]).tolist()})
    out["seconds"]["improvement"] = time.perf_counter() - t
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
