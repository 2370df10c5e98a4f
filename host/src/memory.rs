//! How the host keeps an import's memory flat in the org's size, as far as the allocator goes.
//!
//! On Linux with glibc (elsewhere both are no-ops):
//!
//! - [`limit_malloc_arenas`], at start: a bounded number of malloc arenas and a fixed threshold
//!   above which blocks are mapped on their own.
//! - [`trim_soon`], after each batch an import writes: a thread of the host's hands the pages
//!   that freed blocks left inside glibc's heaps back to the operating system
//!   (`malloc_trim(0)`). An import frees a page's worth of records, rows and text every few
//!   milliseconds, in many small blocks; glibc keeps the pages they sat on for blocks to come,
//!   but only where the next allocations happen to fit, so the resident memory of a long import
//!   crept above what it uses (the same binaries with and without the trim, alternated: peak
//!   RSS at 100,000 users about 1.7 MiB lower with it, at 10,000 users 0.3 MiB). The trim runs
//!   beside the import, never on a thread that waits for it, and at most one is asked for at a
//!   time.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
    mpsc::{self, SyncSender},
};

/// Keeps memory flat in the size of an import. glibc gives each thread that allocates its own
/// heap ("arena", up to 8 per core); an import's threads (the plugin's runtime, its blocking
/// pool, the host's writer) each grow one and glibc seldom returns their free space, so peak
/// memory grew with the org's size (`cargo xtask bench`: 100k users 1.5x the memory of 10k;
/// with two arenas 1.18x, at the same speed). Large blocks (a page of records, a batch) are
/// mapped on their own and returned whole when freed: glibc's default raises that threshold
/// as large blocks come and go, after which they fragment the heap (with LoginHistory read in
/// several windows at once, 1.27x without the fixed threshold, 1.16x with it).
///
/// `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the environment still win.
///
/// # Safety
///
/// glibc's `mallopt` is not thread-safe: call this first thing in `main`, before any thread
/// of the process has started.
pub unsafe fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets an allocator parameter, and the caller guarantees that
            // no other thread runs yet.
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

/// Hands the free pages inside the allocator's heaps back to the operating system now, on the
/// calling thread; whether the allocator can ([`trim_soon`] does it on a thread of its own).
pub fn trim_now() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes the allocator's own locks; it frees nothing in use.
        unsafe {
            libc::malloc_trim(0);
        }
        TRIMS.fetch_add(1, Ordering::Relaxed);
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Asks the trim thread (started by the first call) for a [`trim_now`]; returns at once. Asks
/// made while a trim is asked for already are one ask.
pub fn trim_soon() {
    static THREAD: OnceLock<Option<SyncSender<()>>> = OnceLock::new();
    let wake = THREAD.get_or_init(|| {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return None;
        }
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        match std::thread::Builder::new()
            .name("invhost-trim".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    trim_now();
                }
            }) {
            Ok(_) => Some(wake),
            Err(error) => {
                tracing::warn!(%error, "No thread for trimming the heap: memory freed by imports stays with the process.");
                None
            }
        }
    });
    if let Some(wake) = wake {
        ask(wake);
    }
}

/// One ask on the trim thread's channel (of one slot): a full channel means a trim is asked
/// for already, and it will see this ask's freed memory too.
fn ask(wake: &SyncSender<()>) {
    let _ = wake.try_send(());
}

static TRIMS: AtomicU64 = AtomicU64::new(0);

/// Trims done so far in this process.
pub fn trims() -> u64 {
    TRIMS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_while_a_trim_is_pending_are_one_ask() {
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        for _ in 0..1000 {
            ask(&wake);
        }
        assert_eq!(woken.try_iter().count(), 1);
        ask(&wake);
        assert_eq!(
            woken.try_iter().count(),
            1,
            "an ask after the trim began is a new one"
        );
    }
}
