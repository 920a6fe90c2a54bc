//! Forgetting processed deliveries: an inbox row that was processed keeps only its dedupe key
//! (the body is dropped when it is done), and that key is needed only while the app may still
//! retry the delivery. Rows processed more than `OMI_INGEST_INBOX_DAYS` ago are removed in the
//! background, a bounded batch at a time; pending and failed rows are never removed (a failed
//! one keeps its body and error until someone looks at it). Any replica may do it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::time::{self, Timestamp};
use crate::store::{Store, StoreResult};

const EVERY: Duration = Duration::from_secs(3600);
const BATCH: i64 = 10_000;
/// Bounds one run, so a huge backlog is worked off over several runs.
const MAX_BATCHES_PER_RUN: usize = 100;

/// Removes the deliveries processed more than `days` before `now`; how many went.
pub async fn prune(store: &dyn Store, days: u32, now: Timestamp) -> StoreResult<u64> {
    let before = now - chrono::Duration::days(i64::from(days));
    let mut pruned = 0;
    for _ in 0..MAX_BATCHES_PER_RUN {
        let batch = store.prune_inbox(before, BATCH).await?;
        pruned += batch;
        if batch < BATCH as u64 {
            break;
        }
    }
    Ok(pruned)
}

pub fn spawn_pruner(
    store: Arc<dyn Store>,
    days: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Not at start: a fresh process has nothing urgent to prune, and its first requests get
        // every pooled connection.
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match prune(&*store, days, time::now()).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "old processed ingest deliveries removed"),
                Err(error) => {
                    tracing::warn!(error = %error, "removing old ingest deliveries failed")
                }
            }
        }
    })
}
