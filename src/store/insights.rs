//! What the server needs from a database for daily summaries, people, profiles, user
//! timezones and the scheduler's lease (API.md §13.C, §13.D).

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::domain::daily_summaries::{DailySummary, SummaryFilter};
use crate::domain::paging::Page;
use crate::domain::people::Profile;
use crate::domain::time::Timestamp;
use crate::processing::insights::Sighting;
use crate::store::StoreResult;

/// How many memories a user has and when one last changed: a profile built from another state
/// is out of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryState {
    pub count: i64,
    pub last_updated_at: Option<Timestamp>,
}

/// A built profile with the memory state it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProfile {
    pub profile: Profile,
    pub generated_at: Timestamp,
    pub built_from: MemoryState,
}

/// Who made a stored summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOrigin {
    /// Made by omi-server (the scheduler or `omi-server summaries generate`).
    Generated,
    /// Received from Omi; it replaces a generated one of the same date.
    Received,
}

impl SummaryOrigin {
    pub const fn as_str(self) -> &'static str {
        match self {
            SummaryOrigin::Generated => "generated",
            SummaryOrigin::Received => "received",
        }
    }
}

#[async_trait]
pub trait InsightStore: Send + Sync {
    /// The segments of the user's transcripts that carry a `person_id`, newest first
    /// (conversation `created_at` desc, then the segment's position desc).
    async fn person_sightings(&self, user_id: &str) -> StoreResult<Vec<Sighting>>;

    async fn memory_state(&self, user_id: &str) -> StoreResult<MemoryState>;
    async fn get_profile(&self, user_id: &str) -> StoreResult<Option<StoredProfile>>;
    /// Replaces the user's profile.
    async fn save_profile(&self, user_id: &str, profile: StoredProfile) -> StoreResult<()>;

    /// `None` when there is no such user.
    async fn user_timezone(&self, user_id: &str) -> StoreResult<Option<String>>;
    /// `false` when there is no such user.
    async fn set_user_timezone(&self, user_id: &str, timezone: &str) -> StoreResult<bool>;
    /// Every user's id with their timezone, by id.
    async fn user_timezones(&self) -> StoreResult<Vec<(String, String)>>;

    /// `date` desc; only days within the filter.
    async fn list_daily_summaries(
        &self,
        user_id: &str,
        filter: SummaryFilter,
        page: Page,
    ) -> StoreResult<Vec<DailySummary>>;
    async fn get_daily_summary(&self, user_id: &str, id: &str)
    -> StoreResult<Option<DailySummary>>;
    async fn has_daily_summary(&self, user_id: &str, date: NaiveDate) -> StoreResult<bool>;
    /// Stores the summary of its date and announces it to webhook subscribers (`day_summary`).
    /// A generated one is stored only if the date has none (`false` otherwise); a received one
    /// replaces whatever the date has, unless it is the same summary received again (`false`,
    /// nothing announced).
    async fn save_daily_summary(
        &self,
        user_id: &str,
        summary: &DailySummary,
        origin: SummaryOrigin,
    ) -> StoreResult<bool>;

    /// Takes or renews the lease `name` for `holder` until `until`, unless another holder's
    /// lease is still valid at `now`. `true` when `holder` holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool>;
}
