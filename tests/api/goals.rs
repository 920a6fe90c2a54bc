//! Goals (API.md §7, with §1 and §11).

use std::collections::HashSet;

use chrono::{NaiveDate, TimeDelta, Utc};
use omi_server::domain::goals::{Goal, GoalChanges, GoalSource, GoalStatus, NewGoal};
use omi_server::domain::time::{Timestamp, parse_datetime};
use serde_json::{Value, json};

use crate::common::{Backend, TestServer, TestUser};

const GOALS: &str = "/v1/dev/user/goals";
const MISSING_GOAL: &str = "goal_000000000000";

fn goal_path(id: &str) -> String {
    format!("{GOALS}/{id}")
}

fn id_of(goal: &Value) -> String {
    goal["id"].as_str().unwrap().to_string()
}

async fn create(server: &TestServer, user: &TestUser, body: Value) -> Value {
    let reply = server.post(GOALS, &user.key, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn create_titled(server: &TestServer, user: &TestUser, title: &str) -> Value {
    create(server, user, json!({"title": title, "target_value": 10})).await
}

async fn list(server: &TestServer, user: &TestUser, query: &str) -> Vec<Value> {
    let reply = server.get(&format!("{GOALS}{query}"), &user.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.as_array().unwrap().clone()
}

fn titles(goals: &[Value]) -> Vec<&str> {
    goals
        .iter()
        .map(|goal| goal["title"].as_str().unwrap())
        .collect()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn at(text: &str) -> Timestamp {
    parse_datetime(text).unwrap()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn creating_a_goal_returns_every_field_with_defaults(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create(
        &server,
        &alice,
        json!({"title": "  Ship v1 ", "target_value": 10}),
    )
    .await;
    let keys: HashSet<&str> = goal
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "id",
        "goal_id",
        "title",
        "desired_outcome",
        "why_it_matters",
        "success_criteria",
        "horizon_at",
        "status",
        "source",
        "focus_rank",
        "metric",
        "ended_at",
        "goal_type",
        "target_value",
        "current_value",
        "min_value",
        "max_value",
        "unit",
        "is_active",
        "created_at",
        "updated_at",
    ]
    .into();
    assert_eq!(keys, expected);
    let id = id_of(&goal);
    assert!(
        id.len() == 17 && id.starts_with("goal_") && id[5..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(goal["title"], "Ship v1");
    assert_eq!(goal["goal_id"], goal["id"]);
    assert_eq!(goal["desired_outcome"], "Ship v1");
    assert_eq!(goal["status"], "background");
    assert_eq!(goal["source"], "user");
    assert_eq!(goal["success_criteria"], json!([]));
    assert_eq!(
        goal["metric"],
        json!({"type": "scale", "current": 0.0, "target": 10.0, "min": null, "max": null, "unit": null})
    );
    assert_eq!(goal["goal_type"], "scale");
    assert_eq!(number(&goal["target_value"]), 10.0);
    assert_eq!(number(&goal["current_value"]), 0.0);
    assert_eq!(number(&goal["min_value"]), 0.0);
    assert_eq!(number(&goal["max_value"]), 10.0);
    assert_eq!(goal["unit"], Value::Null);
    assert_eq!(goal["is_active"], true);
    assert_eq!(goal["created_at"], goal["updated_at"]);
    assert!(goal["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(server.get(&goal_path(&id), &alice.key).await.body, goal);
}

async fn every_field_can_be_given_and_floats_are_kept(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create(
        &server,
        &alice,
        json!({"title": "Run", "goal_type": "numeric", "target_value": 42.195,
               "current_value": 2.5, "min_value": -1, "max_value": 100, "unit": " km "}),
    )
    .await;
    assert_eq!(goal["goal_type"], "numeric");
    assert_eq!(number(&goal["target_value"]), 42.195);
    assert_eq!(number(&goal["current_value"]), 2.5);
    assert_eq!(number(&goal["min_value"]), -1.0);
    assert_eq!(number(&goal["max_value"]), 100.0);
    assert_eq!(goal["unit"], "km");
    let boolean = create(
        &server,
        &alice,
        json!({"title": "Meditate", "goal_type": "boolean", "target_value": 1}),
    )
    .await;
    assert_eq!(boolean["goal_type"], "boolean");
}

async fn cross_field_values_are_not_constrained(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create(
        &server,
        &alice,
        json!({"title": "Odd", "target_value": -5, "current_value": 500,
               "min_value": 100, "max_value": 1}),
    )
    .await;
    assert_eq!(number(&goal["min_value"]), 100.0);
    assert_eq!(number(&goal["max_value"]), 1.0);
}

#[tokio::test]
async fn creation_refusals_name_the_problem() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let cases = [
        (
            json!({"title": "  ", "target_value": 1}),
            "title cannot be empty",
        ),
        (
            json!({"title": "x".repeat(501), "target_value": 1}),
            "Validation error: title must be at most 500 characters",
        ),
        (
            json!({"title": "t", "status": "focused"}),
            "Validation error: status focused must be set after creation",
        ),
        (
            json!({"title": "t", "status": "achieved"}),
            "Validation error: status must be background or paused when a goal is created",
        ),
        (
            json!({"title": "t", "success_criteria": (0..21).map(|i| format!("c{i}")).collect::<Vec<_>>()}),
            "Validation error: success_criteria must have at most 20 items",
        ),
        (
            json!({"title": "t", "horizon_at": "soon"}),
            "Validation error: horizon_at must be an RFC 3339 date-time such as 2026-12-31T00:00:00Z",
        ),
        (
            json!({"target_value": 1}),
            "Validation error: title is required",
        ),
        (
            json!({"title": "t", "target_value": 1, "goal_type": "percent"}),
            "Validation error: goal_type must be one of 'boolean', 'scale', 'numeric'",
        ),
        (
            json!({"title": "t", "target_value": "5"}),
            "Validation error: target_value must be a number",
        ),
        (
            json!({"title": "t", "target_value": 1, "unit": "u".repeat(101)}),
            "Validation error: unit must be at most 100 characters",
        ),
    ];
    for (body, detail) in cases {
        server
            .post(GOALS, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
    assert!(
        list(&server, &alice, "?include_inactive=true")
            .await
            .is_empty()
    );
    let longest = create(
        &server,
        &alice,
        json!({"title": "é".repeat(500), "target_value": 1}),
    )
    .await;
    assert_eq!(longest["title"].as_str().unwrap().chars().count(), 500);
}

async fn no_goal_is_ever_deactivated_implicitly(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    for title in ["one", "two", "three", "four", "five"] {
        create_titled(&server, &alice, title).await;
    }
    assert_eq!(
        titles(&list(&server, &alice, "").await),
        ["one", "two", "three", "four", "five"]
    );
    let creations = (0..6).map(|i| server.post(GOALS, &bob.key, json!({"title": format!("g{i}")})));
    for reply in futures::future::join_all(creations).await {
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(list(&server, &bob, "").await.len(), 6);
}

async fn title_only_goals_are_qualitative_and_both_shapes_are_accepted(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    // The CLI's v2 shape: a title alone.
    let goal = create(&server, &alice, json!({"title": "Be kinder"})).await;
    assert_eq!(goal["metric"], Value::Null);
    assert_eq!(
        (
            goal["goal_type"].clone(),
            number(&goal["current_value"]),
            number(&goal["target_value"]),
            number(&goal["min_value"]),
            number(&goal["max_value"]),
            goal["unit"].clone()
        ),
        (json!("scale"), 0.0, 0.0, 0.0, 10.0, Value::Null),
        "flat aliases of a qualitative goal"
    );
    // The CLI always sends every metric key, null when unset.
    let cli = create(
        &server,
        &alice,
        json!({"title": "Read", "desired_outcome": "Read 12 books", "why_it_matters": "Focus",
               "success_criteria": ["one a month", "  "], "horizon_at": "2026-12-31T00:00:00Z",
               "goal_type": null, "target_value": null, "current_value": null,
               "min_value": null, "max_value": null, "unit": null}),
    )
    .await;
    assert_eq!(cli["metric"], Value::Null);
    assert_eq!(cli["desired_outcome"], "Read 12 books");
    assert_eq!(cli["success_criteria"], json!(["one a month"]));
    assert_eq!(cli["horizon_at"], "2026-12-31T00:00:00Z");
    // The old flat shape: a metric, max defaulting to max(target, 10).
    let flat = create(
        &server,
        &alice,
        json!({"title": "Run", "target_value": 42, "goal_type": "numeric", "unit": "km"}),
    )
    .await;
    assert_eq!(
        flat["metric"],
        json!({"type": "numeric", "current": 0.0, "target": 42.0, "min": null, "max": null, "unit": "km"})
    );
    assert_eq!(number(&flat["max_value"]), 42.0);
    // A type alone makes a metric too; a lone current value does not.
    let typed = create(
        &server,
        &alice,
        json!({"title": "Sleep", "goal_type": "boolean"}),
    )
    .await;
    assert_eq!(typed["metric"]["type"], "boolean");
    let lone = create(
        &server,
        &alice,
        json!({"title": "Walk", "current_value": 3}),
    )
    .await;
    assert_eq!(lone["metric"], Value::Null);
    // The canonical metric object wins over the flat fields; status, source and description.
    let canonical = create(
        &server,
        &alice,
        json!({"title": "Save", "description": "Save 5k", "status": "paused", "source": "imported",
               "target_value": 1, "metric": {"type": "numeric", "current": 100, "target": 5000, "unit": "EUR"}}),
    )
    .await;
    assert_eq!(canonical["desired_outcome"], "Save 5k");
    assert_eq!(
        (canonical["status"].clone(), canonical["is_active"].clone()),
        (json!("paused"), json!(true))
    );
    assert_eq!(canonical["source"], "imported");
    assert_eq!(number(&canonical["target_value"]), 5000.0);

    // PATCH of a metric value on a qualitative goal creates a scale metric.
    let id = id_of(&goal);
    let patched = server
        .patch(&goal_path(&id), &alice.key, json!({"target_value": 5}))
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(
        patched.body["metric"],
        json!({"type": "scale", "current": 0.0, "target": 5.0, "min": null, "max": null, "unit": null})
    );
    // Progress on a qualitative goal creates a numeric metric and records the day's value.
    let other = id_of(&lone);
    let progressed = server
        .call(
            reqwest::Method::PATCH,
            &format!("{}/progress?current_value=4", goal_path(&other)),
            Some(&alice.key),
            None,
        )
        .await;
    assert_eq!(progressed.status, 200, "{progressed:?}");
    assert_eq!(
        progressed.body["metric"],
        json!({"type": "numeric", "current": 4.0, "target": 0.0, "min": null, "max": null, "unit": null})
    );
    let history = server
        .get(&format!("{}/history", goal_path(&other)), &alice.key)
        .await;
    assert_eq!(
        history.body.as_array().unwrap().last().unwrap()["value"],
        4.0
    );

    // v2 PATCH fields: nulls clear what may be cleared, the rest refuse null.
    let cleared = server
        .patch(&goal_path(&id_of(&cli)), &alice.key,
               json!({"why_it_matters": null, "horizon_at": null, "success_criteria": [], "status": "achieved"}))
        .await;
    assert_eq!(cleared.status, 200, "{cleared:?}");
    assert_eq!(cleared.body["why_it_matters"], Value::Null);
    assert_eq!(cleared.body["horizon_at"], Value::Null);
    assert_eq!(cleared.body["success_criteria"], json!([]));
    assert_eq!(
        (
            cleared.body["status"].clone(),
            cleared.body["is_active"].clone()
        ),
        (json!("achieved"), json!(false))
    );
    assert!(cleared.body["ended_at"].is_string());
    for (body, detail) in [
        (
            json!({"desired_outcome": null}),
            "Validation error: desired_outcome cannot be null",
        ),
        (
            json!({"desired_outcome": "  "}),
            "Validation error: desired_outcome cannot be empty",
        ),
        (
            json!({"success_criteria": null}),
            "Validation error: success_criteria cannot be null",
        ),
        (
            json!({"status": "focused"}),
            "Validation error: status focused cannot be set through this API",
        ),
        (json!({}), "At least one field must be provided"),
    ] {
        server
            .patch(&goal_path(&id), &alice.key, body)
            .await
            .assert_error(422, detail);
    }
}

/// A goal with a chosen creation time, stored directly so that ties can be exact.
async fn store_goal(server: &TestServer, user: &TestUser, id: &str, created_at: &str) {
    let goal = Goal::from_parts(
        id.to_string(),
        NewGoal {
            title: id.to_string(),
            desired_outcome: id.to_string(),
            why_it_matters: None,
            success_criteria: Vec::new(),
            horizon_at: None,
            status: GoalStatus::Background,
            source: GoalSource::User,
            metric: None,
        },
        at(created_at),
        at(created_at),
        None,
    );
    server
        .state
        .store
        .create_goal(&user.id, goal)
        .await
        .unwrap();
}

async fn lists_break_creation_time_ties_by_id_and_page_without_loss(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let same = "2025-01-02T00:00:00Z";
    for (id, created_at) in [
        ("goal_00000000000b", same),
        ("goal_00000000000a", same),
        ("goal_00000000000c", "2025-01-01T00:00:00Z"),
        ("goal_00000000000d", "2025-01-03T00:00:00Z"),
    ] {
        store_goal(&server, &alice, id, created_at).await;
    }
    let ids = |goals: Vec<Value>| -> Vec<String> { goals.iter().map(id_of).collect() };
    let ascending = ["c", "a", "b", "d"].map(|s| format!("goal_00000000000{s}"));
    let descending = ["d", "b", "a", "c"].map(|s| format!("goal_00000000000{s}"));
    assert_eq!(ids(list(&server, &alice, "").await), ascending);
    assert_eq!(
        ids(list(&server, &alice, "?include_inactive=true").await),
        descending
    );
    for (query, expected) in [("", &ascending), ("&include_inactive=true", &descending)] {
        let mut paged = Vec::new();
        for offset in [0, 3, 6] {
            paged.extend(ids(list(
                &server,
                &alice,
                &format!("?limit=3&offset={offset}{query}"),
            )
            .await));
        }
        assert_eq!(&paged, expected, "{query}");
    }
}

async fn the_list_defaults_to_ten_and_clamps_paging(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    for i in 0..12 {
        store_goal(
            &server,
            &alice,
            &format!("goal_{i:012x}"),
            &format!("2025-01-01T00:00:{i:02}Z"),
        )
        .await;
    }
    assert_eq!(list(&server, &alice, "").await.len(), 10);
    assert_eq!(
        list(&server, &alice, "?include_inactive=false").await.len(),
        10
    );
    assert_eq!(
        list(&server, &alice, "?include_inactive=true").await.len(),
        10
    );
    assert_eq!(list(&server, &alice, "?limit=5000").await.len(), 12);
    assert_eq!(list(&server, &alice, "?limit=0").await.len(), 1);
    assert_eq!(
        list(&server, &alice, "?offset=-3&limit=1").await,
        list(&server, &alice, "?limit=1").await
    );
    assert_eq!(list(&server, &alice, "?offset=10").await.len(), 2);
    server
        .get(&format!("{GOALS}?limit=x"), &alice.key)
        .await
        .assert_error(422, "Validation error: limit must be an integer");
    server
        .get(&format!("{GOALS}?include_inactive=perhaps"), &alice.key)
        .await
        .assert_error(
            422,
            "Validation error: include_inactive must be a boolean (true or false)",
        );
}

async fn patch_changes_the_named_fields_and_null_unit_clears_it(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create(
        &server,
        &alice,
        json!({"title": "Read", "target_value": 12, "unit": "books"}),
    )
    .await;
    let path = goal_path(&id_of(&goal));
    let reply = server
        .patch(
            &path,
            &alice.key,
            json!({"title": " Read more ", "target_value": 24.5, "min_value": 1, "max_value": 50}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["title"], "Read more");
    assert_eq!(number(&reply.body["target_value"]), 24.5);
    assert_eq!(number(&reply.body["min_value"]), 1.0);
    assert_eq!(number(&reply.body["max_value"]), 50.0);
    assert_eq!(reply.body["unit"], "books", "absent leaves it");
    assert_eq!(reply.body["created_at"], goal["created_at"]);
    let cleared = server.patch(&path, &alice.key, json!({"unit": null})).await;
    assert_eq!(cleared.body["unit"], Value::Null);
    let set = server
        .patch(&path, &alice.key, json!({"unit": "pages"}))
        .await;
    assert_eq!(set.body["unit"], "pages");
    assert_eq!(server.get(&path, &alice.key).await.body, set.body);
}

async fn patch_refusals_name_the_problem_and_change_nothing(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create_titled(&server, &alice, "keep").await;
    let path = goal_path(&id_of(&goal));
    let cases = [
        (json!({}), "At least one field must be provided".to_string()),
        (
            json!({"goal_type": "numeric"}),
            "At least one field must be provided".to_string(),
        ),
        (
            json!({"current_value": 5, "title": " "}),
            "title cannot be empty".to_string(),
        ),
        (
            json!({"current_value": 5, "target_value": "high"}),
            "Validation error: target_value must be a number".to_string(),
        ),
    ];
    let nulls = [
        "title",
        "target_value",
        "current_value",
        "min_value",
        "max_value",
    ]
    .map(|field| {
        (
            json!({"current_value": 5})
                .as_object()
                .cloned()
                .map(|mut body| {
                    body.insert(field.to_string(), Value::Null);
                    Value::Object(body)
                })
                .unwrap(),
            format!("Validation error: {field} cannot be null"),
        )
    });
    for (body, detail) in cases.into_iter().chain(nulls) {
        server
            .patch(&path, &alice.key, body)
            .await
            .assert_error(422, &detail);
    }
    assert_eq!(server.get(&path, &alice.key).await.body, goal);
    let history = server.get(&format!("{path}/history"), &alice.key).await;
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    assert_eq!(number(&history.body[0]["value"]), 0.0, "no value recorded");
    server
        .patch(&goal_path(MISSING_GOAL), &alice.key, json!({}))
        .await
        .assert_error(422, "At least one field must be provided");
}

async fn progress_sets_the_current_value_from_the_query(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create_titled(&server, &alice, "g").await;
    let path = format!("{}/progress", goal_path(&id_of(&goal)));
    let reply = server
        .patch(&format!("{path}?current_value=7.5"), &alice.key, json!({}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(number(&reply.body["current_value"]), 7.5);
    let no_body = server
        .call(
            reqwest::Method::PATCH,
            &format!("{path}?current_value=-2"),
            Some(&alice.key),
            None,
        )
        .await;
    assert_eq!(no_body.status, 200, "{no_body:?}");
    assert_eq!(number(&no_body.body["current_value"]), -2.0);

    server
        .patch(&path, &alice.key, json!({"current_value": 3}))
        .await
        .assert_error(422, "Validation error: current_value is required");
    for value in ["abc", "nan", "inf"] {
        server
            .patch(
                &format!("{path}?current_value={value}"),
                &alice.key,
                json!({}),
            )
            .await
            .assert_error(
                422,
                "Validation error: current_value must be a finite number",
            );
    }
    server
        .patch(
            &format!("{}/progress?current_value=1", goal_path(MISSING_GOAL)),
            &alice.key,
            json!({}),
        )
        .await
        .assert_error(404, "Goal not found");
}

async fn every_value_change_today_leaves_one_history_entry_with_the_last_value(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let before = today();
    let goal = create(
        &server,
        &alice,
        json!({"title": "g", "target_value": 10, "current_value": 1}),
    )
    .await;
    let path = goal_path(&id_of(&goal));
    server
        .patch(
            &format!("{path}/progress?current_value=3"),
            &alice.key,
            json!({}),
        )
        .await;
    let patched = server
        .patch(&path, &alice.key, json!({"current_value": 4}))
        .await;
    server
        .patch(&path, &alice.key, json!({"title": "renamed"}))
        .await;
    let history = server.get(&format!("{path}/history"), &alice.key).await;
    if today() != before {
        return; // Midnight passed during the test: the entries are legitimately split.
    }
    assert_eq!(history.status, 200);
    let entries = history.body.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["date"], before.to_string());
    assert_eq!(number(&entries[0]["value"]), 4.0);
    assert_eq!(entries[0]["recorded_at"], patched.body["updated_at"]);
}

async fn history_keeps_one_entry_per_day_newest_first_within_the_window(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let before = today();
    let goal = create_titled(&server, &alice, "g").await;
    let id = id_of(&goal);
    let store = &server.state.store;
    let day = |days_ago: i64, time: &str| -> Timestamp {
        at(&format!("{}T{time}Z", before - TimeDelta::days(days_ago)))
    };
    // Earlier days, written through the store with controlled times; the later write of a day
    // replaces the earlier one.
    for (value, when) in [
        (9.0, day(400, "12:00:00")),
        (2.0, day(40, "08:00:00")),
        (1.0, day(1, "10:00:00")),
        (1.5, day(1, "23:59:59")),
        (7.0, day(29, "00:00:00")),
        (8.0, day(30, "23:00:00")),
    ] {
        store
            .update_goal(&alice.id, &id, GoalChanges::progress(value), when)
            .await
            .unwrap()
            .unwrap();
    }
    server
        .patch(
            &format!("{}/progress?current_value=4", goal_path(&id)),
            &alice.key,
            json!({}),
        )
        .await;
    let history = |query: &'static str| {
        let server = &server;
        let path = format!("{}/history{query}", goal_path(&id));
        let key = alice.key.clone();
        async move {
            let reply = server.get(&path, &key).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|entry| {
                    (
                        entry["date"].as_str().unwrap().to_string(),
                        number(&entry["value"]),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let default = history("").await;
    let days_30 = history("?days=30").await;
    let days_1 = history("?days=1").await;
    let days_0 = history("?days=0").await;
    let days_365 = history("?days=365").await;
    let days_big = history("?days=100000").await;
    if today() != before {
        return; // Midnight passed during the test: the window moved.
    }
    let date = |days_ago: i64| (before - TimeDelta::days(days_ago)).to_string();
    let thirty = vec![(date(0), 4.0), (date(1), 1.5), (date(29), 7.0)];
    assert_eq!(default, thirty);
    assert_eq!(days_30, thirty);
    assert_eq!(days_1, vec![(date(0), 4.0)]);
    assert_eq!(days_0, days_1, "clamped to 1");
    let year = vec![
        (date(0), 4.0),
        (date(1), 1.5),
        (date(29), 7.0),
        (date(30), 8.0),
        (date(40), 2.0),
    ];
    assert_eq!(days_365, year);
    assert_eq!(days_big, year, "clamped to 365");

    server
        .get(&format!("{}/history?days=week", goal_path(&id)), &alice.key)
        .await
        .assert_error(422, "Validation error: days must be an integer");
    server
        .get(&format!("{}/history", goal_path(MISSING_GOAL)), &alice.key)
        .await
        .assert_error(404, "Goal not found");
}

async fn deleting_a_goal_abandons_it_and_keeps_it_readable(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create(&server, &alice, json!({"title": "g", "target_value": 3})).await;
    let path = goal_path(&id_of(&goal));
    let deleted = server.delete(&path, &alice.key).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"success": true}));
    let read = server.get(&path, &alice.key).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["status"], "abandoned");
    assert_eq!(read.body["is_active"], false);
    assert!(read.body["ended_at"].is_string());
    assert_eq!(read.body["target_value"], goal["target_value"]);
    let history = server.get(&format!("{path}/history"), &alice.key).await;
    assert_eq!(
        history.body.as_array().unwrap().len(),
        1,
        "the history stays"
    );
    assert!(list(&server, &alice, "").await.is_empty());
    assert_eq!(
        titles(&list(&server, &alice, "?include_inactive=true").await),
        ["g"]
    );
    // Again: still abandoned, the first end time kept.
    assert_eq!(server.delete(&path, &alice.key).await.status, 200);
    assert_eq!(
        server.get(&path, &alice.key).await.body["ended_at"],
        read.body["ended_at"]
    );
}

async fn an_unknown_or_implausible_goal_id_is_not_found_on_every_route(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    for id in [
        MISSING_GOAL,
        "goal_xyz",
        "0190f5d2-7b1c-7000-8000-000000000000",
    ] {
        let path = goal_path(id);
        server
            .get(&path, &alice.key)
            .await
            .assert_error(404, "Goal not found");
        server
            .patch(&path, &alice.key, json!({"title": "t"}))
            .await
            .assert_error(404, "Goal not found");
        server
            .patch(
                &format!("{path}/progress?current_value=1"),
                &alice.key,
                json!({}),
            )
            .await
            .assert_error(404, "Goal not found");
        server
            .get(&format!("{path}/history"), &alice.key)
            .await
            .assert_error(404, "Goal not found");
        server
            .delete(&path, &alice.key)
            .await
            .assert_error(404, "Goal not found");
    }
}

async fn another_users_goal_is_not_found_on_every_route_and_stays_unchanged(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let goal = create_titled(&server, &alice, "alice's").await;
    let path = goal_path(&id_of(&goal));
    server
        .get(&path, &bob.key)
        .await
        .assert_error(404, "Goal not found");
    server
        .patch(&path, &bob.key, json!({"title": "bob's"}))
        .await
        .assert_error(404, "Goal not found");
    server
        .patch(
            &format!("{path}/progress?current_value=9"),
            &bob.key,
            json!({}),
        )
        .await
        .assert_error(404, "Goal not found");
    server
        .get(&format!("{path}/history"), &bob.key)
        .await
        .assert_error(404, "Goal not found");
    server
        .delete(&path, &bob.key)
        .await
        .assert_error(404, "Goal not found");
    assert!(
        list(&server, &bob, "?include_inactive=true")
            .await
            .is_empty()
    );
    assert_eq!(server.get(&path, &alice.key).await.body, goal);
    let history = server.get(&format!("{path}/history"), &alice.key).await;
    assert_eq!(history.body.as_array().unwrap().len(), 1);
}

async fn every_route_requires_its_scope(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let goal = create_titled(&server, &alice, "g").await;
    let path = goal_path(&id_of(&goal));
    let read_only = server.key_with(&alice, &["goals:read"]).await;
    let write_only = server
        .key_with(&alice, &["goals:write", "action_items:read"])
        .await;
    let read_error = "Insufficient permissions. Required scope: goals:read";
    let write_error = "Insufficient permissions. Required scope: goals:write";

    server
        .get(GOALS, &write_only)
        .await
        .assert_error(403, read_error);
    server
        .get(&path, &write_only)
        .await
        .assert_error(403, read_error);
    server
        .get(&format!("{path}/history"), &write_only)
        .await
        .assert_error(403, read_error);
    server
        .post(GOALS, &read_only, json!({}))
        .await
        .assert_error(403, write_error);
    server
        .patch(&path, &read_only, json!({"title": "t"}))
        .await
        .assert_error(403, write_error);
    server
        .patch(&format!("{path}/progress"), &read_only, json!({}))
        .await
        .assert_error(403, write_error);
    server
        .delete(&path, &read_only)
        .await
        .assert_error(403, write_error);
    assert_eq!(server.get(&path, &read_only).await.status, 200);
}

crate::backend_tests!(
    creating_a_goal_returns_every_field_with_defaults,
    every_field_can_be_given_and_floats_are_kept,
    cross_field_values_are_not_constrained,
    no_goal_is_ever_deactivated_implicitly,
    title_only_goals_are_qualitative_and_both_shapes_are_accepted,
    deleting_a_goal_abandons_it_and_keeps_it_readable,
    lists_break_creation_time_ties_by_id_and_page_without_loss,
    the_list_defaults_to_ten_and_clamps_paging,
    patch_changes_the_named_fields_and_null_unit_clears_it,
    patch_refusals_name_the_problem_and_change_nothing,
    progress_sets_the_current_value_from_the_query,
    every_value_change_today_leaves_one_history_entry_with_the_last_value,
    history_keeps_one_entry_per_day_newest_first_within_the_window,
    an_unknown_or_implausible_goal_id_is_not_found_on_every_route,
    another_users_goal_is_not_found_on_every_route_and_stays_unchanged,
    every_route_requires_its_scope,
);
