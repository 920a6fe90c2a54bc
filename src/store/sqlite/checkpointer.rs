//! WAL checkpoints on a thread of their own.
//!
//! A commit appends pages to the write-ahead log; a checkpoint copies them back into the database
//! file (and flushes it). SQLite by default runs that checkpoint on the committing connection,
//! which here is the single writer: every writer stalls behind the copy. Instead the writer only
//! signals that it committed, and this thread runs a `PASSIVE` checkpoint (which never blocks
//! the writer or readers) at most once per interval, on its own connection. The writer keeps a
//! much higher automatic threshold as a backstop, so the log stays bounded even if this thread
//! falls behind.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::Duration;

use rusqlite::Connection;

/// How long commits accumulate before a checkpoint: long enough that pages rewritten by many
/// commits are copied once, short enough that the log stays a few megabytes.
const INTERVAL: Duration = Duration::from_millis(100);

/// The WAL size, in pages, at which the writer checkpoints by itself (the backstop).
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8_000;

/// Tells the checkpoint thread that something was committed; cheap and never blocks. The thread
/// ends when the last notifier is dropped.
#[derive(Clone)]
pub struct CommitNotifier {
    sender: SyncSender<()>,
}

impl CommitNotifier {
    pub fn committed(&self) {
        // A full channel already holds a pending signal, which is all that is needed.
        let _ = self.sender.try_send(());
    }
}

/// Starts the checkpoint thread on its own connection.
pub fn start(connection: Connection) -> std::io::Result<CommitNotifier> {
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(connection, receiver))?;
    Ok(CommitNotifier { sender })
}

fn run(connection: Connection, commits: Receiver<()>) {
    while commits.recv().is_ok() {
        std::thread::sleep(INTERVAL);
        let more_to_come = match commits.try_recv() {
            Ok(()) | Err(TryRecvError::Empty) => true,
            Err(TryRecvError::Disconnected) => false,
        };
        if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
            // Harmless: the writer's own threshold checkpoints if this keeps failing.
            tracing::debug!(error = %error, "background WAL checkpoint failed");
        }
        if !more_to_come {
            break;
        }
    }
}
