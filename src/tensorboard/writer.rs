//! The event-file writer: buffers records in memory, writes them through with fsync on
//! `flush`, on a timer noticed by the next write, and on drop.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use prost::Message;

use super::files;
use super::hparams::{HParams, SessionStatus};
use super::proto::{self, event, hparams_plugin_data, summary_value};
use super::record;
use crate::fsutil::friendly_io;

/// Default time between durable flushes.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Buffered bytes past which records are handed to the OS (without fsync) to bound memory.
const WRITE_THROUGH_BYTES: usize = 1 << 20;
/// Equal-width buckets per histogram; TensorBoard re-bins for display anyway.
const HISTOGRAM_BUCKETS: usize = 30;

/// Tags and plugin names TensorBoard's plugins look for.
pub(crate) const EXPERIMENT_TAG: &str = "_hparams_/experiment";
pub(crate) const SESSION_START_TAG: &str = "_hparams_/session_start_info";
pub(crate) const SESSION_END_TAG: &str = "_hparams_/session_end_info";
pub(crate) const HPARAMS_PLUGIN: &str = "hparams";
pub(crate) const TEXT_PLUGIN: &str = "text";

/// Distinguishes writers opened by this process in the same second.
static NEXT_SUFFIX: AtomicU64 = AtomicU64::new(0);

/// Writes one TensorBoard event file (`events.out.tfevents.<secs>.<host>.<pid>.<n>`).
pub struct EventWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    flush_interval: Duration,
    last_flush: Instant,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter").field("path", &self.path).finish_non_exhaustive()
    }
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, never reusing an existing name.
    pub fn create(dir: &Path) -> anyhow::Result<EventWriter> {
        Self::open(dir, None)
    }

    /// Continues a run that stopped or died: a new event file in `dir` whose name sorts after
    /// every event file there (TensorBoard reads them in name order), even in the same second,
    /// from another host or after the clock stepped back; it opens with a `SessionLog` START
    /// at `step`. TensorBoard, and [`read_events`](super::read_events), then drop every point
    /// read before with step >= `step`: call it with the step after the checkpoint resumed
    /// from, so that what the dead process logged after its checkpoint is replaced, not doubled.
    pub fn resume(dir: &Path, step: u64) -> anyhow::Result<EventWriter> {
        let last = files::event_files(dir)?.pop();
        let last_name = last.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let mut writer = Self::open(dir, last_name.as_deref())?;
        let start = proto::SessionLog { status: proto::SESSION_LOG_START, ..Default::default() };
        writer.push(checked_step("SessionLog START", step)?, event::What::SessionLog(start))?;
        writer.flush()?;
        Ok(writer)
    }

    /// A new event file in `dir`, named after `after` (a file name) when given.
    fn open(dir: &Path, after: Option<&str>) -> anyhow::Result<EventWriter> {
        fs::create_dir_all(dir).map_err(|e| friendly_io(e, "creating log directory", dir))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // A later second than the last file's puts the new name after it, whatever the host
        // and pid parts (which do not sort numerically) say.
        let secs = after.and_then(files::file_secs).map_or(now, |last| now.max(last + 1));
        let host = hostname();
        let pid = std::process::id();
        let (path, file) = loop {
            let n = NEXT_SUFFIX.fetch_add(1, Ordering::Relaxed);
            let name = files::file_name(secs, &host, pid, n);
            if let Some(after) = after.filter(|after| name.as_str() <= *after) {
                bail!(
                    "cannot name a new event file in {} that TensorBoard reads after {after} \
                     (not a name of the form events.out.tfevents.<secs>.<host>...); move that file away",
                    dir.display()
                );
            }
            let path = dir.join(name);
            // create_new: another process in another pid namespace may have taken the name.
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(friendly_io(e, "creating", &path)),
            }
        };
        let mut writer = EventWriter {
            path,
            file,
            buf: Vec::with_capacity(64 * 1024),
            scratch: Vec::with_capacity(256),
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            last_flush: Instant::now(),
        };
        writer.push(0, event::What::FileVersion("brain.Event:2".into()))?;
        writer.flush()?;
        // The new file's directory entry is durable only once the directory is synced.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))?;
        Ok(writer)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets how often a write makes everything before it durable (default 5 s).
    pub fn set_flush_interval(&mut self, every: Duration) {
        self.flush_interval = every;
    }

    /// Logs a scalar (stored as f32, as TensorBoard does).
    pub fn add_scalar(&mut self, tag: &str, step: u64, value: f64) -> anyhow::Result<()> {
        let step = checked_step(tag, step)?;
        self.scratch.clear();
        encode_scalar_event(&mut self.scratch, unix_now(), step, tag, value as f32);
        self.append_scratch()
    }

    /// Logs a histogram of `values` in equal-width buckets between their min and max.
    pub fn add_histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> anyhow::Result<()> {
        let histo = histogram(values).with_context(|| {
            format!("histogram {tag:?} at step {step}: cannot bucket these values")
        })?;
        self.push_value(tag, step, None, summary_value::Value::Histo(histo))
    }

    /// Logs an RGB image of `width`×`height` pixels, already PNG-encoded (the Images tab).
    pub fn add_image(&mut self, tag: &str, step: u64, width: usize, height: usize, png: Vec<u8>) -> anyhow::Result<()> {
        let size = |n: usize| i32::try_from(n).with_context(|| format!("image {tag:?}: {n} pixels is too large"));
        let image = proto::SummaryImage { height: size(height)?, width: size(width)?, colorspace: 3, encoded_image_string: png };
        self.push_value(tag, step, None, summary_value::Value::Image(image))
    }

    /// Logs Markdown text (TensorBoard's Text tab renders tables, lists, code).
    pub fn add_text(&mut self, tag: &str, step: u64, markdown: &str) -> anyhow::Result<()> {
        let tensor = proto::TensorProto {
            dtype: proto::DT_STRING,
            tensor_shape: Some(proto::TensorShapeProto { dim: Vec::new() }),
            string_val: vec![markdown.as_bytes().to_vec()],
        };
        let meta = plugin_metadata(TEXT_PLUGIN, Vec::new());
        self.push_value(tag, step, Some(meta), summary_value::Value::Tensor(tensor))
    }

    /// Records the run's hyperparameters: the session start (values and start time) and,
    /// when `hparams.metrics` is not empty, the experiment record naming the hparam and
    /// metric columns of TensorBoard's HParams tab. TensorBoard uses the first experiment
    /// record it finds for all runs; without one it takes the union of every run's hparams
    /// as columns and every scalar tag as a metric.
    pub fn write_hparams(&mut self, hparams: &HParams) -> anyhow::Result<()> {
        for (name, value) in &hparams.values {
            if name.is_empty() {
                bail!("hyperparameter names must not be empty");
            }
            if let super::HParamValue::Num(x) = value {
                if !x.is_finite() {
                    bail!("hyperparameter {name:?} is {x}; TensorBoard needs a finite number");
                }
            }
        }
        let now = unix_now();
        let experiment = proto::Experiment {
            time_created_secs: now,
            hparam_infos: hparams
                .values
                .iter()
                .map(|(name, v)| proto::HParamInfo { name: name.clone(), r#type: v.data_type() })
                .collect(),
            metric_infos: hparams
                .metrics
                .iter()
                .map(|tag| proto::MetricInfo {
                    name: Some(proto::MetricName { group: String::new(), tag: tag.clone() }),
                })
                .collect(),
        };
        if !hparams.metrics.is_empty() {
            self.push_hparams(EXPERIMENT_TAG, hparams_plugin_data::Data::Experiment(experiment))?;
        }
        let start = proto::SessionStartInfo {
            hparams: hparams.values.iter().map(|(k, v)| (k.clone(), v.to_proto())).collect(),
            group_name: String::new(),
            start_time_secs: now,
        };
        self.push_hparams(SESSION_START_TAG, hparams_plugin_data::Data::SessionStartInfo(start))
    }

    /// Records how the run ended (shown as the session status in the HParams tab).
    pub fn write_session_end(&mut self, status: SessionStatus) -> anyhow::Result<()> {
        let end = proto::SessionEndInfo { status: status.to_proto(), end_time_secs: unix_now() };
        self.push_hparams(SESSION_END_TAG, hparams_plugin_data::Data::SessionEndInfo(end))
    }

    /// Ends the run: the session-end record, then a durable flush.
    pub fn finish(&mut self, status: SessionStatus) -> anyhow::Result<()> {
        self.write_session_end(status)?;
        self.flush()
    }

    /// Writes every buffered record to the file and fsyncs it: on disk when this returns.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.write_out()?;
        self.file.sync_data().map_err(|e| friendly_io(e, "syncing", &self.path))?;
        self.last_flush = Instant::now();
        Ok(())
    }

    fn write_out(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buf);
        // Dropped even on failure: a retry after a partial write would corrupt the file.
        self.buf.clear();
        result.map_err(|e| friendly_io(e, "writing", &self.path))
    }

    fn push_hparams(&mut self, tag: &str, data: hparams_plugin_data::Data) -> anyhow::Result<()> {
        let content = proto::HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
        // A length-0 float vector, as TensorBoard's own hparams summaries carry.
        let null_tensor = proto::TensorProto {
            dtype: proto::DT_FLOAT,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![proto::TensorShapeDim { size: 0 }],
            }),
            string_val: Vec::new(),
        };
        let meta = plugin_metadata(HPARAMS_PLUGIN, content);
        self.push_value(tag, 0, Some(meta), summary_value::Value::Tensor(null_tensor))
    }

    fn push_value(
        &mut self,
        tag: &str,
        step: u64,
        metadata: Option<proto::SummaryMetadata>,
        value: summary_value::Value,
    ) -> anyhow::Result<()> {
        let step = checked_step(tag, step)?;
        let summary = proto::Summary {
            value: vec![proto::SummaryValue { tag: tag.to_owned(), metadata, value: Some(value) }],
        };
        self.push(step, event::What::Summary(summary))
    }

    fn push(&mut self, step: i64, what: event::What) -> anyhow::Result<()> {
        let ev = proto::Event { wall_time: unix_now(), step, what: Some(what) };
        self.scratch.clear();
        ev.encode(&mut self.scratch).context("encoding a TensorBoard event")?;
        self.append_scratch()
    }

    /// Frames the event encoded in `scratch` into the buffer; flushes when the interval passed.
    fn append_scratch(&mut self) -> anyhow::Result<()> {
        record::append_frame(&mut self.buf, &self.scratch);
        if self.last_flush.elapsed() >= self.flush_interval {
            self.flush()
        } else if self.buf.len() >= WRITE_THROUGH_BYTES {
            self.write_out()
        } else {
            Ok(())
        }
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            eprintln!("warning: {e:#}");
        }
    }
}

impl tame_agents::Logger for EventWriter {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> anyhow::Result<()> {
        self.add_scalar(tag, step, value)
    }
    fn histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> anyhow::Result<()> {
        self.add_histogram(tag, step, values)
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        EventWriter::flush(self)
    }
}

fn checked_step(tag: &str, step: u64) -> anyhow::Result<i64> {
    i64::try_from(step)
        .with_context(|| format!("step {step} of {tag:?} does not fit TensorBoard's i64"))
}

/// Encodes `Event { wall_time, step, summary { value { tag, simple_value } } }` exactly as
/// prost would, without building the messages: scalars are the hot path (no allocation).
fn encode_scalar_event(out: &mut Vec<u8>, wall_time: f64, step: i64, tag: &str, value: f32) {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
    let len_field = |n: usize| 1 + encoded_len_varint(n as u64) + n;
    // proto3 leaves default scalars out; a oneof member (simple_value) is always written.
    let tag_len = if tag.is_empty() { 0 } else { len_field(tag.len()) };
    let value_len = tag_len + 5;
    let summary_len = len_field(value_len);
    if wall_time != 0.0 {
        encode_key(1, WireType::SixtyFourBit, out);
        out.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        encode_key(2, WireType::Varint, out);
        encode_varint(step as u64, out);
    }
    encode_key(5, WireType::LengthDelimited, out);
    encode_varint(summary_len as u64, out);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(value_len as u64, out);
    if !tag.is_empty() {
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(tag.len() as u64, out);
        out.extend_from_slice(tag.as_bytes());
    }
    encode_key(2, WireType::ThirtyTwoBit, out);
    out.extend_from_slice(&value.to_le_bytes());
}

fn plugin_metadata(plugin: &str, content: Vec<u8>) -> proto::SummaryMetadata {
    proto::SummaryMetadata {
        plugin_data: Some(proto::PluginData { plugin_name: plugin.to_owned(), content }),
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The host name for the file name, reduced to characters safe in a file name.
fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean
    }
}

/// Buckets `values` into equal-width buckets over [min, max]; an error for no values or a
/// non-finite one (which has no bucket).
fn histogram(values: &[f64]) -> anyhow::Result<proto::HistogramProto> {
    if values.is_empty() {
        bail!("no values");
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        bail!("{bad} is not finite");
    }
    let (mut min, mut max, mut sum, mut sum_squares) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
    for &v in values {
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sum_squares += v * v;
    }
    let (bucket_limit, bucket) = if min == max {
        (vec![max], vec![values.len() as f64])
    } else {
        let width = (max - min) / HISTOGRAM_BUCKETS as f64;
        let limits: Vec<f64> = (1..=HISTOGRAM_BUCKETS)
            .map(|k| if k == HISTOGRAM_BUCKETS { max } else { min + width * k as f64 })
            .collect();
        let mut counts = vec![0.0; HISTOGRAM_BUCKETS];
        for &v in values {
            // Bucket k holds (limit[k-1], limit[k]]; min itself goes in the first.
            let k = ((v - min) / width).ceil() as usize;
            counts[k.saturating_sub(1).min(HISTOGRAM_BUCKETS - 1)] += 1.0;
        }
        (limits, counts)
    };
    Ok(proto::HistogramProto {
        min,
        max,
        num: values.len() as f64,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_hold_every_value_once() {
        let values: Vec<f64> = (0..=300).map(|i| f64::from(i) / 100.0).collect();
        let h = histogram(&values).unwrap();
        assert_eq!(h.num, 301.0);
        assert_eq!((h.min, h.max), (0.0, 3.0));
        assert_eq!(h.bucket.iter().sum::<f64>(), 301.0);
        assert_eq!(h.bucket_limit.len(), HISTOGRAM_BUCKETS);
        assert_eq!(*h.bucket_limit.last().unwrap(), 3.0);
        // 0.0 ..= 0.1 land in the first bucket (min included, upper edge included).
        assert_eq!(h.bucket[0], 11.0);
        assert_eq!(h.bucket[1], 10.0);
    }

    #[test]
    fn hand_encoded_scalar_event_equals_prost_encoding() {
        let tags = ["", "x", "losses/qf1_loss", &"t".repeat(300)];
        for (wall_time, step, value) in
            [(0.0, 0, 0.0f32), (1.7e9, 1, -1.5), (1.7e9 + 0.25, 1 << 40, f32::NAN)]
        {
            for tag in tags {
                let mut hand = Vec::new();
                encode_scalar_event(&mut hand, wall_time, step, tag, value);
                let summary = proto::Summary {
                    value: vec![proto::SummaryValue {
                        tag: tag.to_owned(),
                        metadata: None,
                        value: Some(summary_value::Value::SimpleValue(value)),
                    }],
                };
                let ev =
                    proto::Event { wall_time, step, what: Some(event::What::Summary(summary)) };
                assert_eq!(hand, ev.encode_to_vec(), "tag {tag:?} step {step}");
            }
        }
    }

    #[test]
    fn histogram_of_one_repeated_value_is_one_bucket() {
        let h = histogram(&[2.5; 7]).unwrap();
        assert_eq!(h.bucket_limit, vec![2.5]);
        assert_eq!(h.bucket, vec![7.0]);
    }

    #[test]
    fn histogram_rejects_empty_and_non_finite() {
        assert!(histogram(&[]).is_err());
        let err = histogram(&[1.0, f64::NAN]).unwrap_err().to_string();
        assert!(err.contains("NaN"), "{err}");
    }
}
