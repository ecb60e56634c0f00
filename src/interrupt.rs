//! SIGINT and SIGTERM handling: the first signal asks training loops (and sweeps, solvers,
//! benchmarks) to stop cleanly, so that they finish the step, write their summary and flush
//! the logs; a second signal quits at once. `main` then exits with 128 + the first signal's
//! number (130 for SIGINT, 143 for SIGTERM), as shells and schedulers expect.

use std::io::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first signal received, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers; call once, before any training starts. The signals are read on a
/// thread of their own, so the reaction (a message, the exit) runs outside signal context.
pub fn install() -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing the SIGINT/SIGTERM handlers")?;
    std::thread::Builder::new()
        .name("tame-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                    std::process::exit(128 + signal);
                }
                tame_agents::run::request_stop();
                // Not eprintln!, which panics when stderr is a closed pipe.
                let _ = writeln!(
                    std::io::stderr(),
                    "\ntame: stopping after the current step (SIGINT again to quit at once)"
                );
            }
        })
        .context("starting the signal-handling thread")?;
    Ok(())
}

/// The number of the first SIGINT or SIGTERM received, if one came.
pub fn received() -> Option<i32> {
    Some(RECEIVED.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// The exit status of a process that stopped on a signal: 128 + its number.
pub fn exit_status() -> Option<u8> {
    received().and_then(|s| u8::try_from(128 + s).ok())
}

/// The signal's name for messages: `SIGINT`, `SIGTERM`.
pub fn signal_name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}
