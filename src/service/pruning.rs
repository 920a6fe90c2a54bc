//! The shape every background clean-up shares: rows removed in bounded batches (so no
//! transaction grows with the backlog), at most a bounded number of batches per run (a huge
//! backlog is worked off over several runs), once an hour. Any replica may run it; two running
//! at once delete disjoint or already-deleted rows.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::StoreResult;

const EVERY: Duration = Duration::from_secs(3600);
/// Rows one batch removes at the most.
pub const BATCH: i64 = 10_000;
const MAX_BATCHES_PER_RUN: usize = 100;

/// Runs `remove_batch(BATCH)` until a batch comes back short (or the run's bound); how many
/// rows went in all.
pub async fn in_batches<F, Fut>(mut remove_batch: F) -> StoreResult<u64>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = StoreResult<u64>>,
{
    let mut removed = 0;
    for _ in 0..MAX_BATCHES_PER_RUN {
        let batch = remove_batch(BATCH).await?;
        removed += batch;
        if batch < BATCH as u64 {
            break;
        }
    }
    Ok(removed)
}

/// Runs `run` every hour until `stop`, logging what it removed (`what` names the rows).
pub fn spawn_hourly<F, Fut>(
    what: &'static str,
    stop: CancellationToken,
    mut run: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = StoreResult<u64>> + Send,
{
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
            match run().await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "removed old {what}"),
                Err(error) => tracing::warn!(error = %error, "removing old {what} failed"),
            }
        }
    })
}
