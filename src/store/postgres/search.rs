//! Full-text search on PostgreSQL: the generated `search` tsvector columns of migration 0008
//! with their GIN indexes, matched with `to_tsquery` texts built by `LexicalQuery` (words of
//! letters and digits only) and ranked with `ts_rank`. A document that holds the whole query
//! as a phrase ranks twice as high, as the phrase term does in SQLite's BM25.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::conversations::{Loaded, attach_details, conversation_from_row};
use super::rows::{action_item_from_row, memory_from_row};
use super::{PgStore, query};
use crate::domain::action_items::ActionItem;
use crate::domain::conversations::Conversation;
use crate::domain::memories::{Memory, MemoryCategory};
use crate::domain::paging::Page;
use crate::search::{CANDIDATES, LexicalQuery, Scored, normalize_scores};
use crate::store::columns::{self, ACTION_ITEM_COLUMNS, CONVERSATION_COLUMNS, MEMORY_COLUMNS};
use crate::store::{ConversationSearchFilter, SearchStore, StoreResult};

/// `$1` user, `$2` the query, `$3` the whole-text phrase (or null): the parsed queries.
const QUERIES: &str = "WITH q AS (
         SELECT to_tsquery('omi_search', $2) AS q,
                CASE WHEN $3::text IS NULL THEN NULL ELSE to_tsquery('omi_search', $3) END AS p)";

/// How many of the newest matches are ranked, `$4` of every search (see `search::CANDIDATES`):
/// ranking reads and scores each match's vector, so an unbounded search grows with the
/// collection. The newest matches come off the `(user_id, created_at)` indexes.
fn candidates(page: Page) -> i64 {
    CANDIDATES.max(page.offset.saturating_add(page.limit))
}

/// The relevance of a row whose vector is `vector`, with the length normalisation `norm`.
fn relevance(vector: &str, norm: u8) -> String {
    format!(
        "(ts_rank({vector}, q.q, {norm})::float8
          * CASE WHEN q.p IS NOT NULL AND {vector} @@ q.p THEN 2.0 ELSE 1.0 END)"
    )
}

/// Reads each row with `read`, then the relevance and the best relevance the query appends
/// after `columns`.
fn read_scored<T>(
    rows: &[tokio_postgres::Row],
    columns: &str,
    read: impl Fn(&tokio_postgres::Row) -> StoreResult<T>,
) -> StoreResult<(Vec<(T, f64)>, f64)> {
    let first_score_column = columns::count(columns);
    let mut best = 0.0_f64;
    let mut hits = Vec::with_capacity(rows.len());
    for row in rows {
        let relevance: f64 = row.try_get(first_score_column)?;
        let top: f64 = row.try_get(first_score_column + 1)?;
        best = best.max(top);
        hits.push((read(row)?, relevance));
    }
    Ok((hits, best))
}

#[async_trait]
impl SearchStore for PgStore {
    #[instrument(skip_all)]
    async fn search_memories(
        &self,
        user_id: &str,
        lexical: &LexicalQuery,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Vec<Scored<Memory>>> {
        let Some(text) = lexical.tsquery() else {
            return Ok(Vec::new());
        };
        let whole = lexical.tsquery_whole();
        let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        let candidates = candidates(page);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user_id, &text, &whole, &candidates];
        let mut filter = String::new();
        if !names.is_empty() {
            params.push(&names);
            filter = format!(" AND m.category = ANY(${})", params.len());
        }
        params.push(&page.limit);
        params.push(&page.offset);
        let sql = format!(
            "{QUERIES}, candidates AS MATERIALIZED (
                 SELECT m.id, m.search, m.scoring, m.created_at FROM memories m
                 WHERE m.user_id = $1 AND m.search @@ to_tsquery('omi_search', $2){filter}
                 ORDER BY m.created_at DESC LIMIT $4),
             top AS (
                 SELECT id, scoring, created_at, {} AS relevance FROM candidates m, q),
             page AS (
                 SELECT id AS hit_id, relevance, max(relevance) OVER () AS best
                 FROM top ORDER BY relevance DESC, scoring DESC, created_at DESC, id DESC
                 LIMIT ${} OFFSET ${})
             SELECT {MEMORY_COLUMNS}, page.relevance, page.best
             FROM page JOIN memories ON memories.user_id = $1 AND memories.id = page.hit_id
             ORDER BY page.relevance DESC, scoring DESC, created_at DESC, id DESC",
            relevance("m.search", 0),
            params.len() - 1,
            params.len()
        );
        let (hits, best) = with_connection!(self, |client| {
            let rows = query(client, &sql, &params).await?;
            read_scored(&rows, MEMORY_COLUMNS, memory_from_row)
        })?;
        Ok(normalize_scores(hits, best))
    }

    #[instrument(skip_all)]
    async fn search_action_items(
        &self,
        user_id: &str,
        lexical: &LexicalQuery,
        completed: Option<bool>,
        page: Page,
    ) -> StoreResult<Vec<Scored<ActionItem>>> {
        let Some(text) = lexical.tsquery() else {
            return Ok(Vec::new());
        };
        let whole = lexical.tsquery_whole();
        let candidates = candidates(page);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user_id, &text, &whole, &candidates];
        let mut filter = String::new();
        if let Some(completed) = &completed {
            params.push(completed);
            filter = format!(" AND a.completed = ${}", params.len());
        }
        params.push(&page.limit);
        params.push(&page.offset);
        let sql = format!(
            "{QUERIES}, candidates AS MATERIALIZED (
                 SELECT a.id, a.search, a.created_at FROM action_items a
                 WHERE a.user_id = $1 AND a.search @@ to_tsquery('omi_search', $2){filter}
                 ORDER BY a.created_at DESC LIMIT $4),
             page AS (
                 SELECT a.id AS hit_id, {rel} AS relevance, max({rel}) OVER () AS best
                 FROM candidates a, q
                 ORDER BY relevance DESC, a.created_at DESC, a.id DESC
                 LIMIT ${} OFFSET ${})
             SELECT {ACTION_ITEM_COLUMNS}, page.relevance, page.best
             FROM page JOIN action_items ON action_items.id = page.hit_id
                 AND action_items.user_id = $1
             ORDER BY page.relevance DESC, created_at DESC, id DESC",
            params.len() - 1,
            params.len(),
            rel = relevance("a.search", 0),
        );
        let (hits, best) = with_connection!(self, |client| {
            let rows = query(client, &sql, &params).await?;
            read_scored(&rows, ACTION_ITEM_COLUMNS, action_item_from_row)
        })?;
        Ok(normalize_scores(hits, best))
    }

    #[instrument(skip_all)]
    async fn search_conversations(
        &self,
        user_id: &str,
        lexical: &LexicalQuery,
        filter: ConversationSearchFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Vec<Scored<Conversation>>> {
        let Some(text) = lexical.tsquery() else {
            return Ok(Vec::new());
        };
        let whole = lexical.tsquery_whole();
        let candidates = candidates(page);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user_id, &text, &whole, &candidates];
        let mut conditions = String::new();
        if let Some(from) = &filter.created_from {
            params.push(from);
            conditions.push_str(&format!(" AND c.created_at >= ${}", params.len()));
        }
        if let Some(before) = &filter.created_before {
            params.push(before);
            conditions.push_str(&format!(" AND c.created_at < ${}", params.len()));
        }
        params.push(&page.limit);
        params.push(&page.offset);
        // Length normalisation 1 (divide by 1 + log(length)) keeps long transcripts from
        // outranking a conversation whose title or summary is about the query.
        let sql = format!(
            "{QUERIES}, candidates AS MATERIALIZED (
                 SELECT c.id, c.search, c.created_at FROM conversations c
                 WHERE c.user_id = $1 AND NOT c.discarded AND c.search @@ to_tsquery('omi_search', $2){conditions}
                 ORDER BY c.created_at DESC LIMIT $4),
             hits AS (
                 SELECT c.id AS hit_id, {} AS relevance FROM candidates c, q)
             SELECT {CONVERSATION_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN conversations c ON c.id = hits.hit_id AND c.user_id = $1
             LEFT JOIN folders f ON f.id = c.folder_id AND f.user_id = c.user_id
             ORDER BY hits.relevance DESC, c.created_at DESC, c.id DESC
             LIMIT ${} OFFSET ${}",
            relevance("c.search", 1),
            params.len() - 1,
            params.len()
        );
        with_connection!(self, |client| {
            let rows = query(client, &sql, &params).await?;
            let (hits, best) = read_scored(&rows, CONVERSATION_COLUMNS, conversation_from_row)?;
            let (loaded, relevances): (Vec<Loaded>, Vec<f64>) = hits.into_iter().unzip();
            let conversations = attach_details(client, user_id, loaded, include_transcript).await?;
            Ok(normalize_scores(
                conversations.into_iter().zip(relevances).collect(),
                best,
            ))
        })
    }
}
