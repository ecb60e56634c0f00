//! A run's hyperparameters and the metrics TensorBoard's HParams dashboard shows for it.

use std::collections::BTreeMap;

use super::proto;

/// One hyperparameter value: TensorBoard accepts strings, numbers and booleans.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum HParamValue {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl std::fmt::Display for HParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HParamValue::Str(s) => f.write_str(s),
            HParamValue::Num(x) => write!(f, "{x}"),
            HParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for HParamValue {
    fn from(s: &str) -> Self {
        HParamValue::Str(s.to_owned())
    }
}
impl From<String> for HParamValue {
    fn from(s: String) -> Self {
        HParamValue::Str(s)
    }
}
impl From<f64> for HParamValue {
    fn from(x: f64) -> Self {
        HParamValue::Num(x)
    }
}
impl From<f32> for HParamValue {
    fn from(x: f32) -> Self {
        HParamValue::Num(f64::from(x))
    }
}
impl From<u64> for HParamValue {
    fn from(x: u64) -> Self {
        HParamValue::Num(x as f64)
    }
}
impl From<i64> for HParamValue {
    fn from(x: i64) -> Self {
        HParamValue::Num(x as f64)
    }
}
impl From<usize> for HParamValue {
    fn from(x: usize) -> Self {
        HParamValue::Num(x as f64)
    }
}
impl From<bool> for HParamValue {
    fn from(b: bool) -> Self {
        HParamValue::Bool(b)
    }
}

impl HParamValue {
    pub(crate) fn to_proto(&self) -> proto::PbValue {
        use proto::pb_value::Kind;
        let kind = match self {
            HParamValue::Str(s) => Kind::StringValue(s.clone()),
            HParamValue::Num(x) => Kind::NumberValue(*x),
            HParamValue::Bool(b) => Kind::BoolValue(*b),
        };
        proto::PbValue { kind: Some(kind) }
    }

    pub(crate) fn from_proto(v: &proto::PbValue) -> Option<Self> {
        use proto::pb_value::Kind;
        Some(match v.kind.as_ref()? {
            Kind::StringValue(s) => HParamValue::Str(s.clone()),
            Kind::NumberValue(x) => HParamValue::Num(*x),
            Kind::BoolValue(b) => HParamValue::Bool(*b),
        })
    }

    pub(crate) fn data_type(&self) -> i32 {
        match self {
            HParamValue::Str(_) => proto::DATA_TYPE_STRING,
            HParamValue::Num(_) => proto::DATA_TYPE_FLOAT64,
            HParamValue::Bool(_) => proto::DATA_TYPE_BOOL,
        }
    }
}

/// A run's hyperparameters (agent, env, tau, sigma, seed, ...) and the scalar tags the
/// HParams dashboard shows beside them (e.g. `eval/mean_return`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HParams {
    pub values: BTreeMap<String, HParamValue>,
    /// Metric columns; empty means no experiment record (see `EventWriter::write_hparams`).
    pub metrics: Vec<String>,
}

impl HParams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one hyperparameter.
    pub fn with(mut self, name: &str, value: impl Into<HParamValue>) -> Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a scalar tag to show as a metric column.
    pub fn metric(mut self, tag: &str) -> Self {
        if !self.metrics.iter().any(|m| m == tag) {
            self.metrics.push(tag.to_owned());
        }
        self
    }
}

/// How a run ended, as the HParams dashboard shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Unknown,
    Success,
    Failure,
    Running,
    /// Stopped on request (SIGINT/SIGTERM), resumable. TensorBoard has no such status, so it
    /// is written as STATUS_UNKNOWN; `tame inspect` tells it apart by the run's summary.json.
    Interrupted,
}

impl SessionStatus {
    pub(crate) fn to_proto(self) -> i32 {
        match self {
            SessionStatus::Unknown | SessionStatus::Interrupted => proto::STATUS_UNKNOWN,
            SessionStatus::Success => proto::STATUS_SUCCESS,
            SessionStatus::Failure => proto::STATUS_FAILURE,
            SessionStatus::Running => proto::STATUS_RUNNING,
        }
    }

    pub(crate) fn from_proto(status: i32) -> Self {
        match status {
            proto::STATUS_SUCCESS => SessionStatus::Success,
            proto::STATUS_FAILURE => SessionStatus::Failure,
            proto::STATUS_RUNNING => SessionStatus::Running,
            _ => SessionStatus::Unknown,
        }
    }
}
