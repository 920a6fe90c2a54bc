//! Full-text search on SQLite: FTS5 tables maintained by the triggers of migration 0008 (and,
//! for a conversation's transcript, by `index_conversation` when it is stored), ranked by BM25.
//!
//! Each query matches the FTS table first, keeps the user's documents, then reads the objects;
//! `bm25()` is negated so that higher is better, and its best value over every match comes back
//! with each row (a window over the whole result) to normalise the page's scores.

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
use crate::search::{LexicalQuery, Scored, normalize_scores};
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

/// Adds a conversation to the index from its parts, in the transaction that stores it.
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

/// The matches of `fts` (an FTS5 table with its docs table) for one user, as `hit_id` and
/// `relevance` (negated BM25 with the given column weights). `CROSS JOIN` makes the full-text
/// match drive the join: left to itself the planner walks every document of the user and runs
/// the match once per document (measured 8 s against 13 ms over 20,000 memories).
fn hits_cte(fts: &str, docs: &str, weights: &str) -> String {
    format!(
        "WITH hits AS (
             SELECT d.id AS hit_id, -bm25({fts}, {weights}) AS relevance
             FROM {fts} CROSS JOIN {docs} d ON d.doc = {fts}.rowid
             WHERE {fts} MATCH ?1 AND d.user_id = ?2)"
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

fn start(expression: String, user_id: &str) -> Vec<Value> {
    vec![Value::Text(expression), Value::Text(user_id.to_string())]
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
        let mut values = start(expression, user_id);
        let mut sql = format!(
            "{} SELECT {MEMORY_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN memories ON memories.user_id = ?2 AND memories.id = hits.hit_id",
            hits_cte("memories_fts", "memory_search_docs", MEMORY_WEIGHTS)
        );
        if !categories.is_empty() {
            let names: Vec<String> = categories
                .iter()
                .map(|category| bind(&mut values, Value::Text(category.as_str().to_string())))
                .collect();
            sql.push_str(&format!(" WHERE category IN ({})", names.join(", ")));
        }
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
        let mut values = start(expression, user_id);
        let mut sql = format!(
            "{} SELECT {ACTION_ITEM_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN action_items ON action_items.id = hits.hit_id
                 AND action_items.user_id = ?2",
            hits_cte("action_items_fts", "action_item_search_docs", "1.0")
        );
        if let Some(completed) = completed {
            let completed = bind(&mut values, Value::Integer(i64::from(completed)));
            sql.push_str(&format!(" WHERE completed = {completed}"));
        }
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
        let mut values = start(expression, user_id);
        let mut sql = format!(
            "{} SELECT {CONVERSATION_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits JOIN conversations c ON c.user_id = ?2 AND c.id = hits.hit_id
             LEFT JOIN folders f ON f.id = c.folder_id AND f.user_id = c.user_id
             WHERE c.discarded = 0",
            hits_cte(
                "conversations_fts",
                "conversation_search_docs",
                CONVERSATION_WEIGHTS
            )
        );
        if let Some(from) = filter.created_from {
            let from = bind(&mut values, Value::Integer(to_micros(from)));
            sql.push_str(&format!(" AND c.created_at >= {from}"));
        }
        if let Some(before) = filter.created_before {
            let before = bind(&mut values, Value::Integer(to_micros(before)));
            sql.push_str(&format!(" AND c.created_at < {before}"));
        }
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
