//! tame's statistics against the real `rliable` package (Agarwal et al. 2021) on the same
//! score matrices: IQM, median, mean, optimality gap, probability of improvement and
//! performance profiles, with their stratified bootstrap CIs.
//!
//! Point estimates are deterministic functions of the scores and must agree to 1e-9.
//!
//! CIs come from two different random resamplings (numpy's generator against ChaCha8), so they
//! agree only up to Monte Carlo error. The tolerance, derived: let F be the exact bootstrap
//! distribution of a statistic (all resamples) and q the bound's level (0.025 or 0.975). A
//! percentile bound L from B resamples lands at F(L) = q + e, e ~ N(0, q(1−q)/B) (the
//! quantile of an empirical distribution, whatever F's shape). We hold our own B replicates;
//! their empirical CDF at L is F̂(L) = F(L) + e′, e′ ~ N(0, F(L)(1−F(L))/B), independent of e.
//! So F̂(L_rliable) − q ~ N(0, (q(1−q) + F(L)(1−F(L)))/B), and we require, in probability
//! units rather than score units,
//!
//!   |F̂(L_rliable) − q| ≤ δ = 4·√((q(1−q) + F̂(1−F̂))/B) + 1/B,
//!
//! four standard deviations plus one resample's step (B = 2,000, q = 0.025: δ ≈ 0.020). With
//! 108 bounds compared, 4σ keeps the chance that any one fails by luck below 1%; the seeds are
//! fixed, so the outcome is reproducible. Scores with ties make F̂ jump: F̂(L) is then the
//! interval [#{r < L}, #{r ≤ L}]/B, which must come within δ of q. This checks the CIs
//! without assuming any shape of the score distribution.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tame::stats::{self, Aggregate, Bootstrap};

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test` (or `bash scripts/setup.sh`) to install the Python rliable \
         package this test compares with",
        python.display()
    );
    python
}

const RESAMPLES: usize = 2000;
const Z: f64 = 4.0;

/// Within the Monte Carlo tolerance: rliable's bound `l` sits at quantile q of our replicates.
fn within_mc(sorted: &[f64], l: f64, q: f64) -> Result<(), String> {
    let b = sorted.len() as f64;
    let eps = 1e-12 * l.abs().max(1.0);
    let below = sorted.partition_point(|&r| r < l - eps) as f64 / b;
    let upto = sorted.partition_point(|&r| r <= l + eps) as f64 / b;
    // F̂(L) nearest q within the jump [below, upto].
    let f = q.clamp(below, upto);
    let delta = Z * ((q * (1.0 - q) + f * (1.0 - f)) / b).sqrt() + 1.0 / b;
    if upto >= q - delta && below <= q + delta {
        Ok(())
    } else {
        Err(format!("rliable's bound {l} lies at quantile [{below}, {upto}] of ours, want {q} ± {delta:.4}"))
    }
}

/// Score matrices of three methods on four envs with ten runs each (`[env][run]`): a smooth
/// one, a better one with an outlier, and one of ties (0, ½ or 1, as solved/unsolved tasks).
fn matrices() -> Vec<(String, Vec<Vec<f64>>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut smooth = || (0..4).map(|m| (0..10).map(|_| 0.2 * m as f64 + rng.random::<f64>()).collect()).collect();
    let a: Vec<Vec<f64>> = smooth();
    let mut b: Vec<Vec<f64>> = smooth();
    for env in &mut b {
        for x in env.iter_mut() {
            *x += 0.3;
        }
    }
    b[2][7] = 5.0;
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let c: Vec<Vec<f64>> = (0..4).map(|_| (0..10).map(|_| f64::from(rng.random_range(0..3u8)) / 2.0).collect()).collect();
    vec![("smooth".into(), a), ("shifted".into(), b), ("ties".into(), c)]
}

/// rliable's layout: `[run][task]`.
fn runs_by_task(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..m[0].len()).map(|n| m.iter().map(|env| env[n]).collect()).collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn aggregates_profiles_and_improvement_agree_with_rliable() {
    let methods = matrices();
    let thresholds: Vec<f64> = (0..=12).map(|k| k as f64 * 0.125).collect();
    let pairs = [("shifted", "smooth"), ("smooth", "ties"), ("ties", "shifted")];
    let spec = json!({
        "methods": methods.iter().map(|(k, m)| (k.clone(), json!(runs_by_task(m)))).collect::<serde_json::Map<_, _>>(),
        "pairs": pairs,
        "thresholds": thresholds,
        "reps": RESAMPLES,
        "seed": 0,
    });
    let dir = std::env::temp_dir().join(format!("tame-rliable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("scores.json");
    std::fs::write(&input, spec.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rliable_aggregates.py");
    let out = Command::new(python()).arg(&script).arg(&input).output().unwrap();
    assert!(out.status.success(), "rliable failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::remove_dir_all(&dir).ok();

    let boot = Bootstrap { resamples: RESAMPLES, ..Bootstrap::default() };
    let mut checked = 0;
    for (i, (name, m)) in methods.iter().enumerate() {
        let r = &theirs["methods"][name.as_str()];
        // Points to 1e-9.
        let ours = stats::aggregates(m, boot, i as u64).unwrap();
        for (k, a) in Aggregate::ALL.into_iter().enumerate() {
            let want = num(&r["aggregates"][k]);
            assert!((ours.point(a) - want).abs() < 1e-9, "{name} {a:?}: ours {} rliable {want}", ours.point(a));
        }
        let profile = stats::run_score_distribution(m, &thresholds);
        for (t, p) in profile.iter().enumerate() {
            assert!((p - num(&r["profile"][t])).abs() < 1e-9, "{name} profile at {}", thresholds[t]);
        }
        // CIs within the Monte Carlo tolerance, from our replicates.
        let reps = stats::aggregate_replicates(m, boot, i as u64).unwrap();
        let ci = ours.ci.unwrap();
        for (k, a) in Aggregate::ALL.into_iter().enumerate() {
            assert_eq!(ci[k], stats::interval(&reps[k], 0.95), "the CI is read off these replicates");
            for (bound, q) in [(0, 0.025), (1, 0.975)] {
                let l = num(&r["aggregate_cis"][bound][k]);
                within_mc(&reps[k], l, q).unwrap_or_else(|e| panic!("{name} {a:?} q={q}: {e}"));
                checked += 1;
            }
        }
        let preps = stats::run_score_distribution_replicates(m, &thresholds, boot, 100 + i as u64).unwrap();
        for (t, row) in preps.iter().enumerate() {
            for (bound, q) in [(0, 0.025), (1, 0.975)] {
                let l = num(&r["profile_cis"][bound][t]);
                within_mc(row, l, q).unwrap_or_else(|e| panic!("{name} profile at {} q={q}: {e}", thresholds[t]));
                checked += 1;
            }
        }
    }
    for (k, (x, y)) in pairs.iter().enumerate() {
        let get = |n: &str| &methods.iter().find(|(k, _)| k == n).unwrap().1;
        let r = &theirs["pairs"][k];
        assert_eq!((r["x"].as_str(), r["y"].as_str()), (Some(*x), Some(*y)));
        let p = stats::probability_of_improvement(get(x), get(y)).unwrap();
        assert!((p - num(&r["poi"])).abs() < 1e-9, "P({x} > {y}): ours {p}, rliable {}", r["poi"]);
        let reps = stats::probability_of_improvement_replicates(get(x), get(y), boot, 200 + k as u64).unwrap();
        for (bound, q) in [(0, 0.025), (1, 0.975)] {
            within_mc(&reps, num(&r["poi_ci"][bound]), q).unwrap_or_else(|e| panic!("P({x} > {y}) q={q}: {e}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 4 * 2 + 3 * 13 * 2 + 3 * 2);
}

#[test]
fn the_tolerance_rejects_a_shifted_interval() {
    // The check can fail: a bound one standard error of the mean away from the 2.5% quantile
    // of 2,000 replicates of a normal-ish statistic lies far outside δ.
    let xs: Vec<Vec<f64>> = vec![(0..40).map(f64::from).collect()];
    let reps = stats::aggregate_replicates(&xs, Bootstrap::default(), 0).unwrap();
    let low = stats::percentile(&reps[2], 0.025);
    within_mc(&reps[2], low, 0.025).unwrap();
    let se = 11.54 / 40f64.sqrt();
    assert!(within_mc(&reps[2], low + se, 0.025).is_err());
    assert!(within_mc(&reps[2], low - se, 0.025).is_err());
}
