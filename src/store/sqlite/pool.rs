//! Read connections shared by the worker threads.
//!
//! Each thread starts at "its own" connection (by a per-thread slot number) so that, with as
//! many connections as threads, locks are uncontended; a busy one sends it to the next free one.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rusqlite::Connection;

use crate::store::PoolUsage;

pub struct ReadPool {
    connections: Box<[Mutex<Connection>]>,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

impl ReadPool {
    pub fn new(connections: Vec<Connection>) -> Self {
        assert!(!connections.is_empty(), "a read pool needs a connection");
        ReadPool {
            connections: connections.into_iter().map(Mutex::new).collect(),
        }
    }

    pub fn with<T>(&self, work: impl FnOnce(&Connection) -> T) -> T {
        let count = self.connections.len();
        let start = THREAD_SLOT.with(|slot| *slot) % count;
        for offset in 0..count {
            if let Some(connection) = self.connections[(start + offset) % count].try_lock() {
                return work(&connection);
            }
        }
        work(&self.connections[start].lock())
    }

    /// Connections held by a reader right now. Only looks at the locks, never takes one.
    pub fn in_use(&self) -> usize {
        self.connections.iter().filter(|c| c.is_locked()).count()
    }

    pub fn size(&self) -> usize {
        self.connections.len()
    }
}

/// The read pool and the single writer connection as the metrics listener reports them.
/// `writes_pending`: writes handed to the writer thread and not yet answered; one runs, the rest
/// wait for the next group commit.
pub fn usage(readers: &ReadPool, writes_pending: usize) -> Vec<PoolUsage> {
    vec![
        PoolUsage {
            pool: "sqlite_read",
            max: readers.size(),
            open: readers.size(),
            in_use: readers.in_use(),
            waiting: None,
        },
        PoolUsage {
            pool: "sqlite_write",
            max: 1,
            open: 1,
            in_use: writes_pending.min(1),
            waiting: Some(writes_pending.saturating_sub(1)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_of(size: usize) -> ReadPool {
        ReadPool::new(
            (0..size)
                .map(|_| Connection::open_in_memory().unwrap())
                .collect(),
        )
    }

    #[test]
    fn usage_counts_connections_held_by_readers() {
        let pool = pool_of(3);
        assert_eq!(usage(&pool, 0)[0].in_use, 0);
        pool.with(|_| {
            let read = usage(&pool, 3);
            assert_eq!(read[0].pool, "sqlite_read");
            assert_eq!((read[0].open, read[0].in_use), (3, 1));
            let write = read[1];
            assert_eq!(write.pool, "sqlite_write");
            assert_eq!((write.in_use, write.waiting), (1, Some(2)));
        });
        assert_eq!(usage(&pool, 0)[0].in_use, 0);
    }
}
