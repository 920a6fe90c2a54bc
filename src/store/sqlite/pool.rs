//! Read connections shared by the worker threads.
//!
//! Each thread starts at "its own" connection (by a per-thread slot number) so that, with as
//! many connections as threads, locks are uncontended; a busy one sends it to the next free one.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rusqlite::Connection;

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
}
