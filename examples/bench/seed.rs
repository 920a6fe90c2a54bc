//! Data for the benchmark: request bodies (unique contents, so every write is a real insert),
//! seeding through the API batches, and direct seeding of a large table through the store's row
//! helpers for the scale check.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, ensure};
use bytes::Bytes;
use chrono::Duration as ChronoDuration;
use hyper::Method;
use serde_json::json;

use omi_server::domain::memories::{Memory, MemoryCategory, Visibility, memory_id_for, scoring};
use omi_server::domain::time;
use omi_server::store::sqlite::rows::insert_memory;
use omi_server::store::sqlite::search_index::index_new_documents;

use crate::load::{self, Budget, Target};

pub const MEMORIES: u64 = 100_000;
pub const ACTION_ITEMS: u64 = 10_000;
pub const CONVERSATIONS: u64 = 1_000;
pub const MEMORY_BATCH: u64 = 25;
pub const ACTION_ITEM_BATCH: u64 = 50;
/// Words in the conversation text of the creation benchmark.
pub const CONVERSATION_WORDS: usize = 2_000;
/// Concurrent connections used to seed through the API.
const SEED_CONNECTIONS: usize = 8;

const FACTS: [&str; 8] = [
    "prefers window seats on long flights",
    "is allergic to peanuts and carries an epinephrine pen",
    "runs five kilometres every Tuesday and Thursday morning",
    "keeps the team's quarterly planning notes in a shared folder",
    "learned from Maria that short meetings keep decisions clear",
    "likes jazz records from the late fifties",
    "is studying Spanish for a trip to Seville next spring",
    "drinks green tea instead of coffee after noon",
];

const TASKS: [&str; 6] = [
    "Send the Q1 report to Sarah",
    "Book the dentist appointment",
    "Review the pull request for the billing service",
    "Call the landlord about the heating",
    "Prepare slides for the planning meeting",
    "Renew the passport before the trip",
];

/// Sentences of a meeting-like transcript: people, dates, decisions and tasks for the processor.
const TRANSCRIPT: [&str; 12] = [
    "Good morning everyone, let's go through the launch plan for the new billing service.",
    "Sarah said the payment provider finally approved our account on Monday.",
    "I need to send the updated pricing sheet to the finance team by Friday.",
    "Tom will review the migration scripts before we run them in staging next week.",
    "We decided to keep the old invoices readable for at least two more years.",
    "Remember to book a room for the customer workshop on the fourteenth.",
    "The support team asked for a short guide about refunds and partial payments.",
    "Maria thinks we should announce the change to customers a month in advance.",
    "I should call the bank about the new merchant account fees tomorrow.",
    "Everyone agreed that the dashboard needs a clearer view of failed payments.",
    "Let's meet again on Thursday afternoon to check the open questions.",
    "Thanks all, I will write up the notes and share them in the channel today.",
];

/// A transcript of about `words` words; `tag` makes it unique.
pub fn conversation_text(words: usize, tag: &str) -> String {
    let mut text = format!("Meeting notes {tag}.");
    let mut count = 3;
    for sentence in TRANSCRIPT.iter().cycle() {
        if count >= words {
            break;
        }
        text.push(' ');
        text.push_str(sentence);
        count += sentence.split_whitespace().count();
    }
    text
}

pub fn memory_content(n: u64) -> String {
    format!(
        "Alex {} (note {n})",
        FACTS[(n % FACTS.len() as u64) as usize]
    )
}

/// A third of the memories are insights from others, so `scoring` varies as in real data.
fn memory_category(n: u64) -> MemoryCategory {
    if n.is_multiple_of(3) {
        MemoryCategory::Interesting
    } else {
        MemoryCategory::System
    }
}

fn memory_json(n: u64) -> serde_json::Value {
    json!({"content": memory_content(n), "category": memory_category(n).as_str(), "tags": ["bench"]})
}

fn action_item_json(n: u64) -> serde_json::Value {
    let description = format!("{} (task {n})", TASKS[(n % TASKS.len() as u64) as usize]);
    match n % 4 {
        0 => json!({"description": description, "due_at": "2030-06-01T09:00:00Z"}),
        1 => json!({"description": description, "completed": true}),
        _ => json!({"description": description}),
    }
}

/// One memory per request, unique across `run` (a number the caller changes per run).
pub fn single_memory_bodies(run: u64) -> load::BodyFn {
    Arc::new(move |n| json_bytes(&memory_json(run * 1_000_000_000 + n)))
}

pub fn memory_batch_bodies(run: u64) -> load::BodyFn {
    Arc::new(move |n| {
        let first = run * 1_000_000_000 + n * MEMORY_BATCH;
        let memories: Vec<_> = (first..first + MEMORY_BATCH).map(memory_json).collect();
        json_bytes(&json!({ "memories": memories }))
    })
}

pub fn action_item_batch_bodies(run: u64) -> load::BodyFn {
    Arc::new(move |n| {
        let first = run * 1_000_000_000 + n * ACTION_ITEM_BATCH;
        let items: Vec<_> = (first..first + ACTION_ITEM_BATCH)
            .map(action_item_json)
            .collect();
        json_bytes(&json!({ "action_items": items }))
    })
}

pub fn conversation_bodies(run: u64, words: usize) -> load::BodyFn {
    Arc::new(move |n| {
        let text = conversation_text(words, &format!("run {run} number {n}"));
        json_bytes(&json!({"text": text, "text_source": "audio_transcript"}))
    })
}

fn json_bytes(value: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON serializes"))
}

/// Sends `requests` POSTs to `path` and fails unless every one answered 2xx.
pub async fn through_api(
    address: SocketAddr,
    key: &str,
    path: &str,
    requests: u64,
    body: load::BodyFn,
) -> anyhow::Result<()> {
    let target = Target {
        method: Method::POST,
        path: path.to_string(),
        authorization: Some(format!("Bearer {key}")),
        body: Some(body),
        idempotency_keys: false,
    };
    let outcome = load::run(
        &[address],
        &target,
        SEED_CONNECTIONS,
        Budget::Count(requests),
    )
    .await;
    ensure!(
        outcome.failures() == 0 && outcome.succeeded == requests,
        "seeding {path}: {} of {requests} succeeded; failures {:?} (+{} transport), e.g. {}",
        outcome.succeeded,
        outcome.failed,
        outcome.transport_errors,
        outcome.failure_example.unwrap_or_default()
    );
    Ok(())
}

/// Inserts `count` API-style memories for `user_id` straight into the SQLite file with the
/// store's own row insert (much faster than the API for a million rows). Creation times are
/// spread one second apart into the past so the list order has real work to do.
pub fn memories_into_sqlite(database: &Path, user_id: &str, count: u64) -> anyhow::Result<()> {
    let mut connection = rusqlite::Connection::open(database)
        .with_context(|| format!("opening {}", database.display()))?;
    // Durability does not matter for seed data; the server opens the file with its own settings.
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let newest = time::now();
    let mut inserted = 0;
    while inserted < count {
        let chunk_end = (inserted + 50_000).min(count);
        let transaction = connection.transaction()?;
        for n in inserted..chunk_end {
            let content = format!("{} {}", user_id, memory_content(n));
            let category = memory_category(n);
            let created_at = newest - ChronoDuration::seconds(n as i64);
            let memory = Memory {
                id: memory_id_for(&content),
                content,
                category,
                visibility: Visibility::Private,
                tags: vec!["bench".into()],
                created_at,
                updated_at: created_at,
                manually_added: true,
                scoring: scoring(true, category, created_at),
                reviewed: true,
                user_review: Some(true),
                edited: false,
                conversation_id: None,
            };
            insert_memory(&transaction, user_id, &memory)?;
        }
        // As the server's writer does before each commit.
        index_new_documents(&transaction)?;
        transaction.commit()?;
        inserted = chunk_end;
    }
    Ok(())
}
