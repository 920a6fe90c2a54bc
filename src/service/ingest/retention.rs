//! Forgetting processed deliveries: an inbox row that was processed keeps only its dedupe key
//! (the body is dropped when it is done), and that key is needed only while the app may still
//! retry the delivery. Rows processed more than `OMI_INGEST_INBOX_DAYS` ago are removed in the
//! background, a bounded batch at a time; pending and failed rows are never removed (a failed
//! one keeps its body and error until someone looks at it). Any replica may do it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::domain::time::{self, Timestamp};
use crate::service::pruning;
use crate::store::{Store, StoreResult};

/// Removes the deliveries processed more than `days` before `now`; how many went.
pub async fn prune(store: &dyn Store, days: u32, now: Timestamp) -> StoreResult<u64> {
    let before = now - chrono::Duration::days(i64::from(days));
    pruning::in_batches(|batch| store.prune_inbox(before, batch)).await
}

pub fn spawn_pruner(
    store: Arc<dyn Store>,
    days: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    pruning::spawn_hourly("processed ingest deliveries", stop, move || {
        let store = store.clone();
        async move { prune(&*store, days, time::now()).await }
    })
}
