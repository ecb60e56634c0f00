//! What a sweep runs: the grid of τ, σ and seeds, and the base settings of every run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use tame_agents::limits::{MAX_CONFIG_INT, MAX_TAU};
use tame_agents::numfmt::{compact, exact_short};

use super::normalize::{self, GivenNormalization};
use crate::cli_values::{MAX_SIGMA, MAX_SWEEP_RUNS, MAX_SWEEP_SEEDS};
use crate::run_dir::AgentKind;

/// One temperature of the grid: a fixed τ ≥ 0 (0 is the hard argmax) or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TauSpec {
    Fixed(f64),
    Auto,
}

impl TauSpec {
    pub fn parse(text: &str) -> anyhow::Result<TauSpec> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(TauSpec::Auto);
        }
        match t.parse::<f64>() {
            Ok(v) if (0.0..=MAX_TAU).contains(&v) => Ok(TauSpec::Fixed(v)),
            Ok(_) => bail!("τ value {t} is out of range; accepted: a number 0 ≤ τ ≤ 1e6 or 'auto'"),
            Err(_) => bail!("τ value '{t}' is not a number; accepted: a number 0 ≤ τ ≤ 1e6 or 'auto'"),
        }
    }

    /// The fixed value, `None` for `auto`.
    pub fn value(self) -> Option<f64> {
        match self {
            TauSpec::Fixed(v) => Some(v),
            TauSpec::Auto => None,
        }
    }
}

/// Exact (children get `--tau` from it, and sweep.json stores it) but short: 1e-300, not a
/// 300-digit decimal.
impl fmt::Display for TauSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TauSpec::Fixed(v) => f.write_str(&exact_short(*v)),
            TauSpec::Auto => write!(f, "auto"),
        }
    }
}

impl From<TauSpec> for String {
    fn from(t: TauSpec) -> String {
        t.to_string()
    }
}

impl TryFrom<String> for TauSpec {
    type Error = anyhow::Error;
    fn try_from(s: String) -> anyhow::Result<TauSpec> {
        TauSpec::parse(&s)
    }
}

/// Settings a sweep TOML file may hold besides the plan itself.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub agent: Option<AgentKind>,
    pub env: Option<String>,
    pub envs: Option<Vec<String>>,
    pub taus: Option<Vec<toml::Value>>,
    pub sigmas: Option<Vec<f64>>,
    pub seeds: Option<u64>,
    pub steps: Option<u64>,
    pub eval_every: Option<u64>,
    pub config: Option<PathBuf>,
    pub threshold: Option<f64>,
    pub jobs: Option<usize>,
    pub out: Option<PathBuf>,
    /// Per-env base configs: `[configs]` then `ENV = "FILE"`.
    #[serde(default)]
    pub configs: BTreeMap<String, PathBuf>,
    /// Per-env steps-to-threshold targets: `[thresholds]` then `ENV = RETURN`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// Per-env score normalizations: `[normalization."ENV"]` then `random`, `reference`.
    #[serde(default)]
    pub normalization: BTreeMap<String, GivenNormalization>,
}

impl SweepFile {
    /// Parses a sweep file's text; unknown keys are errors that list the accepted ones.
    pub fn from_toml(text: &str) -> anyhow::Result<SweepFile> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    /// The file's `taus`: numbers or the word "auto".
    pub fn tau_specs(taus: &[toml::Value]) -> anyhow::Result<Vec<TauSpec>> {
        taus.iter()
            .map(|v| match v {
                toml::Value::String(s) => TauSpec::parse(s),
                toml::Value::Float(f) => TauSpec::parse(&f.to_string()),
                toml::Value::Integer(i) => TauSpec::parse(&i.to_string()),
                other => bail!("τ value {other} in the sweep file is neither a number nor 'auto'"),
            })
            .collect()
    }
}

/// The whole sweep, as resolved from flags and an optional TOML file. Stored as the sweep
/// directory's `sweep.json` (machine-written, so unknown fields of older versions, such as
/// a single `threshold`, are ignored; the sweep file the user writes is checked strictly).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    pub agent: AgentKind,
    /// The envs, each run on the whole grid (`env = "..."` in older sweep files).
    #[serde(alias = "env", deserialize_with = "one_or_many")]
    pub envs: Vec<String>,
    pub taus: Vec<TauSpec>,
    /// ES parameter-space widths; empty means the agent's default σ.
    #[serde(default)]
    pub sigmas: Vec<f64>,
    pub seeds: Vec<u64>,
    /// Env steps per run; `None` keeps the agent's (or the base config's) default.
    #[serde(default)]
    pub steps: Option<u64>,
    /// Base config file handed to every run (`tame train --config`) whose env has none of
    /// its own in `configs`.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Per-env base configs (env name → TOML file), e.g. other networks or budgets per env.
    #[serde(default)]
    pub configs: BTreeMap<String, PathBuf>,
    /// Evaluation period in env steps, handed to every run; `None` keeps the agent's default.
    #[serde(default)]
    pub eval_every: Option<u64>,
    /// Return that counts as "reached" for the steps-to-threshold column, per env.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// Score normalizations given in the sweep file, per env (others are exact or documented).
    #[serde(default)]
    pub normalization: BTreeMap<String, GivenNormalization>,
}

/// Accepts one env name (older `sweep.json` files) or a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// One run of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub env: String,
    /// Base config of the run (`tame train --config`).
    pub config: Option<PathBuf>,
    pub tau: TauSpec,
    pub sigma: Option<f64>,
    pub seed: u64,
    /// Directory name under `<out>/runs/`.
    pub name: String,
}

/// An env name as a directory-name part: characters other than letters, digits, `.`, `-`
/// and `_` (the `:` and `/` of `map:PATH`, options) become `_`.
pub fn env_slug(env: &str) -> String {
    env.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

impl SweepPlan {
    /// Checks the plan's values, naming the bad one and what is accepted.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.taus.is_empty() {
            bail!("the sweep has no τ values; give --taus, e.g. --taus 0,0.1,auto");
        }
        if self.seeds.is_empty() {
            bail!("the sweep has no seeds; give --seeds N with N ≥ 1");
        }
        if let Some((env, t)) = self.thresholds.iter().find(|(_, t)| !t.is_finite()) {
            bail!("threshold {t} for {env} is not a finite number; accepted: any finite return, e.g. --threshold 0.7");
        }
        let int_max = format!("{MAX_CONFIG_INT} (the largest integer a TOML config can hold)");
        if let Some(s) = self.steps.filter(|s| !(1..=MAX_CONFIG_INT).contains(s)) {
            bail!("steps {s} is out of range; accepted: 1 to {int_max}");
        }
        if let Some(e) = self.eval_every.filter(|e| !(1..=MAX_CONFIG_INT).contains(e)) {
            bail!("eval_every {e} is out of range; accepted: 1 to {int_max}");
        }
        if self.seeds.len() as u64 > MAX_SWEEP_SEEDS {
            bail!("the sweep has {} seeds; accepted: 1 to {MAX_SWEEP_SEEDS} per grid point", self.seeds.len());
        }
        if let Some(&s) = self.seeds.iter().find(|&&s| s > MAX_CONFIG_INT) {
            bail!("seed {s} is out of range; accepted: 0 to {int_max}");
        }
        let grid = self
            .envs
            .len()
            .saturating_mul(self.taus.len())
            .saturating_mul(self.sigmas.len().max(1))
            .saturating_mul(self.seeds.len());
        if grid > MAX_SWEEP_RUNS {
            bail!(
                "the sweep has {} envs × {} τ × {} σ × {} seeds = {grid} runs; accepted: at most {MAX_SWEEP_RUNS} runs per sweep",
                self.envs.len(),
                self.taus.len(),
                self.sigmas.len().max(1),
                self.seeds.len()
            );
        }
        if self.envs.is_empty() {
            bail!("the sweep has no envs; give --env ENV or --envs A,B,C");
        }
        for env in &self.envs {
            tame_envs::spec(env)?;
        }
        let listed = |key: &String| self.envs.contains(key);
        for (what, key) in self
            .configs
            .keys()
            .map(|k| ("[configs]", k))
            .chain(self.normalization.keys().map(|k| ("[normalization]", k)))
            .chain(self.thresholds.keys().map(|k| ("thresholds", k)))
        {
            if !listed(key) {
                bail!("{what} names env '{key}', which the sweep does not run; its envs: {}", self.envs.join(", "));
            }
        }
        // Scores of several envs are aggregated only once normalized: refuse before any run.
        if self.envs.len() > 1 {
            for env in &self.envs {
                normalize::resolve(env, &self.normalization)?;
            }
        }
        if let Some(s) = self.sigmas.iter().find(|s| !(**s > 0.0 && **s <= MAX_SIGMA)) {
            bail!("σ value {} is out of range; accepted: numbers 0 < σ ≤ 1000", compact(*s));
        }
        if !self.sigmas.is_empty() && self.agent != AgentKind::Es {
            bail!("--sigmas is for the es agent (parameter-space smoothing); agent is {}", self.agent.name());
        }
        if self.agent == AgentKind::Es && self.taus.contains(&TauSpec::Auto) {
            bail!("τ = auto is not supported by the es agent; accepted: numbers >= 0 (0 = hard argmax)");
        }
        let mut seen = std::collections::HashSet::new();
        for r in self.runs() {
            if !seen.insert(r.name.clone()) {
                bail!("the grid lists run '{}' twice; remove the duplicate τ, σ or seed", r.name);
            }
        }
        Ok(())
    }

    /// The grid in a fixed order: env, then τ, then σ, then seed. With one env the run names
    /// are `tau<τ>[__sigma<σ>]__seed<S>`; with several each starts with its env's slug.
    pub fn runs(&self) -> Vec<RunSpec> {
        let sigmas: Vec<Option<f64>> = if self.sigmas.is_empty() {
            vec![None]
        } else {
            self.sigmas.iter().copied().map(Some).collect()
        };
        let mut out = Vec::new();
        for env in &self.envs {
            let prefix = if self.envs.len() > 1 { format!("{}__", env_slug(env)) } else { String::new() };
            let config = self.configs.get(env).or(self.config.as_ref()).cloned();
            for &tau in &self.taus {
                for &sigma in &sigmas {
                    for &seed in &self.seeds {
                        let sigma_part = sigma.map(|s| format!("__sigma{}", exact_short(s))).unwrap_or_default();
                        let name = format!("{prefix}tau{tau}{sigma_part}__seed{seed}");
                        out.push(RunSpec { env: env.clone(), config: config.clone(), tau, sigma, seed, name });
                    }
                }
            }
        }
        out
    }

    /// The steps-to-threshold target of `env`, if any.
    pub fn threshold(&self, env: &str) -> Option<f64> {
        self.thresholds.get(env).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SweepPlan {
        SweepPlan {
            agent: AgentKind::Sac,
            envs: vec!["frozenlake".into()],
            taus: vec![TauSpec::Fixed(0.0), TauSpec::Fixed(0.1), TauSpec::Auto],
            sigmas: vec![],
            seeds: vec![0, 1],
            steps: Some(100),
            config: None,
            configs: BTreeMap::new(),
            eval_every: None,
            thresholds: BTreeMap::new(),
            normalization: BTreeMap::new(),
        }
    }

    #[test]
    fn tau_parsing_accepts_numbers_and_auto_only() {
        assert_eq!(TauSpec::parse("0").unwrap(), TauSpec::Fixed(0.0));
        assert_eq!(TauSpec::parse(" AUTO ").unwrap(), TauSpec::Auto);
        let neg = TauSpec::parse("-0.1").unwrap_err().to_string();
        assert!(neg.contains("-0.1") && neg.contains("auto"), "{neg}");
        let word = TauSpec::parse("hot").unwrap_err().to_string();
        assert!(word.contains("'hot'"), "{word}");
        assert!(TauSpec::parse("nan").is_err());
    }

    #[test]
    fn grid_is_ordered_and_named() {
        let names: Vec<String> = plan().runs().into_iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            ["tau0__seed0", "tau0__seed1", "tau0.1__seed0", "tau0.1__seed1", "tauauto__seed0", "tauauto__seed1"]
        );
    }

    #[test]
    fn several_envs_get_their_own_names_and_configs() {
        let mut p = plan();
        p.envs = vec!["frozenlake".into(), "map:configs/maps/rooms.txt".into()];
        p.taus = vec![TauSpec::Fixed(0.0)];
        p.seeds = vec![0];
        p.config = Some("base.toml".into());
        p.configs = BTreeMap::from([("frozenlake".to_string(), PathBuf::from("lake.toml"))]);
        let runs = p.runs();
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["frozenlake__tau0__seed0", "map_configs_maps_rooms.txt__tau0__seed0"]);
        assert_eq!(runs[0].config, Some(PathBuf::from("lake.toml")));
        assert_eq!(runs[1].config, Some(PathBuf::from("base.toml")), "no own config: the base one");
        assert_eq!(runs[1].env, "map:configs/maps/rooms.txt");
        p.envs = vec!["frozenlake".into(), "frozenlake".into()];
        p.configs.clear();
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn several_envs_need_a_normalization_each() {
        let mut p = plan();
        p.envs = vec!["frozenlake".into(), "pendulum:discrete=3".into()];
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("'pendulum:discrete=3'") && err.contains("[normalization."), "{err}");
        p.normalization = BTreeMap::from([(
            "pendulum:discrete=3".to_string(),
            GivenNormalization { random: -1200.0, reference: -160.0 },
        )]);
        p.validate().unwrap();
        p.configs = BTreeMap::from([("cartpole".to_string(), PathBuf::from("c.toml"))]);
        assert!(p.validate().unwrap_err().to_string().contains("'cartpole'"));
    }

    #[test]
    fn older_sweep_json_with_one_env_still_reads() {
        let old = r#"{"agent":"sac","env":"frozenlake","taus":["0"],"seeds":[0],"steps":10,"config":null,"eval_every":null,"threshold":0.7}"#;
        let p: SweepPlan = serde_json::from_str(old).unwrap();
        assert_eq!(p.envs, ["frozenlake"]);
    }

    #[test]
    fn bad_plans_are_rejected_with_the_value() {
        let mut p = plan();
        p.sigmas = vec![0.1];
        assert!(p.validate().unwrap_err().to_string().contains("es agent"));
        let mut p = plan();
        p.agent = AgentKind::Es;
        p.sigmas = vec![0.0];
        assert!(p.validate().unwrap_err().to_string().contains("σ value 0"));
        let mut p = plan();
        p.taus.push(TauSpec::Fixed(0.1));
        assert!(p.validate().unwrap_err().to_string().contains("twice"));
        let mut p = plan();
        p.agent = AgentKind::Es;
        assert!(p.validate().unwrap_err().to_string().contains("auto"));
        let mut p = plan();
        p.envs = vec!["nosuchenv".into()];
        assert!(p.validate().unwrap_err().to_string().contains("nosuchenv"));
        plan().validate().unwrap();
    }
}
