//! What the portable export and its import need from a database: a user's objects of one type
//! page by page in id order (keyset paging, so memory stays bounded whatever the user holds),
//! and a faithful all-or-nothing restore of a batch of exported records.

use async_trait::async_trait;

use crate::domain::export::{ExportKind, ExportRecord};
use crate::store::StoreResult;

/// What restoring one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    Created,
    /// The user had the object with other content: it now holds the record's.
    Updated,
    /// The user had the object exactly as recorded: nothing was written.
    Unchanged,
}

/// Where the `n`-th record of a type after a position is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nth {
    /// Its id.
    Found(String),
    /// Fewer than `n` remain: how many.
    Short(u64),
}

#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Up to `limit` of the user's records of `kind` whose id sorts after `after_id` (all when
    /// `None`), by id ascending.
    async fn export_page(
        &self,
        user_id: &str,
        kind: ExportKind,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ExportRecord>>;

    /// The id of the `n`-th (from 1) record of `kind` after `after_id`, by id: where a page of
    /// `n` records ends, found without reading the records.
    async fn export_nth(
        &self,
        user_id: &str,
        kind: ExportKind,
        after_id: Option<&str>,
        n: u64,
    ) -> StoreResult<Nth>;

    /// Writes the records exactly as given (ids, timestamps, transcripts, states) in one
    /// transaction: all of them or none. A record equal to what the user holds is left alone.
    /// `Conflict` when another user holds one of the ids.
    async fn restore_records(
        &self,
        user_id: &str,
        records: Vec<ExportRecord>,
    ) -> StoreResult<Vec<RestoreOutcome>>;
}

/// The table each type lives in (every one has `user_id` and `id` columns).
pub fn table_of(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Folder => "folders",
        ExportKind::Conversation => "conversations",
        ExportKind::ActionItem => "action_items",
        ExportKind::Memory => "memories",
        ExportKind::Goal => "goals",
        ExportKind::DailySummary => "daily_summaries",
    }
}
