//! TensorBoard event files: a durable writer (scalars, histograms, images, Markdown text, hparams)
//! and a reader, on prost-declared messages and crc32c. TensorBoard itself reads the files.
//!
//! ```
//! use tame::tensorboard::{read_events, EventWriter, HParams, SessionStatus};
//! # fn main() -> anyhow::Result<()> {
//! let dir = std::env::temp_dir().join(format!("tame-doc-{}", std::process::id()));
//! let mut log = EventWriter::create(&dir)?;
//! let hp = HParams::new().with("agent", "sac").with("tau", 0.1).with("seed", 1u64);
//! log.write_hparams(&hp.metric("eval/mean_return"))?;
//! log.add_scalar("eval/mean_return", 1000, -180.5)?;
//! log.add_histogram("policy/entropy", 1000, &[0.3, 0.5, 0.7])?;
//! log.finish(SessionStatus::Success)?; // session end + durable flush
//! drop(log);
//! assert_eq!(read_events(&dir)?.scalars["eval/mean_return"][0].value, -180.5);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

pub(crate) mod files;
mod hparams;
mod markdown;
mod proto;
mod reader;
mod record;
mod writer;

pub use hparams::{HParamValue, HParams, SessionStatus};
pub use markdown::config_markdown;
pub use reader::{
    find_runs, read_events, HistogramPoint, RunEvents, RunHParams, ScalarPoint, TextPoint,
};
pub use writer::{EventWriter, DEFAULT_FLUSH_INTERVAL};

#[cfg(test)]
mod tests;
