//! Forgetting old deletions: tombstones older than `OMI_TOMBSTONE_DAYS` are removed in the
//! background, a bounded batch at a time (`service::pruning`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::pruning;
use crate::domain::time;
use crate::store::{Store, StoreResult};

/// Removes tombstones older than `days`; how many went.
pub async fn prune(store: &dyn Store, days: u32) -> StoreResult<u64> {
    let before = time::now() - chrono::Duration::days(i64::from(days));
    pruning::in_batches(|batch| store.prune_tombstones(before, batch)).await
}

pub fn spawn_pruner(
    store: Arc<dyn Store>,
    days: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    pruning::spawn_hourly("tombstones", stop, move || {
        let store = store.clone();
        async move { prune(&*store, days).await }
    })
}
