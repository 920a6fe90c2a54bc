//! Folders (API.md §6): the three system folders, created with the first kept conversation,
//! with live counts that follow discarding, restoring and deleting.

use serde_json::{Value, json};

use crate::common::{TestServer, TestUser};

const FOLDERS: &str = "/v1/dev/user/folders";
const CONVERSATIONS: &str = "/v1/dev/user/conversations";

async fn create(server: &TestServer, user: &TestUser, text: &str) -> String {
    let reply = server
        .post(CONVERSATIONS, &user.key, json!({"text": text}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn counts(server: &TestServer, user: &TestUser) -> Vec<(String, i64)> {
    let reply = server.get(FOLDERS, &user.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["conversation_count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn named(counts: &[(i64, i64, i64)]) -> Vec<(String, i64)> {
    let (work, personal, social) = counts[0];
    vec![
        ("Work".to_string(), work),
        ("Personal".to_string(), personal),
        ("Social".to_string(), social),
    ]
}

const PERSONAL_TEXT: &str = "I need to call the dentist tomorrow about my crown.";
const WORK_TEXT: &str = "The quarterly budget review with the finance team covered revenue, invoices and the investor pitch.";

#[tokio::test]
async fn the_system_folders_appear_with_the_first_kept_conversation() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    assert_eq!(server.get(FOLDERS, &alice.key).await.body, json!([]));

    let id = create(&server, &alice, PERSONAL_TEXT).await;
    let reply = server.get(FOLDERS, &alice.key).await;
    let folders = reply.body.as_array().unwrap();
    assert_eq!(folders.len(), 3);
    let shape: Vec<(&str, &str, &str, i64, bool, bool)> = folders
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["icon"].as_str().unwrap(),
                f["color"].as_str().unwrap(),
                f["order"].as_i64().unwrap(),
                f["is_system"].as_bool().unwrap(),
                f["is_default"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("Work", "💼", "#3B82F6", 0, true, false),
            ("Personal", "👤", "#10B981", 1, true, true),
            ("Social", "👥", "#8B5CF6", 2, true, false),
        ]
    );
    let keys: Vec<&str> = folders[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        crate::common::sorted(&[
            "id",
            "name",
            "description",
            "color",
            "icon",
            "created_at",
            "updated_at",
            "order",
            "is_default",
            "is_system",
            "conversation_count"
        ])
    );
    let conversation = server
        .get(&format!("{CONVERSATIONS}/{id}"), &alice.key)
        .await
        .body;
    assert_eq!(conversation["folder_id"], folders[1]["id"]);
    assert_eq!(counts(&server, &alice).await, named(&[(0, 1, 0)]));
}

#[tokio::test]
async fn counts_follow_discarding_restoring_and_deleting() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let personal = create(&server, &alice, PERSONAL_TEXT).await;
    let work = create(&server, &alice, WORK_TEXT).await;
    let work_conversation = server
        .get(&format!("{CONVERSATIONS}/{work}"), &alice.key)
        .await
        .body;
    assert_eq!(
        work_conversation["folder_name"], "Work",
        "{work_conversation}"
    );
    assert_eq!(counts(&server, &alice).await, named(&[(1, 1, 0)]));

    let path = format!("{CONVERSATIONS}/{personal}");
    server
        .patch(&path, &alice.key, json!({"discarded": true}))
        .await;
    assert_eq!(counts(&server, &alice).await, named(&[(1, 0, 0)]));
    server
        .patch(&path, &alice.key, json!({"discarded": false}))
        .await;
    assert_eq!(counts(&server, &alice).await, named(&[(1, 1, 0)]));
    assert_eq!(server.delete(&path, &alice.key).await.status, 200);
    assert_eq!(counts(&server, &alice).await, named(&[(1, 0, 0)]));
}

#[tokio::test]
async fn folders_belong_to_one_user() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    create(&server, &alice, PERSONAL_TEXT).await;
    create(&server, &bob, WORK_TEXT).await;
    assert_eq!(counts(&server, &alice).await, named(&[(0, 1, 0)]));
    assert_eq!(counts(&server, &bob).await, named(&[(1, 0, 0)]));
    let ids = |reply: Value| -> Vec<String> {
        reply
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect()
    };
    let alices = ids(server.get(FOLDERS, &alice.key).await.body);
    let bobs = ids(server.get(FOLDERS, &bob.key).await.body);
    assert!(alices.iter().all(|id| !bobs.contains(id)));
}

#[tokio::test]
async fn concurrent_first_conversations_create_the_folders_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let replies = futures::future::join_all(
        (0..6).map(|_| server.post(CONVERSATIONS, &alice.key, json!({"text": PERSONAL_TEXT}))),
    )
    .await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(counts(&server, &alice).await, named(&[(0, 6, 0)]));
}
