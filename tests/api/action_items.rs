//! Action items (API.md §4, with §1 and §11).

use std::collections::HashSet;

use omi_server::domain::action_items::ActionItem;
use omi_server::domain::time::{Timestamp, parse_datetime};
use serde_json::{Value, json};

use crate::common::{TestServer, TestUser};

const ITEMS: &str = "/v1/dev/user/action-items";
const BATCH: &str = "/v1/dev/user/action-items/batch";

fn item_path(id: &str) -> String {
    format!("{ITEMS}/{id}")
}

fn at(text: &str) -> Timestamp {
    parse_datetime(text).unwrap()
}

async fn create(server: &TestServer, user: &TestUser, body: Value) -> Value {
    let reply = server.post(ITEMS, &user.key, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn list(server: &TestServer, user: &TestUser, query: &str) -> Vec<Value> {
    let reply = server.get(&format!("{ITEMS}{query}"), &user.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// An item with chosen times, stored directly so that order and date bounds can be exact.
fn stored_item(
    description: &str,
    completed: bool,
    due_at: Option<&str>,
    created_at: &str,
) -> ActionItem {
    let mut item = ActionItem::new(
        description.to_string(),
        completed,
        due_at.map(at),
        at(created_at),
    );
    item.id = format!("{:0>8}-0000-7000-8000-000000000000", description);
    item
}

async fn store_items(server: &TestServer, user: &TestUser, items: Vec<ActionItem>) {
    server
        .state
        .store
        .create_action_items(&user.id, items)
        .await
        .unwrap();
}

#[tokio::test]
async fn creating_an_item_returns_every_field_with_defaults() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(
        &server,
        &alice,
        json!({"description": "  Review Q1 report \n"}),
    )
    .await;
    let keys: HashSet<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "id",
        "description",
        "completed",
        "created_at",
        "updated_at",
        "due_at",
        "completed_at",
        "conversation_id",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(item["description"], "Review Q1 report");
    assert_eq!(item["completed"], false);
    assert_eq!(item["due_at"], Value::Null);
    assert_eq!(item["completed_at"], Value::Null);
    assert_eq!(item["conversation_id"], Value::Null);
    assert_eq!(item["created_at"], item["updated_at"]);
    assert!(item["created_at"].as_str().unwrap().ends_with('Z'));
    let id = uuid::Uuid::parse_str(item["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);

    let fetched = server.get(&item_path(&id.to_string()), &alice.key).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, item);
}

#[tokio::test]
async fn an_item_created_completed_was_completed_when_created() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(
        &server,
        &alice,
        json!({"description": "done", "completed": true}),
    )
    .await;
    assert_eq!(item["completed"], true);
    assert_eq!(item["completed_at"], item["created_at"]);
}

#[tokio::test]
async fn due_dates_accept_a_bare_date_or_a_date_time_with_any_offset() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for (sent, stored) in [
        ("2025-12-10", "2025-12-10T23:59:00Z"),
        ("2025-12-10T19:00:00+02:00", "2025-12-10T17:00:00Z"),
        ("2025-12-10T17:00:00", "2025-12-10T17:00:00Z"),
        ("2025-12-10T17:00:00.250Z", "2025-12-10T17:00:00.250Z"),
    ] {
        let item = create(&server, &alice, json!({"description": "d", "due_at": sent})).await;
        assert_eq!(item["due_at"], stored, "{sent}");
    }
    server
        .post(
            ITEMS,
            &alice.key,
            json!({"description": "d", "due_at": "next week"}),
        )
        .await
        .assert_error(
            422,
            "Validation error: due_at must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
        );
}

#[tokio::test]
async fn creation_refuses_blank_long_and_missing_descriptions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server
        .post(ITEMS, &alice.key, json!({"description": " \t "}))
        .await
        .assert_error(422, "description cannot be empty");
    server
        .post(ITEMS, &alice.key, json!({"description": "x".repeat(501)}))
        .await
        .assert_error(
            422,
            "Validation error: description must be at most 500 characters",
        );
    server
        .post(ITEMS, &alice.key, json!({"completed": true}))
        .await
        .assert_error(422, "Validation error: description is required");
    server
        .post(
            ITEMS,
            &alice.key,
            json!({"description": "a", "completed": "yes"}),
        )
        .await
        .assert_error(422, "Validation error: completed must be a boolean");
    let longest = create(&server, &alice, json!({"description": "é".repeat(500)})).await;
    assert_eq!(
        longest["description"].as_str().unwrap().chars().count(),
        500
    );
    assert!(
        list(&server, &alice, "").await.len() == 1,
        "only the valid item"
    );
}

#[tokio::test]
async fn an_unknown_or_implausible_id_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for id in ["0190f5d2-7b1c-7000-8000-000000000000", "no%20such%20id"] {
        server
            .get(&item_path(id), &alice.key)
            .await
            .assert_error(404, "Action item not found");
        server
            .patch(&item_path(id), &alice.key, json!({"completed": true}))
            .await
            .assert_error(404, "Action item not found");
        server
            .delete(&item_path(id), &alice.key)
            .await
            .assert_error(404, "Action item not found");
    }
}

#[tokio::test]
async fn a_batch_creates_every_item_in_input_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = server
        .post(
            BATCH,
            &alice.key,
            json!({"action_items": [
                {"description": "Review Q1 report", "due_at": "2025-12-10T17:00:00Z"},
                {"description": "Schedule team meeting"},
                {"description": " Pay rent ", "completed": true, "due_at": "2025-12-01"},
            ]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["created_count"], 3);
    let created = reply.body["action_items"].as_array().unwrap();
    let descriptions: Vec<&str> = created
        .iter()
        .map(|item| item["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        descriptions,
        ["Review Q1 report", "Schedule team meeting", "Pay rent"]
    );
    assert_eq!(created[0]["due_at"], "2025-12-10T17:00:00Z");
    assert_eq!(created[2]["due_at"], "2025-12-01T23:59:00Z");
    assert_eq!(created[2]["completed_at"], created[2]["created_at"]);
    let created_ids = ids(created);
    let mut sorted = created_ids.clone();
    sorted.sort();
    assert_eq!(sorted, created_ids, "UUIDv7 ids follow the input order");

    for item in created {
        let fetched = server
            .get(&item_path(item["id"].as_str().unwrap()), &alice.key)
            .await;
        assert_eq!(&fetched.body, item);
    }
}

#[tokio::test]
async fn an_empty_batch_creates_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = server
        .post(BATCH, &alice.key, json!({"action_items": []}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"action_items": [], "created_count": 0}));
    server
        .post(BATCH, &alice.key, json!({}))
        .await
        .assert_error(422, "Validation error: action_items is required");
}

#[tokio::test]
async fn a_batch_of_fifty_is_accepted_and_fifty_one_refused_before_any_item_is_read() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let fifty: Vec<Value> = (0..50)
        .map(|i| json!({"description": format!("task {i}")}))
        .collect();
    let reply = server
        .post(BATCH, &alice.key, json!({"action_items": fifty}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["created_count"], 50);

    // Every item of this batch is invalid: the count is still what is reported.
    let fifty_one: Vec<Value> = (0..51).map(|_| json!({})).collect();
    server
        .post(BATCH, &alice.key, json!({"action_items": fifty_one}))
        .await
        .assert_error(422, "Maximum 50 action items per batch request");
    assert_eq!(list(&server, &alice, "?limit=1000").await.len(), 50);
}

#[tokio::test]
async fn batch_items_are_checked_in_index_order_missing_then_blank_then_bounds() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let cases = [
        (
            json!([{"description": "ok"}, {"description": "  "}, {}]),
            "All action items must have non-empty descriptions",
        ),
        (
            json!([{"description": "ok"}, {}, {"description": ""}]),
            "Validation error: action_items[1].description is required",
        ),
        (
            json!([{"description": "ok"}, {"description": "ok"}, {"description": "ok"},
                   {"description": "x".repeat(501)}, {"description": ""}]),
            "Validation error: action_items[3].description must be at most 500 characters",
        ),
        (
            json!([{"description": "ok", "due_at": "soon"}]),
            "Validation error: action_items[0].due_at must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
        ),
        (
            json!([{"description": "ok", "completed": "no"}]),
            "Validation error: action_items[0].completed must be a boolean",
        ),
        (
            json!(["ok"]),
            "Validation error: action_items[0] must be a JSON object",
        ),
    ];
    for (items, detail) in cases {
        server
            .post(BATCH, &alice.key, json!({"action_items": items}))
            .await
            .assert_error(422, detail);
    }
    assert!(list(&server, &alice, "").await.is_empty());
}

#[tokio::test]
async fn a_batch_whose_last_item_is_invalid_writes_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut items: Vec<Value> = (0..49)
        .map(|i| json!({"description": format!("task {i}")}))
        .collect();
    items.push(json!({"description": "   "}));
    server
        .post(BATCH, &alice.key, json!({"action_items": items}))
        .await
        .assert_error(422, "All action items must have non-empty descriptions");
    assert!(list(&server, &alice, "").await.is_empty());
}

#[tokio::test]
async fn patch_changes_the_description_and_leaves_an_absent_due_date() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(
        &server,
        &alice,
        json!({"description": "old", "due_at": "2025-12-10"}),
    )
    .await;
    let path = item_path(item["id"].as_str().unwrap());
    let reply = server
        .patch(&path, &alice.key, json!({"description": "  new  "}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["description"], "new");
    assert_eq!(reply.body["due_at"], "2025-12-10T23:59:00Z");
    assert_eq!(reply.body["created_at"], item["created_at"]);
    assert!(reply.body["updated_at"].as_str() >= item["updated_at"].as_str());
    assert_eq!(server.get(&path, &alice.key).await.body, reply.body);
}

#[tokio::test]
async fn patch_due_at_null_clears_it_and_a_value_sets_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(&server, &alice, json!({"description": "d"})).await;
    let path = item_path(item["id"].as_str().unwrap());
    let set = server
        .patch(&path, &alice.key, json!({"due_at": "2026-01-31"}))
        .await;
    assert_eq!(set.body["due_at"], "2026-01-31T23:59:00Z");
    let cleared = server
        .patch(&path, &alice.key, json!({"due_at": null}))
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.body["due_at"], Value::Null);
}

#[tokio::test]
async fn completing_sets_completed_at_once_and_reopening_clears_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(&server, &alice, json!({"description": "d"})).await;
    let path = item_path(item["id"].as_str().unwrap());

    let completed = server
        .patch(&path, &alice.key, json!({"completed": true}))
        .await;
    assert_eq!(completed.body["completed"], true);
    let completed_at = completed.body["completed_at"].as_str().unwrap().to_string();
    assert!(completed_at.as_str() >= item["created_at"].as_str().unwrap());
    assert_eq!(completed.body["updated_at"], completed_at.as_str());

    let again = server
        .patch(&path, &alice.key, json!({"completed": true}))
        .await;
    assert_eq!(again.body["completed_at"], completed_at.as_str(), "kept");

    let reopened = server
        .patch(&path, &alice.key, json!({"completed": false}))
        .await;
    assert_eq!(reopened.body["completed"], false);
    assert_eq!(reopened.body["completed_at"], Value::Null);
}

#[tokio::test]
async fn patch_refusals_name_the_problem_and_change_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(
        &server,
        &alice,
        json!({"description": "keep", "due_at": "2025-12-10"}),
    )
    .await;
    let path = item_path(item["id"].as_str().unwrap());
    let cases = [
        (json!({}), "At least one field must be provided"),
        (json!({"unknown": 1}), "At least one field must be provided"),
        (
            json!({"description": null}),
            "Validation error: description cannot be null",
        ),
        (
            json!({"completed": null}),
            "Validation error: completed cannot be null",
        ),
        (
            json!({"description": "  ", "completed": true}),
            "description cannot be empty",
        ),
        (
            json!({"description": "x".repeat(501)}),
            "Validation error: description must be at most 500 characters",
        ),
        (
            json!({"description": "changed", "completed": true, "due_at": "garbage"}),
            "Validation error: due_at must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
        ),
        (
            json!({"description": "changed", "completed": "yes"}),
            "Validation error: completed must be a boolean",
        ),
    ];
    for (body, detail) in cases {
        server
            .patch(&path, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
    assert_eq!(server.get(&path, &alice.key).await.body, item);
}

#[tokio::test]
async fn patch_validates_the_body_before_looking_the_item_up() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server
        .patch(
            &item_path("0190f5d2-7b1c-7000-8000-000000000000"),
            &alice.key,
            json!({}),
        )
        .await
        .assert_error(422, "At least one field must be provided");
}

#[tokio::test]
async fn delete_answers_success_then_not_found() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(&server, &alice, json!({"description": "d"})).await;
    let path = item_path(item["id"].as_str().unwrap());
    let deleted = server.delete(&path, &alice.key).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"success": true}));
    server
        .delete(&path, &alice.key)
        .await
        .assert_error(404, "Action item not found");
    server
        .get(&path, &alice.key)
        .await
        .assert_error(404, "Action item not found");
}

#[tokio::test]
async fn another_users_items_are_not_found_on_every_route_and_stay_unchanged() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let item = create(&server, &alice, json!({"description": "alice's"})).await;
    let path = item_path(item["id"].as_str().unwrap());

    server
        .get(&path, &bob.key)
        .await
        .assert_error(404, "Action item not found");
    server
        .patch(&path, &bob.key, json!({"completed": true}))
        .await
        .assert_error(404, "Action item not found");
    server
        .delete(&path, &bob.key)
        .await
        .assert_error(404, "Action item not found");
    assert!(list(&server, &bob, "").await.is_empty());
    let batch = server
        .post(
            BATCH,
            &bob.key,
            json!({"action_items": [{"description": "bob's"}]}),
        )
        .await;
    assert_eq!(batch.status, 200);

    assert_eq!(server.get(&path, &alice.key).await.body, item);
    assert_eq!(
        ids(&list(&server, &alice, "").await),
        [item["id"].as_str().unwrap()]
    );
    assert_eq!(list(&server, &bob, "").await.len(), 1);
}

#[tokio::test]
async fn every_route_requires_its_scope() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let item = create(&server, &alice, json!({"description": "d"})).await;
    let path = item_path(item["id"].as_str().unwrap());
    let read_only = server.key_with(&alice, &["action_items:read"]).await;
    let write_only = server.key_with(&alice, &["action_items:write"]).await;
    let read_error = "Insufficient permissions. Required scope: action_items:read";
    let write_error = "Insufficient permissions. Required scope: action_items:write";

    server
        .get(ITEMS, &write_only)
        .await
        .assert_error(403, read_error);
    server
        .get(&path, &write_only)
        .await
        .assert_error(403, read_error);
    server
        .post(ITEMS, &read_only, json!({"description": "d"}))
        .await
        .assert_error(403, write_error);
    server
        .post(BATCH, &read_only, json!({"action_items": []}))
        .await
        .assert_error(403, write_error);
    server
        .patch(&path, &read_only, json!({"completed": true}))
        .await
        .assert_error(403, write_error);
    server
        .delete(&path, &read_only)
        .await
        .assert_error(403, write_error);
    // The scope is checked before the body.
    server
        .post(ITEMS, &read_only, json!({}))
        .await
        .assert_error(403, write_error);
    assert_eq!(server.get(ITEMS, &read_only).await.status, 200);
}

#[tokio::test]
async fn the_list_puts_open_items_first_then_due_dates_then_newest_with_ties_by_id() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let same = "2025-01-05T00:00:00Z";
    let items = vec![
        stored_item("a", false, None, "2025-01-01T00:00:00Z"),
        stored_item(
            "b",
            false,
            Some("2025-03-01T00:00:00Z"),
            "2025-01-02T00:00:00Z",
        ),
        stored_item(
            "c",
            false,
            Some("2025-02-01T00:00:00Z"),
            "2025-01-03T00:00:00Z",
        ),
        stored_item(
            "d",
            true,
            Some("2025-01-15T00:00:00Z"),
            "2025-01-04T00:00:00Z",
        ),
        stored_item("e", true, None, "2025-01-01T00:00:00Z"),
        stored_item("f", false, None, same),
        stored_item("g", false, None, same),
        stored_item(
            "h",
            false,
            Some("2025-02-01T00:00:00Z"),
            "2025-01-09T00:00:00Z",
        ),
        stored_item("i", true, None, "2025-01-06T00:00:00Z"),
        stored_item(
            "j",
            false,
            Some("2025-02-01T00:00:00Z"),
            "2025-01-09T00:00:00Z",
        ),
    ];
    let by_name = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .map(|name| format!("{:0>8}-0000-7000-8000-000000000000", name))
            .collect()
    };
    store_items(&server, &alice, items).await;
    // Open: due c/h/j (same due: newest first, then id desc: j, h, then c), then b; undated
    // g, f (same created_at: id desc), then a. Completed: dated d, then i, e.
    let expected = by_name(&["j", "h", "c", "b", "g", "f", "a", "d", "i", "e"]);
    assert_eq!(ids(&list(&server, &alice, "").await), expected);

    for limit in [1, 3, 4] {
        let mut paged = Vec::new();
        for offset in (0..12).step_by(limit) {
            let page = list(&server, &alice, &format!("?limit={limit}&offset={offset}")).await;
            assert!(page.len() <= limit);
            paged.extend(ids(&page));
        }
        assert_eq!(paged, expected, "pages of {limit}");
    }

    assert_eq!(
        ids(&list(&server, &alice, "?completed=true").await),
        by_name(&["d", "i", "e"])
    );
    assert_eq!(
        ids(&list(&server, &alice, "?completed=false&limit=2&offset=1").await),
        by_name(&["h", "c"])
    );
}

#[tokio::test]
async fn list_paging_defaults_to_100_and_clamps_out_of_range_values() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let items = (0..101)
        .map(|i| {
            let mut item =
                ActionItem::new(format!("t{i}"), false, None, at("2025-01-01T00:00:00Z"));
            item.id = format!("00000000-0000-7000-8000-{i:012}");
            item
        })
        .collect();
    store_items(&server, &alice, items).await;
    assert_eq!(list(&server, &alice, "").await.len(), 100);
    assert_eq!(list(&server, &alice, "?limit=5000").await.len(), 101);
    assert_eq!(list(&server, &alice, "?limit=0").await.len(), 1);
    assert_eq!(list(&server, &alice, "?limit=-7").await.len(), 1);
    assert_eq!(
        list(&server, &alice, "?limit=99999999999999999999999")
            .await
            .len(),
        101
    );
    let first = list(&server, &alice, "?limit=1").await;
    assert_eq!(list(&server, &alice, "?limit=1&offset=-5").await, first);
    assert!(list(&server, &alice, "?offset=101").await.is_empty());
    server
        .get(&format!("{ITEMS}?limit=ten"), &alice.key)
        .await
        .assert_error(422, "Validation error: limit must be an integer");
    server
        .get(&format!("{ITEMS}?offset=1.5"), &alice.key)
        .await
        .assert_error(422, "Validation error: offset must be an integer");
    server
        .get(&format!("{ITEMS}?completed=maybe"), &alice.key)
        .await
        .assert_error(
            422,
            "Validation error: completed must be a boolean (true or false)",
        );
}

#[tokio::test]
async fn the_list_filters_by_conversation() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut from_call = stored_item("1", false, None, "2025-01-01T00:00:00Z");
    from_call.conversation_id = Some("conv-1".into());
    let mut from_other = stored_item("2", false, None, "2025-01-02T00:00:00Z");
    from_other.conversation_id = Some("conv-2".into());
    let direct = stored_item("3", false, None, "2025-01-03T00:00:00Z");
    store_items(&server, &alice, vec![from_call, from_other, direct]).await;
    let listed = list(&server, &alice, "?conversation_id=conv-1").await;
    assert_eq!(ids(&listed), ["00000001-0000-7000-8000-000000000000"]);
    assert_eq!(listed[0]["conversation_id"], "conv-1");
    assert!(
        list(&server, &alice, "?conversation_id=none")
            .await
            .is_empty()
    );
    assert_eq!(list(&server, &alice, "").await.len(), 3);
}

#[tokio::test]
async fn date_bounds_are_inclusive_and_bare_dates_cover_whole_utc_days() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    store_items(
        &server,
        &alice,
        vec![
            stored_item("1", false, None, "2025-01-09T23:59:59.999999Z"),
            stored_item("2", false, None, "2025-01-10T00:00:00Z"),
            stored_item("3", false, None, "2025-01-10T23:59:59.999999Z"),
            stored_item("4", false, None, "2025-01-11T00:00:00Z"),
        ],
    )
    .await;
    let names = |items: Vec<Value>| -> Vec<String> {
        ids(&items)
            .into_iter()
            .map(|id| id[7..8].to_string())
            .collect()
    };
    let cases = [
        ("?start_date=2025-01-10&end_date=2025-01-10", vec!["3", "2"]),
        ("?start_date=2025-01-10", vec!["4", "3", "2"]),
        ("?end_date=2025-01-10", vec!["3", "2", "1"]),
        (
            "?start_date=2025-01-10T00:00:00Z&end_date=2025-01-11T00:00:00Z",
            vec!["4", "3", "2"],
        ),
        (
            "?start_date=2025-01-10T01:00:00%2B01:00&end_date=2025-01-10T00:00:00",
            vec!["2"],
        ),
        ("?start_date=2025-01-11&end_date=2025-01-10", vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            names(list(&server, &alice, query).await),
            expected,
            "{query}"
        );
    }
    for (name, query) in [
        ("start_date", "?start_date=yesterday"),
        ("end_date", "?end_date=2025-13-01"),
    ] {
        server
            .get(&format!("{ITEMS}{query}"), &alice.key)
            .await
            .assert_error(
                422,
                &format!(
                    "Validation error: {name} must be a date (YYYY-MM-DD) or an RFC 3339 date-time"
                ),
            );
    }
}
