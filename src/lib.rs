//! The `tame` binary's library: command line, configs, run directories, logging and reports.

pub mod cli;
mod cmd;
pub mod fsutil;
pub mod interrupt;
pub mod run_dir;
pub mod tensorboard;
pub mod plot;
pub mod policy_map;
mod stats;
pub mod sweep;
pub mod video;
