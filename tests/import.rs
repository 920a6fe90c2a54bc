//! `omi-server import omi` end to end: a real source server and a real target server on
//! loopback, a quirky in-test source that behaves like the hosted API, and bad input.

#[path = "support/postgres.rs"]
mod pg_support;
#[path = "support/server_process.rs"]
mod server_process;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::{Value, json};

use server_process::{CliUser, ServerProcess, create_user, database_in, omi_json, sqlite_url};

const BIN: &str = env!("CARGO_BIN_EXE_omi-server");

/// A plain HTTP client for the test's own calls, through the server's outgoing setup (which
/// installs the TLS provider reqwest needs).
fn client() -> reqwest::Client {
    omi_server::outbound::Outbound::system()
        .http_client()
        .build()
        .expect("an HTTP client")
}

fn binary() -> &'static std::path::Path {
    std::path::Path::new(BIN)
}

fn import(database_url: &str, key: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["import", "omi"])
        .args(args)
        .env("OMI_DATABASE_URL", database_url)
        .env("OMI_IMPORT_KEY", key)
        .env("OMI_LOG", "warn")
        .output()
        .expect("running omi-server import")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn get_json(base: &str, key: &str, path: &str) -> Value {
    let answer = client()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET");
    assert!(
        answer.status().is_success(),
        "GET {path}: {}",
        answer.status()
    );
    answer.json().await.expect("JSON")
}

async fn post(base: &str, key: &str, path: &str, body: Value) -> Value {
    let answer = client()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert!(
        answer.status().is_success(),
        "POST {path}: {}",
        answer.status()
    );
    answer.json().await.expect("JSON")
}

async fn patch(base: &str, key: &str, path: &str, body: Value) {
    let answer = client()
        .patch(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("PATCH");
    assert!(
        answer.status().is_success(),
        "PATCH {path}: {}",
        answer.status()
    );
}

/// Everything a user holds, as the API shows it, with fields that may differ between servers
/// by design removed (nothing else).
async fn snapshot(base: &str, key: &str) -> Value {
    let mut conversations = get_json(
        base,
        key,
        "/v1/dev/user/conversations?limit=25&include_transcript=true",
    )
    .await;
    for c in conversations.as_array_mut().unwrap() {
        // Folder ids are this server's own; the folder name says where it is filed.
        c["folder_id"] = Value::Null;
        for item in c["structured"]["action_items"].as_array_mut().unwrap() {
            item["conversation_id"] = Value::Null;
        }
    }
    let mut goals = get_json(
        base,
        key,
        "/v1/dev/user/goals?include_inactive=true&limit=100",
    )
    .await;
    for goal in goals.as_array_mut().unwrap() {
        let id = goal["id"].as_str().unwrap().to_string();
        goal["history"] = get_json(
            base,
            key,
            &format!("/v1/dev/user/goals/{id}/history?days=365"),
        )
        .await;
    }
    let mut folders = get_json(base, key, "/v1/dev/user/folders").await;
    for f in folders.as_array_mut().unwrap() {
        f["id"] = Value::Null;
        f["created_at"] = Value::Null;
        f["updated_at"] = Value::Null;
    }
    json!({
        "memories": get_json(base, key, "/v1/dev/user/memories?limit=1000").await,
        "action_items": get_json(base, key, "/v1/dev/user/action-items?limit=1000").await,
        "goals": goals,
        "conversations": conversations,
        "folders": folders,
    })
}

fn second_key(database_url: &str, user: &str) -> String {
    let key = omi_json(
        binary(),
        database_url,
        &[
            "keys",
            "create",
            "--user",
            user,
            "--name",
            "import",
            "--scopes",
            "conversations:read,memories:read,action_items:read,goals:read",
        ],
    )
    .unwrap();
    key["key"].as_str().unwrap().to_string()
}

async fn seed(base: &str, key: &str) {
    for i in 0..40 {
        post(
            base,
            key,
            "/v1/dev/user/memories",
            json!({"content": format!("Fact number {i} about the user"), "tags": ["t"],
                   "visibility": if i % 2 == 0 { "private" } else { "public" }}),
        )
        .await;
    }
    let done = post(
        base,
        key,
        "/v1/dev/user/action-items",
        json!({"description": "Buy milk", "due_at": "2026-12-10T10:00:00Z"}),
    )
    .await;
    patch(
        base,
        key,
        &format!("/v1/dev/user/action-items/{}", done["id"].as_str().unwrap()),
        json!({"completed": true}),
    )
    .await;
    post(
        base,
        key,
        "/v1/dev/user/action-items",
        json!({"description": "Call the bank"}),
    )
    .await;
    let goal = post(base, key, "/v1/dev/user/goals",
        json!({"title": "Run 10 km", "goal_type": "numeric", "target_value": 10, "current_value": 2})).await;
    patch(
        base,
        key,
        &format!("/v1/dev/user/goals/{}", goal["id"].as_str().unwrap()),
        json!({"current_value": 4}),
    )
    .await;
    for i in 0..30 {
        post(base, key, "/v1/dev/user/conversations", json!({
            "text": format!("Meeting {i}: we planned the quarterly budget at the office. I need to send the spreadsheet to Maria by Friday."),
            "started_at": format!("2025-03-{:02}T10:00:00Z", i % 28 + 1),
        })).await;
    }
    post(base, key, "/v1/dev/user/conversations/from-segments", json!({
        "transcript_segments": [
            {"text": "Hi, this is Dr. Patel's office, we need to move your Tuesday cleaning.",
             "speaker": "SPEAKER_01", "speaker_id": 1, "is_user": false, "person_id": "person-1",
             "start": 0.0, "end": 4.2},
            {"text": "Sure, does Thursday at nine thirty work? I will call to confirm.",
             "speaker": "SPEAKER_00", "speaker_id": 0, "is_user": true, "start": 4.6, "end": 7.1}],
        "geolocation": {"latitude": 52.3676, "longitude": 4.9041, "address": "Keizersgracht 12, Amsterdam"},
        "language": "en",
    })).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_history_moves_between_two_servers_faithfully_idempotently_and_resumably() {
    let dir = tempfile::tempdir().unwrap();
    let source_url = sqlite_url(&dir.path().join("source.db"));
    let target_url = sqlite_url(&database_in(dir.path()));
    let source_user: CliUser = create_user(binary(), &source_url, "alice").unwrap();
    let import_key = second_key(&source_url, "alice");
    let target_user = create_user(binary(), &target_url, "alice").unwrap();
    create_user(binary(), &target_url, "bob").unwrap();
    // The source paces the importer at 600 requests a minute: a run takes a few seconds.
    let source = ServerProcess::start(
        binary(),
        &source_url,
        &[
            ("OMI_RATE_LIMIT_PER_MINUTE", "600"),
            ("OMI_RATE_LIMIT_PER_DAY", "0"),
        ],
    )
    .unwrap();
    let target = ServerProcess::start(binary(), &target_url, &[]).unwrap();
    let source_base = source.base_url();
    seed(&source_base, &source_user.key).await;

    let first = import(
        &target_url,
        &import_key,
        &["--from", &source_base, "--user", "alice"],
    );
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        !text(&first).contains(&import_key),
        "the key is never printed"
    );
    let expected = snapshot(&source_base, &source_user.key).await;
    assert_eq!(
        snapshot(&target.base_url(), &target_user.key).await,
        expected
    );

    let again = import(
        &target_url,
        &import_key,
        &["--from", &source_base, "--user", "alice"],
    );
    let report = text(&again);
    assert!(again.status.success(), "{report}");
    for line in report
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim().starts_with("read"))
    {
        let numbers: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 6, "{line}");
        assert_eq!(
            (numbers[1], numbers[2]),
            (0, 0),
            "nothing created or updated: {line}"
        );
        assert_eq!(numbers[3], numbers[0], "all unchanged: {line}");
    }

    // Killed half-way, then run again: the same objects, no duplicate. A proxy holds back the
    // second page of conversations, so the kill lands after the first page was written.
    let stall = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let proxy = stalling_proxy(source_base.clone(), stall.clone()).await;
    let mut child = Command::new(BIN)
        .args(["import", "omi", "--from", &proxy, "--user", "bob"])
        .env("OMI_DATABASE_URL", &target_url)
        .env("OMI_IMPORT_KEY", &import_key)
        .env("OMI_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let database = database_in(dir.path());
    let mut checkpointed = false;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let connection = rusqlite::Connection::open(&database).unwrap();
        let found: Result<i64, _> = connection.query_row(
            "SELECT next_offset FROM import_checkpoints WHERE resource = 'conversations'",
            [],
            |row| row.get(0),
        );
        if found.is_ok() {
            checkpointed = true;
            break;
        }
    }
    assert!(
        checkpointed,
        "the first page of conversations was checkpointed"
    );
    child.kill().unwrap();
    let killed = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9),
        "the first run was still going when it was killed"
    );
    stall.store(false, Ordering::SeqCst);
    let resumed = import(
        &target_url,
        &import_key,
        &["--from", &proxy, "--user", "bob"],
    );
    assert!(resumed.status.success(), "{}", text(&resumed));
    let bob = second_key(&target_url, "bob");
    let bob_view = snapshot(&target.base_url(), &bob).await;
    // Conversation ids are taken by alice's copies on this server, so bob's get new ones.
    let strip_ids = |mut v: Value| {
        for c in v["conversations"].as_array_mut().unwrap() {
            c["id"] = Value::Null;
            // The user's own speech is named after the user who holds it.
            for s in c["transcript_segments"].as_array_mut().unwrap() {
                if s["is_user"] == json!(true) {
                    s["speaker_name"] = Value::Null;
                }
            }
        }
        for a in v["action_items"].as_array_mut().unwrap() {
            a["id"] = Value::Null;
            a["conversation_id"] = Value::Null;
        }
        v
    };
    assert_same(&strip_ids(bob_view), &strip_ids(expected), "");
}

/// The report's per-resource lines: `(read, created, updated, unchanged)`.
fn report_counts(report: &str) -> Vec<(u64, u64, u64, u64)> {
    report
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim().starts_with("read"))
        .map(|line| {
            let n: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse().ok())
                .collect();
            assert_eq!(n.len(), 6, "{line}");
            (n[0], n[1], n[2], n[3])
        })
        .collect()
}

/// The same history into a PostgreSQL target: every object as the source serves it, and a
/// second run changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_history_moves_into_postgresql_the_same() {
    if let Some(notice) = pg_support::skip_notice("a_history_moves_into_postgresql_the_same") {
        eprintln!("{notice}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source_url = sqlite_url(&dir.path().join("source.db"));
    let target_db = pg_support::TestDatabase::create().await;
    let source_user = create_user(binary(), &source_url, "alice").unwrap();
    let import_key = second_key(&source_url, "alice");
    let target_user = create_user(binary(), &target_db.url, "alice").unwrap();
    let source = ServerProcess::start(
        binary(),
        &source_url,
        &[
            ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
            ("OMI_RATE_LIMIT_PER_DAY", "0"),
        ],
    )
    .unwrap();
    let target = ServerProcess::start(binary(), &target_db.url, &[]).unwrap();
    let source_base = source.base_url();
    seed(&source_base, &source_user.key).await;

    let first = import(
        &target_db.url,
        &import_key,
        &["--from", &source_base, "--user", "alice"],
    );
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        snapshot(&target.base_url(), &target_user.key).await,
        snapshot(&source_base, &source_user.key).await
    );
    let again = import(
        &target_db.url,
        &import_key,
        &["--from", &source_base, "--user", "alice"],
    );
    assert!(again.status.success(), "{}", text(&again));
    for (read, created, updated, unchanged) in report_counts(&text(&again)) {
        assert_eq!((created, updated, unchanged), (0, 0, read));
    }
}

/// `--reprocess` runs this server's processor over imported conversations: the source's edited
/// title gives way to the processor's, while ids, times and transcripts stay the source's.
#[tokio::test(flavor = "multi_thread")]
async fn reprocess_replaces_the_sources_summary_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let source_url = sqlite_url(&dir.path().join("source.db"));
    let source_user = create_user(binary(), &source_url, "alice").unwrap();
    let import_key = second_key(&source_url, "alice");
    let source = ServerProcess::start(
        binary(),
        &source_url,
        &[
            ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
            ("OMI_RATE_LIMIT_PER_DAY", "0"),
        ],
    )
    .unwrap();
    let source_base = source.base_url();
    let conversation = post(
        &source_base,
        &source_user.key,
        "/v1/dev/user/conversations/from-segments",
        json!({"transcript_segments": [
            {"text": "I need to call the dentist tomorrow about my crown.",
             "speaker": "SPEAKER_00", "speaker_id": 0, "is_user": true, "start": 0.0, "end": 3.0}],
               "started_at": "2025-03-04T10:00:00Z"}),
    )
    .await;
    // A note written as text has no transcript: it keeps the source's summary either way.
    let note = post(
        &source_base,
        &source_user.key,
        "/v1/dev/user/conversations",
        json!({"text": "Buy milk and eggs on the way home.", "started_at": "2025-03-05T10:00:00Z"}),
    )
    .await;
    let id = conversation["id"].as_str().unwrap().to_string();
    let processed_title = get_json(
        &source_base,
        &source_user.key,
        &format!("/v1/dev/user/conversations/{id}"),
    )
    .await["structured"]["title"]
        .clone();
    patch(
        &source_base,
        &source_user.key,
        &format!("/v1/dev/user/conversations/{id}"),
        json!({"title": "Edited By Hand In The App"}),
    )
    .await;
    let path = format!("/v1/dev/user/conversations/{id}?include_transcript=true");
    let at_source = get_json(&source_base, &source_user.key, &path).await;
    assert_ne!(at_source["structured"]["title"], processed_title);
    let note_path = format!(
        "/v1/dev/user/conversations/{}",
        note["id"].as_str().unwrap()
    );
    let note_at_source = get_json(&source_base, &source_user.key, &note_path).await;

    for (reprocess, title) in [
        (false, at_source["structured"]["title"].clone()),
        (true, processed_title),
    ] {
        let target_url = sqlite_url(&dir.path().join(format!("target-{reprocess}.db")));
        let target_user = create_user(binary(), &target_url, "alice").unwrap();
        let mut args = vec!["--from", source_base.as_str(), "--user", "alice"];
        if reprocess {
            args.push("--reprocess");
        }
        let run = import(&target_url, &import_key, &args);
        assert!(run.status.success(), "{}", text(&run));
        assert_eq!(
            text(&run).contains("1 without a transcript kept the source's summary"),
            reprocess,
            "{}",
            text(&run)
        );
        let target = ServerProcess::start(binary(), &target_url, &[]).unwrap();
        let imported = get_json(&target.base_url(), &target_user.key, &path).await;
        assert_eq!(
            imported["structured"]["title"], title,
            "reprocess: {reprocess}"
        );
        let note = get_json(&target.base_url(), &target_user.key, &note_path).await;
        assert_eq!(note["structured"], note_at_source["structured"]);
        for field in ["id", "started_at", "finished_at", "transcript_segments"] {
            assert_eq!(
                imported[field], at_source[field],
                "{field}, reprocess: {reprocess}"
            );
        }
    }
}

/// The hosted API's habits: `limit` clamped to 7, pages one short before the end, a new item at
/// the top while paging, 429 with Retry-After twice, 503 once, a dropped connection once, and
/// its own spelling of the key error.
#[derive(Default)]
struct Quirks {
    memories: Mutex<Vec<Value>>,
    requests: AtomicUsize,
    inserted: AtomicUsize,
}

const QUIRKY_KEY: &str = "omi_dev_0123456789abcdef0123456789abcdef";

fn memory_json(i: usize) -> Value {
    json!({"id": format!("m{i}"), "content": format!("Quirky fact {i}"), "category": "interesting",
           "visibility": "private", "tags": [], "created_at": "2025-01-01T00:00:00Z",
           "updated_at": "2025-01-01T00:00:00Z", "manually_added": false, "reviewed": false,
           "user_review": null, "edited": false})
}

async fn quirky_memories(
    State(q): State<Arc<Quirks>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {QUIRKY_KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"detail": "Invalid API Key"})),
        )
            .into_response();
    }
    let n = q.requests.fetch_add(1, Ordering::SeqCst);
    match n {
        2 | 3 => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response();
        }
        5 => return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        _ => {}
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25)
        .clamp(1, 7);
    let offset: usize = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    if n == 6 && q.inserted.fetch_add(1, Ordering::SeqCst) == 0 {
        q.memories.lock().insert(0, memory_json(999));
    }
    let all = q.memories.lock().clone();
    let mut page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    // A "locked" item filtered after paging: a short page that is not the end.
    if offset > 0 && page.len() == limit {
        page.pop();
    }
    axum::Json(page).into_response()
}

async fn start_quirky(q: Arc<Quirks>) -> SocketAddr {
    let app = Router::new()
        .route("/v1/dev/user/memories", get(quirky_memories))
        .with_state(q);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// Accepts one connection and closes it without answering, then forwards to `next`.
async fn dropping_once(next: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            if first {
                first = false;
                drop(inbound);
                continue;
            }
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(next).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quirky_source_is_imported_completely() {
    let q = Arc::new(Quirks::default());
    *q.memories.lock() = (0..40).map(memory_json).collect();
    let quirky = start_quirky(q.clone()).await;
    let front = dropping_once(quirky).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = sqlite_url(&database_in(dir.path()));
    let user = create_user(binary(), &target_url, "carol").unwrap();
    let base = format!("http://{front}");
    let out = tokio::task::spawn_blocking({
        let target_url = target_url.clone();
        move || {
            import(
                &target_url,
                QUIRKY_KEY,
                &["--from", &base, "--user", "carol", "--only", "memories"],
            )
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let target = ServerProcess::start(binary(), &target_url, &[]).unwrap();
    let memories = get_json(
        &target.base_url(),
        &user.key,
        "/v1/dev/user/memories?limit=1000",
    )
    .await;
    let mut contents: Vec<String> = memories
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    contents.sort();
    let mut expected: Vec<String> = (0..40)
        .chain([999])
        .map(|i| format!("Quirky fact {i}"))
        .collect();
    expected.sort();
    assert_eq!(contents, expected, "{}", text(&out));
    assert!(
        text(&out).contains("2 rate-limited waits"),
        "{}",
        text(&out)
    );

    // Its spelling of a refused key is still a refused key: one line, non-zero exit.
    let refused = tokio::task::spawn_blocking({
        let target_url = target_url.clone();
        let base = format!("http://{quirky}");
        move || {
            import(
                &target_url,
                "omi_dev_ffffffffffffffffffffffffffffffff",
                &["--from", &base, "--user", "carol", "--only", "memories"],
            )
        }
    })
    .await
    .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("refused the key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_one_clear_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source_url = sqlite_url(&dir.path().join("source.db"));
    let target_url = sqlite_url(&database_in(dir.path()));
    let source_user = create_user(binary(), &source_url, "dave").unwrap();
    let target_user = create_user(binary(), &target_url, "dave").unwrap();
    let memories_only = omi_json(
        binary(),
        &source_url,
        &[
            "keys",
            "create",
            "--user",
            "dave",
            "--name",
            "m",
            "--scopes",
            "memories:read",
        ],
    )
    .unwrap();
    let memories_only = memories_only["key"].as_str().unwrap().to_string();
    let revoked = omi_json(
        binary(),
        &source_url,
        &["keys", "create", "--user", "dave", "--name", "r"],
    )
    .unwrap();
    let revoking = Command::new(BIN)
        .args(["keys", "revoke", revoked["id"].as_str().unwrap()])
        .env("OMI_DATABASE_URL", &source_url)
        .env("OMI_LOG", "warn")
        .output()
        .unwrap();
    assert!(revoking.status.success(), "{}", text(&revoking));
    let revoked = revoked["key"].as_str().unwrap().to_string();
    let source =
        ServerProcess::start(binary(), &source_url, &[("OMI_RATE_LIMIT_PER_MINUTE", "0")]).unwrap();
    let base = source.base_url();
    post(
        &base,
        &source_user.key,
        "/v1/dev/user/memories",
        json!({"content": "Something"}),
    )
    .await;
    // Something that answers HTTP but is no Omi server.
    let not_omi = {
        let app = Router::new().fallback(|| async { "<html>hello</html>" });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    };
    let unused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec![
                "--from".into(),
                unused,
                "--user".into(),
                "dave".into(),
                "--retries".into(),
                "2".into(),
            ],
            source_user.key.clone(),
            "cannot reach",
        ),
        (
            vec!["--from".into(), not_omi, "--user".into(), "dave".into()],
            source_user.key.clone(),
            "does not look like",
        ),
        (
            vec![
                "--from".into(),
                base.clone(),
                "--user".into(),
                "dave".into(),
            ],
            revoked,
            "refused the key",
        ),
        (
            vec![
                "--from".into(),
                base.clone(),
                "--user".into(),
                "dave".into(),
            ],
            memories_only,
            "conversations:read",
        ),
        (
            vec![
                "--from".into(),
                base.clone(),
                "--user".into(),
                "nobody".into(),
            ],
            source_user.key.clone(),
            "no user 'nobody'",
        ),
    ];
    for (args, key, wanted) in cases {
        let out = tokio::task::spawn_blocking({
            let target_url = target_url.clone();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                import(&target_url, &key, &args)
            }
        })
        .await
        .unwrap();
        assert!(!out.status.success(), "{wanted}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains(" INFO ")).collect();
        assert_eq!(lines.len(), 1, "{wanted}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(wanted),
            "{wanted}: {stderr}"
        );
    }
    let target = ServerProcess::start(binary(), &target_url, &[]).unwrap();
    let memories = get_json(
        &target.base_url(),
        &target_user.key,
        "/v1/dev/user/memories",
    )
    .await;
    assert_eq!(memories, json!([]), "nothing was written");
}

/// Equal JSON, or a failure naming the first path where they differ.
fn assert_same(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let mut keys: Vec<&String> = g.keys().chain(w.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                assert_same(
                    g.get(k).unwrap_or(&Value::Null),
                    w.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                );
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: lengths differ");
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                assert_same(a, b, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Forwards GETs to `upstream`; while `stall` is set, a page of conversations past the first one
/// is held back for a minute.
async fn stalling_proxy(upstream: String, stall: Arc<std::sync::atomic::AtomicBool>) -> String {
    async fn forward(
        State((upstream, stall)): State<(String, Arc<std::sync::atomic::AtomicBool>)>,
        request: axum::extract::Request,
    ) -> Response {
        let uri = request.uri().clone();
        let query = uri.query().unwrap_or("");
        if stall.load(Ordering::SeqCst)
            && uri.path() == "/v1/dev/user/conversations"
            && query.contains("offset=")
            && !query.contains("offset=0")
        {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let mut outbound = client().get(format!(
            "{upstream}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ));
        if let Some(auth) = request.headers().get("authorization") {
            outbound = outbound.header("authorization", auth.as_bytes());
        }
        let answer = outbound.send().await.unwrap();
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in answer.headers() {
            if name.as_str().starts_with("x-ratelimit") || name.as_str() == "retry-after" {
                headers.insert(
                    axum::http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                    axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                );
            }
        }
        headers.insert("content-type", "application/json".parse().unwrap());
        (status, headers, answer.bytes().await.unwrap()).into_response()
    }
    let app = Router::new()
        .fallback(forward)
        .with_state((upstream, stall));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}
