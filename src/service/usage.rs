//! `last_used_at`: written at most once per 60 s per key, so that reads do not queue behind
//! writes on every request (API.md §2.2).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use parking_lot::Mutex;

use crate::domain::keys::DevApiKey;
use crate::domain::time;
use crate::store::Store;

pub const TOUCH_INTERVAL_SECONDS: i64 = 60;

#[derive(Default)]
pub struct KeyUsage {
    /// Keys whose update is being written right now, so concurrent requests do not all write.
    in_flight: Mutex<HashSet<String>>,
}

impl KeyUsage {
    /// Records a use of `key` when its stored `last_used_at` is older than the interval. The one
    /// request per minute that does so waits for the write, which keeps the value exact and
    /// observable by the next request.
    pub async fn record(&self, store: &Arc<dyn Store>, key: &DevApiKey) {
        let now = time::now();
        let stale_before = now - Duration::seconds(TOUCH_INTERVAL_SECONDS);
        if key.last_used_at.is_some_and(|last| last >= stale_before) {
            return;
        }
        if !self.in_flight.lock().insert(key.id.clone()) {
            return;
        }
        if let Err(error) = store.touch_key(&key.id, now, stale_before).await {
            // Losing one usage timestamp is not worth failing the request over.
            tracing::warn!(error = %error, "could not record key usage");
        }
        self.in_flight.lock().remove(&key.id);
    }
}
