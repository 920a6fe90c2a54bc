//! The change feed: each list read in `(updated_at, id)` order from a position, and the
//! tombstones deletions leave.
//!
//! How the order stays the commit order: every write transaction of a user first moves the user's
//! `last_change_at` to `max(clock, last_change_at + 1 µs)` (one `UPDATE ... RETURNING` on the user
//! row, whose lock queues the user's other writers until commit) and writes that value as the
//! `updated_at` of every object it changes and the `deleted_at` of every tombstone it leaves. A
//! later transaction of the same user therefore always gets a larger value, on any replica and
//! whatever the clocks say, and a reader that saw position P has seen every change up to P.

use async_trait::async_trait;

use crate::domain::action_items::{ActionItem, ActionItemFilter};
use crate::domain::conversations::Conversation;
use crate::domain::feed::{FeedWindow, Tombstone, TombstoneType};
use crate::domain::folders::Folder;
use crate::domain::goals::Goal;
use crate::domain::memories::{Memory, MemoryCategory};
use crate::domain::time::Timestamp;
use crate::store::StoreResult;
use crate::store::conversations::ConversationFilter;

/// Every list's filters apply as they do to the list. Conversations include discarded ones and
/// goals include ended ones, so that a mirror learns when one leaves the default list.
#[async_trait]
pub trait FeedStore: Send + Sync {
    async fn memories_changed(
        &self,
        user_id: &str,
        categories: &[MemoryCategory],
        window: &FeedWindow,
    ) -> StoreResult<Vec<Memory>>;

    async fn action_items_changed(
        &self,
        user_id: &str,
        filter: ActionItemFilter,
        window: &FeedWindow,
    ) -> StoreResult<Vec<ActionItem>>;

    async fn conversations_changed(
        &self,
        user_id: &str,
        filter: &ConversationFilter,
        window: &FeedWindow,
        include_transcript: bool,
    ) -> StoreResult<Vec<Conversation>>;

    async fn goals_changed(&self, user_id: &str, window: &FeedWindow) -> StoreResult<Vec<Goal>>;

    /// With live counts, like the folder list.
    async fn folders_changed(&self, user_id: &str, window: &FeedWindow)
    -> StoreResult<Vec<Folder>>;

    /// Tombstones of the given types (all when empty) by `(deleted_at, type/id)`.
    async fn deletions(
        &self,
        user_id: &str,
        types: &[TombstoneType],
        window: &FeedWindow,
    ) -> StoreResult<Vec<Tombstone>>;

    /// Drops tombstones older than `before`, at most `limit` of them; how many went.
    async fn prune_tombstones(&self, before: Timestamp, limit: i64) -> StoreResult<u64>;
}
