//! Reads event files back: scalars, histograms, text and hparams of one run, reporting
//! (not failing on) a truncated or corrupt tail, as a killed writer can leave.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;

use super::files::event_files;
use super::hparams::{HParamValue, SessionStatus};
use super::proto::{self, event, hparams_plugin_data, summary_value};
use super::record;
use super::writer::{HPARAMS_PLUGIN, TEXT_PLUGIN};

/// One logged scalar.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScalarPoint {
    pub step: u64,
    pub wall_time: f64,
    pub value: f64,
}

/// One logged histogram: bucket `i` counts values in (`bucket_limits[i-1]`,
/// `bucket_limits[i]`], the first starting at `min`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HistogramPoint {
    pub step: u64,
    pub wall_time: f64,
    pub min: f64,
    pub max: f64,
    pub num: f64,
    pub sum: f64,
    pub sum_squares: f64,
    pub bucket_limits: Vec<f64>,
    pub buckets: Vec<f64>,
}

/// One logged text.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TextPoint {
    pub step: u64,
    pub wall_time: f64,
    pub text: String,
}

/// The hparams records of a run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RunHParams {
    /// Hyperparameter values from the session start record.
    pub values: BTreeMap<String, HParamValue>,
    /// Metric tags named by the experiment record.
    pub metrics: Vec<String>,
    pub start_time: Option<f64>,
    /// Status and time from the session end record, if the run wrote one.
    pub end: Option<(SessionStatus, f64)>,
}

/// Everything read from one run's event files, in file-name then record order, after
/// TensorBoard's restart rule (a `SessionLog` START at step S drops the points before it
/// with step >= S).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunEvents {
    pub files: Vec<PathBuf>,
    pub scalars: BTreeMap<String, Vec<ScalarPoint>>,
    pub histograms: BTreeMap<String, Vec<HistogramPoint>>,
    pub texts: BTreeMap<String, Vec<TextPoint>>,
    /// `None` when the run wrote no session start record.
    pub hparams: Option<RunHParams>,
    /// Damage found (truncated or corrupt records, undecodable events); reading stops at the
    /// first bad record of a file, keeping everything before it.
    pub problems: Vec<String>,
}

impl RunEvents {
    /// The largest step of any scalar, histogram or text.
    pub fn last_step(&self) -> Option<u64> {
        let s = self.scalars.values().flatten().map(|p| p.step);
        let h = self.histograms.values().flatten().map(|p| p.step);
        let t = self.texts.values().flatten().map(|p| p.step);
        s.chain(h).chain(t).max()
    }
}

/// Reads one event file, or every event file directly inside a run directory.
pub fn read_events(path: &Path) -> anyhow::Result<RunEvents> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let files = if meta.is_dir() { event_files(path)? } else { vec![path.to_path_buf()] };
    let mut run = RunEvents::default();
    for file in &files {
        let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        read_file(file, &bytes, &mut run);
    }
    run.files = files;
    Ok(run)
}

/// Every run under `root` (`root` included): directories that directly hold event files.
pub fn find_runs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut runs = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if !event_files(&dir)?.is_empty() {
            runs.push(dir.clone());
        }
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    runs.sort();
    Ok(runs)
}

fn read_file(file: &Path, bytes: &[u8], run: &mut RunEvents) {
    let (frames, damage) = record::split_frames(bytes);
    for (i, frame) in frames.iter().enumerate() {
        match proto::Event::decode(*frame) {
            Ok(ev) => add_event(ev, file, run),
            Err(e) => run.problems.push(format!("{}: record {i}: {e}", file.display())),
        }
    }
    if let Some(damage) = damage {
        let kept = frames.len();
        run.problems
            .push(format!("{}: {damage} (kept the {kept} records before it)", file.display()));
    }
}

fn add_event(ev: proto::Event, file: &Path, run: &mut RunEvents) {
    let summary = match ev.what {
        Some(event::What::Summary(summary)) => summary,
        Some(event::What::SessionLog(log)) if log.status == proto::SESSION_LOG_START => {
            // Negative steps purge everything, as in TensorBoard.
            purge_from(run, u64::try_from(ev.step).unwrap_or(0));
            return;
        }
        _ => return,
    };
    let Ok(step) = u64::try_from(ev.step) else {
        run.problems.push(format!("{}: negative step {}", file.display(), ev.step));
        return;
    };
    let wall_time = ev.wall_time;
    for value in summary.value {
        let plugin = value
            .metadata
            .as_ref()
            .and_then(|m| m.plugin_data.as_ref())
            .map(|p| (p.plugin_name.as_str(), p.content.as_slice()));
        match (value.value, plugin) {
            (Some(summary_value::Value::SimpleValue(v)), _) => {
                let point = ScalarPoint { step, wall_time, value: f64::from(v) };
                run.scalars.entry(value.tag).or_default().push(point);
            }
            (Some(summary_value::Value::Histo(h)), _) => {
                let point = HistogramPoint {
                    step,
                    wall_time,
                    min: h.min,
                    max: h.max,
                    num: h.num,
                    sum: h.sum,
                    sum_squares: h.sum_squares,
                    bucket_limits: h.bucket_limit,
                    buckets: h.bucket,
                };
                run.histograms.entry(value.tag).or_default().push(point);
            }
            (Some(summary_value::Value::Tensor(t)), Some((TEXT_PLUGIN, _))) => {
                let text = t
                    .string_val
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                run.texts.entry(value.tag).or_default().push(TextPoint { step, wall_time, text });
            }
            (_, Some((HPARAMS_PLUGIN, content))) => match proto::HParamsPluginData::decode(content)
            {
                Ok(data) => add_hparams(data, run),
                Err(e) => run.problems.push(format!(
                    "{}: hparams record {:?}: {e}",
                    file.display(),
                    value.tag
                )),
            },
            _ => {}
        }
    }
}

/// TensorBoard's rule for a restart (EventAccumulator's `_CheckForRestartAndMaybePurge`): a
/// `SessionLog` START at step `start` drops every point read so far with step >= `start`, in
/// every series, so that a resumed run's points replace those the dead process logged after
/// its checkpoint.
fn purge_from(run: &mut RunEvents, start: u64) {
    run.scalars.values_mut().for_each(|ps| ps.retain(|p| p.step < start));
    run.histograms.values_mut().for_each(|ps| ps.retain(|p| p.step < start));
    run.texts.values_mut().for_each(|ps| ps.retain(|p| p.step < start));
    run.scalars.retain(|_, ps| !ps.is_empty());
    run.histograms.retain(|_, ps| !ps.is_empty());
    run.texts.retain(|_, ps| !ps.is_empty());
    // hparams records are tensors at step 0, purged alike (only a START at step 0 reaches them).
    if start == 0 {
        run.hparams = None;
    }
}

fn add_hparams(data: proto::HParamsPluginData, run: &mut RunEvents) {
    let hp = run.hparams.get_or_insert_with(RunHParams::default);
    match data.data {
        Some(hparams_plugin_data::Data::Experiment(exp)) => {
            hp.metrics =
                exp.metric_infos.into_iter().filter_map(|m| m.name.map(|n| n.tag)).collect();
        }
        Some(hparams_plugin_data::Data::SessionStartInfo(start)) => {
            hp.values = start
                .hparams
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), HParamValue::from_proto(v)?)))
                .collect();
            hp.start_time = Some(start.start_time_secs);
        }
        Some(hparams_plugin_data::Data::SessionEndInfo(end)) => {
            hp.end = Some((SessionStatus::from_proto(end.status), end.end_time_secs));
        }
        None => {}
    }
}
