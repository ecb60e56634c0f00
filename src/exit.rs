//! Exit statuses beyond success and failure: an error whose chain holds [`Interrupted`] ends
//! the process with 130 (128 + SIGINT), as shells expect of a command stopped by Ctrl-C.

use std::process::ExitCode;

/// A long computation (solve, certify, bench) stopped because Ctrl-C asked it to.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by Ctrl-C during {0}")]
pub struct Interrupted(pub String);

/// `Err(Interrupted)` once a stop was requested (Ctrl-C), naming what was running.
pub fn check_interrupt(what: &str) -> Result<(), Interrupted> {
    if tame_agents::run::stop_requested() {
        Err(Interrupted(what.to_string()))
    } else {
        Ok(())
    }
}

/// An exact solver's error, turned into [`Interrupted`] when it was stopped by Ctrl-C.
pub fn interrupted_or(e: tame_agents::exact::ExactError) -> anyhow::Error {
    match e {
        tame_agents::exact::ExactError::Interrupted { iterations } => {
            Interrupted(format!("value iteration (after {iterations} sweeps)")).into()
        }
        other => other.into(),
    }
}

/// The exit status for a failed command: 130 if it was interrupted, else 1.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.is::<Interrupted>()) {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}
