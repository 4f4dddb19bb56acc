//! Moves committed pages from the write-ahead log into the database file, off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold (1,000
//! pages), so the group committer stopped every few commits to copy pages and fsync. Under
//! load most of those pages were the same few index and state pages rewritten commit after
//! commit. Checkpointing from this thread twice a second copies each page once per interval,
//! whatever the number of commits that changed it, and the committer never waits on an fsync.
//!
//! A checkpoint beside a busy writer never catches up with it, and SQLite only starts the log
//! over once every frame is back in the database, so under sustained load the log would grow
//! without end. When it is long, this thread raises [`Checkpointer::log_is_long`]; the writer
//! then finishes the checkpoint itself between two commits (only the few frames written since
//! this thread's last pass are left to copy), and its next commit starts the log over.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tracing::warn;

use super::StoreError;

const INTERVAL: Duration = Duration::from_millis(500);
/// Frames (pages) in the log above which the writer is asked to let it start over: 64 MiB.
const LONG_LOG_FRAMES: i64 = 16 * 1024;

/// The checkpoint thread; it makes a last, complete checkpoint and stops when dropped.
pub struct Checkpointer {
    long_log: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on a connection of its own.
    ///
    /// # Errors
    /// The database cannot be opened, or the thread cannot be started.
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let long_log = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel();
        let flag = long_log.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(&conn, &stopped, &flag))
            .map_err(StoreError::Thread)?;
        Ok(Self {
            long_log,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// True (once) when the log has grown long and the writer should finish a checkpoint.
    pub fn log_is_long(&self) -> bool {
        self.long_log.swap(false, Ordering::Relaxed)
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, long_log: &AtomicBool) {
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {
                if let Some(frames) = checkpoint(conn, "PASSIVE") {
                    if frames > LONG_LOG_FRAMES {
                        long_log.store(true, Ordering::Relaxed);
                    }
                }
            }
            // Truncating leaves a closed store as one self-contained file.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                checkpoint(conn, "TRUNCATE");
                return;
            }
        }
    }
}

/// Runs a checkpoint and returns the length of the log in frames. A passive checkpoint
/// never waits for the writer or readers; whatever it cannot copy now is copied next time.
pub fn checkpoint(conn: &Connection, mode: &str) -> Option<i64> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    match conn.query_row(&sql, [], |row| row.get::<_, i64>(1)) {
        Ok(frames) => Some(frames),
        Err(e) => {
            // Retried twice a second: while a disk is full, one line a minute is enough.
            static LAST_WARNED: AtomicI64 = AtomicI64::new(i64::MIN);
            let now = chrono::Utc::now().timestamp();
            let last = LAST_WARNED.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= 60 {
                LAST_WARNED.store(now, Ordering::Relaxed);
                warn!(error = %e, mode, "A checkpoint of the write-ahead log failed; it is retried (this is said once a minute).");
            }
            None
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
