//! TensorBoard event files: a durable writer (scalars, histograms, Markdown text, hparams)
//! and a reader, on prost-declared messages and crc32c. TensorBoard itself reads the files.

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
