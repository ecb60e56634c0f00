//! The metrics sink agents write to. Tags follow CleanRL (`charts/episodic_return`,
//! `losses/qf1_loss`, `losses/alpha`, `eval/mean_return`, `es/sigma`, ...).

/// Receives training metrics. Implementations decide where they go (TensorBoard, memory).
pub trait Logger {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> anyhow::Result<()>;
    /// A histogram built from raw values (policy entropy, actions, Q-values).
    fn histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> anyhow::Result<()>;
    /// Makes everything logged so far durable.
    fn flush(&mut self) -> anyhow::Result<()>;
}

/// Discards everything; for tests and benchmarks.
#[derive(Debug, Default)]
pub struct NullLogger;

impl Logger for NullLogger {
    fn scalar(&mut self, _tag: &str, _step: u64, _value: f64) -> anyhow::Result<()> {
        Ok(())
    }
    fn histogram(&mut self, _tag: &str, _step: u64, _values: &[f64]) -> anyhow::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}
