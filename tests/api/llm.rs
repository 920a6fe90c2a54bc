//! The llm processing backend against a fake OpenAI-compatible server: what it sends, how the
//! model's answers are stored, and how each kind of failure falls back to the offline result.
//! Run twice: over HTTP here, and over HTTPS (tests/llm_https.rs) with the fake's CA trusted
//! through `OMI_EXTRA_CA_FILE`.

use std::time::{Duration, Instant};

use omi_server::config::Settings;
use omi_server::domain::credentials::Secret;
use omi_server::processing::llm::prompts::Step;
use omi_server::state;
use serde_json::{Value, json};

use crate::common::{TestServer, TestUser, test_settings};
use crate::fake_llm::{FakeLlm, FakeReply, Transport};

const TEXT_PATH: &str = "/v1/dev/user/conversations";
const SEGMENTS_PATH: &str = "/v1/dev/user/conversations/from-segments";
const NOTE: &str = "I need to call the dentist tomorrow about my crown. \
     I'm allergic to penicillin, so the clinic should know before the appointment.";
/// A start in the future keeps every relative date resolvable whatever day the test runs.
const STARTED_AT: &str = "2030-01-15T10:00:00Z";
const MODEL: &str = "test-model";

fn good_structure() -> Value {
    json!({"title": "Dentist Crown Follow-Up",
           "overview": "Alice has to call the dentist about her crown and mention her penicillin allergy.",
           "emoji": "🦷", "category": "health", "events": []})
}

fn good_items() -> Value {
    json!({"action_items": [{"description": "Call the dentist about the crown",
                             "due_phrase": "tomorrow", "due_at": null}]})
}

fn good_memories() -> Value {
    json!({"memories": [{"content": "Alice is allergic to penicillin", "category": "system"}]})
}

fn good_answers() -> Vec<(Step, Value)> {
    vec![
        (Step::Structure, good_structure()),
        (Step::ActionItems, good_items()),
        (Step::Memories, good_memories()),
    ]
}

async fn llm_server(fake: &FakeLlm, configure: impl FnOnce(&mut Settings)) -> TestServer {
    let base_url = fake.base_url.clone();
    let ca_file = fake.ca_file();
    TestServer::start_with(move |s| {
        s.llm_base_url = Some(base_url);
        s.extra_ca_file = ca_file;
        s.llm_model = Some(MODEL.to_string());
        s.llm_timeout_ms = 10_000;
        configure(s);
    })
    .await
}

fn note() -> Value {
    json!({"text": NOTE, "started_at": STARTED_AT})
}

/// Creates a conversation and returns it as stored.
async fn create(server: &TestServer, user: &TestUser, path: &str, body: Value) -> Value {
    let reply = server.post(path, &user.key, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap();
    server
        .get(&format!("{TEXT_PATH}/{id}"), &user.key)
        .await
        .body
}

/// The stored per-part provenance of a conversation.
fn parts(server: &TestServer, conversation: &Value) -> Value {
    let text: String = rusqlite::Connection::open(server.db_path())
        .unwrap()
        .query_row(
            "SELECT processing_parts FROM conversations WHERE id = ?1",
            [conversation["id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn parts_of(structure: &str, action_items: &str, memories: &str, discard: &str) -> Value {
    json!({"structure": structure, "action_items": action_items, "memories": memories, "discard": discard})
}

async fn memory_contents(server: &TestServer, user: &TestUser) -> Vec<String> {
    let reply = server.get("/v1/dev/user/memories", &user.key).await;
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

/// What processing decided, without ids and times of storage.
fn essence(c: &Value) -> Value {
    let s = &c["structured"];
    let items: Vec<Value> = s["action_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!([i["description"], i["due_at"]]))
        .collect();
    json!({"title": s["title"], "overview": s["overview"], "emoji": s["emoji"],
           "category": s["category"], "events": s["events"], "action_items": items,
           "discarded": c["discarded"]})
}

/// The same conversation processed by an offline-only server.
async fn offline_essence(path: &str, body: Value) -> Value {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    essence(&create(&server, &alice, path, body).await)
}

#[tokio::test]
async fn a_good_answer_is_stored_as_the_model_gave_it() {
    let fake = FakeLlm::answering_over(crate::LLM_TRANSPORT, good_answers()).await;
    let server = llm_server(&fake, |s| s.llm_api_key = Some(Secret::new("sk-test"))).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;

    assert_eq!(c["processed_by"], "llm");
    assert_eq!(c["structured"]["title"], "Dentist Crown Follow-Up");
    assert_eq!(c["structured"]["overview"], good_structure()["overview"]);
    assert_eq!(c["structured"]["emoji"], "🦷");
    assert_eq!(c["structured"]["category"], "health");
    assert_eq!(c["folder_name"], "Personal");
    let items = c["structured"]["action_items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{c}");
    assert_eq!(items[0]["description"], "Call the dentist about the crown");
    assert_eq!(items[0]["due_at"], "2030-01-16T23:59:00Z");
    assert_eq!(
        memory_contents(&server, &alice).await,
        vec!["Alice is allergic to penicillin"]
    );
    assert_eq!(parts(&server, &c), parts_of("llm", "llm", "llm", "rules"));

    // A note is never discarded by rule, so the model is not asked about it.
    let received = fake.received();
    assert_eq!(received.len(), 3);
    assert!(fake.received_for(Step::Discard).is_empty());
    for request in &received {
        assert_eq!(request.body["model"], MODEL);
        assert_eq!(request.authorization.as_deref(), Some("Bearer sk-test"));
        assert_eq!(request.response_format_type(), Some("json_schema"));
        let step = request.step();
        let format = &request.body["response_format"]["json_schema"];
        assert_eq!(format["name"], step.schema_name());
        assert_eq!(format["schema"], step.schema());
        assert!(request.user().contains(NOTE), "{}", request.user());
        assert!(request.user().contains(STARTED_AT));
        assert!(request.user().contains("alice"));
    }
}

#[tokio::test]
async fn no_key_sends_no_authorization_header() {
    let fake = FakeLlm::answering_over(crate::LLM_TRANSPORT, good_answers()).await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    create(&server, &alice, TEXT_PATH, note()).await;
    assert!(fake.received().iter().all(|r| r.authorization.is_none()));
}

#[tokio::test]
async fn fenced_json_and_json_inside_prose_are_read() {
    let wrapped: [fn(&Value) -> String; 2] = [
        |v: &Value| format!("```json\n{v:#}\n```"),
        |v: &Value| {
            format!("Here is the JSON you asked for:\n{v}\nLet me know if {{you}} need more.")
        },
    ];
    for wrap in wrapped {
        let answers = good_answers();
        let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, move |request| {
            let (_, value) = answers.iter().find(|(s, _)| *s == request.step()).unwrap();
            FakeReply::Answer(wrap(value))
        })
        .await;
        let server = llm_server(&fake, |_| {}).await;
        let alice = server.user("alice").await;
        let c = create(&server, &alice, TEXT_PATH, note()).await;
        assert_eq!(c["processed_by"], "llm", "{c}");
        assert_eq!(c["structured"]["title"], "Dentist Crown Follow-Up");
        assert_eq!(
            c["structured"]["action_items"][0]["due_at"],
            "2030-01-16T23:59:00Z"
        );
    }
}

#[tokio::test]
async fn an_unknown_category_becomes_other() {
    let mut structure = good_structure();
    structure["category"] = json!("dentistry");
    let fake = FakeLlm::answering_over(
        crate::LLM_TRANSPORT,
        vec![
            (Step::Structure, structure),
            (Step::ActionItems, good_items()),
            (Step::Memories, good_memories()),
        ],
    )
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["structured"]["category"], "other");
    assert_eq!(c["processed_by"], "llm");
}

#[tokio::test]
async fn a_structure_missing_its_overview_falls_back_alone() {
    let fake = FakeLlm::answering_over(
        crate::LLM_TRANSPORT,
        vec![
            (
                Step::Structure,
                json!({"title": "Only a Title", "category": "health"}),
            ),
            (Step::ActionItems, good_items()),
            (
                Step::Memories,
                json!({"memories": [{"content": "Alice is allergic to penicillin"}]}),
            ),
        ],
    )
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    let offline = offline_essence(TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "llm+offline");
    assert_eq!(
        parts(&server, &c),
        parts_of("offline", "llm", "llm", "rules")
    );
    assert_eq!(c["structured"]["title"], offline["title"]);
    assert_eq!(c["structured"]["overview"], offline["overview"]);
    assert_eq!(
        c["structured"]["action_items"][0]["description"],
        "Call the dentist about the crown"
    );
    // A memory without a category gets the offline rule's.
    let category: String = rusqlite::Connection::open(server.db_path())
        .unwrap()
        .query_row("SELECT category FROM memories", [], |r| r.get(0))
        .unwrap();
    assert_eq!(category, "system");
}

#[tokio::test]
async fn past_and_naive_due_dates_are_dropped_and_zoned_ones_converted() {
    let items = json!({"action_items": [
        {"description": "Renew the passport", "due_phrase": null, "due_at": "2020-01-01T10:00:00Z"},
        {"description": "Book the flights", "due_phrase": null, "due_at": "2030-02-01T10:00:00"},
        {"description": "Pay the rent", "due_phrase": null, "due_at": "2030-02-01T10:00:00+01:00"},
        {"description": "Email the landlord", "due_phrase": "by friday", "due_at": "2030-01-16T12:00:00Z"}]});
    let fake = FakeLlm::answering_over(
        crate::LLM_TRANSPORT,
        vec![
            (Step::Structure, good_structure()),
            (Step::ActionItems, items),
            (Step::Memories, json!({"memories": []})),
        ],
    )
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    let due: Vec<(String, Value)> = c["structured"]["action_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["description"].as_str().unwrap().to_string(),
                i["due_at"].clone(),
            )
        })
        .collect();
    assert_eq!(
        due,
        vec![
            ("Renew the passport".to_string(), Value::Null),
            ("Book the flights".to_string(), Value::Null),
            ("Pay the rent".to_string(), json!("2030-02-01T09:00:00Z")),
            // The words win over the model's arithmetic: 2030-01-15 is a Tuesday.
            (
                "Email the landlord".to_string(),
                json!("2030-01-18T23:59:00Z")
            ),
        ]
    );
    assert_eq!(c["processed_by"], "llm");
    assert!(memory_contents(&server, &alice).await.is_empty());
}

#[tokio::test]
async fn a_server_error_on_every_step_gives_the_offline_result() {
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, |_| FakeReply::Status(500)).await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "offline");
    assert_eq!(
        parts(&server, &c),
        parts_of("offline", "offline", "offline", "rules")
    );
    assert_eq!(essence(&c), offline_essence(TEXT_PATH, note()).await);
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn a_rate_limited_step_falls_back_and_the_rest_is_the_models() {
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, |request| match request.step() {
        Step::Memories => FakeReply::Status(429),
        Step::Structure => FakeReply::json(good_structure()),
        _ => FakeReply::json(good_items()),
    })
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "llm+offline");
    assert_eq!(
        parts(&server, &c),
        parts_of("llm", "llm", "offline", "rules")
    );
    assert_eq!(c["structured"]["title"], "Dentist Crown Follow-Up");
    // The offline rules' memory, in their wording.
    assert_eq!(
        memory_contents(&server, &alice).await,
        vec!["alice is allergic to penicillin"]
    );
}

#[tokio::test]
async fn a_hung_model_costs_one_deadline_then_the_offline_result() {
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, |_| {
        FakeReply::Slow(
            Duration::from_secs(30),
            Box::new(FakeReply::json(good_structure())),
        )
    })
    .await;
    let server = llm_server(&fake, |s| s.llm_timeout_ms = 300).await;
    let alice = server.user("alice").await;
    let started = Instant::now();
    let reply = server.post(TEXT_PATH, &alice.key, note()).await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200, "{reply:?}");
    // The deadline plus a wide margin for the offline rules on a busy machine, far below the
    // 30 s the model would take.
    assert!(elapsed < Duration::from_millis(300 + 5_000), "{elapsed:?}");
    let id = reply.body["id"].as_str().unwrap();
    let c = server
        .get(&format!("{TEXT_PATH}/{id}"), &alice.key)
        .await
        .body;
    assert_eq!(c["processed_by"], "offline");
    assert_eq!(essence(&c), offline_essence(TEXT_PATH, note()).await);
}

#[tokio::test]
async fn a_refused_connection_gives_the_offline_result_and_readiness_stays() {
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = unused.local_addr().unwrap();
    drop(unused);
    let server = TestServer::start_with(|s| {
        let scheme = match crate::LLM_TRANSPORT {
            Transport::Http => "http",
            Transport::Https => "https",
        };
        s.llm_base_url = Some(format!("{scheme}://{address}/v1"));
        s.llm_model = Some(MODEL.to_string());
    })
    .await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "offline");
    assert_eq!(essence(&c), offline_essence(TEXT_PATH, note()).await);
    let ready = server
        .client
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
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
    json!({"transcript_segments": list, "started_at": STARTED_AT})
}

#[tokio::test]
async fn the_model_decides_only_the_cases_no_discard_rule_settles() {
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, |request| match request.step() {
        Step::Discard if request.user().contains("weather") => {
            FakeReply::json(json!({"discard": true, "reason": "idle chatter"}))
        }
        Step::Discard => FakeReply::json(json!({"discard": false, "reason": "a plan"})),
        Step::Structure => FakeReply::json(good_structure()),
        Step::ActionItems => FakeReply::json(json!({"action_items": []})),
        Step::Memories => FakeReply::json(json!({"memories": []})),
        Step::DaySummary | Step::Profile => FakeReply::Status(500),
    })
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;

    // Backchannel only: the rules discard it without asking.
    let c = create(
        &server,
        &alice,
        SEGMENTS_PATH,
        segments(&[("Mm-hmm. Yeah. Okay, bye.", true)]),
    )
    .await;
    assert_eq!(c["discarded"], true);
    assert_eq!(c["processed_by"], "offline");
    assert!(fake.received().is_empty());

    // No rule decides: the model drops it, and nothing else is asked.
    let chatter = segments(&[("Nice weather again.", true), ("Sure is.", false)]);
    let c = create(&server, &alice, SEGMENTS_PATH, chatter).await;
    assert_eq!(c["discarded"], true);
    assert_eq!(c["processed_by"], "llm");
    assert_eq!(c["structured"]["title"], "");
    assert_eq!(fake.received().len(), 1);
    assert!(
        fake.received()[0]
            .user()
            .contains("alice (the user): Nice weather again.")
    );

    // No rule decides: the model keeps it, and the other steps follow.
    let plan = segments(&[
        ("The dentist moved my appointment.", true),
        ("Oh, to when?", false),
    ]);
    let c = create(&server, &alice, SEGMENTS_PATH, plan).await;
    assert_eq!(c["discarded"], false);
    assert_eq!(c["processed_by"], "llm");
    assert_eq!(parts(&server, &c), parts_of("llm", "llm", "llm", "llm"));
    assert_eq!(fake.received_for(Step::Discard).len(), 2);
    assert_eq!(fake.received().len(), 5);
}

#[tokio::test]
async fn a_server_without_json_schema_is_asked_in_json_mode_from_then_on() {
    let answers = good_answers();
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, move |request| {
        if request.response_format_type() == Some("json_schema") {
            return FakeReply::Status(400);
        }
        let (_, value) = answers.iter().find(|(s, _)| *s == request.step()).unwrap();
        FakeReply::json(value.clone())
    })
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "llm");
    let first = fake.received().len();
    let json_mode = fake
        .received()
        .into_iter()
        .find(|r| r.response_format_type() == Some("json_object"))
        .unwrap();
    assert!(json_mode.system().contains("JSON Schema"));

    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "llm");
    let later = &fake.received()[first..];
    assert_eq!(later.len(), 3);
    assert!(
        later
            .iter()
            .all(|r| r.response_format_type() == Some("json_object"))
    );
}

#[tokio::test]
async fn a_server_without_any_response_format_gets_instructions_and_prose_is_parsed() {
    let answers = good_answers();
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, move |request| {
        if request.body.get("response_format").is_some() {
            return FakeReply::Status(400);
        }
        let (_, value) = answers.iter().find(|(s, _)| *s == request.step()).unwrap();
        FakeReply::Answer(format!("Sure! {value}"))
    })
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let c = create(&server, &alice, TEXT_PATH, note()).await;
    assert_eq!(c["processed_by"], "llm");
    assert_eq!(c["structured"]["title"], "Dentist Crown Follow-Up");
}

#[tokio::test]
async fn requests_in_flight_never_exceed_the_concurrency_setting() {
    let answers = good_answers();
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, move |request| {
        let (_, value) = answers.iter().find(|(s, _)| *s == request.step()).unwrap();
        FakeReply::Slow(
            Duration::from_millis(30),
            Box::new(FakeReply::json(value.clone())),
        )
    })
    .await;
    let server = llm_server(&fake, |s| s.llm_max_concurrency = 1).await;
    let alice = server.user("alice").await;
    let creations = (0..3).map(|_| create(&server, &alice, TEXT_PATH, note()));
    let created = futures::future::join_all(creations).await;
    assert!(
        created.iter().all(|c| c["processed_by"] == "llm"),
        "{created:?}"
    );
    assert_eq!(fake.received().len(), 9);
    assert_eq!(fake.max_in_flight(), 1);
}

#[tokio::test]
async fn the_llm_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.llm_base_url = Some("http://127.0.0.1:11434/v1".into());
    let error = state::build_state(settings.clone()).await.err().unwrap();
    assert!(error.to_string().contains("OMI_LLM_MODEL"), "{error}");
    settings.llm_model = Some(MODEL.into());
    settings.llm_base_url = Some("ftp://models".into());
    let error = state::build_state(settings.clone()).await.err().unwrap();
    assert!(error.to_string().contains("OMI_LLM_BASE_URL"), "{error}");
    settings.llm_base_url = Some("http://127.0.0.1:11434/v1".into());
    let state = state::build_state(settings).await.unwrap();
    assert_eq!(state.processor.name(), "llm");
}

/// The id inside the first `[id: ...]` of the day the model is shown.
fn first_listed_id(user_message: &str) -> String {
    user_message
        .split("[id: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_model_writes_the_day_summary_and_profile_citing_only_real_conversations() {
    let fake = FakeLlm::start_over(crate::LLM_TRANSPORT, |request| match request.step() {
        Step::DaySummary => FakeReply::json(json!({
            "headline": "Dentist Day",
            "overview": "The user sorted out the crown.",
            "day_emoji": "🦷",
            "highlights": [{"topic": "Health", "emoji": "🦷", "summary": "The crown.",
                            "conversation_ids": [first_listed_id(request.user()), "invented"]}],
            "unresolved_questions": [],
            "decisions_made": [{"decision": "Call the dentist.", "conversation_id": "invented"}],
            "knowledge_nuggets": []
        })),
        Step::Profile => FakeReply::json(json!({"profile": "Alex has a crown that needs care."})),
        // Conversation processing falls back to the offline rules.
        _ => FakeReply::Status(500),
    })
    .await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let conversation = create(&server, &alice, TEXT_PATH, note()).await;
    let day = chrono::NaiveDate::from_ymd_opt(2030, 1, 15).unwrap();

    let generated = omi_server::service::daily_summaries::generate_day(
        &*server.state.store,
        &*server.state.processor,
        &alice.id,
        chrono_tz::Tz::UTC,
        day,
        omi_server::domain::time::now(),
    )
    .await
    .unwrap();
    let omi_server::service::daily_summaries::Generated::Created(summary) = generated else {
        panic!("a summary is made: {generated:?}");
    };
    assert_eq!(summary.headline, "Dentist Day");
    assert_eq!(summary.day_emoji, "🦷");
    assert_eq!(
        summary.highlights[0].conversation_ids,
        vec![conversation["id"].as_str().unwrap().to_string()],
        "the invented id is dropped"
    );
    assert_eq!(summary.decisions_made[0].conversation_id, None);
    assert_eq!(summary.stats.total_conversations, 1, "counts stay exact");
    let listed = server.get("/v1/dev/user/daily-summaries", &alice.key).await;
    assert_eq!(listed.body["summaries"][0]["headline"], "Dentist Day");

    let memory = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alex has a crown on a molar"}),
        )
        .await;
    assert_eq!(memory.status, 200, "{memory:?}");
    let profile = server.get("/v1/dev/user/profile", &alice.key).await;
    assert_eq!(
        profile.body["profile_text"],
        "Alex has a crown that needs care."
    );
    let asked = fake.received_for(Step::Profile);
    assert_eq!(asked.len(), 1);
    assert!(asked[0].user().contains("- Alex has a crown on a molar"));
}

#[tokio::test]
async fn a_failing_model_leaves_the_offline_day_summary_and_profile() {
    let fake = FakeLlm::answering_over(crate::LLM_TRANSPORT, vec![]).await;
    let server = llm_server(&fake, |_| {}).await;
    let alice = server.user("alice").await;
    let conversation = create(&server, &alice, TEXT_PATH, note()).await;
    let generated = omi_server::service::daily_summaries::generate_day(
        &*server.state.store,
        &*server.state.processor,
        &alice.id,
        chrono_tz::Tz::UTC,
        chrono::NaiveDate::from_ymd_opt(2030, 1, 15).unwrap(),
        omi_server::domain::time::now(),
    )
    .await
    .unwrap();
    let omi_server::service::daily_summaries::Generated::Created(summary) = generated else {
        panic!("a summary is made: {generated:?}");
    };
    assert_eq!(summary.headline, conversation["structured"]["title"]);
    assert!(!fake.received_for(Step::DaySummary).is_empty());

    server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alex has a crown on a molar"}),
        )
        .await;
    let profile = server.get("/v1/dev/user/profile", &alice.key).await;
    assert!(
        profile.body["profile_text"]
            .as_str()
            .unwrap()
            .contains("Alex has a crown on a molar"),
        "{profile:?}"
    );
}
