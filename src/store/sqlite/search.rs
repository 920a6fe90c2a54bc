//! Full-text search on SQLite: FTS5 tables maintained by the triggers of migration 0008 (and,
//! for a conversation's transcript, by `index_conversation` when it is stored), ranked by BM25.
//!
//! Each query matches the FTS table first, keeps the user's documents among the newest
//! `CANDIDATES` matches, ranks those, then reads the objects; `bm25()` is negated so that higher
//! is better, and its best value over the ranked matches comes back with each row (a window over
//! the whole result) to normalise the page's scores.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use tracing::instrument;

use super::SqliteStore;
use super::conversations::{Loaded, attach_details, conversation_from_row};
use super::rows::{action_item_from_row, memory_from_row};
use crate::domain::action_items::ActionItem;
use crate::domain::conversations::Conversation;
use crate::domain::memories::{Memory, MemoryCategory};
use crate::domain::paging::Page;
use crate::domain::time::to_micros;
use crate::search::{CANDIDATES, LexicalQuery, Scored, normalize_scores};
use crate::store::columns::{self, ACTION_ITEM_COLUMNS, CONVERSATION_COLUMNS, MEMORY_COLUMNS};
use crate::store::conversations::{ConversationBody, NewConversation};
use crate::store::{ConversationSearchFilter, SearchStore, StoreResult};

/// Column weights: a word in a memory's content counts twice one in its tags.
const MEMORY_WEIGHTS: &str = "1.0, 0.5";
/// A word in a conversation's title counts four times, in its overview twice, one in its
/// transcript.
const CONVERSATION_WEIGHTS: &str = "4.0, 2.0, 1.0";

/// Adds a stored conversation to the index, in the transaction that stores it. The transcript
/// is the text it was created from, or its segments' texts one per line.
pub(super) fn index_conversation(
    connection: &Connection,
    user_id: &str,
    conversation: &NewConversation,
) -> rusqlite::Result<()> {
    let transcript = match &conversation.body {
        ConversationBody::Text { text, .. } => text.clone(),
        ConversationBody::Segments(segments) => segments
            .iter()
            .map(|segment| segment.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let structured = &conversation.processed.structured;
    index_conversation_text(
        connection,
        user_id,
        &conversation.id,
        &structured.title,
        &structured.overview,
        &transcript,
    )
}

/// Adds a conversation's texts to the index; every path that stores a conversation (created or
/// imported) calls this in its transaction. Changes of title and overview, and deletes, are
/// followed by the triggers of migration 0012.
pub(super) fn index_conversation_text(
    connection: &Connection,
    user_id: &str,
    id: &str,
    title: &str,
    overview: &str,
    transcript: &str,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached("INSERT INTO conversation_search_docs (user_id, id) VALUES (?1, ?2)")?
        .execute(params![user_id, id])?;
    let doc = connection.last_insert_rowid();
    connection
        .prepare_cached(
            "INSERT INTO conversations_fts (rowid, title, overview, transcript)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![doc, title, overview, transcript])?;
    Ok(())
}

/// The matches of `fts` (an FTS5 table with its docs table) for one user that pass `conditions`
/// (on the object joined by `join`), as `hit_id` and `relevance` (negated BM25 with the given
/// column weights), bounded to the newest `?3` of them (see `search::CANDIDATES`).
///
/// BM25 costs a few microseconds per match, and a common word matches thousands of documents,
/// so ranking every match made one search cost 70 ms over 100,000 memories. `bound` walks the
/// matches newest first in the index's own order (no ranking) to find the document number of
/// the `?3`-th one; `hits` then ranks only the matches at or above it, which FTS5 reads as a
/// rowid range. Below `?3` matches nothing is left out. `CROSS JOIN` keeps the full-text match
/// driving each join: left to itself the planner walks every document of the user and runs the
/// match once per document.
fn hits_cte(fts: &str, docs: &str, weights: &str, join: &str, conditions: &str) -> String {
    format!(
        "WITH bound AS (
             SELECT coalesce((
                 SELECT {fts}.rowid FROM {fts} CROSS JOIN {docs} d ON d.doc = {fts}.rowid {join}
                 WHERE {fts} MATCH ?1 AND d.user_id = ?2{conditions}
                 ORDER BY {fts}.rowid DESC LIMIT 1 OFFSET ?3 - 1), 0) AS doc),
         hits AS MATERIALIZED (
             SELECT d.id AS hit_id, -bm25({fts}, {weights}) AS relevance
             FROM bound CROSS JOIN {fts} CROSS JOIN {docs} d ON d.doc = {fts}.rowid {join}
             WHERE {fts} MATCH ?1 AND {fts}.rowid >= bound.doc AND d.user_id = ?2{conditions})"
    )
}

/// Binds `value` as the next positional parameter and returns its `?n`.
fn bind(values: &mut Vec<Value>, value: Value) -> String {
    values.push(value);
    format!("?{}", values.len())
}

/// Runs a search whose select list ends with `relevance` and the best relevance, reading the
/// object with `read` from the leading columns.
fn run<T>(
    connection: &Connection,
    sql: &str,
    values: &[Value],
    first_score_column: usize,
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<(Vec<(T, f64)>, f64)> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut best = 0.0_f64;
    let rows = statement
        .query_map(params_from_iter(values.iter()), |row| {
            let relevance: f64 = row.get(first_score_column)?;
            let top: f64 = row.get(first_score_column + 1)?;
            Ok((read(row)?, relevance, top))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let hits = rows
        .into_iter()
        .map(|(item, relevance, top)| {
            best = best.max(top);
            (item, relevance)
        })
        .collect();
    Ok((hits, best))
}

/// The first parameters of every search: the match expression, the user and how many of the
/// newest matches are ranked (at least the page's end, so deep pages stay reachable).
fn start(expression: String, user_id: &str, page: Page) -> Vec<Value> {
    vec![
        Value::Text(expression),
        Value::Text(user_id.to_string()),
        Value::Integer(CANDIDATES.max(page.offset.saturating_add(page.limit))),
    ]
}

fn page_clause(values: &mut Vec<Value>, page: Page) -> String {
    let limit = bind(values, Value::Integer(page.limit));
    let offset = bind(values, Value::Integer(page.offset));
    format!(" LIMIT {limit} OFFSET {offset}")
}

#[async_trait]
impl SearchStore for SqliteStore {
    #[instrument(skip_all)]
    async fn search_memories(
        &self,
        user_id: &str,
        query: &LexicalQuery,
        categories: &[MemoryCategory],
        page: Page,
    ) -> StoreResult<Vec<Scored<Memory>>> {
        let Some(expression) = query.fts5_expression() else {
            return Ok(Vec::new());
        };
        let mut values = start(expression, user_id, page);
        let mut conditions = String::new();
        if !categories.is_empty() {
            let names: Vec<String> = categories
                .iter()
                .map(|category| bind(&mut values, Value::Text(category.as_str().to_string())))
                .collect();
            conditions = format!(" AND m.category IN ({})", names.join(", "));
        }
        let join = if conditions.is_empty() {
            ""
        } else {
            "CROSS JOIN memories m ON m.user_id = d.user_id AND m.id = d.id"
        };
        let mut sql = format!(
            "{} SELECT {MEMORY_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN memories ON memories.user_id = ?2 AND memories.id = hits.hit_id",
            hits_cte(
                "memories_fts",
                "memory_search_docs",
                MEMORY_WEIGHTS,
                join,
                &conditions
            )
        );
        sql.push_str(" ORDER BY hits.relevance DESC, scoring DESC, created_at DESC, id DESC");
        sql.push_str(&page_clause(&mut values, page));
        let (hits, best) = self.read(|c| {
            run(
                c,
                &sql,
                &values,
                columns::count(MEMORY_COLUMNS),
                memory_from_row,
            )
        })?;
        Ok(normalize_scores(hits, best))
    }

    #[instrument(skip_all)]
    async fn search_action_items(
        &self,
        user_id: &str,
        query: &LexicalQuery,
        completed: Option<bool>,
        page: Page,
    ) -> StoreResult<Vec<Scored<ActionItem>>> {
        let Some(expression) = query.fts5_expression() else {
            return Ok(Vec::new());
        };
        let mut values = start(expression, user_id, page);
        let (join, conditions) = match completed {
            Some(completed) => {
                let completed = bind(&mut values, Value::Integer(i64::from(completed)));
                (
                    "CROSS JOIN action_items a ON a.user_id = d.user_id AND a.id = d.id",
                    format!(" AND a.completed = {completed}"),
                )
            }
            None => ("", String::new()),
        };
        let mut sql = format!(
            "{} SELECT {ACTION_ITEM_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN action_items ON action_items.id = hits.hit_id
                 AND action_items.user_id = ?2",
            hits_cte(
                "action_items_fts",
                "action_item_search_docs",
                "1.0",
                join,
                &conditions
            )
        );
        sql.push_str(" ORDER BY hits.relevance DESC, created_at DESC, id DESC");
        sql.push_str(&page_clause(&mut values, page));
        let (hits, best) = self.read(|c| {
            run(
                c,
                &sql,
                &values,
                columns::count(ACTION_ITEM_COLUMNS),
                action_item_from_row,
            )
        })?;
        Ok(normalize_scores(hits, best))
    }

    #[instrument(skip_all)]
    async fn search_conversations(
        &self,
        user_id: &str,
        query: &LexicalQuery,
        filter: ConversationSearchFilter,
        page: Page,
        include_transcript: bool,
    ) -> StoreResult<Vec<Scored<Conversation>>> {
        let Some(expression) = query.fts5_expression() else {
            return Ok(Vec::new());
        };
        let mut values = start(expression, user_id, page);
        // Discarded and out-of-range conversations are left out before the newest matches are
        // counted, so that they never take a candidate's place.
        let mut conditions = String::from(" AND k.discarded = 0");
        if let Some(from) = filter.created_from {
            let from = bind(&mut values, Value::Integer(to_micros(from)));
            conditions.push_str(&format!(" AND k.created_at >= {from}"));
        }
        if let Some(before) = filter.created_before {
            let before = bind(&mut values, Value::Integer(to_micros(before)));
            conditions.push_str(&format!(" AND k.created_at < {before}"));
        }
        let mut sql = format!(
            "{} SELECT {CONVERSATION_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN conversations c ON c.user_id = ?2 AND c.id = hits.hit_id
             LEFT JOIN folders f ON f.id = c.folder_id AND f.user_id = c.user_id",
            hits_cte(
                "conversations_fts",
                "conversation_search_docs",
                CONVERSATION_WEIGHTS,
                "CROSS JOIN conversations k ON k.user_id = d.user_id AND k.id = d.id",
                &conditions
            )
        );
        sql.push_str(" ORDER BY hits.relevance DESC, c.created_at DESC, c.id DESC");
        sql.push_str(&page_clause(&mut values, page));
        self.read(|c| {
            let (hits, best) = run(
                c,
                &sql,
                &values,
                columns::count(CONVERSATION_COLUMNS),
                conversation_from_row,
            )?;
            let (loaded, relevances): (Vec<Loaded>, Vec<f64>) = hits.into_iter().unzip();
            let conversations = attach_details(c, user_id, loaded, include_transcript)?;
            Ok(normalize_scores(
                conversations.into_iter().zip(relevances).collect(),
                best,
            ))
        })
    }
}
