//! The allocator's part of keeping an import's memory flat (`invhost::memory`). A test binary
//! of its own, so that no other test allocates while this one reads the process's memory. It
//! assumes glibc's own allocator: under a sanitizer or an allocator put in with `LD_PRELOAD`,
//! the trim gives nothing back.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_trim_hands_the_pages_of_freed_blocks_back_and_one_asked_for_runs_on_its_own_thread() {
    use std::time::{Duration, Instant};

    use invhost::memory::{trim_now, trim_soon, trims};

    /// The process's resident anonymous memory, in KiB.
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("RssAnon:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssAnon")
    }

    // About 64 MiB of small blocks, as an import's rows and records are; one in 256 stays, so
    // glibc cannot give the heap back by shrinking it, only page by page.
    let blocks: Vec<Box<[u8; 120]>> = (0..500_000_u32)
        .map(|i| Box::new([i.to_le_bytes()[0]; 120]))
        .collect();
    let kept: Vec<Box<[u8; 120]>> = blocks.into_iter().step_by(256).collect();
    let before = resident_kib();
    assert!(trim_now(), "glibc can trim");
    let after = resident_kib();
    assert!(
        before.saturating_sub(after) > 16 * 1024,
        "the trim gave back {} KiB of {before} KiB",
        before.saturating_sub(after)
    );
    // The kept blocks are intact.
    assert!(
        kept.iter()
            .all(|block| block.iter().all(|&b| b == block[0]))
    );
    assert_eq!(kept.len(), 500_000 / 256 + 1);

    // An ask comes back at once; the thread trims (the deadline only bounds a hang). That asks
    // made while one is pending are one is a unit test of `memory.rs`.
    let done = trims();
    trim_soon();
    let deadline = Instant::now() + Duration::from_secs(30);
    while trims() == done {
        assert!(Instant::now() < deadline, "the trim thread never trimmed");
        std::thread::sleep(Duration::from_millis(5));
    }
}
