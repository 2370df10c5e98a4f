//! The `invhost` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    // SAFETY: first thing in `main`: no other thread has started.
    unsafe { invhost::memory::limit_malloc_arenas() };
    match invhost::cli::run() {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined with ": ".
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("invhost: {message}");
            ExitCode::FAILURE
        }
    }
}
