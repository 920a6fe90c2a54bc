//! Conversations (API.md §5, §11.8-11.10): creation with processing, validation, idempotency,
//! reads, updates, deletion, isolation between users.

use std::sync::Arc;

use chrono::{Duration, Utc};
use omi_server::processing::{
    ConversationInput, OfflineProcessor, ProcessedConversation, ProcessingContext, ProcessingError,
    Processor,
};
use serde_json::{Value, json};

use crate::common::{Backend, Reply, TestServer, TestUser};

const TEXT_PATH: &str = "/v1/dev/user/conversations";
const SEGMENTS_PATH: &str = "/v1/dev/user/conversations/from-segments";

/// A text the offline processor turns into an action item and a memory about the user.
const DENTIST_TEXT: &str = "I need to call the dentist tomorrow about my crown. \
     I'm allergic to peanuts, so the clinic should know before the appointment.";

fn conversation_path(id: &str) -> String {
    format!("{TEXT_PATH}/{id}")
}

async fn create_text(server: &TestServer, user: &TestUser, body: Value) -> Reply {
    server.post(TEXT_PATH, &user.key, body).await
}

async fn create_ok(server: &TestServer, user: &TestUser, path: &str, body: Value) -> String {
    let reply = server.post(path, &user.key, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

fn segments(texts: &[(&str, bool)]) -> Value {
    let list: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, (text, is_user))| {
            json!({"text": text, "speaker": format!("SPEAKER_0{}", i % 2), "is_user": is_user,
                   "start": i as f64 * 5.0, "end": i as f64 * 5.0 + 4.0})
        })
        .collect();
    Value::Array(list)
}

fn db(server: &TestServer) -> rusqlite::Connection {
    rusqlite::Connection::open(server.db_path()).unwrap()
}

fn count(server: &TestServer, sql: &str, user_id: &str) -> i64 {
    db(server)
        .query_row(sql, [user_id], |row| row.get(0))
        .unwrap()
}

fn action_item_count(server: &TestServer, user: &TestUser) -> i64 {
    count(
        server,
        "SELECT COUNT(*) FROM action_items WHERE user_id = ?1",
        &user.id,
    )
}

fn conversation_count(server: &TestServer, user: &TestUser) -> i64 {
    count(
        server,
        "SELECT COUNT(*) FROM conversations WHERE user_id = ?1",
        &user.id,
    )
}

#[tokio::test]
async fn creating_from_text_processes_before_answering() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = create_text(&server, &alice, json!({"text": DENTIST_TEXT})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "completed");
    assert_eq!(reply.body["discarded"], false);
    let id = reply.body["id"].as_str().unwrap();

    let conversation = server.get(&conversation_path(id), &alice.key).await;
    assert_eq!(conversation.status, 200, "{conversation:?}");
    let c = &conversation.body;
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        crate::common::sorted(&[
            "id",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
            "structured",
            "language",
            "source",
            "status",
            "discarded",
            "starred",
            "processed_by",
            "folder_id",
            "folder_name",
            "geolocation",
            "transcript_segments"
        ])
    );
    assert_eq!(c["created_at"], c["started_at"]);
    assert_eq!(c["source"], "external_integration");
    assert_eq!(c["language"], "en");
    assert_eq!(c["processed_by"], "offline");
    assert_eq!(c["status"], "completed");
    assert!(c["geolocation"].is_null());
    assert!(c["transcript_segments"].is_null());
    assert_eq!(c["structured"]["category"], "health");
    assert!(!c["structured"]["title"].as_str().unwrap().is_empty());
    assert!(!c["structured"]["overview"].as_str().unwrap().is_empty());
    assert_eq!(c["folder_name"], "Personal");
    assert!(c["folder_id"].is_string());

    let items = c["structured"]["action_items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{c}");
    assert!(items[0]["id"].is_string());
    assert_eq!(items[0]["conversation_id"], id);
    assert_eq!(items[0]["completed"], false);
    assert!(
        items[0]["description"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("dentist")
    );

    // The memory is stored as an extracted one, linked to the conversation.
    let (content, category, manually_added, reviewed, user_review, conversation_id): (
        String,
        String,
        bool,
        bool,
        Option<bool>,
        String,
    ) = db(&server)
        .query_row(
            "SELECT content, category, manually_added, reviewed, user_review, conversation_id
             FROM memories WHERE user_id = ?1",
            [&alice.id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert!(content.contains("peanuts"), "{content}");
    assert!(content.starts_with("alice"), "{content}");
    assert_eq!(category, "system");
    assert!(!manually_added && !reviewed && user_review.is_none());
    assert_eq!(conversation_id, id);

    let with_transcript = server
        .get(
            &format!("{}?include_transcript=true", conversation_path(id)),
            &alice.key,
        )
        .await;
    assert_eq!(with_transcript.body["transcript_segments"], json!([]));
}

async fn text_times_language_and_geolocation_are_stored(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let id = create_ok(
        &server,
        &alice,
        TEXT_PATH,
        json!({"text": "Notes about the garden fence repair plan.", "finished_at": "2025-03-01T10:00:00+01:00",
               "language": " de ", "text_source": "message", "geolocation": {"latitude": 52.5, "longitude": 13.4, "address": "Berlin"}}),
    )
    .await;
    let c = server.get(&conversation_path(&id), &alice.key).await.body;
    assert_eq!(c["finished_at"], "2025-03-01T09:00:00Z");
    assert_eq!(c["started_at"], "2025-03-01T08:55:00Z");
    assert_eq!(c["language"], "de");
    assert_eq!(
        c["geolocation"],
        json!({"latitude": 52.5, "longitude": 13.4, "address": "Berlin", "google_place_id": null, "location_type": null})
    );

    // Equal times are allowed for text.
    let reply = create_text(
        &server,
        &alice,
        json!({"text": "A note.", "started_at": "2025-03-01T10:00:00Z", "finished_at": "2025-03-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn text_validation_errors_have_exact_details(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let cases = [
        (json!({"text": "   "}), "text cannot be empty"),
        (
            json!({"text": "a".repeat(100_001)}),
            "text cannot exceed 100,000 characters",
        ),
        (
            json!({"text": "hi there", "started_at": "2025-01-01T10:00:00Z", "finished_at": "2025-01-01T09:59:59Z"}),
            "finished_at must be after started_at",
        ),
        (json!({}), "Validation error: text is required"),
        (
            json!({"text": "x", "text_source": "email"}),
            "Validation error: text_source must be one of 'audio_transcript', 'message', 'other_text'",
        ),
        (
            json!({"text": "x", "language": ""}),
            "Validation error: language cannot be empty",
        ),
        (
            json!({"text": "x", "language": "x".repeat(17)}),
            "Validation error: language must be at most 16 characters",
        ),
        (
            json!({"text": "x", "geolocation": {"latitude": 90.5, "longitude": 0}}),
            "Validation error: geolocation.latitude must be between -90 and 90",
        ),
        (
            json!({"text": "x", "geolocation": {"latitude": 0, "longitude": -180.1}}),
            "Validation error: geolocation.longitude must be between -180 and 180",
        ),
        (
            json!({"text": "x", "client_session_id": ""}),
            "Validation error: client_session_id cannot be empty",
        ),
        (
            json!({"text": "x", "client_session_id": "c".repeat(201)}),
            "Validation error: client_session_id must be at most 200 characters",
        ),
        (
            json!({"text": "x", "started_at": "2025-01-01"}),
            "Validation error: started_at must be an RFC 3339 date-time such as 2025-12-10T17:00:00Z",
        ),
    ];
    for (body, detail) in cases {
        create_text(&server, &alice, body)
            .await
            .assert_error(422, detail);
    }
    // Exactly 100,000 characters are accepted.
    let reply = create_text(&server, &alice, json!({"text": "a ".repeat(50_000)})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn segment_validation_errors_have_exact_details(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let seg = |text: &str, start: f64, end: f64| json!({"text": text, "start": start, "end": end});
    let too_many: Vec<Value> = (0..501)
        .map(|i| seg("x", i as f64, i as f64 + 1.0))
        .collect();
    let cases = [
        (
            json!({"transcript_segments": []}),
            "transcript_segments cannot be empty",
        ),
        (
            json!({"transcript_segments": too_many}),
            "Maximum 500 transcript segments allowed",
        ),
        (
            json!({"transcript_segments": [seg("ok", 0.0, 1.0), seg("", 2.0, 2.0), seg("", -1.0, 3.0)]}),
            "Segment 1: end time must be after start time",
        ),
        (
            json!({"transcript_segments": [seg("ok", 0.0, 1.0), seg("  ", 1.0, 2.0), seg("x", 3.0, 2.0)]}),
            "Segment 1: text cannot be empty",
        ),
        (
            json!({"transcript_segments": [seg("x", -0.5, 1.0)]}),
            "Segment 0: start time cannot be negative",
        ),
        (
            json!({"transcript_segments": [seg("x", 0.0, 1.0)], "started_at": "2025-01-01T10:00:00Z", "finished_at": "2025-01-01T10:00:00Z"}),
            "finished_at must be after started_at",
        ),
        (
            json!({"transcript_segments": [seg("", 0.0, 1.0)], "started_at": "2025-01-01T10:00:00Z", "finished_at": "2025-01-01T09:00:00Z"}),
            "Segment 0: text cannot be empty",
        ),
        (
            json!({"transcript_segments": [seg("x", 0.0, 1e300)]}),
            "Validation error: conversation times are out of range",
        ),
        (
            json!({}),
            "Validation error: transcript_segments is required",
        ),
        (
            json!({"transcript_segments": [{"text": "x", "start": 0}]}),
            "Validation error: transcript_segments[0].end is required",
        ),
        (
            json!({"transcript_segments": [seg("x", 0.0, 1.0)], "finished_at": "2025-01-01"}),
            "Validation error: finished_at must be an RFC 3339 date-time such as 2025-12-10T17:00:00Z",
        ),
    ];
    for (body, detail) in cases {
        server
            .post(SEGMENTS_PATH, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
}

async fn segment_conversations_get_their_defaults(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let body = json!({"transcript_segments": [
        {"text": "We should repaint the kitchen walls this spring.", "start": 0.0, "end": 4.0},
        {"text": "Blue would look great in there honestly.", "start": 4.5, "end": 90.5}],
        "started_at": "2025-02-01T12:00:00Z", "source": "walkie_talkie"});
    let id = create_ok(&server, &alice, SEGMENTS_PATH, body).await;
    let c = server.get(&conversation_path(&id), &alice.key).await.body;
    assert_eq!(c["finished_at"], "2025-02-01T12:01:30.500Z");
    assert_eq!(c["source"], "unknown");
    assert_eq!(c["language"], "en");

    let only_finished = json!({"transcript_segments": [{"text": "Plan the kitchen colours with the painter.", "start": 0, "end": 60}],
        "finished_at": "2025-02-01T12:00:00Z"});
    let id = create_ok(&server, &alice, SEGMENTS_PATH, only_finished).await;
    let c = server.get(&conversation_path(&id), &alice.key).await.body;
    assert_eq!(c["started_at"], "2025-02-01T11:59:00Z");
    assert_eq!(c["source"], "phone");
}

async fn transcript_segments_name_their_speakers(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let body = json!({"transcript_segments": [
        {"text": "I finally booked the flight to Lisbon for the conference.", "speaker": "SPEAKER_02", "is_user": true, "start": 0, "end": 3},
        {"text": "Great, the venue is close to the river.", "speaker": "SPEAKER_01", "speaker_id": 9, "start": 3, "end": 6},
        {"text": "I can show you around the old town.", "speaker": "Maria", "speaker_id": 4, "person_id": "p-1", "start": 6, "end": 9},
        {"text": "That sounds lovely, thank you so much.", "start": 9, "end": 12}]});
    let id = create_ok(&server, &alice, SEGMENTS_PATH, body).await;
    let c = server
        .get(
            &format!("{}?include_transcript=true", conversation_path(&id)),
            &alice.key,
        )
        .await
        .body;
    let segs = c["transcript_segments"].as_array().unwrap();
    let seen: Vec<(&str, i64, &str, bool)> = segs
        .iter()
        .map(|s| {
            (
                s["speaker"].as_str().unwrap(),
                s["speaker_id"].as_i64().unwrap(),
                s["speaker_name"].as_str().unwrap(),
                s["is_user"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("SPEAKER_02", 2, "alice", true),
            ("SPEAKER_01", 1, "Speaker 1", false),
            ("Maria", 4, "Maria", false),
            ("SPEAKER_00", 0, "Speaker 0", false),
        ]
    );
    assert_eq!(segs[2]["person_id"], "p-1");
    assert!(segs[0]["person_id"].is_null());
    assert!(segs[0]["id"].is_string());
    assert_eq!(
        (segs[1]["start"].as_f64(), segs[1]["end"].as_f64()),
        (Some(3.0), Some(6.0))
    );
    let keys: Vec<&str> = segs[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        crate::common::sorted(&[
            "id",
            "text",
            "speaker",
            "speaker_id",
            "speaker_name",
            "is_user",
            "person_id",
            "start",
            "end"
        ])
    );
}

#[tokio::test]
async fn conversations_are_private_to_their_owner() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let id = create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    let path = conversation_path(&id);

    server
        .get(&path, &bob.key)
        .await
        .assert_error(404, "Conversation not found");
    server
        .patch(&path, &bob.key, json!({"title": "Mine now"}))
        .await
        .assert_error(404, "Conversation not found");
    server
        .delete(&path, &bob.key)
        .await
        .assert_error(404, "Conversation not found");
    server
        .get(&conversation_path("bad!id"), &alice.key)
        .await
        .assert_error(404, "Conversation not found");
    server
        .get(&conversation_path("0000-nope"), &alice.key)
        .await
        .assert_error(404, "Conversation not found");

    let bobs = server.get(TEXT_PATH, &bob.key).await;
    assert_eq!(bobs.body, json!([]));
    let folders = server.get("/v1/dev/user/folders", &bob.key).await;
    assert_eq!(folders.body, json!([]));
    let folder_id = server.get(&path, &alice.key).await.body["folder_id"].clone();
    let by_folder = server
        .get(
            &format!("{TEXT_PATH}?folder_id={}", folder_id.as_str().unwrap()),
            &bob.key,
        )
        .await;
    assert_eq!(by_folder.body, json!([]));
    // Bob's own conversation with the same text does not collide with Alice's extracted items.
    create_ok(&server, &bob, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    assert_eq!(action_item_count(&server, &bob), 1);
    assert_eq!(
        server
            .get(TEXT_PATH, &alice.key)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The surviving resource is unchanged.
    assert_eq!(server.get(&path, &alice.key).await.status, 200);
}

async fn each_route_needs_its_scope(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let reader = server.key_with(&alice, &["conversations:read"]).await;
    let writer = server.key_with(&alice, &["conversations:write"]).await;
    server
        .post(TEXT_PATH, &reader, json!({"text": "x"}))
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: conversations:write",
        );
    server
        .post(SEGMENTS_PATH, &reader, json!({"transcript_segments": []}))
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: conversations:write",
        );
    server.get(TEXT_PATH, &writer).await.assert_error(
        403,
        "Insufficient permissions. Required scope: conversations:read",
    );
    server
        .get("/v1/dev/user/folders", &writer)
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: conversations:read",
        );
    let id = create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    server
        .patch(&conversation_path(&id), &reader, json!({"title": "x"}))
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: conversations:write",
        );
    server
        .delete(&conversation_path(&id), &reader)
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: conversations:write",
        );
    assert_eq!(
        server.get(&conversation_path(&id), &reader).await.status,
        200
    );
}

#[tokio::test]
async fn a_repeated_client_session_id_returns_the_first_result_without_processing_again() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let body = json!({"transcript_segments": segments(&[(DENTIST_TEXT, true)]), "client_session_id": "session-1"});
    let first = server.post(SEGMENTS_PATH, &alice.key, body.clone()).await;
    assert_eq!(first.status, 200, "{first:?}");
    let items_after_first = action_item_count(&server, &alice);
    assert_eq!(items_after_first, 1);

    let other_body = json!({"transcript_segments": segments(&[("Remind me to buy milk tonight.", true)]),
                            "client_session_id": "session-1"});
    let repeat = server.post(SEGMENTS_PATH, &alice.key, other_body).await;
    assert_eq!(repeat.status, 200, "{repeat:?}");
    assert_eq!(repeat.body, first.body);
    assert_eq!(action_item_count(&server, &alice), items_after_first);
    assert_eq!(conversation_count(&server, &alice), 1);

    // The same client id is another user's own.
    let bobs = server.post(SEGMENTS_PATH, &bob.key, body).await;
    assert_eq!(bobs.status, 200);
    assert_ne!(bobs.body["id"], first.body["id"]);

    // The text route honours the id too, and a deleted conversation still answers the repeat.
    let text = json!({"text": "Remind me to water the plants tomorrow morning.", "client_session_id": "session-2"});
    let created = create_text(&server, &alice, text.clone()).await;
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        server
            .delete(&conversation_path(id), &alice.key)
            .await
            .status,
        200
    );
    let again = create_text(&server, &alice, text).await;
    assert_eq!(again.body, created.body);
}

#[tokio::test]
async fn concurrent_duplicates_create_one_conversation() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let body = json!({"transcript_segments": segments(&[(DENTIST_TEXT, true)]), "client_session_id": "burst"});
    let replies = futures::future::join_all(
        (0..8).map(|_| server.post(SEGMENTS_PATH, &alice.key, body.clone())),
    )
    .await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert!(!created.is_empty());
    let id = &created[0].body["id"];
    for reply in &replies {
        match reply.status {
            200 => assert_eq!(&reply.body["id"], id),
            409 => reply.assert_error(409, "Conversation creation already in progress"),
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(conversation_count(&server, &alice), 1);
    assert_eq!(action_item_count(&server, &alice), 1);
}

#[tokio::test]
async fn a_claim_in_progress_answers_409_and_an_abandoned_one_runs_again() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let now = Utc::now();
    let ghost = "0190c0de-0000-7000-8000-000000000001";
    db(&server)
        .execute(
            "INSERT INTO conversation_claims (user_id, client_session_id, conversation_id, claimed_at)
             VALUES (?1, 'running', ?2, ?3)",
            rusqlite::params![alice.id, ghost, now.timestamp_micros()],
        )
        .unwrap();
    let body = json!({"text": DENTIST_TEXT, "client_session_id": "running"});
    create_text(&server, &alice, body.clone())
        .await
        .assert_error(409, "Conversation creation already in progress");
    // A conversation still being processed is invisible.
    server
        .get(&conversation_path(ghost), &alice.key)
        .await
        .assert_error(404, "Conversation not found");
    assert_eq!(server.get(TEXT_PATH, &alice.key).await.body, json!([]));
    assert_eq!(action_item_count(&server, &alice), 0);

    let stale = (now - Duration::seconds(121)).timestamp_micros();
    db(&server)
        .execute(
            "UPDATE conversation_claims SET claimed_at = ?1 WHERE client_session_id = 'running'",
            [stale],
        )
        .unwrap();
    let rerun = create_text(&server, &alice, body.clone()).await;
    assert_eq!(rerun.status, 200, "{rerun:?}");
    assert_ne!(rerun.body["id"], ghost);
    assert_eq!(action_item_count(&server, &alice), 1);
    let repeat = create_text(&server, &alice, body).await;
    assert_eq!(repeat.body, rerun.body);
    assert_eq!(conversation_count(&server, &alice), 1);
}

struct FailingProcessor;

#[async_trait::async_trait]
impl Processor for FailingProcessor {
    fn name(&self) -> &'static str {
        "failing"
    }

    async fn process(
        &self,
        _: &ConversationInput,
        _: &ProcessingContext,
    ) -> Result<ProcessedConversation, ProcessingError> {
        Err(ProcessingError::Unavailable("backend down".into()))
    }
}

struct PanickingProcessor;

#[async_trait::async_trait]
impl Processor for PanickingProcessor {
    fn name(&self) -> &'static str {
        "panicking"
    }

    async fn process(
        &self,
        _: &ConversationInput,
        _: &ProcessingContext,
    ) -> Result<ProcessedConversation, ProcessingError> {
        panic!("a processor bug")
    }
}

async fn assert_minimal_structure_is_stored(processor: Arc<dyn Processor>) {
    let server = TestServer::start_with_processor(processor).await;
    let alice = server.user("alice").await;
    let reply = create_text(&server, &alice, json!({"text": DENTIST_TEXT})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["discarded"], false);
    let c = server
        .get(
            &conversation_path(reply.body["id"].as_str().unwrap()),
            &alice.key,
        )
        .await
        .body;
    assert_eq!(c["structured"]["category"], "other");
    assert!(
        c["structured"]["title"]
            .as_str()
            .unwrap()
            .starts_with("I Need to Call")
    );
    assert!(
        c["structured"]["overview"]
            .as_str()
            .unwrap()
            .starts_with("I need to call")
    );
    assert_eq!(c["structured"]["action_items"], json!([]));
    assert_eq!(c["processed_by"], "offline");
    assert_eq!(c["folder_name"], "Personal");
    assert_eq!(action_item_count(&server, &alice), 0);
}

#[tokio::test]
async fn a_processor_error_still_stores_the_minimal_structure() {
    assert_minimal_structure_is_stored(Arc::new(FailingProcessor)).await;
}

#[tokio::test]
async fn a_processor_panic_still_stores_the_minimal_structure() {
    assert_minimal_structure_is_stored(Arc::new(PanickingProcessor)).await;
}

#[tokio::test]
async fn the_processor_can_be_replaced() {
    let server = TestServer::start_with_processor(Arc::new(OfflineProcessor)).await;
    let alice = server.user("alice").await;
    let id = create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    assert_eq!(
        server.get(&conversation_path(&id), &alice.key).await.body["processed_by"],
        "offline"
    );
}

#[tokio::test]
async fn extracted_items_survive_deleting_the_conversation() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let body = json!({"transcript_segments": segments(&[(DENTIST_TEXT, true), ("Sure, I will note that down.", false)])});
    let id = create_ok(&server, &alice, SEGMENTS_PATH, body).await;
    let path = conversation_path(&id);
    let deleted = server.delete(&path, &alice.key).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"success": true}));
    server
        .get(&path, &alice.key)
        .await
        .assert_error(404, "Conversation not found");
    server
        .delete(&path, &alice.key)
        .await
        .assert_error(404, "Conversation not found");
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM transcript_segments WHERE user_id = ?1",
            &alice.id
        ),
        0
    );
    let linked = |table: &str| {
        db(&server)
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE user_id = ?1 AND conversation_id = ?2"
                ),
                [&alice.id, &id],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    assert_eq!(linked("action_items"), 1);
    assert_eq!(linked("memories"), 1);

    // The same items, through their own routes.
    let items = server
        .get(
            &format!("/v1/dev/user/action-items?conversation_id={id}"),
            &alice.key,
        )
        .await;
    assert_eq!(items.body.as_array().unwrap().len(), 1, "{items:?}");
    assert_eq!(items.body[0]["conversation_id"], id.as_str());
    let memories = server.get("/v1/dev/user/memories", &alice.key).await;
    let extracted: Vec<&Value> = memories
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["conversation_id"] == id.as_str())
        .collect();
    assert_eq!(extracted.len(), 1, "{memories:?}");
    assert_eq!(extracted[0]["manually_added"], false);
    assert_eq!(extracted[0]["reviewed"], false);
    assert_eq!(extracted[0]["user_review"], Value::Null);
    assert!(extracted[0]["scoring"].as_str().unwrap().starts_with("00_"));
}

async fn structured_action_items_are_the_current_ones(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let id = create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    let path = conversation_path(&id);
    let item_id = server.get(&path, &alice.key).await.body["structured"]["action_items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let item_path = format!("/v1/dev/user/action-items/{item_id}");
    let patched = server
        .patch(
            &item_path,
            &alice.key,
            json!({"description": "Call Dr. Lee", "completed": true}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    let items = server.get(&path, &alice.key).await.body["structured"]["action_items"].clone();
    assert_eq!(items[0]["description"], "Call Dr. Lee");
    assert_eq!(items[0]["completed"], true);
    assert_eq!(server.delete(&item_path, &alice.key).await.status, 200);
    let listed = server.get(TEXT_PATH, &alice.key).await.body;
    assert_eq!(listed[0]["structured"]["action_items"], json!([]));
}

#[tokio::test]
async fn a_repeated_action_item_is_not_extracted_twice() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    let second = create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    assert_eq!(action_item_count(&server, &alice), 1);
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM memories WHERE user_id = ?1",
            &alice.id
        ),
        1
    );
    let c = server
        .get(&conversation_path(&second), &alice.key)
        .await
        .body;
    assert_eq!(c["structured"]["action_items"], json!([]));
}

const MIC_CHECK: &str = "Testing, testing, one two three.";

async fn a_discarded_conversation_keeps_nothing_and_is_hidden_from_lists(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let reply = server
        .post(
            SEGMENTS_PATH,
            &alice.key,
            json!({"transcript_segments": segments(&[(MIC_CHECK, false)])}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["discarded"], true);
    let id = reply.body["id"].as_str().unwrap();
    let c = server.get(&conversation_path(id), &alice.key).await.body;
    assert_eq!(c["discarded"], true);
    assert_eq!(c["structured"]["title"], "");
    assert_eq!(c["structured"]["overview"], "");
    assert_eq!(c["structured"]["category"], "other");
    assert!(c["folder_id"].is_null() && c["folder_name"].is_null());
    assert_eq!(server.get(TEXT_PATH, &alice.key).await.body, json!([]));
    assert_eq!(
        server.get("/v1/dev/user/folders", &alice.key).await.body,
        json!([])
    );
}

async fn restoring_a_discarded_conversation_processes_it_again(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let id = create_ok(
        &server,
        &alice,
        SEGMENTS_PATH,
        json!({"transcript_segments": segments(&[(MIC_CHECK, false)])}),
    )
    .await;
    let restored = server
        .patch(
            &conversation_path(&id),
            &alice.key,
            json!({"discarded": false}),
        )
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    let c = &restored.body;
    assert_eq!(c["discarded"], false);
    assert!(
        !c["structured"]["title"].as_str().unwrap().is_empty(),
        "{c}"
    );
    assert_eq!(c["folder_name"], "Personal");
    assert_eq!(
        server
            .get(TEXT_PATH, &alice.key)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Discarding keeps the structure; restoring again files it without processing.
    let discarded = server
        .patch(
            &conversation_path(&id),
            &alice.key,
            json!({"discarded": true}),
        )
        .await;
    assert_eq!(discarded.body["discarded"], true);
    assert!(discarded.body["folder_id"].is_null());
    assert_eq!(
        discarded.body["structured"]["title"],
        c["structured"]["title"]
    );
    let again = server
        .patch(
            &conversation_path(&id),
            &alice.key,
            json!({"discarded": false, "title": "  Sound Check  "}),
        )
        .await;
    assert_eq!(again.body["structured"]["title"], "Sound Check");
    assert_eq!(again.body["folder_id"], c["folder_id"]);
}

async fn patch_validates_its_fields(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let id = create_ok(&server, &alice, TEXT_PATH, json!({"text": DENTIST_TEXT})).await;
    let path = conversation_path(&id);
    let cases = [
        (
            json!({}),
            "At least one field (title or discarded) must be provided",
        ),
        (
            json!({"other": 1}),
            "At least one field (title or discarded) must be provided",
        ),
        (
            json!({"title": "   "}),
            "Validation error: title cannot be empty",
        ),
        (
            json!({"title": "t".repeat(501)}),
            "Validation error: title must be at most 500 characters",
        ),
        (
            json!({"title": null}),
            "Validation error: title must be a string",
        ),
        (
            json!({"discarded": null}),
            "Validation error: discarded must be a boolean",
        ),
        (
            json!({"discarded": "yes"}),
            "Validation error: discarded must be a boolean",
        ),
    ];
    for (body, detail) in cases {
        server
            .patch(&path, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
    let renamed = server
        .patch(&path, &alice.key, json!({"title": " Crown Follow-up "}))
        .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["structured"]["title"], "Crown Follow-up");
    assert_eq!(renamed.body["structured"]["category"], "health");
    server
        .patch(
            &conversation_path("0190c0de-0000-7000-8000-000000000009"),
            &alice.key,
            json!({"title": "x"}),
        )
        .await
        .assert_error(404, "Conversation not found");
}

async fn create_at(server: &TestServer, user: &TestUser, text: &str, started_at: &str) -> String {
    create_ok(
        server,
        user,
        TEXT_PATH,
        json!({"text": text, "started_at": started_at}),
    )
    .await
}

fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn lists_filter_by_date_category_and_folder_newest_first(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let health = create_at(&server, &alice, DENTIST_TEXT, "2025-05-01T08:00:00Z").await;
    let work = create_at(
        &server,
        &alice,
        "The quarterly budget review with the finance team covered revenue, invoices and the investor pitch.",
        "2025-05-02T23:59:59Z",
    )
    .await;
    let late = create_at(&server, &alice, DENTIST_TEXT, "2025-05-03T00:00:00Z").await;

    let get = |query: String| {
        let server = &server;
        let key = alice.key.clone();
        async move { server.get(&format!("{TEXT_PATH}{query}"), &key).await }
    };
    assert_eq!(
        ids(&get(String::new()).await),
        [late.as_str(), work.as_str(), health.as_str()]
    );
    assert_eq!(
        ids(&get("?start_date=2025-05-02&end_date=2025-05-02".into()).await),
        [work.as_str()]
    );
    assert_eq!(
        ids(&get("?start_date=2025-05-01T08:00:00Z&end_date=2025-05-02T23:59:59Z".into()).await),
        [work.as_str(), health.as_str()]
    );
    assert_eq!(
        ids(&get("?start_date=2025-05-04".into()).await),
        Vec::<&str>::new()
    );
    assert_eq!(
        ids(&get("?start_date=2025-05-03&end_date=2025-05-01".into()).await),
        Vec::<&str>::new()
    );
    get("?start_date=yesterday".into()).await.assert_error(
        422,
        "Validation error: start_date must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
    );

    let work_category = server.get(&conversation_path(&work), &alice.key).await.body["structured"]
        ["category"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(work_category, "health");
    assert_eq!(
        ids(&get("?categories=health".into()).await),
        [late.as_str(), health.as_str()]
    );
    assert_eq!(
        ids(&get(format!("?categories=health,{work_category}")).await),
        [late.as_str(), work.as_str(), health.as_str()]
    );
    get("?categories=health,cooking".into())
        .await
        .assert_error(400, "Invalid category: cooking");

    let folder_id = server
        .get(&conversation_path(&health), &alice.key)
        .await
        .body["folder_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ids(&get(format!("?folder_id={folder_id}")).await),
        [late.as_str(), health.as_str()]
    );
    assert_eq!(
        ids(&get("?folder_id=unknown".into()).await),
        Vec::<&str>::new()
    );

    assert_eq!(ids(&get("?limit=1&offset=1".into()).await), [work.as_str()]);
    assert_eq!(
        ids(&get("?limit=-5&offset=-3".into()).await),
        [late.as_str()]
    );
    get("?limit=ten".into())
        .await
        .assert_error(422, "Validation error: limit must be an integer");
    get("?include_transcript=maybe".into()).await.assert_error(
        422,
        "Validation error: include_transcript must be a boolean (true or false)",
    );
    let listed = get("?include_transcript=false".into()).await;
    assert!(listed.body[0]["transcript_segments"].is_null());
    assert_eq!(
        listed.body[0]["structured"]["action_items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        listed.body[2]["structured"]["action_items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn pages_with_transcripts_are_capped_at_25(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    for i in 0..27 {
        let body = json!({"transcript_segments": segments(&[(&format!("Conversation number {i} about the garden shed roof."), true)]),
                          "started_at": format!("2025-04-01T10:{i:02}:00Z")});
        create_ok(&server, &alice, SEGMENTS_PATH, body).await;
    }
    let plain = server
        .get(&format!("{TEXT_PATH}?limit=1000"), &alice.key)
        .await;
    assert_eq!(ids(&plain).len(), 27);
    let with = server
        .get(
            &format!("{TEXT_PATH}?limit=1000&include_transcript=true"),
            &alice.key,
        )
        .await;
    assert_eq!(ids(&with).len(), 25);
    let first = &with.body[0];
    assert_eq!(first["started_at"], "2025-04-01T10:26:00Z");
    assert_eq!(
        first["transcript_segments"][0]["text"],
        "Conversation number 26 about the garden shed roof."
    );
    assert_eq!(first["transcript_segments"].as_array().unwrap().len(), 1);
    assert_eq!(ids(&server.get(TEXT_PATH, &alice.key).await).len(), 25);
}

async fn starred_is_set_by_patch_and_filters_lists(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let first = create_ok(
        &server,
        &alice,
        TEXT_PATH,
        json!({"text": "Planning the garden fence repair with Sam."}),
    )
    .await;
    let second = create_ok(
        &server,
        &alice,
        TEXT_PATH,
        json!({"text": "Budget review for the kitchen renovation."}),
    )
    .await;
    let c = server
        .get(&conversation_path(&first), &alice.key)
        .await
        .body;
    assert_eq!(c["starred"], false);

    let reply = server
        .patch(
            &conversation_path(&first),
            &alice.key,
            json!({"starred": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["starred"], true);
    assert_eq!(reply.body["discarded"], false);

    let ids = |reply: &Reply| -> Vec<String> {
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let starred = server
        .get(&format!("{TEXT_PATH}?starred=true"), &alice.key)
        .await;
    assert_eq!(ids(&starred), vec![first.clone()]);
    let unstarred = server
        .get(&format!("{TEXT_PATH}?starred=false"), &alice.key)
        .await;
    assert_eq!(ids(&unstarred), vec![second.clone()]);
    let both = server.get(TEXT_PATH, &alice.key).await;
    assert_eq!(ids(&both), vec![second.clone(), first.clone()]);

    server
        .get(&format!("{TEXT_PATH}?starred=maybe"), &alice.key)
        .await
        .assert_error(422, "Validation error: starred must be true or false");
    server
        .get(&format!("{TEXT_PATH}?folder_id="), &alice.key)
        .await
        .assert_error(422, "Validation error: folder_id cannot be empty");
    server
        .patch(
            &conversation_path(&first),
            &alice.key,
            json!({"starred": null}),
        )
        .await
        .assert_error(422, "Validation error: starred must be a boolean");
    server
        .patch(&conversation_path(&first), &alice.key, json!({}))
        .await
        .assert_error(
            422,
            "At least one field (title or discarded) must be provided",
        );

    // Starring is independent of discarding: a discarded starred conversation keeps its star.
    let reply = server
        .patch(
            &conversation_path(&first),
            &alice.key,
            json!({"discarded": true}),
        )
        .await;
    assert_eq!(reply.body["starred"], true);
    let starred = server
        .get(&format!("{TEXT_PATH}?starred=true"), &alice.key)
        .await;
    assert!(ids(&starred).is_empty());
    let reply = server
        .patch(
            &conversation_path(&first),
            &alice.key,
            json!({"discarded": false, "starred": false}),
        )
        .await;
    assert_eq!(
        (
            reply.body["starred"].clone(),
            reply.body["discarded"].clone()
        ),
        (json!(false), json!(false))
    );
}

crate::backend_tests!(
    starred_is_set_by_patch_and_filters_lists,
    text_times_language_and_geolocation_are_stored,
    text_validation_errors_have_exact_details,
    segment_validation_errors_have_exact_details,
    segment_conversations_get_their_defaults,
    transcript_segments_name_their_speakers,
    each_route_needs_its_scope,
    structured_action_items_are_the_current_ones,
    a_discarded_conversation_keeps_nothing_and_is_hidden_from_lists,
    restoring_a_discarded_conversation_processes_it_again,
    patch_validates_its_fields,
    lists_filter_by_date_category_and_folder_newest_first,
    pages_with_transcripts_are_capped_at_25,
);
