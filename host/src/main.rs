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
/// with two arenas 1.1x, at the same speed). Large blocks (a page of records, a batch) are
/// mapped on their own and returned whole when freed: glibc's default raises that threshold
/// as large blocks come and go, after which they fragment the heap (with LoginHistory read in
/// several windows at once, 1.27x without the fixed threshold, 1.16x with it). Set before any
/// thread starts; `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the environment still win.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets an allocator parameter; no thread has been started yet.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            }
        }
    }
}
