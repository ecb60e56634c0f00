//! Learning code for tame: what trains or solves a policy on a `tame-envs` environment.
//!
//! Agents report metrics through the small [`Logger`] trait; the `tame` binary implements it
//! with its TensorBoard writer, so this crate knows nothing about file formats.

pub mod checkpoint;
pub mod exact;
pub mod eval;
pub mod fsutil;
mod logger;
pub mod es;
mod es_policy;
mod es_rollout;
mod helper;
pub mod limits;
mod math;
pub mod nets;
pub mod numfmt;
pub mod policy;
pub mod replay;
pub mod run;
pub mod smoothing;
pub mod soft;
pub mod sac;

pub use logger::{Logger, NullLogger};
