//! Semantic search vectors on SQLite: little-endian f32 blobs, compared by exact cosine over a
//! bounded set of candidates (the user's most recently embedded objects plus the lexical
//! matches), read off `search_vectors_newest`. The queue is filled by the triggers of migration
//! 0090.
//!
//! A search reads only the row numbers of its candidates; their vectors come decoded from the
//! store's [`VectorCache`], and only the rows it has not seen are read and decoded (reading and
//! decoding 2,000 blobs was most of a hybrid search's cost).

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tracing::instrument;

use super::SqliteStore;
use crate::domain::time::to_micros;
use crate::search::embed::{from_bytes, to_bytes};
use crate::store::StoreResult;
use crate::store::vectors::{
    CachedVector, NearestQuery, NewVector, PendingText, VectorCache, VectorFilter, VectorKind,
    VectorStore, best_matches, norm,
};

/// The text each kind is embedded from: a memory's content, an action item's description, a
/// conversation's title, overview and the start of its transcript.
const PENDING: &str = "SELECT q.seq, q.kind, q.user_id, q.id,
     CASE q.kind
         WHEN 'memory' THEN
             (SELECT m.content FROM memories m WHERE m.user_id = q.user_id AND m.id = q.id)
         WHEN 'action_item' THEN
             (SELECT a.description FROM action_items a WHERE a.user_id = q.user_id AND a.id = q.id)
         WHEN 'conversation' THEN
             (SELECT c.title || char(10) || c.overview || char(10) || substr(coalesce(c.text,
                  (SELECT group_concat(s.text, char(10) ORDER BY s.position)
                   FROM transcript_segments s WHERE s.conversation_id = c.id), ''), 1, 3000)
              FROM conversations c WHERE c.user_id = q.user_id AND c.id = q.id)
     END
 FROM search_vector_queue q ORDER BY q.seq LIMIT ?1";

/// The object table a kind's vectors join, with the condition that it exists.
fn object_join(kind: VectorKind) -> &'static str {
    match kind {
        VectorKind::Memory => "CROSS JOIN memories o ON o.user_id = v.user_id AND o.id = v.id",
        VectorKind::ActionItem => {
            "CROSS JOIN action_items o ON o.user_id = v.user_id AND o.id = v.id"
        }
        VectorKind::Conversation => {
            "CROSS JOIN conversations o ON o.user_id = v.user_id AND o.id = v.id"
        }
    }
}

/// The filter's conditions on `o`, binding their values after the first four parameters.
fn filter_conditions(filter: &VectorFilter<'_>, values: &mut Vec<Value>) -> String {
    let mut bind = |value: Value| {
        values.push(value);
        format!("?{}", values.len())
    };
    match filter {
        VectorFilter::Memories { categories } if !categories.is_empty() => {
            let names: Vec<String> = categories
                .iter()
                .map(|c| bind(Value::Text(c.as_str().to_string())))
                .collect();
            format!(" AND o.category IN ({})", names.join(", "))
        }
        VectorFilter::Memories { .. } => String::new(),
        VectorFilter::ActionItems { completed } => match completed {
            Some(completed) => format!(
                " AND o.completed = {}",
                bind(Value::Integer(i64::from(*completed)))
            ),
            None => String::new(),
        },
        VectorFilter::Conversations(window) => {
            let mut conditions = String::from(" AND o.discarded = 0");
            if let Some(from) = window.created_from {
                conditions.push_str(&format!(
                    " AND o.created_at >= {}",
                    bind(Value::Integer(to_micros(from)))
                ));
            }
            if let Some(before) = window.created_before {
                conditions.push_str(&format!(
                    " AND o.created_at < {}",
                    bind(Value::Integer(to_micros(before)))
                ));
            }
            conditions
        }
    }
}

/// Appends the row numbers `sql` selects to `into`.
fn candidate_rows(
    connection: &Connection,
    sql: &str,
    values: &[Value],
    into: &mut Vec<i64>,
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params_from_iter(values.iter()))?;
    while let Some(row) = rows.next()? {
        into.push(row.get(0)?);
    }
    Ok(())
}

/// The vectors of rows `seqs`, from the cache or read (and then cached); a row that went
/// meanwhile or holds no whole vector is left out. `epoch` is the cache's, read before `seqs`.
fn vectors_of(
    connection: &Connection,
    cache: &VectorCache,
    epoch: u64,
    seqs: &[i64],
) -> rusqlite::Result<Vec<Arc<CachedVector>>> {
    let cached = cache.get(seqs);
    let mut found = Vec::with_capacity(seqs.len());
    let mut read = Vec::new();
    for (seq, vector) in seqs.iter().zip(cached) {
        if let Some(vector) = vector {
            found.push(vector);
            continue;
        }
        let row = connection
            .prepare_cached("SELECT id, vector FROM search_vectors WHERE seq = ?1")?
            .query_row([seq], |row| {
                let id: String = row.get(0)?;
                Ok(from_bytes(row.get_ref(1)?.as_blob()?).map(|vector| (id, vector)))
            })
            .optional()?;
        if let Some(Some((id, vector))) = row {
            let vector = Arc::new(CachedVector::new(id, vector));
            read.push((*seq, vector.clone()));
            found.push(vector);
        }
    }
    if !read.is_empty() {
        cache.insert(epoch, &read);
    }
    Ok(found)
}

#[async_trait]
impl VectorStore for SqliteStore {
    #[instrument(skip_all)]
    async fn queue_missing_vectors(&self, model: &str) -> StoreResult<u64> {
        let model = model.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM search_vector_queue", [])
                .map_err(super::map_error)?;
            let mut queued = 0;
            for (kind, table) in [
                (VectorKind::Memory, "memories"),
                (VectorKind::ActionItem, "action_items"),
                (VectorKind::Conversation, "conversations"),
            ] {
                let sql = format!(
                    "INSERT INTO search_vector_queue (kind, user_id, id)
                     SELECT ?1, o.user_id, o.id FROM {table} o
                     WHERE NOT EXISTS (SELECT 1 FROM search_vectors v
                         WHERE v.kind = ?1 AND v.user_id = o.user_id AND v.id = o.id
                           AND v.model = ?2)
                     ORDER BY o.created_at"
                );
                queued += c
                    .execute(&sql, params![kind.as_str(), model])
                    .map_err(super::map_error)? as u64;
            }
            Ok(queued)
        })
        .await
    }

    async fn clear_vector_queue(&self) -> StoreResult<()> {
        self.write(|c| {
            c.execute("DELETE FROM search_vector_queue", [])
                .map_err(super::map_error)?;
            Ok(())
        })
        .await
    }

    #[instrument(skip_all)]
    async fn pending_vector_texts(&self, limit: i64) -> StoreResult<Vec<PendingText>> {
        self.read(|c| {
            let mut statement = c.prepare_cached(PENDING)?;
            let rows = statement.query_map([limit], |row| {
                let kind: String = row.get(1)?;
                Ok((
                    row.get::<_, i64>(0)?,
                    kind,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut pending = Vec::new();
            for row in rows {
                let (seq, kind, user_id, id, text) = row?;
                // A kind this version does not know (a newer server's) is dropped.
                let (kind, text) = match VectorKind::parse(&kind) {
                    Some(kind) => (kind, text),
                    None => (VectorKind::Memory, None),
                };
                pending.push(PendingText {
                    seq,
                    kind,
                    user_id,
                    id,
                    text,
                });
            }
            Ok(pending)
        })
    }

    #[instrument(skip_all)]
    async fn save_vectors(
        &self,
        model: &str,
        vectors: Vec<NewVector>,
        done: Vec<i64>,
    ) -> StoreResult<()> {
        let model = model.to_string();
        let written = self
            .write(move |c| {
                let inner = || -> rusqlite::Result<Vec<i64>> {
                    let mut written = Vec::with_capacity(vectors.len());
                    for vector in &vectors {
                        // Deleted and inserted, not updated: the new row takes the highest
                        // `seq`, so a re-embedded object counts as recent.
                        c.prepare_cached(
                            "DELETE FROM search_vectors
                             WHERE kind = ?1 AND user_id = ?2 AND id = ?3",
                        )?
                        .execute(params![vector.kind.as_str(), vector.user_id, vector.id])?;
                        let sql = format!(
                            "INSERT INTO search_vectors (kind, user_id, id, model, dimension, vector)
                             SELECT ?1, ?2, ?3, ?4, ?5, ?6
                             WHERE EXISTS (SELECT 1 FROM {} WHERE user_id = ?2 AND id = ?3)",
                            match vector.kind {
                                VectorKind::Memory => "memories",
                                VectorKind::ActionItem => "action_items",
                                VectorKind::Conversation => "conversations",
                            }
                        );
                        let inserted = c.prepare_cached(&sql)?.execute(params![
                            vector.kind.as_str(),
                            vector.user_id,
                            vector.id,
                            model,
                            vector.vector.len() as i64,
                            to_bytes(&vector.vector),
                        ])?;
                        if inserted > 0 {
                            written.push(c.last_insert_rowid());
                        }
                    }
                    let mut delete =
                        c.prepare_cached("DELETE FROM search_vector_queue WHERE seq = ?1")?;
                    for seq in &done {
                        delete.execute([seq])?;
                    }
                    Ok(written)
                };
                inner().map_err(super::map_error)
            })
            .await?;
        // SQLite gives a new row the number of the highest one deleted: what the cache holds
        // under a number just written may be another vector.
        self.vectors.forget(&written);
        Ok(())
    }

    async fn vector_backlog(&self) -> StoreResult<i64> {
        self.read(|c| c.query_row("SELECT count(*) FROM search_vector_queue", [], |r| r.get(0)))
    }

    async fn vector_dimension(&self, model: &str) -> StoreResult<Option<usize>> {
        self.read(|c| {
            c.query_row(
                "SELECT dimension FROM search_vectors WHERE model = ?1 ORDER BY seq DESC LIMIT 1",
                [model],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|d| d.map(|d| d as usize))
        })
    }

    async fn vector_count(&self, user_id: &str, kind: VectorKind) -> StoreResult<i64> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*) FROM search_vectors WHERE kind = ?1 AND user_id = ?2",
                params![kind.as_str(), user_id],
                |r| r.get(0),
            )
        })
    }

    #[instrument(skip_all)]
    async fn nearest(&self, query: NearestQuery<'_>) -> StoreResult<Vec<(String, f64)>> {
        let kind = query.filter.kind();
        let mut values = vec![
            Value::Text(kind.as_str().to_string()),
            Value::Text(query.user_id.to_string()),
            Value::Text(query.model.to_string()),
            Value::Integer(query.vector.len() as i64),
        ];
        let conditions = filter_conditions(&query.filter, &mut values);
        // Without conditions on the object, its existence need not be checked: the delete
        // triggers drop an object's vector with it and `save_vectors` stores none for a
        // missing object, so the row numbers come straight off `search_vectors_newest`.
        let join = if conditions.is_empty() {
            ""
        } else {
            object_join(kind)
        };
        let matching = format!(
            "{join} WHERE v.kind = ?1 AND v.user_id = ?2 AND v.model = ?3 AND v.dimension = ?4{conditions}"
        );
        let mut newest_values = values.clone();
        newest_values.push(Value::Integer(query.newest));
        let newest = format!(
            "SELECT v.seq FROM search_vectors v {matching} ORDER BY v.seq DESC LIMIT ?{}",
            newest_values.len()
        );
        let mut also_values = values;
        let placeholders: Vec<String> = query
            .also
            .iter()
            .map(|id| {
                also_values.push(Value::Text(id.clone()));
                format!("?{}", also_values.len())
            })
            .collect();
        // The lexical matches are looked up by their ids. Left to itself, SQLite 3.54 walked all
        // of the user's vectors in `search_vectors_newest` (the longer equality prefix) and read
        // each row to test its id: 76 ms over 100,000 memories, instead of 1 ms.
        let also = format!(
            "SELECT v.seq FROM search_vectors v INDEXED BY search_vectors_by_object {matching}
             AND v.id IN ({})",
            placeholders.join(", ")
        );
        let cache = &self.vectors;
        let epoch = cache.epoch();
        let candidates = self.read(|c| {
            let mut seqs = Vec::new();
            candidate_rows(c, &newest, &newest_values, &mut seqs)?;
            if !query.also.is_empty() {
                candidate_rows(c, &also, &also_values, &mut seqs)?;
            }
            seqs.sort_unstable();
            seqs.dedup();
            vectors_of(c, cache, epoch, &seqs)
        })?;
        let target_norm = norm(query.vector);
        let scored = candidates
            .iter()
            .map(|candidate| {
                let similarity = candidate.cosine(query.vector, target_norm);
                (candidate.id.clone(), similarity)
            })
            .collect();
        Ok(best_matches(scored, query.min_similarity, query.limit))
    }
}
