//! Keeping a copy exact (the change feed on every list, the deletions feed): a sync client
//! mirrors one user while a writer creates, edits and deletes at random, and at the end the
//! mirror equals the server object by object. Plus the feed's contract: inclusive
//! `updated_since`, cursors, headers only on a page that has a next one, errors, scopes.

use serde_json::{Value, json};

use crate::common::{Backend, TestServer};

#[path = "../support/mirror.rs"]
mod mirror;

const MEMORIES: &str = "/v1/dev/user/memories";

async fn a_mirror_following_the_feeds_equals_the_server_after_random_writes(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let bases = vec![server.base_url.clone()];
    // Bob's objects must never reach Alice's mirror.
    server
        .post(MEMORIES, &bob.key, json!({"content": "Bob likes tea"}))
        .await;

    let writer = {
        let (http, bases, key) = (server.client.clone(), bases.clone(), alice.key.clone());
        tokio::spawn(async move { mirror::write_at_random(&http, &bases, &key, 150, 17).await })
    };
    let mut copy = mirror::Mirror::default();
    // Syncs while the writer runs (at most this many passes), then once after it finished.
    for _ in 0..200 {
        if writer.is_finished() {
            break;
        }
        copy.sync(&server.client, &bases, &alice.key).await;
    }
    let written = writer.await.unwrap();
    copy.sync(&server.client, &bases, &alice.key).await;

    let truth =
        mirror::server_objects(&server.client, &server.base_url, &alice.key, &written).await;
    mirror::assert_same(&copy.objects, &truth);
    assert!(
        truth.len() > 10,
        "the writer left something to compare: {}",
        truth.len()
    );
    // A new mirror copies everything in one pass, page by page.
    let mut fresh = mirror::Mirror::default();
    fresh.sync(&server.client, &bases, &alice.key).await;
    mirror::assert_same(&fresh.objects, &truth);
    assert!(fresh.next_cursors_followed > 0, "paging happened");
}

async fn updated_since_is_inclusive_and_cursors_page_in_change_order(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let mut saved = Vec::new();
    for i in 0..5 {
        let reply = server
            .post(
                MEMORIES,
                &alice.key,
                json!({"content": format!("Fact {i}")}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        saved.push(reply.body);
    }
    // The third memory changes last.
    let third = saved[2]["id"].as_str().unwrap();
    let edited = server
        .patch(
            &format!("{MEMORIES}/{third}"),
            &alice.key,
            json!({"tags": ["x"]}),
        )
        .await;
    assert_eq!(edited.status, 200);

    // Without the parameters: the list as always, no paging headers.
    let plain = server.get(&format!("{MEMORIES}?limit=2"), &alice.key).await;
    assert!(plain.header("x-next-cursor").is_none() && plain.header("link").is_none());

    let since = saved[1]["updated_at"].as_str().unwrap().replace('+', "%2B");
    let first = server
        .get(
            &format!("{MEMORIES}?limit=2&updated_since={since}"),
            &alice.key,
        )
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    let ids = |reply: &crate::common::Reply| -> Vec<String> {
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let id = |i: usize| saved[i]["id"].as_str().unwrap().to_string();
    assert_eq!(
        ids(&first),
        vec![id(1), id(3)],
        "inclusive, in (updated_at, id) order"
    );
    let cursor = first
        .header("x-next-cursor")
        .expect("a next page")
        .to_string();
    let link = first.header("link").unwrap();
    assert!(
        link.contains(&format!("cursor={cursor}")) && link.ends_with("rel=\"next\""),
        "{link}"
    );

    let second = server
        .get(&format!("{MEMORIES}?limit=2&cursor={cursor}"), &alice.key)
        .await;
    assert_eq!(
        ids(&second),
        vec![id(4), id(2)],
        "the edited memory comes last"
    );
    assert!(second.header("x-next-cursor").is_none(), "the last page");
    assert!(second.header("link").is_none());
    let edited_at = second.body[1]["updated_at"].as_str().unwrap();
    assert_eq!(edited_at, edited.body["updated_at"].as_str().unwrap());
}

async fn bad_feed_parameters_are_refused_clearly(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    for path in [
        MEMORIES,
        "/v1/dev/user/action-items",
        "/v1/dev/user/conversations",
        "/v1/dev/user/goals",
        "/v1/dev/user/folders",
    ] {
        server
            .get(&format!("{path}?updated_since=yesterday"), &alice.key)
            .await
            .assert_error(
                422,
                "Validation error: updated_since must be an RFC 3339 date-time",
            );
        server
            .get(&format!("{path}?cursor=not-a-cursor"), &alice.key)
            .await
            .assert_error(400, "Invalid cursor");
    }
    let deletions = "/v1/dev/user/deletions";
    server
        .get(&format!("{deletions}?since=soon"), &alice.key)
        .await
        .assert_error(422, "Validation error: since must be an RFC 3339 date-time");
    server
        .get(&format!("{deletions}?cursor=zz"), &alice.key)
        .await
        .assert_error(400, "Invalid cursor");
    server
        .get(&format!("{deletions}?types=memory,folder"), &alice.key)
        .await
        .assert_error(400, "Invalid type: folder");
}

async fn deletions_leave_tombstones_the_key_may_read(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let memory = server
        .post(MEMORIES, &alice.key, json!({"content": "Short-lived"}))
        .await;
    let memory_id = memory.body["id"].as_str().unwrap().to_string();
    let item = server
        .post(
            "/v1/dev/user/action-items",
            &alice.key,
            json!({"description": "Gone soon"}),
        )
        .await;
    let item_id = item.body["id"].as_str().unwrap().to_string();
    let conversation = server
        .post(
            "/v1/dev/user/conversations",
            &alice.key,
            json!({"text": "We must send the report by Friday."}),
        )
        .await;
    let conversation_id = conversation.body["id"].as_str().unwrap().to_string();
    let spare = server.create_key(&alice, "spare", None).await;
    let spare_id = spare.body["id"].as_str().unwrap().to_string();
    for path in [
        format!("{MEMORIES}/{memory_id}"),
        format!("/v1/dev/user/action-items/{item_id}"),
        format!("/v1/dev/user/conversations/{conversation_id}"),
    ] {
        assert_eq!(server.delete(&path, &alice.key).await.status, 200, "{path}");
    }
    assert_eq!(
        server
            .delete(&format!("/v1/dev/keys/{spare_id}"), &alice.account_token)
            .await
            .status,
        204
    );

    let all = server.get("/v1/dev/user/deletions", &alice.key).await;
    assert_eq!(all.status, 200, "{all:?}");
    let seen: Vec<(String, String)> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_string(),
                t["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("memory".to_string(), memory_id.clone()),
            ("action_item".to_string(), item_id.clone()),
            ("conversation".to_string(), conversation_id.clone()),
            ("key".to_string(), spare_id),
        ]
    );
    let keys: Vec<&str> = all.body[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, crate::common::sorted(&["type", "id", "deleted_at"]));
    assert_eq!(
        server.get("/v1/dev/user/deletions", &bob.key).await.body,
        json!([])
    );

    // A key reads the tombstones of what its scopes read; asking for more is a 403.
    let memories_only = server.key_with(&alice, &["memories:read"]).await;
    let visible = server.get("/v1/dev/user/deletions", &memories_only).await;
    let types: Vec<&str> = visible
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["memory", "key"]);
    assert_eq!(
        server
            .get("/v1/dev/user/deletions?types=conversation", &memories_only)
            .await
            .status,
        403
    );

    // Paging and type filters.
    let first = server
        .get(
            "/v1/dev/user/deletions?limit=1&types=memory,conversation",
            &alice.key,
        )
        .await;
    assert_eq!(first.body.as_array().unwrap().len(), 1);
    let cursor = first.header("x-next-cursor").unwrap().to_string();
    let second = server
        .get(
            &format!("/v1/dev/user/deletions?limit=1&types=memory,conversation&cursor={cursor}"),
            &alice.key,
        )
        .await;
    assert_eq!(second.body[0]["id"], conversation_id.as_str());
    assert!(second.header("x-next-cursor").is_none());

    // The same content again is the same memory: it exists, so it is no longer deleted.
    server
        .post(MEMORIES, &alice.key, json!({"content": "Short-lived"}))
        .await;
    let after = server
        .get("/v1/dev/user/deletions?types=memory", &alice.key)
        .await;
    assert_eq!(after.body, json!([]));
}

async fn every_object_carries_updated_at_and_conversations_change_with_their_items(
    backend: Backend,
) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let created = server
        .post(
            "/v1/dev/user/conversations",
            &alice.key,
            json!({"text": "We must send the report by Friday and call the bank."}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let before = server
        .get(&format!("/v1/dev/user/conversations/{id}"), &alice.key)
        .await
        .body;
    assert!(before["updated_at"].is_string(), "{before}");
    let item = before["structured"]["action_items"][0]["id"]
        .as_str()
        .expect("an extracted item")
        .to_string();
    let patched = server
        .patch(
            &format!("/v1/dev/user/action-items/{item}"),
            &alice.key,
            json!({"completed": true}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let after = server
        .get(&format!("/v1/dev/user/conversations/{id}"), &alice.key)
        .await
        .body;
    assert_eq!(after["updated_at"], patched.body["updated_at"], "{after}");
    let folders: Value = server.get("/v1/dev/user/folders", &alice.key).await.body;
    assert!(
        folders
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["updated_at"].is_string())
    );
}

crate::backend_tests!(
    a_mirror_following_the_feeds_equals_the_server_after_random_writes,
    updated_since_is_inclusive_and_cursors_page_in_change_order,
    bad_feed_parameters_are_refused_clearly,
    deletions_leave_tombstones_the_key_may_read,
    every_object_carries_updated_at_and_conversations_change_with_their_items,
);
