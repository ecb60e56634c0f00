//! `tame inspect PATH`: one row per run found under PATH (a run is a directory holding event
//! files) with its agent, env, τ, seed, steps and the last/best/mean of one scalar tag.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use serde_json::Value;

use crate::tensorboard::{find_runs, read_events, HParamValue, RunEvents, SessionStatus};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A run directory, or any directory above runs (a sweep, `runs/`).
    path: PathBuf,
    /// Scalar tag to summarise per run.
    #[arg(long, default_value = "eval/mean_return")]
    tag: String,
    /// Print CSV instead of a table.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print a JSON array of rows instead of a table.
    #[arg(long)]
    json: bool,
}

/// One run's line of the report.
#[derive(Debug, serde::Serialize)]
struct Row {
    run: String,
    agent: Value,
    env: Value,
    tau: Value,
    seed: Value,
    /// Largest step of anything the run logged.
    steps: Option<u64>,
    /// How the run ended, from its hparams session-end record (`interrupted` from its
    /// summary.json, as TensorBoard has no such status; `running` while its lock is held).
    status: Option<String>,
    last: Option<f64>,
    /// Largest value (returns: higher is better).
    best: Option<f64>,
    mean: Option<f64>,
    /// How many values of the tag the run logged.
    points: usize,
}

const COLUMNS: [&str; 11] =
    ["run", "agent", "env", "tau", "seed", "steps", "status", "last", "best", "mean", "points"];

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    if !args.path.exists() {
        bail!(
            "{} does not exist (give a run directory or a directory of runs)",
            args.path.display()
        );
    }
    let runs = find_runs(&args.path)?;
    if runs.is_empty() {
        bail!("no TensorBoard event files (events.out.tfevents.*) under {}", args.path.display());
    }
    let mut rows = Vec::new();
    let mut tag_seen = false;
    let mut all_tags = std::collections::BTreeSet::new();
    for dir in &runs {
        let events = read_events(dir)?;
        for problem in &events.problems {
            eprintln!("warning: {problem}");
        }
        tag_seen |= events.scalars.contains_key(&args.tag);
        all_tags.extend(events.scalars.keys().cloned());
        rows.push(row(&args.path, dir, &events, &args.tag));
    }
    if !tag_seen {
        let known: Vec<_> = all_tags.into_iter().collect();
        eprintln!(
            "warning: no run logged the scalar {:?}; logged scalars: {}",
            args.tag,
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if args.csv {
        print!("{}", to_csv(&rows));
    } else {
        print!("{}", to_table(&rows, &args.tag));
    }
    Ok(())
}

fn row(root: &Path, dir: &Path, events: &RunEvents, tag: &str) -> Row {
    let name = dir
        .strip_prefix(root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new(dir.file_name().unwrap_or(dir.as_os_str())))
        .display()
        .to_string();
    let config = read_config(dir);
    let from_name = parse_run_name(dir);
    let field = |key: &str| -> Value {
        let hparam = events.hparams.as_ref().and_then(|h| h.values.get(key)).map(|v| match v {
            HParamValue::Str(s) => Value::from(s.as_str()),
            HParamValue::Num(x) => number(*x),
            HParamValue::Bool(b) => Value::from(*b),
        });
        hparam
            .or_else(|| config.as_ref().and_then(|c| config_value(c, key)))
            .or_else(|| from_name.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
            .unwrap_or(Value::Null)
    };
    let values: Vec<f64> =
        events.scalars.get(tag).map(|ps| ps.iter().map(|p| p.value).collect()).unwrap_or_default();
    let end = events.hparams.as_ref().and_then(|h| h.end).map(|(status, _)| status);
    let status = match end {
        // TensorBoard has no "interrupted" status; the run's summary says so instead.
        Some(SessionStatus::Unknown) if summary_says_interrupted(dir) => Some(SessionStatus::Interrupted),
        // No session end yet: running if a live `tame train` holds the directory's lock.
        None if crate::lock::is_locked(dir) => Some(SessionStatus::Running),
        other => other,
    }
    .map(|status| serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_owned)));
    Row {
        run: name,
        agent: field("agent"),
        env: field("env"),
        tau: field("tau"),
        seed: field("seed"),
        steps: events.last_step(),
        status: status.flatten(),
        last: values.last().copied(),
        best: values.iter().copied().reduce(f64::max),
        mean: (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        points: values.len(),
    }
}

/// Whether the run's `summary.json` exists and says `"interrupted": true`.
fn summary_says_interrupted(dir: &Path) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("summary.json")) else { return false };
    serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v["interrupted"] == Value::Bool(true))
}

/// Whole numbers print without a fraction (seed 3, not 3.0).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

fn read_config(dir: &Path) -> Option<toml::Table> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    match text.parse::<toml::Table>() {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("warning: {}: {e}", dir.join("config.toml").display());
            None
        }
    }
}

/// `key` at the top level of the config, or in one of its tables.
fn config_value(config: &toml::Table, key: &str) -> Option<Value> {
    let found = config
        .get(key)
        .or_else(|| config.values().filter_map(|v| v.as_table()).find_map(|t| t.get(key)))?;
    Some(match found {
        toml::Value::String(s) => Value::from(s.as_str()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(x) => number(*x),
        toml::Value::Boolean(b) => Value::from(*b),
        other => Value::from(other.to_string()),
    })
}

/// Fields from a run directory named `<env>__<agent>__tau<τ>__seed<S>__<time>`.
fn parse_run_name(dir: &Path) -> Vec<(&'static str, Value)> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parts: Vec<&str> = name.split("__").collect();
    if parts.len() < 4 {
        return Vec::new();
    }
    let mut out = vec![("env", Value::from(parts[0])), ("agent", Value::from(parts[1]))];
    if let Some(tau) = parts[2].strip_prefix("tau") {
        out.push(("tau", tau.parse::<f64>().map_or_else(|_| Value::from(tau), number)));
    }
    if let Some(seed) = parts[3].strip_prefix("seed") {
        out.push(("seed", seed.parse::<u64>().map_or_else(|_| Value::from(seed), Value::from)));
    }
    out
}

fn cells(r: &Row) -> [String; 11] {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let num = |x: Option<f64>| x.map(|x| tame_agents::numfmt::table(x, 3)).unwrap_or_default();
    [
        r.run.clone(),
        text(&r.agent),
        text(&r.env),
        text(&r.tau),
        text(&r.seed),
        r.steps.map(|s| s.to_string()).unwrap_or_default(),
        r.status.clone().unwrap_or_default(),
        num(r.last),
        num(r.best),
        num(r.mean),
        r.points.to_string(),
    ]
}

fn to_table(rows: &[Row], tag: &str) -> String {
    let header = COLUMNS.map(str::to_owned);
    let body: Vec<[String; 11]> = rows.iter().map(cells).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for line in &body {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("last / best (max) / mean of {tag}\n");
    for line in std::iter::once(&header).chain(&body) {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            // Text columns left-aligned, numbers right-aligned.
            .map(
                |(i, (c, w))| {
                    if i < 5 || i == 6 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                },
            )
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn to_csv(rows: &[Row]) -> String {
    let quote = |c: &str| {
        if c.contains([',', '"', '\n']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.to_owned()
        }
    };
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let line: Vec<String> = cells(r).iter().map(|c| quote(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_give_env_agent_tau_seed() {
        let got = parse_run_name(Path::new("runs/pendulum__sac__tau0.1__seed3__20250101-1200"));
        let want = vec![
            ("env", Value::from("pendulum")),
            ("agent", Value::from("sac")),
            ("tau", Value::from(0.1)),
            ("seed", Value::from(3u64)),
        ];
        assert_eq!(got, want);
        let auto = parse_run_name(Path::new("cartpole__es__tauauto__seed0__t"));
        assert_eq!(auto[2], ("tau", Value::from("auto")));
        assert!(parse_run_name(Path::new("my-run")).is_empty());
    }
}
