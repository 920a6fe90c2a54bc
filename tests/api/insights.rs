//! Daily summaries, people and profile (API.md §13.C, §13.D), on both backends.

use std::process::Command;

use chrono::NaiveDate;
use omi_server::domain::time::parse_datetime;
use omi_server::processing::OfflineProcessor;
use omi_server::service::daily_summaries::{self, Generated};
use serde_json::{Value, json};

use crate::common::{Backend, TestServer, TestUser};

const SUMMARIES: &str = "/v1/dev/user/daily-summaries";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// A text conversation of `minutes` starting at `start`.
async fn conversation(
    server: &TestServer,
    user: &TestUser,
    text: &str,
    start: &str,
    minutes: i64,
) -> String {
    let started = parse_datetime(start).unwrap();
    let finished = started + chrono::Duration::minutes(minutes);
    let reply = server
        .post(
            "/v1/dev/user/conversations",
            &user.key,
            json!({"text": text, "started_at": start,
                   "finished_at": omi_server::domain::time::format(&finished),
                   "geolocation": {"latitude": 40.7, "longitude": -74.0, "address": "New York"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

const MEETING: &str = "We reviewed the quarterly budget for the marketing team and agreed to \
     cut the events line. I need to send the revised budget to Sam by Friday.";
const DINNER: &str = "Dinner plans with Ana and Leo at the Italian place near the park. We talked \
     about their trip to Lisbon and the best pastries there.";

async fn generate(server: &TestServer, user: &TestUser, date: &str, now: &str) -> Generated {
    let store = &*server.state.store;
    let tz = daily_summaries::user_timezone(store, &user.id)
        .await
        .unwrap();
    daily_summaries::generate_day(
        store,
        &OfflineProcessor,
        &user.id,
        tz,
        day(date),
        parse_datetime(now).unwrap(),
    )
    .await
    .unwrap()
}

async fn summaries_of(server: &TestServer, user: &TestUser, query: &str) -> Vec<Value> {
    let reply = server.get(&format!("{SUMMARIES}{query}"), &user.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["summaries"].as_array().unwrap().clone()
}

async fn a_day_is_counted_in_the_users_timezone_across_dst(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    assert!(
        server
            .state
            .store
            .set_user_timezone(&alice.id, "America/New_York")
            .await
            .unwrap()
    );
    // 2026-03-08 is 23 hours long in New York: 05:00Z to 04:00Z the next day.
    let inside_late = conversation(&server, &alice, MEETING, "2026-03-09T03:30:00Z", 30).await;
    let inside_early = conversation(&server, &alice, DINNER, "2026-03-08T05:00:00Z", 45).await;
    conversation(&server, &alice, DINNER, "2026-03-08T04:59:00Z", 10).await; // the 7th locally
    conversation(&server, &alice, MEETING, "2026-03-09T04:00:00Z", 10).await; // the 9th locally

    let Generated::Created(summary) =
        generate(&server, &alice, "2026-03-08", "2026-03-09T05:10:00Z").await
    else {
        panic!("a day with conversations gets a summary")
    };
    assert_eq!(summary.stats.total_conversations, 2);
    assert_eq!(summary.stats.total_duration_minutes, 75);
    assert_eq!(
        summary.stats.action_items_count as usize,
        summary.action_items.len()
    );
    let mut ids: Vec<String> = summary
        .highlights
        .iter()
        .flat_map(|h| h.conversation_ids.clone())
        .collect();
    ids.sort();
    let mut expected = vec![inside_late.clone(), inside_early.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(summary.locations.len(), 2);
    // 03:30Z on the 9th is 23:30 EDT... of the 8th: daylight time began at 02:00 local.
    assert!(
        summary
            .locations
            .iter()
            .any(|l| l.time.as_deref() == Some("23:30")),
        "{:?}",
        summary.locations
    );
    assert!(
        summary
            .locations
            .iter()
            .any(|l| l.time.as_deref() == Some("00:00"))
    );

    // Exactly once per (user, date).
    assert_eq!(
        generate(&server, &alice, "2026-03-08", "2026-03-09T06:00:00Z").await,
        Generated::Exists
    );

    let listed = summaries_of(&server, &alice, "").await;
    assert_eq!(listed.len(), 1);
    let item = &listed[0];
    assert_eq!(item["date"], "2026-03-08");
    assert_eq!(item["created_at"], "2026-03-09T05:10:00Z");
    for field in [
        "id",
        "headline",
        "overview",
        "day_emoji",
        "stats",
        "highlights",
        "action_items",
        "unresolved_questions",
        "decisions_made",
        "knowledge_nuggets",
        "locations",
    ] {
        assert!(item.get(field).is_some(), "{field} missing: {item}");
    }
    assert_eq!(item["unresolved_questions"], json!([]));
    assert_eq!(
        item["stats"],
        json!({"total_conversations": 2, "total_duration_minutes": 75,
               "action_items_count": summary.stats.action_items_count})
    );
    let id = item["id"].as_str().unwrap();
    let one = server.get(&format!("{SUMMARIES}/{id}"), &alice.key).await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.body, item);

    // Private to its owner.
    server
        .get(&format!("{SUMMARIES}/{id}"), &bob.key)
        .await
        .assert_error(404, "Daily summary not found");
    assert!(summaries_of(&server, &bob, "").await.is_empty());
    server
        .get(&format!("{SUMMARIES}/nope"), &alice.key)
        .await
        .assert_error(404, "Daily summary not found");
}

async fn no_summary_for_an_empty_or_all_discarded_day(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    assert_eq!(
        generate(&server, &alice, "2026-05-01", "2026-05-02T01:00:00Z").await,
        Generated::NoConversations
    );
    let id = conversation(&server, &alice, MEETING, "2026-05-01T10:00:00Z", 20).await;
    let reply = server
        .patch(
            &format!("/v1/dev/user/conversations/{id}"),
            &alice.key,
            json!({"discarded": true}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        generate(&server, &alice, "2026-05-01", "2026-05-02T01:00:00Z").await,
        Generated::NoConversations
    );
    assert!(summaries_of(&server, &alice, "").await.is_empty());
}

async fn list_filters_and_pages_by_date(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    for date in ["2026-04-01", "2026-04-02", "2026-04-03"] {
        conversation(&server, &alice, MEETING, &format!("{date}T10:00:00Z"), 20).await;
        assert!(matches!(
            generate(&server, &alice, date, &format!("{date}T23:59:00Z")).await,
            Generated::Created(_)
        ));
    }
    let dates = |list: Vec<Value>| -> Vec<String> {
        list.iter()
            .map(|s| s["date"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        dates(summaries_of(&server, &alice, "").await),
        ["2026-04-03", "2026-04-02", "2026-04-01"]
    );
    assert_eq!(
        dates(
            summaries_of(
                &server,
                &alice,
                "?start_date=2026-04-02&end_date=2026-04-02"
            )
            .await
        ),
        ["2026-04-02"]
    );
    assert_eq!(
        dates(summaries_of(&server, &alice, "?limit=1&offset=1").await),
        ["2026-04-02"]
    );
    assert_eq!(
        dates(summaries_of(&server, &alice, "?limit=0").await).len(),
        1,
        "clamped to 1"
    );
    assert!(
        summaries_of(
            &server,
            &alice,
            "?start_date=2026-04-03&end_date=2026-04-01"
        )
        .await
        .is_empty()
    );
    server
        .get(&format!("{SUMMARIES}?start_date=yesterday"), &alice.key)
        .await
        .assert_error(
            422,
            "Validation error: start_date must be a date (YYYY-MM-DD)",
        );
    server
        .get(&format!("{SUMMARIES}?end_date=2026-04-31"), &alice.key)
        .await
        .assert_error(
            422,
            "Validation error: end_date must be a date (YYYY-MM-DD)",
        );
    let memories_only = server.key_with(&alice, &["memories:read"]).await;
    let reply = server.get(SUMMARIES, &memories_only).await;
    assert_eq!(reply.status, 403, "{reply:?}");
}

async fn one_replica_runs_the_scheduler_and_each_day_is_made_once(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    assert!(
        server
            .state
            .store
            .set_user_timezone(&bob.id, "Asia/Tokyo")
            .await
            .unwrap()
    );
    conversation(&server, &alice, MEETING, "2026-06-10T12:00:00Z", 20).await;
    // 2026-06-10 in Tokyo is 2026-06-09T15:00Z .. 2026-06-10T15:00Z.
    conversation(&server, &bob, DINNER, "2026-06-09T16:00:00Z", 20).await;
    // Carol's only conversation is discarded: she gets nothing.
    let dropped = conversation(&server, &carol, MEETING, "2026-06-10T12:00:00Z", 20).await;
    server
        .patch(
            &format!("/v1/dev/user/conversations/{dropped}"),
            &carol.key,
            json!({"discarded": true}),
        )
        .await;

    // A second replica on the same database.
    let other = omi_server::store::open(&server.settings()).await.unwrap();
    let now = parse_datetime("2026-06-11T00:15:00Z").unwrap();
    // 00:15 UTC: the 10th is due for Alice; in Tokyo it is 09:15 on the 11th, the 10th is due too.
    let first = server.state.store.clone();
    let (a, b) = tokio::join!(
        daily_summaries::run_due(&*first, &OfflineProcessor, "replica-a", now),
        daily_summaries::run_due(&*other, &OfflineProcessor, "replica-b", now),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.ran != b.ran,
        "exactly one replica holds the lease: {a:?} {b:?}"
    );
    assert_eq!(a.created + b.created, 2);
    // The lease stays with its holder until it expires.
    let later = now + chrono::Duration::seconds(30);
    let loser = if a.ran { "replica-b" } else { "replica-a" };
    assert!(
        !daily_summaries::run_due(&*other, &OfflineProcessor, loser, later)
            .await
            .unwrap()
            .ran
    );
    let expired = now + daily_summaries::LEASE_DURATION + chrono::Duration::seconds(1);
    let taken_over = daily_summaries::run_due(&*other, &OfflineProcessor, loser, expired)
        .await
        .unwrap();
    assert!(taken_over.ran);
    assert_eq!(taken_over.created, 0, "at most once per (user, date)");

    for (user, expected) in [(&alice, 1), (&bob, 1), (&carol, 0)] {
        let list = summaries_of(&server, user, "").await;
        assert_eq!(list.len(), expected);
        if expected == 1 {
            assert_eq!(list[0]["date"], "2026-06-10");
        }
    }
    other.close().await.unwrap();
}

async fn a_restart_resumes_where_a_run_stopped(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    conversation(&server, &alice, MEETING, "2026-07-01T12:00:00Z", 20).await;
    conversation(&server, &bob, DINNER, "2026-07-01T13:00:00Z", 20).await;
    // A run that stopped after Alice: her summary exists, Bob's does not.
    let Generated::Created(alices) =
        generate(&server, &alice, "2026-07-01", "2026-07-02T00:11:00Z").await
    else {
        panic!("created")
    };
    let server = server.restart().await;
    let report = daily_summaries::run_due(
        &*server.state.store,
        &OfflineProcessor,
        "after-restart",
        parse_datetime("2026-07-02T00:20:00Z").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((report.ran, report.created), (true, 1));
    let list = summaries_of(&server, &alice, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], alices.id.as_str(), "untouched");
    assert_eq!(summaries_of(&server, &bob, "").await.len(), 1);
}

async fn days_missed_while_no_server_ran_are_made_up(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    conversation(&server, &alice, MEETING, "2026-07-01T12:00:00Z", 20).await;
    conversation(&server, &alice, DINNER, "2026-07-03T19:00:00Z", 20).await;
    // An old day beyond the catch-up window stays without a summary.
    conversation(&server, &alice, DINNER, "2026-06-20T19:00:00Z", 20).await;
    // The first run after four days off: 07-04 is due, 07-01 and 07-03 are caught up.
    let report = daily_summaries::run_due(
        &*server.state.store,
        &OfflineProcessor,
        "back-again",
        parse_datetime("2026-07-05T08:00:00Z").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((report.ran, report.created), (true, 2));
    let dates: Vec<Value> = summaries_of(&server, &alice, "")
        .await
        .iter()
        .map(|s| s["date"].clone())
        .collect();
    assert_eq!(dates, vec![json!("2026-07-03"), json!("2026-07-01")]);
    let again = daily_summaries::run_due(
        &*server.state.store,
        &OfflineProcessor,
        "back-again",
        parse_datetime("2026-07-05T08:01:00Z").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(again.created, 0, "at most once per (user, date)");
}

fn segment(text: &str, speaker: &str, person: Option<&str>, start: f64) -> Value {
    json!({"text": text, "speaker": speaker, "person_id": person, "start": start, "end": start + 2.0})
}

async fn people_come_from_transcripts_and_stay_private(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let sam = "0193a1c0-0000-7000-8000-000000000001";
    let path = "/v1/dev/user/conversations/from-segments";
    let first = server
        .post(
            path,
            &alice.key,
            json!({"started_at": "2026-11-02T09:14:00Z", "transcript_segments": [
                segment("Let's push export to February.", "SPEAKER_01", Some(sam), 0.0),
                segment("Fine by me.", "SPEAKER_00", None, 3.0),
            ]}),
        )
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    let second = server
        .post(
            path,
            &alice.key,
            json!({"started_at": "2026-11-03T09:14:00Z", "transcript_segments": [
                segment("I can own search.", "Sam Rivera", Some(sam), 0.0),
                segment("Welcome aboard.", "Zoe", Some("zoe-1"), 3.0),
            ]}),
        )
        .await;
    assert_eq!(second.status, 200, "{second:?}");
    let people = server.get("/v1/dev/user/people", &alice.key).await;
    assert_eq!(people.status, 200);
    assert_eq!(
        people.body,
        json!([
            {"id": sam, "name": "Sam Rivera", "created_at": "2026-11-02T09:14:00Z",
             "speech_sample_transcripts": ["I can own search.", "Let's push export to February."]},
            {"id": "zoe-1", "name": "Zoe", "created_at": "2026-11-03T09:14:00Z",
             "speech_sample_transcripts": ["Welcome aboard."]},
        ])
    );
    assert_eq!(
        server.get("/v1/dev/user/people", &bob.key).await.body,
        json!([])
    );
    let memories_only = server.key_with(&alice, &["memories:read"]).await;
    assert_eq!(
        server
            .get("/v1/dev/user/people", &memories_only)
            .await
            .status,
        403
    );
}

async fn the_profile_is_built_from_top_memories(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let none = server.get("/v1/dev/user/profile", &alice.key).await;
    assert_eq!(none.status, 200);
    assert_eq!(
        none.body,
        json!({"profile": null, "message": "No profile has been generated for this user yet."})
    );
    for content in [
        "Alice is allergic to peanuts",
        "Alice plays the cello on weekends.",
    ] {
        let reply = server
            .post(
                "/v1/dev/user/memories",
                &alice.key,
                json!({"content": content}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let profile = server.get("/v1/dev/user/profile", &alice.key).await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.body["data_sources_used"], 2);
    let text = profile.body["profile_text"].as_str().unwrap();
    assert!(text.starts_with("alice\n\n"), "{text}");
    assert!(
        text.contains("Alice is allergic to peanuts.") && text.contains("cello on weekends."),
        "{text}"
    );
    assert!(profile.body["generated_at"].is_string());
    // A change within the hour keeps the profile as it was.
    server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alice lives in Porto."}),
        )
        .await;
    let again = server.get("/v1/dev/user/profile", &alice.key).await;
    assert_eq!(again.body, profile.body);
    // An hour later it is rebuilt.
    let later = omi_server::domain::time::now() + chrono::Duration::minutes(61);
    let rebuilt = omi_server::service::people::profile(
        &*server.state.store,
        &OfflineProcessor,
        &alice.id,
        later,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(rebuilt.data_sources_used, 3);
    assert!(rebuilt.profile_text.contains("Porto"));
    assert_eq!(
        server.get("/v1/dev/user/profile", &bob.key).await.body["profile"],
        Value::Null
    );
    let conversations_only = server.key_with(&alice, &["conversations:read"]).await;
    assert_eq!(
        server
            .get("/v1/dev/user/profile", &conversations_only)
            .await
            .status,
        403
    );
}

crate::backend_tests!(
    a_day_is_counted_in_the_users_timezone_across_dst,
    no_summary_for_an_empty_or_all_discarded_day,
    list_filters_and_pages_by_date,
    one_replica_runs_the_scheduler_and_each_day_is_made_once,
    a_restart_resumes_where_a_run_stopped,
    days_missed_while_no_server_ran_are_made_up,
    people_come_from_transcripts_and_stay_private,
    the_profile_is_built_from_top_memories,
);

#[test]
fn the_command_line_sets_timezones_and_generates_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let omi = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_omi-server"))
            .args(args)
            .env(
                "OMI_DATABASE_URL",
                format!("sqlite://{}/omi.db", dir.path().display()),
            )
            .env("OMI_LOG", "warn")
            .output()
            .expect("run omi-server")
    };
    assert!(omi(&["users", "create", "alice"]).status.success());
    let bad = omi(&["users", "set-timezone", "--user", "alice", "Mars/Olympus"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown timezone 'Mars/Olympus'"));
    let set = omi(&["users", "set-timezone", "--user", "alice", "Europe/Berlin"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let empty = omi(&[
        "summaries",
        "generate",
        "--user",
        "alice",
        "--date",
        "2026-01-05",
    ]);
    assert!(empty.status.success());
    assert!(
        String::from_utf8_lossy(&empty.stdout)
            .contains("no kept conversation on 2026-01-05 (Europe/Berlin)")
    );
    let bad_date = omi(&[
        "summaries",
        "generate",
        "--user",
        "alice",
        "--date",
        "05.01.2026",
    ]);
    assert!(!bad_date.status.success());
}
