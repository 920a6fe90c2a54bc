//! Full-text search on SQLite: FTS5 tables fed by `search_index` (new memories and action items,
//! at each commit), by `index_conversation` (a conversation, when it is stored) and by the update
//! and delete triggers of migration 0012, ranked by BM25.
//!
//! Each query matches the FTS table first, keeps the user's documents among the newest
//! `CANDIDATES` matches, ranks those, then reads the objects; `bm25()` is negated so that higher
//! is better, and its best value over the ranked matches comes back with each row (a window over
//! the whole result) to normalise the page's scores.
//!
//! Every join is written `CROSS JOIN`, which fixes the order in which SQLite runs it: without
//! statistics its planner preferred to walk all of the user's objects through an index that
//! starts with `user_id` and probe the matches for each (100,000 memories read per search),
//! rather than look up each match by its key. For action items and conversations, whose key is
//! `id` alone, `+` keeps the owner condition from steering the lookup to such an index.
//!
//! The ranking is `omi_bm25` (`rank.rs`), BM25 with the number of documents holding each phrase
//! of the query passed in: [`PhraseCounts`] keeps those counts while the index is unchanged, so
//! a repeated word is not counted over the whole index by every search.

use std::collections::HashMap;

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
/// so ranking every match made one search cost 70 ms over 100,000 memories. The matches are
/// walked newest first in the index's own order (FTS5 reads its rowids backwards, no sort) and
/// the walk stops at the `?3`-th one that passes; only those are ranked. Below `?3` matches
/// nothing is left out. `CROSS JOIN` keeps the full-text match driving each join: left to
/// itself the planner walks every document of the user and runs the match once per document.
fn hits_cte(fts: &str, docs: &str, weights: &str, join: &str, conditions: &str) -> String {
    format!(
        "WITH hits AS MATERIALIZED (
             SELECT d.id AS hit_id, -omi_bm25({fts}, ?4, {weights}) AS relevance
             FROM {fts} CROSS JOIN {docs} d ON d.doc = {fts}.rowid {join}
             WHERE {fts} MATCH ?1 AND d.user_id = ?2{conditions}
             ORDER BY {fts}.rowid DESC LIMIT ?3)"
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

/// The first parameters of every search: the match expression, the user, how many of the
/// newest matches are ranked (at least the page's end, so deep pages stay reachable) and the
/// phrases' document counts.
fn start(expression: String, user_id: &str, page: Page, counts: String) -> Vec<Value> {
    vec![
        Value::Text(expression),
        Value::Text(user_id.to_string()),
        Value::Integer(CANDIDATES.max(page.offset.saturating_add(page.limit))),
        Value::Text(counts),
    ]
}

/// Phrases whose counts are kept per index, at most: a bound on the memory that varied queries
/// can take between two writes.
const KEPT_PHRASES: usize = 4_096;

/// How many documents of an FTS5 index hold each phrase of a query, kept while the index is
/// unchanged: BM25 weighs phrases by these counts, and counting a common word walks its whole
/// posting list (for the phrase of the whole text, with positions), which cost more than
/// ranking the candidates. Any committed write to an index changes its state (below) and drops
/// its counts, so the scores are exactly those of `bm25()`.
#[derive(Default)]
pub(super) struct PhraseCounts {
    tables: parking_lot::Mutex<HashMap<&'static str, TableCounts>>,
}

#[derive(Default)]
struct TableCounts {
    state: Vec<u8>,
    counts: HashMap<String, i64>,
}

impl PhraseCounts {
    /// The counts of `phrases` (standalone FTS5 expressions) in `fts`, separated by spaces as
    /// `omi_bm25` takes them.
    fn of(
        &self,
        connection: &Connection,
        fts: &'static str,
        phrases: &[String],
    ) -> rusqlite::Result<String> {
        let state = index_state(connection, fts)?;
        let mut known: Vec<Option<i64>> = {
            let mut tables = self.tables.lock();
            let table = tables.entry(fts).or_default();
            if table.state != state {
                table.state.clone_from(&state);
                table.counts.clear();
            }
            phrases
                .iter()
                .map(|phrase| table.counts.get(phrase).copied())
                .collect()
        };
        let mut counted = Vec::new();
        for (phrase, count) in phrases.iter().zip(known.iter_mut()) {
            if count.is_none() {
                let n: i64 = connection
                    .prepare_cached(&format!("SELECT count(*) FROM {fts} WHERE {fts} MATCH ?1"))?
                    .query_row([phrase], |row| row.get(0))?;
                *count = Some(n);
                counted.push((phrase.clone(), n));
            }
        }
        if !counted.is_empty() {
            let mut tables = self.tables.lock();
            let table = tables.entry(fts).or_default();
            // Counted on this state (or a later one, which changed the state: then nobody
            // reads them).
            if table.state == state {
                if table.counts.len() + counted.len() > KEPT_PHRASES {
                    table.counts.clear();
                }
                table.counts.extend(counted);
            }
        }
        Ok(known
            .into_iter()
            .map(|count| count.unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(" "))
    }
}

/// The state of an FTS5 index: its structure record (row 10 of `<table>_data`: the segments
/// that hold the index and a counter of the segments ever written, which every committed write
/// moves on) and its averages record (row 1: how many rows and tokens it holds).
fn index_state(connection: &Connection, fts: &str) -> rusqlite::Result<Vec<u8>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT block FROM {fts}_data WHERE id IN (1, 10) ORDER BY id"
    ))?;
    let mut rows = statement.query([])?;
    let mut state = Vec::new();
    while let Some(row) = rows.next()? {
        let block = row.get_ref(0)?.as_blob()?;
        state.extend_from_slice(&(block.len() as u64).to_le_bytes());
        state.extend_from_slice(block);
    }
    Ok(state)
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
        let counts = self.read(|c| {
            self.phrase_counts
                .of(c, "memories_fts", &query.fts5_phrases())
        })?;
        let mut values = start(expression, user_id, page, counts);
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
             FROM hits CROSS JOIN memories ON memories.user_id = ?2 AND memories.id = hits.hit_id",
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
        let counts = self.read(|c| {
            self.phrase_counts
                .of(c, "action_items_fts", &query.fts5_phrases())
        })?;
        let mut values = start(expression, user_id, page, counts);
        let (join, conditions) = match completed {
            Some(completed) => {
                let completed = bind(&mut values, Value::Integer(i64::from(completed)));
                (
                    "CROSS JOIN action_items a ON a.id = d.id AND +a.user_id = d.user_id",
                    format!(" AND a.completed = {completed}"),
                )
            }
            None => ("", String::new()),
        };
        let mut sql = format!(
            "{} SELECT {ACTION_ITEM_COLUMNS}, hits.relevance, max(hits.relevance) OVER ()
             FROM hits CROSS JOIN action_items ON action_items.id = hits.hit_id
                 AND +action_items.user_id = ?2",
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
        let counts = self.read(|c| {
            self.phrase_counts
                .of(c, "conversations_fts", &query.fts5_phrases())
        })?;
        let mut values = start(expression, user_id, page, counts);
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
             FROM hits CROSS JOIN conversations c ON c.id = hits.hit_id AND +c.user_id = ?2
             LEFT JOIN folders f ON f.id = c.folder_id AND f.user_id = c.user_id",
            hits_cte(
                "conversations_fts",
                "conversation_search_docs",
                CONVERSATION_WEIGHTS,
                "CROSS JOIN conversations k ON k.id = d.id AND +k.user_id = d.user_id",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn phrases() -> Vec<String> {
        LexicalQuery::parse("long flights").fts5_phrases()
    }

    #[test]
    fn kept_counts_follow_every_write_to_the_index() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE VIRTUAL TABLE t USING fts5(a, tokenize = 'porter unicode61');
                 INSERT INTO t (rowid, a) VALUES (1, 'long flights'), (2, 'a long walk');",
            )
            .unwrap();
        let counts = PhraseCounts::default();
        // "long", "flights" * and the phrase "long flights".
        assert_eq!(counts.of(&connection, "t", &phrases()).unwrap(), "2 1 1");
        assert_eq!(counts.of(&connection, "t", &phrases()).unwrap(), "2 1 1");
        let state = index_state(&connection, "t").unwrap();
        for (write, expected) in [
            (
                "INSERT INTO t (rowid, a) VALUES (3, 'long flights again')",
                "3 2 2",
            ),
            ("UPDATE t SET a = 'short flights' WHERE rowid = 3", "2 2 1"),
            ("DELETE FROM t WHERE rowid = 1", "1 1 0"),
        ] {
            connection.execute_batch(write).unwrap();
            assert_ne!(index_state(&connection, "t").unwrap(), state, "{write}");
            assert_eq!(
                counts.of(&connection, "t", &phrases()).unwrap(),
                expected,
                "{write}"
            );
        }
    }
}
