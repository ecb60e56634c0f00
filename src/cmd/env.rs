//! `tame env`: list environments, replay Gymnasium traces, benchmark stepping.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Each env with its observation and action spaces and its time limit.
    List,
}

pub fn run(command: EnvCommand) -> anyhow::Result<()> {
    match command {
        EnvCommand::List => anyhow::bail!("env list: no environments are registered yet"),
    }
}
