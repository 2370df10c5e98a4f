//! The `invhost` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
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

/// Keeps memory flat in the size of an import. glibc gives each thread that allocates its own
/// heap ("arena", up to 8 per core); an import's threads (the plugin's runtime, its blocking
/// pool, the host's writer) each grow one and glibc seldom returns their free space, so peak
/// memory grew with the org's size (`cargo xtask bench`: 100k users 1.5x the memory of 10k;
/// with two arenas 1.1x, at the same speed). Set before any thread starts; `MALLOC_ARENA_MAX`
/// in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no thread has been started yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
