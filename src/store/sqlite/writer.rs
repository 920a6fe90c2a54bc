//! The single writer connection, with group commit.
//!
//! SQLite allows one writer at a time, so every write runs on one connection owned by a
//! dedicated thread. Under concurrent load the costly part of a write is not the statements but
//! the commit: each commit appends every page it dirtied (table and index pages) to the WAL and,
//! with `synchronous=FULL`, waits for a flush. Writes that queue up while a commit is in progress
//! therefore run together in the next transaction, each inside its own savepoint:
//! - a write that fails rolls back to its savepoint and leaves the others untouched, so every
//!   write is still all-or-nothing on its own;
//! - every caller hears back only after the shared `COMMIT` has succeeded, so an acknowledged
//!   write is durable; if the commit fails, every write in the group reports the failure.
//!
//! Pages shared by the group (the ends of the same indexes) are then written once per commit
//! instead of once per write.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpointer::CommitNotifier;
use super::{map_error, map_error_ref};
use crate::store::{StoreError, StoreResult};

/// The most writes one transaction takes: enough to absorb every connection of a busy server,
/// small enough that one group's transaction stays short.
const MAX_GROUP: usize = 64;

/// A handle to the writer thread; cloning shares the thread, which ends when the last handle is
/// dropped.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Command>,
    /// Writes sent and not yet answered (for the pool metrics).
    pending: Arc<AtomicUsize>,
}

enum Command {
    Write(Box<dyn Job>),
    /// Folds the WAL back into the database file (run between transactions).
    Checkpoint(oneshot::Sender<StoreResult<()>>),
}

/// Runs in every transaction after its writes, before `COMMIT`; an error fails the whole group.
pub type BeforeCommit = fn(&Connection) -> rusqlite::Result<()>;

impl Writer {
    /// Starts the writer thread on an open, migrated connection; `commits` hears of every
    /// commit (see `checkpointer`).
    pub fn start(
        connection: Connection,
        commits: CommitNotifier,
        before_commit: BeforeCommit,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let answered = pending.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(connection, receiver, commits, before_commit, &answered))?;
        Ok(Writer { sender, pending })
    }

    /// Writes queued or running right now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Runs `work` in a transaction (possibly shared with other writes, each in its own
    /// savepoint) and answers once that transaction has committed.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            result: None,
            reply,
        };
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(Command::Write(Box::new(job))).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(writer_gone());
        }
        answer.await.map_err(|_| writer_gone())?
    }

    pub async fn checkpoint(&self) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Command::Checkpoint(reply))
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Internal(anyhow::anyhow!("the SQLite writer thread has stopped"))
}

/// One queued write with its result type erased, so writes of any type share a group.
trait Job: Send {
    /// Runs the work inside the open transaction; `true` when it succeeded.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller once the transaction's fate is known: `committed` is the commit's
    /// outcome, which a successful write adopts (a failed write keeps its own error).
    fn finish(self: Box<Self>, committed: StoreResult<()>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking write must not take the writer thread (and every later write) with it.
        let result = catch_unwind(AssertUnwindSafe(|| work(connection)))
            .unwrap_or_else(|panic| Err(panicked(panic.as_ref())));
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let answer = match (self.result, committed) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(commit)) => Err(commit),
            (None, Ok(())) => Err(StoreError::Internal(anyhow::anyhow!(
                "a write was committed without running"
            ))),
        };
        // The caller may have gone (a cancelled request); its write stands either way.
        let _ = self.reply.send(answer);
    }
}

fn panicked(panic: &(dyn Any + Send)) -> StoreError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    StoreError::Internal(anyhow::anyhow!("a write panicked: {message}"))
}

fn run(
    mut connection: Connection,
    receiver: mpsc::Receiver<Command>,
    commits: CommitNotifier,
    before_commit: BeforeCommit,
    pending: &AtomicUsize,
) {
    while let Ok(command) = receiver.recv() {
        let mut group = match command {
            Command::Write(job) => vec![job],
            Command::Checkpoint(reply) => {
                let _ = reply.send(checkpoint(&connection));
                continue;
            }
        };
        let mut checkpoints = Vec::new();
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(Command::Write(job)) => group.push(job),
                Ok(Command::Checkpoint(reply)) => checkpoints.push(reply),
                Err(_) => break,
            }
        }
        commit_group(&mut connection, group, before_commit, pending);
        commits.committed();
        for reply in checkpoints {
            let _ = reply.send(checkpoint(&connection));
        }
    }
}

fn checkpoint(connection: &Connection) -> StoreResult<()> {
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(map_error)
}

/// Runs a group of writes in one `BEGIN IMMEDIATE` transaction, each in a savepoint, commits,
/// then answers every caller.
///
/// `pending` drops as each caller is answered, not after: a caller that reads the pool gauges
/// right after its answer must not still count its own write.
fn commit_group(
    connection: &mut Connection,
    mut group: Vec<Box<dyn Job>>,
    before_commit: BeforeCommit,
    pending: &AtomicUsize,
) {
    let outcome = run_in_transaction(connection, &mut group, before_commit);
    if outcome.is_err() && !connection.is_autocommit() {
        // Nothing of a failed group may stay behind for the next one.
        let _ = connection.execute_batch("ROLLBACK");
    }
    for job in group {
        let committed = match &outcome {
            Ok(()) => Ok(()),
            Err(error) => Err(map_error_ref(error)),
        };
        pending.fetch_sub(1, Ordering::Relaxed);
        job.finish(committed);
    }
}

fn run_in_transaction(
    connection: &Connection,
    group: &mut [Box<dyn Job>],
    before_commit: BeforeCommit,
) -> rusqlite::Result<()> {
    execute(connection, "BEGIN IMMEDIATE")?;
    for job in group.iter_mut() {
        execute(connection, "SAVEPOINT write")?;
        if !job.run(connection) {
            execute(connection, "ROLLBACK TO write")?;
        }
        execute(connection, "RELEASE write")?;
    }
    before_commit(connection)?;
    execute(connection, "COMMIT")
}

/// Transaction control statements, prepared once and kept in the statement cache.
fn execute(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (Writer, tempfile::TempDir) {
        let folder = tempfile::tempdir().unwrap();
        let connection = Connection::open(folder.path().join("w.db")).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (v INTEGER NOT NULL UNIQUE);",
            )
            .unwrap();
        let checkpoints = super::super::checkpointer::start(
            Connection::open(folder.path().join("w.db")).unwrap(),
        )
        .unwrap();
        (
            Writer::start(connection, checkpoints, |_| Ok(())).unwrap(),
            folder,
        )
    }

    async fn values(writer: &Writer) -> Vec<i64> {
        writer
            .write(|c| {
                let mut statement = c.prepare("SELECT v FROM t ORDER BY v").map_err(map_error)?;
                let rows = statement
                    .query_map([], |row| row.get(0))
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<i64>>>()
                    .map_err(map_error)?;
                Ok(rows)
            })
            .await
            .unwrap()
    }

    fn insert(values: &'static [i64]) -> impl FnOnce(&Connection) -> StoreResult<()> + Send {
        move |c| {
            for v in values {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                    .map_err(map_error)?;
            }
            Ok(())
        }
    }

    /// Concurrent writes share transactions, yet a failing one leaves nothing behind and does
    /// not disturb the others.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_in_a_group_rolls_back_alone() {
        let (writer, _folder) = writer();
        let mut tasks = Vec::new();
        for round in 0..50i64 {
            let w = writer.clone();
            // Each good write inserts two distinct values; each bad one inserts a fresh value,
            // then a value of the good write of the same round (a conflict) -> all-or-nothing.
            let good: &'static [i64] = Box::leak(Box::new([round * 10, round * 10 + 1]));
            let bad: &'static [i64] = Box::leak(Box::new([round * 10 + 5, round * 10]));
            tasks.push(tokio::spawn(async move { w.write(insert(good)).await }));
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                tokio::task::yield_now().await;
                w.write(insert(bad)).await
            }));
        }
        let mut succeeded = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                succeeded += 1;
            }
        }
        let stored = values(&writer).await;
        // Whichever of a round's pair ran first won; the loser left no row at all.
        assert_eq!(stored.len(), succeeded * 2, "{stored:?}");
        for round in 0..50i64 {
            let of_round: Vec<i64> = stored.iter().copied().filter(|v| v / 10 == round).collect();
            assert!(
                of_round == [round * 10, round * 10 + 1]
                    || of_round == [round * 10, round * 10 + 5],
                "round {round}: {of_round:?}"
            );
        }
    }

    /// Deterministic grouping: while a first write holds the writer, three more queue up and
    /// then run in one transaction; the failing middle one leaves no row, its neighbours commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_commit_share_it_and_fail_alone() {
        let (writer, _folder) = writer();
        let (release, gate) = mpsc::channel::<()>();
        let held = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(move |_| {
                        gate.recv().ok();
                        Ok(())
                    })
                    .await
            }
        });
        let mut queued = Vec::new();
        for values in [&[1, 2][..], &[3, 1][..], &[4][..]] {
            let in_queue = writer.pending() + 1;
            let task_writer = writer.clone();
            queued.push(tokio::spawn(async move {
                task_writer.write(insert(values)).await
            }));
            // Waits for a condition, not a duration, so the writes queue in this order.
            while writer.pending() < in_queue {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        let outcomes: Vec<bool> = futures::future::join_all(queued)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().is_ok())
            .collect();
        assert_eq!(outcomes, [true, false, true]);
        assert_eq!(values(&writer).await, [1, 2, 4]);
        assert_eq!(writer.pending(), 0);
    }

    #[tokio::test]
    async fn a_panicking_write_reports_an_error_and_the_writer_goes_on() {
        let (writer, _folder) = writer();
        let error = writer
            .write(|c| -> StoreResult<()> {
                c.execute("INSERT INTO t (v) VALUES (1)", []).unwrap();
                panic!("boom")
            })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("boom"), "{error}");
        writer.write(insert(&[2])).await.unwrap();
        // An answered write no longer counts as pending (the pool gauges read this).
        assert_eq!(writer.pending(), 0);
        assert_eq!(values(&writer).await, [2]);
        writer.checkpoint().await.unwrap();
    }
}
