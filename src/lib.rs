//! The `tame` binary's library: command line, configs, run directories, logging and reports.

mod agent;
pub mod cli;
pub mod cli_values;
mod cmd;
pub mod exit;
pub mod fsutil;
pub mod interrupt;
pub mod lock;
pub mod run_dir;
pub mod tensorboard;
pub mod plot;
pub mod policy_map;
pub mod stats;
pub mod sweep;
mod cluster;
pub mod video;
