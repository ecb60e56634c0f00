//! Ctrl-C handling: the first press asks training loops to stop cleanly (they finish the
//! step, write the summary and flush the logs); a second press quits at once.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

static PRESSED: AtomicBool = AtomicBool::new(false);

/// Installs the handler; call once, before any training starts.
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if PRESSED.swap(true, Ordering::SeqCst) {
            // 128 + SIGINT, the shell's convention for death by Ctrl-C.
            std::process::exit(130);
        }
        tame_agents::run::request_stop();
        eprintln!("\ntame: stopping after the current step (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")
}
