//! Crash durability: the real binary is killed with SIGKILL in the middle of concurrent writes,
//! three times over the same SQLite file. After each crash the file passes
//! `PRAGMA integrity_check`, every write the server acknowledged with a 2xx is there (read back
//! by id through the API, including those of earlier cycles), no batch is partly stored (each
//! batch's items carry one marker: all or none of them exist), and no conversation is half
//! stored (its extracted action items exist exactly when it does).

#[path = "support/server_process.rs"]
mod server_process;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use server_process::{ServerProcess, create_user, database_in, sqlite_url};

const CYCLES: u64 = 3;
const WRITERS_PER_KIND: u64 = 2;
/// Upper bound on each writer's requests in one cycle; the kill normally comes first.
const MAX_WRITES_PER_WRITER: u64 = 5_000;
/// Writes acknowledged in a cycle before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 300;
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(20);
const MEMORY_BATCH: usize = 25;
const ACTION_ITEM_BATCH: usize = 50;
const SERVER_ENV: [(&str, &str); 3] = [
    ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
    ("OMI_RATE_LIMIT_PER_DAY", "0"),
    ("OMI_FAILED_AUTH_PER_MINUTE", "0"),
];
/// A text the offline processor extracts action items from, so a conversation stored without
/// them would show. The marker goes into each task: the processor does not store a task the
/// user already has, and every conversation must bring its own.
fn conversation_text(marker: &str) -> String {
    format!(
        "We met to plan the product launch {marker}. I need to send the pricing sheet {marker} \
         to the finance team by Friday. Tom will review the migration scripts next week. \
         Remember to book a room for the customer workshop {marker} on the fourteenth. Maria \
         said the payment provider approved our account."
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Key,
    Memory,
    MemoryBatch,
    ActionItem,
    ActionItemBatch,
    Conversation,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Key,
        Kind::Memory,
        Kind::MemoryBatch,
        Kind::ActionItem,
        Kind::ActionItemBatch,
        Kind::Conversation,
    ];

    fn path(self) -> &'static str {
        match self {
            Kind::Key => "/v1/dev/keys",
            Kind::Memory => "/v1/dev/user/memories",
            Kind::MemoryBatch => "/v1/dev/user/memories/batch",
            Kind::ActionItem => "/v1/dev/user/action-items",
            Kind::ActionItemBatch => "/v1/dev/user/action-items/batch",
            Kind::Conversation => "/v1/dev/user/conversations",
        }
    }

    /// Where a memory's or action item's text is read back: the collection's path, the JSON
    /// field, and the table it is stored in.
    fn stored_as(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Memory | Kind::MemoryBatch => ("/v1/dev/user/memories", "content", "memories"),
            _ => ("/v1/dev/user/action-items", "description", "action_items"),
        }
    }

    /// Items per request, for the all-or-nothing check of batches.
    fn batch_size(self) -> Option<usize> {
        match self {
            Kind::MemoryBatch => Some(MEMORY_BATCH),
            Kind::ActionItemBatch => Some(ACTION_ITEM_BATCH),
            _ => None,
        }
    }

    fn body(self, marker: &str) -> Value {
        let numbered = |i: usize| format!("{marker} item {i}");
        match self {
            Kind::Key => json!({"name": marker, "scopes": ["memories:read"]}),
            Kind::Memory => {
                json!({"content": format!("{marker} likes quiet trains"), "category": "system"})
            }
            Kind::MemoryBatch => json!({"memories": (0..MEMORY_BATCH)
                .map(|i| json!({"content": numbered(i), "category": "system"}))
                .collect::<Vec<_>>()}),
            Kind::ActionItem => json!({"description": format!("{marker} call the bank")}),
            Kind::ActionItemBatch => json!({"action_items": (0..ACTION_ITEM_BATCH)
                .map(|i| json!({"description": numbered(i)}))
                .collect::<Vec<_>>()}),
            Kind::Conversation => json!({"text": conversation_text(marker)}),
        }
    }

    /// What an acknowledged answer promises is stored: (id, text to read back).
    fn acknowledged(self, answer: &Value) -> Vec<(String, String)> {
        let field = |item: &Value, name: &str| item[name].as_str().unwrap_or_default().to_owned();
        let items = |list: &str, text: &str| -> Vec<(String, String)> {
            answer[list]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| (field(item, "id"), field(item, text)))
                .collect()
        };
        match self {
            Kind::Key => vec![(field(answer, "id"), field(answer, "key"))],
            Kind::Memory => vec![(field(answer, "id"), field(answer, "content"))],
            Kind::MemoryBatch => items("memories", "content"),
            Kind::ActionItem => vec![(field(answer, "id"), field(answer, "description"))],
            Kind::ActionItemBatch => items("action_items", "description"),
            Kind::Conversation => vec![(field(answer, "id"), String::new())],
        }
    }
}

#[derive(Debug, Clone)]
struct Written {
    kind: Kind,
    id: String,
    text: String,
}

#[derive(Default)]
struct Ledger {
    /// Every write answered with a 2xx, over all cycles.
    written: Mutex<Vec<Written>>,
    /// Every batch sent (answered or not): its kind and marker.
    batches: Mutex<Vec<(Kind, String)>>,
}

struct Session {
    base_url: String,
    key: String,
    account_token: String,
    client: reqwest::Client,
}

impl Session {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<(u16, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, &self.key, None)
            .await
            .unwrap_or_else(|error| panic!("GET {path} after restart: {error}"))
    }

    async fn post(&self, kind: Kind, body: &Value) -> reqwest::Result<(u16, Value)> {
        let token = if kind == Kind::Key {
            &self.account_token
        } else {
            &self.key
        };
        self.send(reqwest::Method::POST, kind.path(), token, Some(body))
            .await
    }
}

/// Resources are written with `key`; keys are created with `account_token`.
fn session(server: &ServerProcess, key: &str, account_token: &str) -> Arc<Session> {
    Arc::new(Session {
        base_url: server.base_url(),
        key: key.to_owned(),
        account_token: account_token.to_owned(),
        client: omi_server::outbound::Outbound::system()
            .http_client()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    })
}

/// Writes `kind` until told to stop, recording each batch before it is sent and each write
/// once it is acknowledged. Errors (the server was killed) are expected and end nothing early:
/// the stop flag does.
async fn writer(
    session: Arc<Session>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    kind: Kind,
    tag: String,
) {
    for n in 0..MAX_WRITES_PER_WRITER {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let marker = format!("[{tag}-{n}]");
        if kind.batch_size().is_some() {
            ledger.batches.lock().push((kind, marker.clone()));
        }
        match session.post(kind, &kind.body(&marker)).await {
            Ok((status, answer)) if (200..300).contains(&status) => {
                let mut written = ledger.written.lock();
                for (id, text) in kind.acknowledged(&answer) {
                    assert!(!id.is_empty(), "a 2xx without an id: {answer}");
                    written.push(Written { kind, id, text });
                }
            }
            Ok((status, answer)) => {
                // The key cap is the one refusal expected here.
                if kind == Kind::Key && status == 422 {
                    return;
                }
                panic!("{kind:?} answered {status}: {answer}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

fn integrity_check(database: &Path) {
    let connection = rusqlite::Connection::open(database).unwrap();
    let verdict: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(verdict, "ok", "integrity_check after SIGKILL");
}

/// Rows of `table` whose `column` contains `marker`.
fn rows_with_marker(
    connection: &rusqlite::Connection,
    table: &str,
    column: &str,
    marker: &str,
) -> usize {
    connection
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE instr({column}, ?1) > 0"),
            [marker],
            |row| row.get::<_, i64>(0),
        )
        .unwrap() as usize
}

fn assert_batches_all_or_none(database: &Path, batches: &[(Kind, String)]) {
    let connection = rusqlite::Connection::open(database).unwrap();
    for (kind, marker) in batches {
        let (_, column, table) = kind.stored_as();
        let size = kind.batch_size().unwrap();
        let present = rows_with_marker(&connection, table, column, marker);
        assert!(
            present == 0 || present == size,
            "batch {marker}: {present} of {size} items stored"
        );
    }
}

async fn assert_acknowledged_writes_present(
    session: &Session,
    written: &[Written],
    expected_items: usize,
) {
    for write in written {
        match write.kind {
            Kind::Key => {
                let (status, key) = session
                    .send(reqwest::Method::GET, "/v1/dev/key", &write.text, None)
                    .await
                    .unwrap();
                assert_eq!(
                    (status, key["id"].as_str()),
                    (200, Some(write.id.as_str())),
                    "acknowledged key lost"
                );
            }
            Kind::Memory | Kind::MemoryBatch | Kind::ActionItem | Kind::ActionItemBatch => {
                let (collection, field, _) = write.kind.stored_as();
                let (status, stored) = session.get(&format!("{collection}/{}", write.id)).await;
                assert_eq!(
                    status, 200,
                    "acknowledged {:?} {} lost",
                    write.kind, write.id
                );
                assert_eq!(stored[field], write.text.as_str());
            }
            Kind::Conversation => {
                let (status, conversation) = session
                    .get(&format!("/v1/dev/user/conversations/{}", write.id))
                    .await;
                assert_eq!(status, 200, "acknowledged conversation {} lost", write.id);
                assert_eq!(conversation["status"], "completed");
                let items = conversation["structured"]["action_items"]
                    .as_array()
                    .map_or(0, Vec::len);
                assert_eq!(
                    items, expected_items,
                    "conversation {} without its action items",
                    write.id
                );
            }
        }
    }
}

/// Every action item extracted from a conversation belongs to one that exists, and every stored
/// conversation has as many action items as the reference made from the same text.
async fn assert_no_half_stored_conversation(
    session: &Session,
    database: &Path,
    expected_items: usize,
) {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare("SELECT conversation_id, count(*) FROM action_items WHERE conversation_id IS NOT NULL GROUP BY conversation_id")
        .unwrap();
    let extracted: Vec<(String, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut referenced = HashSet::new();
    for (conversation_id, count) in extracted {
        let (status, _) = session
            .get(&format!("/v1/dev/user/conversations/{conversation_id}"))
            .await;
        assert_eq!(
            status, 200,
            "action items of a conversation that was not stored"
        );
        assert_eq!(
            count as usize, expected_items,
            "conversation {conversation_id} partly stored"
        );
        referenced.insert(conversation_id);
    }
    let mut offset = 0;
    loop {
        let (status, page) = session
            .get(&format!(
                "/v1/dev/user/conversations?limit=100&offset={offset}"
            ))
            .await;
        assert_eq!(status, 200);
        let page = page.as_array().cloned().unwrap_or_default();
        for conversation in &page {
            let id = conversation["id"].as_str().unwrap();
            assert!(
                referenced.contains(id),
                "conversation {id} stored without its action items"
            );
        }
        if page.len() < 100 {
            break;
        }
        offset += 100;
    }
}

/// A conversation made before any crash: how many action items the text yields.
async fn reference_conversation(session: &Session, ledger: &Ledger) -> usize {
    let (status, answer) = session
        .post(Kind::Conversation, &Kind::Conversation.body("[reference]"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let id = answer["id"].as_str().unwrap();
    let (_, stored) = session
        .get(&format!("/v1/dev/user/conversations/{id}"))
        .await;
    let count = stored["structured"]["action_items"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        count > 0,
        "the reference text must yield action items: {stored}"
    );
    ledger.written.lock().push(Written {
        kind: Kind::Conversation,
        id: id.into(),
        text: String::new(),
    });
    count
}

/// Waits (at most `LOAD_BEFORE_KILL`) until the cycle has `ACKNOWLEDGED_BEFORE_KILL` writes
/// and at least one of every kind, so the crash hits every write path under load.
async fn wait_for_load(ledger: &Ledger, from: usize) {
    let deadline = tokio::time::Instant::now() + LOAD_BEFORE_KILL;
    let loaded = || {
        let written = ledger.written.lock();
        let cycle = &written[from.min(written.len())..];
        cycle.len() >= ACKNOWLEDGED_BEFORE_KILL
            && Kind::ALL
                .iter()
                .all(|kind| cycle.iter().any(|w| w.kind == *kind))
    };
    while !loaded() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writers did not reach {ACKNOWLEDGED_BEFORE_KILL} acknowledged writes of every \
             kind within {LOAD_BEFORE_KILL:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_nothing_is_half_stored() {
    let binary = Path::new(env!("CARGO_BIN_EXE_omi-server"));
    let folder = tempfile::tempdir().unwrap();
    let database = database_in(folder.path());
    let url = sqlite_url(&database);
    let ledger = Arc::new(Ledger::default());
    let user = create_user(binary, &url, "crash").unwrap();
    let mut expected_items = 0;

    for cycle in 0..CYCLES {
        // Keys are created for a user per cycle, so the 100-key cap leaves room for the writers.
        let key_owner = create_user(binary, &url, &format!("keys-{cycle}")).unwrap();
        let mut server = ServerProcess::start(binary, &url, &SERVER_ENV).unwrap();
        let session = session(&server, &user.key, &key_owner.account_token);
        if cycle == 0 {
            expected_items = reference_conversation(&session, &ledger).await;
        }

        let acknowledged_at_start = ledger.written.lock().len();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = Kind::ALL
            .into_iter()
            .flat_map(|kind| (0..WRITERS_PER_KIND).map(move |w| (kind, w)))
            .map(|(kind, w)| {
                let tag = format!("{kind:?}-{cycle}-{w}");
                let (session, ledger, stop) = (session.clone(), ledger.clone(), stop.clone());
                tokio::spawn(writer(session, ledger, stop, kind, tag))
            })
            .collect();
        wait_for_load(&ledger, acknowledged_at_start).await;
        // Then a different moment each cycle, with every writer mid-request.
        tokio::time::sleep(Duration::from_millis(37 * cycle)).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.unwrap();
        }

        integrity_check(&database);
        let server = ServerProcess::start(binary, &url, &SERVER_ENV).unwrap();
        let session = self::session(&server, &user.key, &key_owner.account_token);
        let written = ledger.written.lock().clone();
        assert_acknowledged_writes_present(&session, &written, expected_items).await;
        assert_batches_all_or_none(&database, &ledger.batches.lock());
        assert_no_half_stored_conversation(&session, &database, expected_items).await;
        eprintln!(
            "cycle {cycle}: {} acknowledged writes and {} batches checked after the crash",
            written.len(),
            ledger.batches.lock().len()
        );
    }
}
