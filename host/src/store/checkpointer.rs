//! [`Checkpointer`]: copies the write-ahead log into the database file on a thread of its own
//! while a [`super::SnapshotWriter`] writes, so that a long import's batches do not wait for it.
//!
//! In WAL mode SQLite appends every commit to the log, and by default a connection whose commit
//! leaves 1,000 pages or more in the log copies the log into the database file there and then
//! (an automatic checkpoint), syncing both files. For a writer that commits batch after batch,
//! that was about a quarter of its time, and the writer is the one part of an import that
//! cannot spread over cores (SQLite has one writer at a time). So the writer's connection does
//! not checkpoint; this thread does, on a connection of its own, after each of the writer's
//! commits (a `PASSIVE` checkpoint, which waits for no reader or writer, nor makes them wait).
//!
//! The log starts over only at a transaction that begins once every frame in it was copied and
//! no reader still reads from it. A writer that commits while a checkpoint runs can miss that
//! moment every time, and the log would grow for the whole import; so once it holds more than
//! [`RESTART_FRAMES`] frames (the writer learns how many from SQLite after each commit), the
//! writer waits for the checkpoint under way and copies the rest itself
//! ([`Checkpointer::catch_up`]), and its next transaction starts the log over. A reader that
//! keeps an old snapshot open (a long report) holds the log back until it is done: the writer
//! then tries again only once the log has grown by another [`RESTART_FRAMES`]. Should the thread
//! fail, or a checkpoint of the writer's own, the writer checkpoints as SQLite does by default.

use std::{
    cell::Cell,
    ffi::c_int,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    thread::JoinHandle,
};

use rusqlite::{Connection, hooks::Wal};

/// Frames in the log (pages of 4 KiB) beyond which the writer makes the log start over before
/// its next batch: 16 MiB. (64 in tests, so that a few batches reach it.)
#[cfg(not(test))]
pub(crate) const RESTART_FRAMES: i64 = 4096;
#[cfg(test)]
pub(crate) const RESTART_FRAMES: i64 = 64;

/// SQLite's own threshold for automatic checkpoints, which a writer goes back to when the
/// thread is gone.
const AUTOCHECKPOINT_PAGES: i64 = 1000;

thread_local! {
    /// The frames in the log after the last commit on this thread of a connection with
    /// [`note_log_frames`] as its log hook (SQLite calls it within the commit, on the
    /// committing thread).
    static LOG_FRAMES: Cell<Option<i64>> = const { Cell::new(None) };
}

/// The writer's log hook: keeps the frames in the log for [`Checkpointer::committed`].
/// Registering it also turns the connection's automatic checkpoints off (they are a log hook
/// of SQLite's own).
fn note_log_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    LOG_FRAMES.with(|cell| cell.set(Some(i64::from(frames))));
    Ok(())
}

/// What the writer and the thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Held while a checkpoint runs; the writer takes it to wait for one and keep the next away.
    running: Mutex<()>,
    /// The thread met an error and stopped checkpointing.
    failed: AtomicBool,
}

/// The checkpointing thread of one writer; dropping it waits for a checkpoint under way.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Frames in the log after the writer's last commit.
    log_frames: i64,
    /// Frames in the log beyond which the writer catches up: [`RESTART_FRAMES`], or more after
    /// a catch-up a reader held back.
    catch_up_at: i64,
}

impl Checkpointer {
    /// Starts the thread, with a connection of its own to the database at `path`, and turns the
    /// automatic checkpoints of `writer` off. Without a thread (its connection could not be
    /// opened, or it could not be started), `writer` keeps checkpointing itself.
    pub(crate) fn start(path: &Path, writer: &Connection) -> Option<Checkpointer> {
        let db = Connection::open(path).ok()?;
        // A checkpoint syncs the log before copying it and the database file after, as the
        // writer's own would.
        db.pragma_update(None, "synchronous", "NORMAL").ok()?;
        // Only its first statement, which reads the schema, can wait (for another connection
        // recovering the log); a checkpoint itself never does.
        db.busy_timeout(std::time::Duration::from_secs(1)).ok()?;
        let shared = Arc::new(Shared::default());
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("invhost-checkpoint".into())
                .spawn(move || {
                    while woken.recv().is_ok() {
                        let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
                        if let Err(error) = checkpoint(&db) {
                            tracing::debug!(%error, "the checkpoint thread stops");
                            shared.failed.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                })
                .ok()?
        };
        writer.wal_hook(Some(note_log_frames));
        Some(Checkpointer {
            wake: Some(wake),
            shared,
            thread: Some(thread),
            log_frames: 0,
            catch_up_at: RESTART_FRAMES,
        })
    }

    /// Before a commit of the writer, on the thread that commits.
    pub(crate) fn committing(&self) {
        LOG_FRAMES.with(|cell| cell.set(None));
    }

    /// After a commit of the writer, on the thread that committed: notes the log's size and
    /// asks the thread for a checkpoint (one already asked for is enough).
    pub(crate) fn committed(&mut self) {
        if let Some(frames) = LOG_FRAMES.with(Cell::take) {
            if frames < self.log_frames {
                // The log started over.
                self.catch_up_at = RESTART_FRAMES;
            }
            self.log_frames = frames;
        }
        if let Some(wake) = &self.wake {
            // Full: a checkpoint is asked for already. Disconnected: the thread failed, which
            // `catch_up` sees.
            let _: Result<(), TrySendError<()>> = wake.try_send(());
        }
    }

    /// Before a transaction of the writer (on `writer`): when the log has grown past
    /// [`RESTART_FRAMES`], waits for the checkpoint under way and copies what is left, so that
    /// the transaction starts the log over. When the thread has failed, or this checkpoint
    /// fails, the writer goes back to SQLite's automatic checkpoints (which, like this one, never
    /// refuse a batch for a checkpoint that failed).
    pub(crate) fn catch_up(&mut self, writer: &Connection) -> rusqlite::Result<()> {
        if self.wake.is_none() {
            return Ok(());
        }
        if self.shared.failed.load(Ordering::Relaxed) {
            return self.hand_back(writer);
        }
        if self.log_frames <= self.catch_up_at {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        match checkpoint(writer) {
            Ok(Copied::All) => {}
            // A reader (or another connection's checkpoint) holds the log back: try again once
            // it has grown by as much again, not before every batch.
            Ok(Copied::Partly) => self.catch_up_at = self.log_frames + RESTART_FRAMES,
            Err(error) => {
                tracing::debug!(%error, "the writer's checkpoint failed");
                return self.hand_back(writer);
            }
        }
        Ok(())
    }

    /// Turns the writer's automatic checkpoints back on (replacing its log hook), and asks the
    /// thread no more.
    fn hand_back(&mut self, writer: &Connection) -> rusqlite::Result<()> {
        self.wake = None;
        writer.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How much of the log a checkpoint copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copied {
    /// Every frame: the next transaction starts the log over (unless a reader reads from it).
    All,
    /// Not every frame: a reader needs the rest, or another connection was checkpointing.
    Partly,
}

/// A `PASSIVE` checkpoint on `db`: copies what no reader still needs, waiting for nobody.
fn checkpoint(db: &Connection) -> rusqlite::Result<Copied> {
    let (busy, log, copied): (i64, i64, i64) =
        db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    Ok(if busy == 0 && log == copied {
        Copied::All
    } else {
        Copied::Partly
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const FRAME: u64 = 4096 + 24;

    /// A database in WAL mode with one table, and a writer connection with its checkpointer.
    fn writer() -> (tempfile::TempDir, Connection, Checkpointer) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let db = Connection::open(&path).expect("open");
        db.pragma_update(None, "journal_mode", "WAL").expect("wal");
        db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .expect("table");
        let checkpointer = Checkpointer::start(&path, &db).expect("started");
        (dir, db, checkpointer)
    }

    /// One transaction of about 40 pages, as the snapshot writer makes them.
    fn batch(db: &mut Connection, checkpointer: &mut Checkpointer, n: usize) {
        checkpointer.catch_up(db).expect("caught up");
        commit_pages(db, checkpointer, n);
    }

    /// The same without the writer's catch-up.
    fn commit_pages(db: &mut Connection, checkpointer: &mut Checkpointer, n: usize) {
        let tx = db.transaction().expect("begin");
        for i in 0..40 {
            tx.execute(
                "INSERT INTO t (id, body) VALUES (?1, ?2)",
                rusqlite::params![(n * 40 + i) as i64, "x".repeat(3000)],
            )
            .expect("insert");
        }
        checkpointer.committing();
        tx.commit().expect("commit");
        checkpointer.committed();
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn the_writer_makes_the_log_start_over_when_the_thread_does_not_keep_up() {
        let (dir, mut db, mut checkpointer) = writer();
        // The thread is never woken: its wake-ups go to a channel nobody reads.
        let (stuck, _unread) = mpsc::sync_channel(1);
        checkpointer.wake = Some(stuck);
        let log = dir.path().join("t.db-wal");
        let mut largest = 0;
        for n in 0..50 {
            batch(&mut db, &mut checkpointer, n);
            largest = largest.max(size(&log));
        }
        // 50 batches of about 40 pages each went through a log that never held more than the
        // threshold and the batch that crossed it.
        let bound = (RESTART_FRAMES as u64 + 2 * 60) * FRAME;
        assert!(
            largest <= bound,
            "the log grew to {largest} bytes, bound {bound}"
        );
        assert!(size(&dir.path().join("t.db")) > 50 * 40 * 3000);
    }

    #[test]
    fn the_thread_copies_the_log_while_the_writer_never_checkpoints() {
        let (dir, mut db, mut checkpointer) = writer();
        let database = dir.path().join("t.db");
        let before = size(&database);
        // The thread cannot checkpoint while this is held; it is woken, and waits.
        let shared = Arc::clone(&checkpointer.shared);
        let held = shared.running.lock().expect("lock");
        for n in 0..10 {
            // No catch-up: only the thread would copy.
            commit_pages(&mut db, &mut checkpointer, n);
        }
        assert!(
            checkpointer.log_frames > 400,
            "the hook counted the log's frames: {}",
            checkpointer.log_frames
        );
        assert_eq!(size(&database), before, "the writer copied nothing itself");
        drop(held);
        // The copies are the thread's, so wait for them (a loaded machine may be slow).
        let deadline = Instant::now() + Duration::from_secs(20);
        while size(&database) < before + 400 * 3000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            size(&database) >= before + 400 * 3000,
            "the thread copied the log into the database file"
        );
    }

    #[test]
    fn a_reader_holding_the_log_back_is_waited_out_not_fought_before_every_batch() {
        let (dir, mut db, mut checkpointer) = writer();
        let (stuck, _unread) = mpsc::sync_channel(1);
        checkpointer.wake = Some(stuck);
        let reader = Connection::open(dir.path().join("t.db")).expect("reader");
        batch(&mut db, &mut checkpointer, 0);
        reader
            .execute_batch("BEGIN; SELECT COUNT(*) FROM t;")
            .expect("a read transaction stays open");
        for n in 1..6 {
            batch(&mut db, &mut checkpointer, n);
        }
        // The catch-up could not copy what the reader still reads: the next one waits for the
        // log to grow by as much again.
        assert!(checkpointer.log_frames > RESTART_FRAMES);
        assert!(
            checkpointer.catch_up_at > RESTART_FRAMES,
            "catch-up at {}",
            checkpointer.catch_up_at
        );
        reader.execute_batch("COMMIT").expect("read ends");
        let mut smallest_after = i64::MAX;
        for n in 6..30 {
            batch(&mut db, &mut checkpointer, n);
            smallest_after = smallest_after.min(checkpointer.log_frames);
        }
        assert!(
            smallest_after <= 60,
            "the log started over once the reader was gone: {smallest_after} frames at least"
        );
        assert_eq!(checkpointer.catch_up_at, RESTART_FRAMES);
    }

    #[test]
    fn a_failed_thread_hands_checkpoints_back_to_the_writer() {
        let (dir, mut db, mut checkpointer) = writer();
        checkpointer.shared.failed.store(true, Ordering::Relaxed);
        batch(&mut db, &mut checkpointer, 0);
        assert!(checkpointer.wake.is_none(), "the thread is no longer asked");
        // SQLite's automatic checkpoints are back: the log stays near 1,000 pages.
        let log = dir.path().join("t.db-wal");
        let mut largest = 0;
        for n in 1..60 {
            batch(&mut db, &mut checkpointer, n);
            largest = largest.max(size(&log));
        }
        assert!(
            largest <= (AUTOCHECKPOINT_PAGES as u64 + 60) * FRAME,
            "log {largest}"
        );
        assert!(
            largest > (RESTART_FRAMES as u64 + 60) * FRAME,
            "log {largest}"
        );
    }
}
