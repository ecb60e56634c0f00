//! `tame report`: recomputes a sweep's report (tables, normalized aggregates with stratified
//! bootstrap CIs, performance profiles, probability of improvement, IQM curves and their
//! plots) from its run directories alone, or compares two sweeps on the envs they share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::fsutil::write_atomic;
use crate::stats::Bootstrap;
use crate::sweep::{self, Analysis, Normalization, RunOutcome, RunSpec, SweepPlan, SweepSummary};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Sweep directory (the one holding sweep.json and runs/). Its summary files and plots
    /// are rewritten from the runs' own files.
    sweep: PathBuf,
    /// A second sweep to compare against on the envs both ran (e.g. ES against SAC): every
    /// (τ, σ) of both becomes a method of one analysis, written to --out.
    #[arg(long)]
    against: Option<PathBuf>,
    /// Directory of the comparison's report. [default: SWEEP/vs-<AGAINST's directory name>]
    #[arg(long, requires = "against")]
    out: Option<PathBuf>,
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = crate::stats::DEFAULT_RESAMPLES)]
    resamples: usize,
    /// Seed of the bootstrap's ChaCha8 generator.
    #[arg(long, default_value_t = Bootstrap::default().seed)]
    seed: u64,
    /// Do not print the Markdown summary.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    if args.resamples < 100 {
        bail!("--resamples {}: too few for a 95% percentile interval; accepted: >= 100 (default 2000)", args.resamples);
    }
    let boot = Bootstrap { resamples: args.resamples, seed: args.seed, ..Bootstrap::default() };
    let a = load(&args.sweep, boot)?;
    let Some(other) = &args.against else {
        sweep::write_reports(&a, &args.sweep)?;
        sweep::write_plots(&a, &args.sweep)?;
        if !args.quiet {
            println!("{}", sweep::to_markdown(&a));
        }
        println!("Wrote {}/summary.{{csv,md,json}} and plots.", args.sweep.display());
        warn_failed(&a);
        return Ok(());
    };
    let b = load(other, boot)?;
    let name = other.file_name().map_or("other".into(), |n| n.to_string_lossy().into_owned());
    let out = args.out.clone().unwrap_or_else(|| args.sweep.join(format!("vs-{name}")));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let comparison = compare(&a, &args.sweep, &b, other, boot)?;
    let md = comparison_markdown(&comparison);
    write_atomic(&out.join("summary.md"), md.as_bytes())?;
    let json = serde_json::to_string_pretty(&comparison).context("serializing the comparison")?;
    write_atomic(&out.join("summary.json"), json.as_bytes())?;
    sweep::write_analysis_plots(&comparison.analysis, &out, &comparison.title)?;
    if !args.quiet {
        println!("{md}");
    }
    println!("Wrote {}/summary.{{md,json}} and plots.", out.display());
    warn_failed(&a);
    warn_failed(&b);
    Ok(())
}

fn warn_failed(s: &SweepSummary) {
    let failed = s.runs.iter().filter(|r| r.final_return.is_none()).count();
    if failed > 0 {
        eprintln!("note: {failed} of {} runs are not finished; they are left out and listed in the summary", s.runs.len());
    }
}

/// Reads a sweep's plan and every run directory; a run without a finished summary is
/// interrupted, not started or failed, kept out of the statistics and reported.
fn load(dir: &Path, boot: Bootstrap) -> anyhow::Result<SweepSummary> {
    let path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading {}: is {} a sweep directory (made by `tame sweep`)?", path.display(), dir.display())
    })?;
    let plan: SweepPlan = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let outcomes: Vec<(RunSpec, RunOutcome)> = plan
        .runs()
        .into_iter()
        .map(|spec| {
            let run = dir.join("runs").join(&spec.name);
            let outcome = if sweep::is_finished(&run) {
                RunOutcome::Finished
            } else if !run.exists() {
                RunOutcome::NotStarted
            } else if run.join("summary.json").is_file() {
                // A summary that is not finished says `interrupted`: the sweep resumes it.
                RunOutcome::Interrupted
            } else {
                RunOutcome::Failed(format!(
                    "no summary.json in {} (the run failed or was killed)",
                    run.display()
                ))
            };
            (spec, outcome)
        })
        .collect();
    sweep::summarize_with(&plan, dir, &outcomes, boot)
}

/// Two sweeps in one analysis.
#[derive(Debug, Serialize)]
struct Comparison {
    title: String,
    sweeps: [String; 2],
    envs: Vec<String>,
    normalization: BTreeMap<String, Normalization>,
    analysis: Analysis,
}

fn compare(a: &SweepSummary, a_dir: &Path, b: &SweepSummary, b_dir: &Path, boot: Bootstrap) -> anyhow::Result<Comparison> {
    let envs: Vec<String> = a.plan.envs.iter().filter(|e| b.plan.envs.contains(e)).cloned().collect();
    if envs.is_empty() {
        bail!(
            "{} ran {} and {} ran {}: no env in common to compare on",
            a_dir.display(),
            a.plan.envs.join(", "),
            b_dir.display(),
            b.plan.envs.join(", ")
        );
    }
    let mut normalization = BTreeMap::new();
    for env in &envs {
        match (a.normalization.get(env), b.normalization.get(env)) {
            (Some(x), Some(y)) if (x.random - y.random).abs() > 1e-9 || (x.reference - y.reference).abs() > 1e-9 => bail!(
                "{env} is normalized differently by the two sweeps (random {} vs {}, reference {} vs {}); \
                 give both the same [normalization.\"{env}\"]",
                x.random,
                y.random,
                x.reference,
                y.reference
            ),
            (Some(x), Some(_)) => {
                normalization.insert(env.clone(), x.clone());
            }
            _ if envs.len() > 1 => bail!("{env} has no known normalization in one of the sweeps"),
            _ => {}
        }
    }
    let names = if a.plan.agent != b.plan.agent {
        [a.plan.agent.name().to_string(), b.plan.agent.name().to_string()]
    } else {
        [a_dir, b_dir].map(|d| d.file_name().map_or("sweep".into(), |n| n.to_string_lossy().into_owned()))
    };
    let mut methods = Vec::new();
    let mut runs = Vec::new();
    for (s, name) in [a, b].into_iter().zip(&names) {
        let plan = SweepPlan { envs: envs.clone(), ..s.plan.clone() };
        let own: Vec<_> = s.runs.iter().filter(|r| envs.contains(&r.env)).cloned().collect();
        let (m, _) = sweep::methods_of(&plan, &own, &normalization, &format!("{name} "));
        methods.push(m);
        runs.extend(own);
    }
    // Same (τ, σ) on both sides lead; without any, every pair across the sweeps.
    let (ma, mb) = (&methods[0], &methods[1]);
    let key = |label: &str, name: &str| label.strip_prefix(&format!("{name} ")).unwrap_or(label).to_string();
    let mut lead: Vec<(usize, usize)> = Vec::new();
    for (i, x) in ma.iter().enumerate() {
        for (j, y) in mb.iter().enumerate() {
            if key(&x.label, &names[0]) == key(&y.label, &names[1]) {
                lead.push((i, ma.len() + j));
            }
        }
    }
    if lead.is_empty() {
        let (na, nb) = (ma.len(), mb.len());
        lead = (0..na).flat_map(|i| (0..nb).map(move |j| (i, na + j))).collect();
    }
    let all: Vec<sweep::Method> = methods.into_iter().flatten().collect();
    let scores = if normalization.len() == envs.len() { "normalized final eval return" } else { "raw final eval return" };
    let mut analysis = sweep::analyze(&envs, &all, &lead, sweep::curve_grid(&runs), boot, scores);
    sweep::note_failures(&runs, &mut analysis);
    Ok(Comparison {
        title: format!("{} vs {}", names[0], names[1]),
        sweeps: [a_dir.display().to_string(), b_dir.display().to_string()],
        envs,
        normalization,
        analysis,
    })
}

fn comparison_markdown(c: &Comparison) -> String {
    let mut s = format!("# {}: {} against {}\n\n", c.title, c.sweeps[0], c.sweeps[1]);
    sweep::analysis_markdown(&c.analysis, "Each method of the first sweep against the second", &mut s);
    sweep::normalization_markdown(&c.normalization, &mut s);
    s
}
