//! The `tame` command line: parses arguments and reports errors with their context.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `tame ... | head` into a panic on the next print.
    // Restore the default so a closed pipe ends the process quietly, as other Unix tools do.
    // SAFETY: called once at start, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let result = tame::cli::run();
    if let Err(err) = &result {
        eprintln!("error: {err:#}");
    }
    // A command that stopped on SIGINT/SIGTERM exits 128 + signal even when it wrapped up
    // cleanly, so that `tame train && next` does not carry on after an interrupted run.
    match (tame::interrupt::exit_status(), result) {
        (Some(status), _) => ExitCode::from(status),
        (None, Ok(())) => ExitCode::SUCCESS,
        // An error whose chain holds tame::exit::Interrupted is 130 as well.
        (None, Err(err)) => tame::exit::code_for(&err),
    }
}
