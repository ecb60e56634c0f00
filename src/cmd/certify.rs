//! `tame certify`: the smoothing certificate K_smooth (ε, ‖S_ε[L] − L‖∞, Lip(∇S_ε[L]),
//! |x*_ε − x*|), measured beside its theoretical bounds, for a built-in objective or, with
//! `--env`, for a gridworld's soft Bellman smoothing (ε = τ, from the exact solver).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use tame_agents::smoothing::{certify, certify_gridworld, smoothed_curve, Certificate, Objective, Smoothing};

use crate::cli_values as cv;
use tame_agents::numfmt::compact;
use crate::plot::{line_panels, LinePanel, Series};

#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// Non-smooth objective L: abs (|x|), relu (max(0,x)), hinge (max(0,1-x)), max (max of the
    /// vector (-x, x/2, 2x-2)), zero-one (1[x<=0]). Default: abs.
    #[arg(long, conflicts_with = "env")]
    objective: Option<String>,
    /// Smoothing S_eps: gaussian (noise std eps), softplus (beta = 1/eps), huber (delta = eps),
    /// gelu (x*Phi(x/eps)), lse (temperature eps), moreau (envelope lambda = eps).
    /// Default: gaussian.
    #[arg(long, conflicts_with = "env")]
    smoothing: Option<String>,
    /// Smoothing width eps (> 0). Default: 0.1. Not with --env (there eps = --tau).
    #[arg(long, conflicts_with = "env", allow_hyphen_values = true, value_parser = cv::width_eps)]
    eps: Option<f64>,
    /// Half-width R of the grid [-R, R] the objective's entries are measured on (2 to 1e6).
    #[arg(long, default_value_t = 3.0, conflicts_with = "env", allow_hyphen_values = true, value_parser = range)]
    range: f64,
    /// Certify a gridworld instead (e.g. frozenlake8x8): the soft Bellman operator's
    /// log-sum-exp smoothing of the max, with eps = tau, from the exact solver.
    #[arg(long)]
    env: Option<String>,
    /// Temperature tau (> 0) for --env; required there unless --sweep.
    #[arg(long, requires = "env", allow_hyphen_values = true, value_parser = cv::width_eps)]
    tau: Option<f64>,
    /// Discount gamma in [0, 1) for --env. Default: 0.99.
    #[arg(long, requires = "env", allow_hyphen_values = true, value_parser = cv::discount)]
    gamma: Option<f64>,
    /// Compute the certificate across a log-spaced range of eps (tau with --env), print each
    /// entry against eps with its fitted log-log slope (1 = linear in eps).
    #[arg(long)]
    sweep: bool,
    /// Smallest eps of the sweep. Default: 1e-3 (1e-4 with --env).
    #[arg(long, requires = "sweep", allow_hyphen_values = true, value_parser = cv::width_eps)]
    eps_min: Option<f64>,
    /// Largest eps of the sweep. Default: 1 (100 with --env).
    #[arg(long, requires = "sweep", allow_hyphen_values = true, value_parser = cv::width_eps)]
    eps_max: Option<f64>,
    /// Number of sweep points, log-spaced from --eps-min to --eps-max (2 to 1000).
    #[arg(long, default_value_t = 13, requires = "sweep", allow_hyphen_values = true,
          value_parser = cv::count::<2, { cv::MAX_SWEEP_POINTS }>)]
    points: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also draw a PNG: each entry and its bound against eps with --sweep; otherwise L and
    /// S_eps L with their derivatives (per-state values with --env).
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
}

/// A grid half-width R in [2, 1e6] (2 holds every kink; far beyond 1e6 the grid's spacing
/// swamps the smoothing widths).
fn range(text: &str) -> Result<f64, String> {
    cv::number_in(text, 2.0, false, cv::MAX_RANGE, false)
}

/// What is being certified.
enum Target {
    Objective { objective: Objective, smoothing: Smoothing, range: f64 },
    Gridworld { env: String, table: tame_envs::TransitionTable, gamma: f64 },
}

impl Target {
    fn certificate(&self, eps: f64) -> anyhow::Result<Certificate> {
        match self {
            Target::Objective { objective, smoothing, range } => Ok(certify(*objective, *smoothing, eps, *range)?),
            Target::Gridworld { env, table, gamma } => {
                certify_gridworld(table, *gamma, eps)
                    .map_err(crate::exit::interrupted_or)
                    .with_context(|| format!("certifying {env} at tau = {}", compact(eps)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Objective { objective, smoothing, .. } => {
                format!("L(x) = {} smoothed by {} (eps = {})", objective.formula(), smoothing, smoothing.eps_meaning())
            }
            Target::Gridworld { env, gamma, .. } => {
                format!("{env}: soft value iteration, eps = tau, gamma = {}", compact(*gamma))
            }
        }
    }

    fn json_context(&self) -> serde_json::Value {
        match self {
            Target::Objective { objective, smoothing, range } => serde_json::json!({
                "objective": objective.name(), "formula": objective.formula(),
                "smoothing": smoothing.name(), "eps_meaning": smoothing.eps_meaning(), "range": range,
            }),
            Target::Gridworld { env, gamma, table } => serde_json::json!({
                "env": env, "gamma": gamma, "eps_meaning": "temperature tau",
                "n_states": table.n_states, "n_actions": table.n_actions,
            }),
        }
    }
}

pub fn run(args: CertifyArgs) -> anyhow::Result<()> {
    let target = match &args.env {
        Some(env) => {
            let gamma = args.gamma.unwrap_or(0.99);
            if !(0.0..1.0).contains(&gamma) {
                bail!("--gamma {} is outside [0, 1); the discounted solver needs 0 <= gamma < 1", compact(gamma));
            }
            let table = tame_envs::transition_table(env).with_context(|| format!("--env {env}"))?;
            Target::Gridworld { env: env.clone(), table, gamma }
        }
        None => Target::Objective {
            objective: args.objective.as_deref().unwrap_or("abs").parse().context("--objective")?,
            smoothing: args.smoothing.as_deref().unwrap_or("gaussian").parse().context("--smoothing")?,
            range: args.range,
        },
    };
    let is_env = args.env.is_some();
    if args.sweep {
        let (lo, hi) = if is_env { (1e-4, 100.0) } else { (1e-3, 1.0) };
        let (lo, hi) = (args.eps_min.unwrap_or(lo), args.eps_max.unwrap_or(hi));
        if !(lo > 0.0 && hi > lo && hi.is_finite()) {
            bail!(
                "sweep range --eps-min {} .. --eps-max {} is invalid; accepted: 0 < eps-min < eps-max <= 1e6",
                compact(lo),
                compact(hi)
            );
        }
        if args.points < 2 {
            bail!("--points {} is too few; a sweep needs at least 2", args.points);
        }
        if args.tau.is_some() {
            bail!("--tau is a single temperature; with --sweep give --eps-min/--eps-max instead");
        }
        let epss: Vec<f64> =
            (0..args.points).map(|i| lo * (hi / lo).powf(i as f64 / (args.points - 1) as f64)).collect();
        // Progress on stderr (hidden when it is not a terminal), so --json output stays clean.
        let bar = indicatif::ProgressBar::new(epss.len() as u64);
        let mut certs = Vec::with_capacity(epss.len());
        for (i, &e) in epss.iter().enumerate() {
            crate::exit::check_interrupt(&format!("tame certify --sweep (point {} of {})", i + 1, epss.len()))?;
            certs.push(target.certificate(e)?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        return report_sweep(&target, &certs, args.json, args.plot.as_deref());
    }
    let eps = if is_env {
        args.tau.context("--env needs --tau T (the temperature, > 0), or --sweep")?
    } else {
        args.eps.unwrap_or(0.1)
    };
    let cert = target.certificate(eps)?;
    if let Some(path) = &args.plot {
        plot_single(&target, &cert, path)?;
    }
    if args.json {
        let mut v = target.json_context();
        v["certificate"] = serde_json::to_value(&cert)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("K_smooth for {}", target.describe());
        println!("{:<16} {:>12} {:>12}  meaning", "entry", "measured", "bound");
        println!("{:<16} {:>12.4e}", "eps", cert.eps);
        for e in &cert.entries {
            let bound = e.bound.map_or("-".to_string(), |b| format!("{b:.4e}"));
            println!("{:<16} {:>12.4e} {:>12}  {}", e.name, e.measured, bound, e.meaning);
        }
        for n in &cert.notes {
            println!("note: {n}");
        }
    }
    Ok(())
}

/// Least-squares slope of log(measured) against log(eps), over the positive entries.
fn log_slope(eps: &[f64], values: &[f64]) -> Option<f64> {
    let pts: Vec<(f64, f64)> =
        eps.iter().zip(values).filter(|(_, v)| **v > 0.0 && v.is_finite()).map(|(e, v)| (e.ln(), v.ln())).collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn report_sweep(target: &Target, certs: &[Certificate], json: bool, plot: Option<&std::path::Path>) -> anyhow::Result<()> {
    let eps: Vec<f64> = certs.iter().map(|c| c.eps).collect();
    let names: Vec<&'static str> = certs[0].entries.iter().map(|e| e.name).collect();
    let column = |i: usize| -> Vec<f64> { certs.iter().map(|c| c.entries[i].measured).collect() };
    let slopes: Vec<Option<f64>> = (0..names.len()).map(|i| log_slope(&eps, &column(i))).collect();
    if let Some(path) = plot {
        let panels: Vec<LinePanel> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let measured = certs.iter().map(|c| (c.eps, c.entries[i].measured)).collect();
                let bound: Vec<(f64, f64)> =
                    certs.iter().filter_map(|c| c.entries[i].bound.map(|b| (c.eps, b))).collect();
                let mut series = vec![Series::new("measured", measured).color(0)];
                if !bound.is_empty() {
                    series.push(Series::new("bound", bound).dashed().color(3));
                }
                let all_zero = certs.iter().all(|c| c.entries[i].measured == 0.0);
                let slope = match slopes[i] {
                    Some(s) => format!(" (slope {s:.2})"),
                    None if all_zero => " (measured 0 at every eps)".into(),
                    None => String::new(),
                };
                LinePanel {
                    title: format!("{name}{slope}"),
                    x_label: "eps".into(),
                    y_label: certs[0].entries[i].meaning.clone(),
                    log_x: true,
                    log_y: true,
                    series,
                    x_markers: vec![],
                }
            })
            .collect();
        line_panels(path, &panels, 2)?;
    }
    if json {
        let mut v = target.json_context();
        v["certificates"] = serde_json::to_value(certs)?;
        v["log_log_slopes"] =
            names.iter().zip(&slopes).map(|(n, s)| (n.to_string(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("K_smooth against eps for {}", target.describe());
    print!("{:>10}", "eps");
    for n in &names {
        print!(" {:>24}", format!("{n} (bound)"));
    }
    println!();
    for c in certs {
        print!("{:>10.3e}", c.eps);
        for e in &c.entries {
            let b = e.bound.map_or("-".to_string(), |b| format!("{b:.3e}"));
            print!(" {:>24}", format!("{:.3e} ({b})", e.measured));
        }
        println!();
    }
    print!("{:>10}", "slope");
    for s in &slopes {
        print!(" {:>24}", s.map_or("-".to_string(), |s| format!("{s:.3}")));
    }
    println!();
    println!("slope: least-squares d log(measured) / d log(eps); 1 = O(eps), -1 = O(1/eps)");
    for n in &certs[0].notes[1..] {
        println!("note: {n}");
    }
    Ok(())
}

fn plot_single(target: &Target, cert: &Certificate, path: &std::path::Path) -> anyhow::Result<()> {
    match target {
        Target::Objective { objective, smoothing, range } => {
            let curve = smoothed_curve(*objective, *smoothing, cert.eps, *range, 600)?;
            let pick = |f: fn(&tame_agents::smoothing::CurvePoint) -> f64| curve.iter().map(|p| (p.x, f(p))).collect();
            let values = LinePanel {
                title: format!("{} and its {} smoothing, eps = {}", objective.formula(), smoothing, compact(cert.eps)),
                x_label: "x".into(),
                y_label: "value".into(),
                series: vec![
                    Series::new("L", pick(|p| p.loss)).dashed().color(7),
                    Series::new("S_eps L", pick(|p| p.smoothed)).color(0),
                ],
                ..LinePanel::default()
            };
            let grads = LinePanel {
                title: "derivative of S_eps L".into(),
                x_label: "x".into(),
                y_label: "slope".into(),
                series: vec![Series::new("(S_eps L)'", pick(|p| p.smoothed_grad)).color(1)],
                ..LinePanel::default()
            };
            line_panels(path, &[values, grads], 2)
        }
        Target::Gridworld { env, table, gamma } => {
            let c = tame_agents::exact::compare(table, *gamma, cert.eps, tame_agents::soft::Regularizer::Entropy)
                .map_err(crate::exit::interrupted_or)?;
            let soft = c.soft.as_ref().map_or(&c.hard.v, |s| &s.v);
            let by_state = |v: &[f64]| v.iter().enumerate().map(|(s, x)| (s as f64, *x)).collect();
            let panel = LinePanel {
                title: format!("{env}: values per state, tau = {}", compact(cert.eps)),
                x_label: "state".into(),
                y_label: "value".into(),
                series: vec![
                    Series::new("V*", by_state(&c.hard.v)).color(0),
                    Series::new("V*_tau", by_state(soft)).color(1),
                    Series::new("V^{pi*_tau}", by_state(&c.v_pi_tau)).color(2),
                ],
                ..LinePanel::default()
            };
            line_panels(path, &[panel], 1)
        }
    }
}
