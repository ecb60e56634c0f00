//! The `tame` command line: parses arguments and reports errors with their context.

use std::process::ExitCode;

fn main() -> ExitCode {
    match tame::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
