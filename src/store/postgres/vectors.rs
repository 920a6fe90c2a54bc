//! Semantic search vectors on PostgreSQL: `real[]` columns compared by exact cosine in the
//! server over a bounded set of candidates (the user's most recently embedded objects plus the
//! lexical matches), read off `search_vectors_newest`. The pgvector extension is not assumed.
//! The queue is filled by the triggers of migration 0090.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::{PgStore, execute, query, query_opt};
use crate::search::embed::cosine;
use crate::store::StoreResult;
use crate::store::vectors::{
    NearestQuery, NewVector, PendingText, VectorFilter, VectorKind, VectorStore, best_matches,
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
             (SELECT c.title || E'\\n' || c.overview || E'\\n' || left(coalesce(c.text,
                  (SELECT string_agg(s.text, E'\\n' ORDER BY s.position)
                   FROM transcript_segments s WHERE s.conversation_id = c.id), ''), 3000)
              FROM conversations c WHERE c.user_id = q.user_id AND c.id = q.id)
     END
 FROM search_vector_queue q ORDER BY q.seq LIMIT $1";

fn table(kind: VectorKind) -> &'static str {
    match kind {
        VectorKind::Memory => "memories",
        VectorKind::ActionItem => "action_items",
        VectorKind::Conversation => "conversations",
    }
}

#[async_trait]
impl VectorStore for PgStore {
    #[instrument(skip_all)]
    async fn queue_missing_vectors(&self, model: &str) -> StoreResult<u64> {
        in_transaction!(self, |tx| {
            execute(tx, "DELETE FROM search_vector_queue", &[]).await?;
            let mut queued = 0;
            for kind in VectorKind::ALL {
                let sql = format!(
                    "INSERT INTO search_vector_queue (kind, user_id, id)
                     SELECT $1, o.user_id, o.id FROM {} o
                     WHERE NOT EXISTS (SELECT 1 FROM search_vectors v
                         WHERE v.kind = $1 AND v.user_id = o.user_id AND v.id = o.id
                           AND v.model = $2)
                     ORDER BY o.created_at",
                    table(kind)
                );
                queued += execute(tx, &sql, &[&kind.as_str(), &model]).await?;
            }
            Ok(queued)
        })
    }

    async fn clear_vector_queue(&self) -> StoreResult<()> {
        with_connection!(self, |client| {
            execute(client, "DELETE FROM search_vector_queue", &[]).await?;
            Ok(())
        })
    }

    #[instrument(skip_all)]
    async fn pending_vector_texts(&self, limit: i64) -> StoreResult<Vec<PendingText>> {
        let rows = with_connection!(self, |client| query(client, PENDING, &[&limit]).await)?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get(1)?;
            let text: Option<String> = row.try_get(4)?;
            // A kind this version does not know (a newer server's) is dropped.
            let (kind, text) = match VectorKind::parse(&kind) {
                Some(kind) => (kind, text),
                None => (VectorKind::Memory, None),
            };
            pending.push(PendingText {
                seq: row.try_get(0)?,
                kind,
                user_id: row.try_get(2)?,
                id: row.try_get(3)?,
                text,
            });
        }
        Ok(pending)
    }

    #[instrument(skip_all)]
    async fn save_vectors(
        &self,
        model: &str,
        vectors: Vec<NewVector>,
        done: Vec<i64>,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            for vector in &vectors {
                // An upsert, so that replicas embedding the same entry at once do not collide;
                // the row takes a new `seq`, so a re-embedded object counts as recent.
                let sql = format!(
                    "INSERT INTO search_vectors (kind, user_id, id, model, dimension, vector)
                     SELECT $1, $2, $3, $4, $5, $6
                     WHERE EXISTS (SELECT 1 FROM {} WHERE user_id = $2 AND id = $3)
                     ON CONFLICT (kind, user_id, id) DO UPDATE SET seq = DEFAULT,
                         model = excluded.model, dimension = excluded.dimension,
                         vector = excluded.vector",
                    table(vector.kind)
                );
                let dimension = vector.vector.len() as i32;
                execute(
                    tx,
                    &sql,
                    &[
                        &vector.kind.as_str(),
                        &vector.user_id,
                        &vector.id,
                        &model,
                        &dimension,
                        &vector.vector,
                    ],
                )
                .await?;
            }
            execute(
                tx,
                "DELETE FROM search_vector_queue WHERE seq = ANY($1)",
                &[&done],
            )
            .await?;
            Ok(())
        })
    }

    async fn vector_backlog(&self) -> StoreResult<i64> {
        with_connection!(self, |client| {
            let rows = query(client, "SELECT count(*) FROM search_vector_queue", &[]).await?;
            Ok(rows[0].try_get(0)?)
        })
    }

    async fn vector_dimension(&self, model: &str) -> StoreResult<Option<usize>> {
        with_connection!(self, |client| {
            let row = query_opt(
                client,
                "SELECT dimension FROM search_vectors WHERE model = $1 ORDER BY seq DESC LIMIT 1",
                &[&model],
            )
            .await?;
            Ok(match row {
                Some(row) => Some(row.try_get::<_, i32>(0)? as usize),
                None => None,
            })
        })
    }

    async fn vector_count(&self, user_id: &str, kind: VectorKind) -> StoreResult<i64> {
        with_connection!(self, |client| {
            let rows = query(
                client,
                "SELECT count(*) FROM search_vectors WHERE kind = $1 AND user_id = $2",
                &[&kind.as_str(), &user_id],
            )
            .await?;
            Ok(rows[0].try_get(0)?)
        })
    }

    #[instrument(skip_all)]
    async fn nearest(&self, query_: NearestQuery<'_>) -> StoreResult<Vec<(String, f64)>> {
        let kind = query_.filter.kind();
        let kind_name = kind.as_str();
        let dimension = query_.vector.len() as i32;
        let names: Vec<&str> = match &query_.filter {
            VectorFilter::Memories { categories } => {
                categories.iter().map(|c| c.as_str()).collect()
            }
            _ => Vec::new(),
        };
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&kind_name, &query_.user_id, &query_.model, &dimension];
        let mut conditions = String::new();
        match &query_.filter {
            VectorFilter::Memories { .. } => {
                if !names.is_empty() {
                    params.push(&names);
                    conditions = format!(" AND o.category = ANY(${})", params.len());
                }
            }
            VectorFilter::ActionItems { completed } => {
                if let Some(completed) = completed {
                    params.push(completed);
                    conditions = format!(" AND o.completed = ${}", params.len());
                }
            }
            VectorFilter::Conversations(window) => {
                conditions.push_str(" AND NOT o.discarded");
                if let Some(from) = &window.created_from {
                    params.push(from);
                    conditions.push_str(&format!(" AND o.created_at >= ${}", params.len()));
                }
                if let Some(before) = &window.created_before {
                    params.push(before);
                    conditions.push_str(&format!(" AND o.created_at < ${}", params.len()));
                }
            }
        }
        let base = format!(
            "SELECT v.id, v.vector FROM search_vectors v
             JOIN {} o ON o.user_id = v.user_id AND o.id = v.id
             WHERE v.kind = $1 AND v.user_id = $2 AND v.model = $3 AND v.dimension = $4{conditions}",
            table(kind)
        );
        let mut newest_params = params.clone();
        newest_params.push(&query_.newest);
        let newest = format!(
            "({base} ORDER BY v.seq DESC LIMIT ${})",
            newest_params.len()
        );
        let also: Vec<String> = query_.also.to_vec();
        let mut also_params = params;
        also_params.push(&also);
        let also_sql = format!("{base} AND v.id = ANY(${})", also_params.len());
        let target = query_.vector;
        let scored = with_connection!(self, |client| {
            let mut scored = Vec::new();
            let mut rows = query(client, &newest, &newest_params).await?;
            if !also.is_empty() {
                rows.extend(query(client, &also_sql, &also_params).await?);
            }
            for row in rows {
                let id: String = row.try_get(0)?;
                let vector: Vec<f32> = row.try_get(1)?;
                scored.push((id, cosine(target, &vector)));
            }
            Ok(scored)
        })?;
        Ok(best_matches(scored, query_.min_similarity, query_.limit))
    }
}
