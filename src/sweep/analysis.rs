//! The across-env statistics of a sweep (or of two sweeps compared): for each method (a τ,
//! σ of the grid) the aggregates of its normalized final returns and AUCs with stratified
//! bootstrap CIs, performance profiles, the probability of improvement of every pair, and
//! IQM learning curves. The definitions are in [`crate::stats`].

use serde::Serialize;

use crate::stats::{self, AggregateEstimates, Bootstrap, Interval};

/// One method's normalized scores, env-major: `final_scores[m][n]` is run `n` on env `m`.
#[derive(Clone, Debug, Default)]
pub struct Method {
    pub label: String,
    pub final_scores: Vec<Vec<f64>>,
    pub auc_scores: Vec<Vec<f64>>,
    /// `curves[m][n][t]`: run `n` of env `m` at grid point `t` of [`Analysis::curves`].
    pub curves: Vec<Vec<Vec<f64>>>,
}

/// Aggregates of one method.
#[derive(Clone, Debug, Serialize)]
pub struct MethodStats {
    pub label: String,
    /// Finished runs per env (failed ones are left out).
    pub runs_per_env: Vec<usize>,
    /// Of the normalized final eval return; `None` when the method has no finished run.
    pub final_return: Option<AggregateEstimates>,
    /// Of the normalized area under the eval curve (sample efficiency).
    pub auc: Option<AggregateEstimates>,
}

/// `P(x > y)` with its CI.
#[derive(Clone, Debug, Serialize)]
pub struct Improvement {
    pub x: String,
    pub y: String,
    pub probability: f64,
    pub ci: Option<Interval>,
}

/// A performance profile per method over one grid of score thresholds.
#[derive(Clone, Debug, Serialize)]
pub struct Profiles {
    pub thresholds: Vec<f64>,
    pub methods: Vec<Band>,
}

/// One method's curve (a profile or an IQM learning curve) with its pointwise CI band.
#[derive(Clone, Debug, Serialize)]
pub struct Band {
    pub label: String,
    pub values: Vec<f64>,
    pub ci: Option<Vec<Interval>>,
}

/// IQM of the normalized eval return along training.
#[derive(Clone, Debug, Serialize)]
pub struct Curves {
    /// Env steps, or the fraction of each env's training steps when envs differ in budget.
    pub x: Vec<f64>,
    pub x_label: String,
    pub methods: Vec<Band>,
}

/// Everything across envs.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub envs: Vec<String>,
    /// What a score is, e.g. "normalized final eval return".
    pub scores: String,
    pub bootstrap: Bootstrap,
    pub methods: Vec<MethodStats>,
    /// The comparisons the summary leads with: each τ against τ = 0 (or, comparing two
    /// sweeps, each method of the first against each of the second).
    pub lead: Vec<Improvement>,
    /// `P(x > y)` for every ordered pair of methods.
    pub improvement: Vec<Improvement>,
    pub profiles: Profiles,
    pub curves: Curves,
    /// Edge cases met: one seed, failed runs, raw scores.
    pub notes: Vec<String>,
}

/// Points of the profile's threshold grid.
const PROFILE_POINTS: usize = 101;

/// Bootstrap streams: one per statistic and method (or pair), so that adding a method does
/// not change the others' intervals.
fn stream(kind: u64, index: usize) -> u64 {
    (kind << 32) | index as u64
}

/// Computes every statistic. `lead` lists `(x, y)` method indices to put first;
/// `curve_x` / `curve_label` describe the grid the methods' curves were sampled on.
pub fn analyze(
    envs: &[String],
    methods: &[Method],
    lead: &[(usize, usize)],
    (curve_x, curve_label): (Vec<f64>, String),
    boot: Bootstrap,
    scores: &str,
) -> Analysis {
    let mut notes = Vec::new();
    let stats: Vec<MethodStats> = methods
        .iter()
        .enumerate()
        .map(|(i, m)| MethodStats {
            label: m.label.clone(),
            runs_per_env: m.final_scores.iter().map(Vec::len).collect(),
            final_return: stats::aggregates(&m.final_scores, boot, stream(1, i)),
            auc: stats::aggregates(&m.auc_scores, boot, stream(2, i)),
        })
        .collect();
    if methods.iter().all(|m| m.final_scores.iter().all(|r| r.len() < 2)) {
        notes.push(
            "One run per env: the stratified bootstrap has nothing to resample, so no confidence \
             intervals are given (points only)."
                .into(),
        );
    }
    for (m, s) in methods.iter().zip(&stats) {
        for (env, runs) in envs.iter().zip(&m.final_scores) {
            if runs.is_empty() {
                notes.push(format!("{} has no finished run on {env}: that env is left out of its aggregates.", s.label));
            }
        }
    }

    let mut improvement = Vec::new();
    for i in 0..methods.len() {
        for j in i + 1..methods.len() {
            let (x, y) = (&methods[i].final_scores, &methods[j].final_scores);
            let Some(p) = stats::probability_of_improvement(x, y) else { continue };
            let ci = stats::probability_of_improvement_ci(x, y, boot, stream(3, i * methods.len() + j));
            improvement.push(Improvement { x: methods[i].label.clone(), y: methods[j].label.clone(), probability: p, ci });
            // P(Y > X) = 1 − P(X > Y) exactly (ties count ½ both ways), and so are its bounds.
            improvement.push(Improvement {
                x: methods[j].label.clone(),
                y: methods[i].label.clone(),
                probability: 1.0 - p,
                ci: ci.map(|c| Interval { low: 1.0 - c.high, high: 1.0 - c.low }),
            });
        }
    }
    let lead = lead
        .iter()
        .filter_map(|&(x, y)| improvement.iter().find(|p| p.x == methods[x].label && p.y == methods[y].label).cloned())
        .collect();

    let all = methods.iter().flat_map(|m| m.final_scores.iter().flatten()).copied();
    let (lo, hi) = all.fold((0.0f64, 1.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let thresholds: Vec<f64> =
        (0..PROFILE_POINTS).map(|k| lo + (hi - lo) * k as f64 / (PROFILE_POINTS - 1) as f64).collect();
    let profiles = Profiles {
        methods: methods
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (values, ci) = stats::run_score_distribution_ci(&m.final_scores, &thresholds, boot, stream(4, i));
                Band { label: m.label.clone(), values, ci }
            })
            .collect(),
        thresholds,
    };
    let curves = Curves {
        methods: methods
            .iter()
            .enumerate()
            .filter(|(_, m)| m.curves.iter().any(|c| !c.is_empty()))
            .map(|(i, m)| {
                let (values, ci) = stats::iqm_curve(&m.curves, curve_x.len(), boot, stream(5, i));
                Band { label: m.label.clone(), values, ci }
            })
            .collect(),
        x: curve_x,
        x_label: curve_label,
    };
    Analysis {
        envs: envs.to_vec(),
        scores: scores.to_string(),
        bootstrap: boot,
        methods: stats,
        lead,
        improvement,
        profiles,
        curves,
        notes,
    }
}

/// Points of the learning-curve grid: 0%, 5%, …, 100% of training.
pub const CURVE_POINTS: usize = 21;

/// A run's eval curve at `CURVE_POINTS` evenly spaced fractions of its `budget` steps,
/// interpolated linearly between evaluations and held flat before the first and after the
/// last; empty for a run without evaluations.
pub fn curve_on_grid(curve: &[(u64, f64)], budget: u64) -> Vec<f64> {
    if curve.is_empty() {
        return Vec::new();
    }
    (0..CURVE_POINTS)
        .map(|k| {
            let x = budget as f64 * k as f64 / (CURVE_POINTS - 1) as f64;
            let after = curve.partition_point(|p| (p.0 as f64) < x);
            match after {
                0 => curve[0].1,
                n if n == curve.len() => curve[n - 1].1,
                n => {
                    let (a, b) = (curve[n - 1], curve[n]);
                    let t = (x - a.0 as f64) / (b.0 - a.0) as f64;
                    a.1 + t * (b.1 - a.1)
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_interpolated_onto_the_grid() {
        let c = curve_on_grid(&[(100, 0.0), (300, 1.0)], 400);
        assert_eq!(c.len(), CURVE_POINTS);
        assert_eq!(c[0], 0.0, "held flat before the first evaluation");
        assert!((c[5] - 0.0).abs() < 1e-12, "step 100");
        assert!((c[10] - 0.5).abs() < 1e-12, "step 200 halfway");
        assert_eq!(c[20], 1.0, "held after the last");
        assert!(curve_on_grid(&[], 10).is_empty());
    }

    #[test]
    fn pairs_are_complementary_and_the_lead_is_picked() {
        let m = |label: &str, s: Vec<Vec<f64>>| Method { label: label.into(), final_scores: s.clone(), auc_scores: s, curves: vec![] };
        let methods = [m("hard", vec![vec![0.0, 0.2, 0.1]]), m("soft", vec![vec![0.5, 0.9, 0.1]])];
        let a = analyze(&["e".into()], &methods, &[(1, 0)], (vec![], String::new()), Bootstrap::default(), "test");
        assert_eq!(a.improvement.len(), 2);
        assert_eq!(a.lead.len(), 1);
        let lead = &a.lead[0];
        // soft > hard: 0.5 and 0.9 beat all three, 0.1 ties 0.1 and beats 0.0 → (3+3+1.5)/9.
        assert_eq!((lead.x.as_str(), lead.y.as_str()), ("soft", "hard"));
        assert!((lead.probability - 7.5 / 9.0).abs() < 1e-12);
        let back = a.improvement.iter().find(|p| p.x == "hard").unwrap();
        assert!((back.probability + lead.probability - 1.0).abs() < 1e-12);
        let (c, b) = (lead.ci.unwrap(), back.ci.unwrap());
        assert!((c.low + b.high - 1.0).abs() < 1e-12 && (c.high + b.low - 1.0).abs() < 1e-12);
        assert_eq!(a.profiles.thresholds.len(), PROFILE_POINTS);
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }
}
