//! The `tame` command line: parses arguments and reports errors with their context.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `tame ... | head` into a panic on the next print.
    // Restore the default so a closed pipe ends the process quietly, as other Unix tools do.
    // SAFETY: called once at start, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match tame::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            tame::exit::code_for(&err)
        }
    }
}
