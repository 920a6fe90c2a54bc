//! Memories (API.md §3, with the rules of §1 and §11 that apply).

use serde_json::{Value, json};

use crate::common::{Reply, TestServer};

const MEMORIES: &str = "/v1/dev/user/memories";
const BATCH: &str = "/v1/dev/user/memories/batch";

fn memory_path(id: &str) -> String {
    format!("{MEMORIES}/{id}")
}

async fn create(server: &TestServer, key: &str, body: Value) -> Value {
    let reply = server.post(MEMORIES, key, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn create_batch(server: &TestServer, key: &str, items: Value) -> Reply {
    server.post(BATCH, key, json!({ "memories": items })).await
}

async fn list(server: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let reply = server.get(&format!("{MEMORIES}{query}"), key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.as_array().expect("a list").clone()
}

fn ids(memories: &[Value]) -> Vec<String> {
    memories
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn id_of(memory: &Value) -> String {
    memory["id"].as_str().unwrap().to_string()
}

fn instant(timestamp: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(timestamp.as_str().unwrap()).unwrap()
}

/// Seconds since the epoch of a returned timestamp.
fn unix_seconds(timestamp: &Value) -> i64 {
    instant(timestamp).timestamp()
}

// ---- create ----

#[tokio::test]
async fn creating_a_memory_returns_it_with_the_api_defaults_and_a_content_derived_id() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(
        &server,
        &alice.key,
        json!({"content": "  Alex is allergic to peanuts \n"}),
    )
    .await;
    assert_eq!(memory["id"], "477c0cb7-2fbd-4550-850e-e8ef054476d1");
    assert_eq!(memory["content"], "Alex is allergic to peanuts");
    assert_eq!(memory["category"], "system");
    assert_eq!(memory["visibility"], "private");
    assert_eq!(memory["tags"], json!([]));
    assert_eq!(memory["manually_added"], true);
    assert_eq!(memory["reviewed"], true);
    assert_eq!(memory["user_review"], true);
    assert_eq!(memory["edited"], false);
    assert_eq!(memory["conversation_id"], Value::Null);
    assert!(memory["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(memory["created_at"], memory["updated_at"]);
    assert_eq!(
        memory["scoring"],
        format!("01_999_{:010}", unix_seconds(&memory["created_at"]))
    );
    let fetched = server.get(&memory_path(&id_of(&memory)), &alice.key).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, memory);
}

#[tokio::test]
async fn given_fields_are_stored_and_legacy_categories_become_system() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(
        &server,
        &alice.key,
        json!({"content": "Alex journals daily", "category": "workflow",
               "visibility": "public", "tags": [" habits ", "writing"]}),
    )
    .await;
    assert_eq!(memory["category"], "workflow");
    assert_eq!(memory["visibility"], "public");
    assert_eq!(memory["tags"], json!(["habits", "writing"]));
    assert!(memory["scoring"].as_str().unwrap().starts_with("01_998_"));

    for legacy in ["hobbies", "core", "auto", "other"] {
        let memory = create(
            &server,
            &alice.key,
            json!({"content": format!("Alex likes {legacy}"), "category": legacy}),
        )
        .await;
        assert_eq!(memory["category"], "system", "{legacy}");
        assert!(memory["scoring"].as_str().unwrap().starts_with("01_999_"));
    }
}

#[tokio::test]
async fn an_omitted_category_is_interesting_for_attributed_advice_and_system_otherwise() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for (content, category) in [
        (
            "Naval Ravikant: seek wealth, not money or status",
            "interesting",
        ),
        (
            "According to Dr. Lee, sleep matters more than diet",
            "interesting",
        ),
        (
            "Alex's coach says consistency beats intensity",
            "interesting",
        ),
        ("Always back up before upgrading", "interesting"),
        ("Alex works at Acme as a designer", "system"),
        ("Alex's sister is called Maya", "system"),
    ] {
        let memory = create(&server, &alice.key, json!({ "content": content })).await;
        assert_eq!(memory["category"], category, "{content}");
    }
}

#[tokio::test]
async fn a_null_optional_field_on_create_takes_the_default() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(
        &server,
        &alice.key,
        json!({"content": "Alex is left-handed", "category": null, "visibility": null, "tags": null}),
    )
    .await;
    assert_eq!(memory["category"], "system");
    assert_eq!(memory["visibility"], "private");
    assert_eq!(memory["tags"], json!([]));
}

#[tokio::test]
async fn invalid_create_bodies_are_422_with_exact_details() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let cases = [
        (json!({"content": "   \n\t"}), "content cannot be empty"),
        (json!({"content": ""}), "content cannot be empty"),
        (
            json!({"content": "x".repeat(501)}),
            "Validation error: content must be at most 500 characters",
        ),
        (json!({}), "Validation error: content is required"),
        (
            json!({"content": 7}),
            "Validation error: content must be a string",
        ),
        (
            json!({"content": "a", "visibility": "friends"}),
            "visibility must be 'public' or 'private'",
        ),
        (
            json!({"content": "a", "visibility": 1}),
            "visibility must be 'public' or 'private'",
        ),
        (
            json!({"content": "a", "tags": vec!["t"; 51]}),
            "Validation error: tags must have at most 50 items",
        ),
        (
            json!({"content": "a", "tags": ["ok", " "]}),
            "Validation error: tags[1] cannot be empty",
        ),
        (
            json!({"content": "a", "tags": ["t".repeat(101)]}),
            "Validation error: tags[0] must be at most 100 characters",
        ),
        (
            json!({"content": "a", "tags": [3]}),
            "Validation error: tags[0] must be a string",
        ),
        (
            json!({"content": " ", "category": "bogus"}),
            "content cannot be empty",
        ),
    ];
    for (body, detail) in cases {
        server
            .post(MEMORIES, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
    let unknown = server
        .post(
            MEMORIES,
            &alice.key,
            json!({"content": "a", "category": "bogus"}),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .detail()
            .starts_with("Validation error: category must be one of 'interesting', 'system'"),
        "{unknown:?}"
    );
    assert!(
        list(&server, &alice.key, "").await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn the_bounds_themselves_are_accepted() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let content = "é".repeat(500);
    let tags: Vec<String> = (0..50).map(|i| format!("{i:0>100}")).collect();
    let memory = create(
        &server,
        &alice.key,
        json!({"content": format!("  {content}  "), "tags": tags}),
    )
    .await;
    assert_eq!(memory["content"], content);
    assert_eq!(memory["tags"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn creating_the_same_content_twice_keeps_one_memory_with_the_same_id() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let first = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    let second = create(
        &server,
        &alice.key,
        json!({"content": " Alex plays chess "}),
    )
    .await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(
        ids(&list(&server, &alice.key, "").await),
        vec![id_of(&first)]
    );
}

#[tokio::test]
async fn creating_an_existing_content_updates_given_fields_and_keeps_the_rest() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let first = create(
        &server,
        &alice.key,
        json!({"content": "Alex plays chess", "category": "interesting",
               "visibility": "public", "tags": ["games"]}),
    )
    .await;
    let second = create(
        &server,
        &alice.key,
        json!({"content": "Alex plays chess", "tags": ["board games"]}),
    )
    .await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["category"], "interesting");
    assert_eq!(second["visibility"], "public");
    assert_eq!(second["tags"], json!(["board games"]));
    assert_eq!(second["created_at"], first["created_at"]);
    assert!(instant(&second["updated_at"]) > instant(&first["updated_at"]));
    assert_eq!(second["scoring"], first["scoring"]);

    let third = create(
        &server,
        &alice.key,
        json!({"content": "Alex plays chess", "category": "hobbies"}),
    )
    .await;
    assert_eq!(third["category"], "system", "legacy stored as system");
    let first_scoring = first["scoring"].as_str().unwrap();
    assert_eq!(
        third["scoring"],
        format!("01_999_{}", &first_scoring[7..]),
        "BBB follows the category, T stays"
    );
    assert_eq!(
        server
            .get(&memory_path(&id_of(&first)), &alice.key)
            .await
            .body,
        third
    );
}

#[tokio::test]
async fn creating_the_original_content_of_an_edited_memory_updates_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let original = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    let id = id_of(&original);
    let edited = server
        .patch(
            &memory_path(&id),
            &alice.key,
            json!({"content": "Alex plays go"}),
        )
        .await;
    assert_eq!(edited.body["content"], "Alex plays go");
    let recreated = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    assert_eq!(recreated["id"], id);
    assert_eq!(recreated["content"], "Alex plays chess");
    assert_eq!(list(&server, &alice.key, "").await.len(), 1);
}

#[tokio::test]
async fn creating_the_content_of_an_extracted_memory_makes_it_api_provenance() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let id = "477c0cb7-2fbd-4550-850e-e8ef054476d1";
    let created_at = 1_733_483_300_i64;
    {
        let db = rusqlite::Connection::open(server.db_path()).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        db.execute(
            "INSERT INTO memories (user_id, id, content, normalized_content, category,
                 visibility, tags, scoring, manually_added, reviewed, user_review, edited,
                 conversation_id, created_at, updated_at)
             VALUES (?1, ?2, 'Alex is allergic to peanuts', 'alex is allergic to peanuts',
                 'system', 'private', '[]', ?3, 0, 0, NULL, 0, 'conv-1', ?4, ?4)",
            rusqlite::params![
                alice.id,
                id,
                format!("00_999_{created_at:010}"),
                created_at * 1_000_000
            ],
        )
        .unwrap();
    }
    let memory = create(
        &server,
        &alice.key,
        json!({"content": "Alex is allergic to peanuts", "category": "interesting"}),
    )
    .await;
    assert_eq!(memory["id"], id);
    assert_eq!(memory["manually_added"], true);
    assert_eq!(memory["reviewed"], true);
    assert_eq!(memory["user_review"], true);
    assert_eq!(memory["scoring"], format!("01_998_{created_at:010}"));
    assert_eq!(memory["conversation_id"], "conv-1");
    assert_eq!(unix_seconds(&memory["created_at"]), created_at);
}

#[tokio::test]
async fn two_users_with_the_same_content_each_have_their_own_memory() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let a = create(
        &server,
        &alice.key,
        json!({"content": "Likes tea", "tags": ["a"]}),
    )
    .await;
    let b = create(
        &server,
        &bob.key,
        json!({"content": "Likes tea", "tags": ["b"]}),
    )
    .await;
    assert_eq!(a["id"], b["id"], "the id is derived from the content");
    assert_eq!(list(&server, &alice.key, "").await[0]["tags"], json!(["a"]));
    assert_eq!(list(&server, &bob.key, "").await[0]["tags"], json!(["b"]));
    let deleted = server.delete(&memory_path(&id_of(&b)), &bob.key).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(list(&server, &alice.key, "").await.len(), 1);
}

// ---- batch ----

#[tokio::test]
async fn a_batch_creates_every_memory_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = create_batch(
        &server,
        &alice.key,
        json!([
            {"content": "Alex lives in Lisbon"},
            {"content": "Alex is a nurse", "category": "manual", "visibility": "public", "tags": ["work"]},
        ]),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["created_count"], 2);
    let memories = reply.body["memories"].as_array().unwrap();
    assert_eq!(memories[0]["content"], "Alex lives in Lisbon");
    assert_eq!(memories[0]["category"], "system");
    assert_eq!(memories[1]["category"], "manual");
    assert_eq!(memories[1]["tags"], json!(["work"]));
    let mut listed = ids(&list(&server, &alice.key, "").await);
    listed.sort();
    let mut returned = ids(memories);
    returned.sort();
    assert_eq!(listed, returned);
}

#[tokio::test]
async fn an_empty_batch_creates_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = create_batch(&server, &alice.key, json!([])).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"memories": [], "created_count": 0}));
}

#[tokio::test]
async fn identical_contents_in_a_batch_collapse_with_the_last_fields_winning() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = create_batch(
        &server,
        &alice.key,
        json!([
            {"content": "Alex runs", "visibility": "public", "tags": ["first"]},
            {"content": "Alex swims"},
            {"content": "  Alex runs ", "tags": ["last"], "category": "workflow"},
        ]),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["created_count"], 2);
    let memories = reply.body["memories"].as_array().unwrap();
    assert_eq!(memories[0]["content"], "Alex runs");
    assert_eq!(memories[0]["tags"], json!(["last"]));
    assert_eq!(memories[0]["category"], "workflow");
    assert_eq!(
        memories[0]["visibility"], "public",
        "absent later fields keep"
    );
    assert_eq!(memories[1]["content"], "Alex swims");
    assert_eq!(list(&server, &alice.key, "").await.len(), 2);
}

#[tokio::test]
async fn a_batch_counts_memories_that_already_existed() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let existing = create(&server, &alice.key, json!({"content": "Alex runs"})).await;
    let reply = create_batch(
        &server,
        &alice.key,
        json!([{"content": "Alex swims"}, {"content": "Alex runs", "visibility": "public"}]),
    )
    .await;
    assert_eq!(reply.body["created_count"], 2);
    assert_eq!(reply.body["memories"][1]["id"], existing["id"]);
    assert_eq!(reply.body["memories"][1]["visibility"], "public");
    assert_eq!(list(&server, &alice.key, "").await.len(), 2);
}

#[tokio::test]
async fn batch_errors_come_in_the_contract_order_with_exact_details() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let many: Vec<Value> = (0..26)
        .map(|i| json!({"content": format!("m{i}")}))
        .collect();
    create_batch(&server, &alice.key, json!(many))
        .await
        .assert_error(422, "Maximum 25 memories per batch request");

    let mut many_with_blank = many.clone();
    many_with_blank[0] = json!({"content": " "});
    create_batch(&server, &alice.key, json!(many_with_blank))
        .await
        .assert_error(422, "Maximum 25 memories per batch request");

    let cases = [
        (
            json!([{"content": "a"}, {"content": "  "}]),
            "All memories must have non-empty content",
        ),
        (
            json!([{"content": "a"}, {"content": ""}, {}]),
            "All memories must have non-empty content",
        ),
        (
            json!([{"content": "a"}, {}, {"content": ""}]),
            "Validation error: memories[1].content is required",
        ),
        (
            json!([{"content": "x".repeat(501)}, {"content": ""}]),
            "Validation error: memories[0].content must be at most 500 characters",
        ),
        (
            json!([{"content": " ", "tags": vec!["t"; 51]}]),
            "All memories must have non-empty content",
        ),
        (
            json!([{"content": "a"}, {"content": "b", "tags": ["ok", ""]}]),
            "Validation error: memories[1].tags[1] cannot be empty",
        ),
        (
            json!([{"content": "a", "visibility": "friends"}]),
            "visibility must be 'public' or 'private'",
        ),
        (
            json!(["a"]),
            "Validation error: memories[0] must be a JSON object",
        ),
    ];
    for (items, detail) in cases {
        create_batch(&server, &alice.key, items)
            .await
            .assert_error(422, detail);
    }
    server
        .post(BATCH, &alice.key, json!({}))
        .await
        .assert_error(422, "Validation error: memories is required");
    let unknown = create_batch(
        &server,
        &alice.key,
        json!([{"content": "a"}, {"content": "b", "category": "bogus"}]),
    )
    .await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .detail()
            .starts_with("Validation error: memories[1].category must be one of"),
        "{unknown:?}"
    );
    assert!(
        list(&server, &alice.key, "").await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_batch_whose_last_item_is_invalid_writes_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let existing = create(&server, &alice.key, json!({"content": "Alex runs"})).await;
    let mut items: Vec<Value> = (0..24)
        .map(|i| json!({"content": format!("m{i}")}))
        .collect();
    items.insert(0, json!({"content": "Alex runs", "visibility": "public"}));
    let mut invalid = items.clone();
    *invalid.last_mut().unwrap() = json!({"content": "last", "tags": vec!["t"; 51]});
    create_batch(&server, &alice.key, json!(invalid))
        .await
        .assert_error(
            422,
            "Validation error: memories[24].tags must have at most 50 items",
        );
    let listed = list(&server, &alice.key, "").await;
    assert_eq!(listed, vec![existing], "neither new nor updated memories");

    *items.last_mut().unwrap() = json!({"content": "\u{3000}"});
    create_batch(&server, &alice.key, json!(items))
        .await
        .assert_error(422, "All memories must have non-empty content");
    assert_eq!(list(&server, &alice.key, "").await.len(), 1);
}

// ---- list ----

/// 30 memories: 25 sharing one creation time (ties on `scoring` and `created_at`), 5 later.
async fn thirty_memories(server: &TestServer, key: &str) {
    let first: Vec<Value> = (0..25)
        .map(|i| json!({"content": format!("Alex fact {i:02}")}))
        .collect();
    assert_eq!(create_batch(server, key, json!(first)).await.status, 200);
    let second: Vec<Value> = (0..5)
        .map(|i| json!({"content": format!("Alex note {i}"), "category": "interesting"}))
        .collect();
    assert_eq!(create_batch(server, key, json!(second)).await.status, 200);
}

fn sort_key(memory: &Value) -> (String, String, String) {
    let created = instant(&memory["created_at"]).timestamp_micros();
    (
        memory["scoring"].as_str().unwrap().to_string(),
        format!("{created:020}"),
        id_of(memory),
    )
}

#[tokio::test]
async fn lists_are_ordered_by_scoring_then_creation_then_id_all_descending() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    thirty_memories(&server, &alice.key).await;
    let listed = list(&server, &alice.key, "?limit=1000").await;
    assert_eq!(listed.len(), 30);
    let mut expected = listed.clone();
    expected.sort_by_key(|m| std::cmp::Reverse(sort_key(m)));
    assert_eq!(ids(&listed), ids(&expected));
    // The 25 from one batch tie on scoring and created_at: the id decides among them.
    let tied: Vec<&Value> = listed
        .iter()
        .filter(|m| m["content"].as_str().unwrap().starts_with("Alex fact"))
        .collect();
    assert!(
        tied.iter()
            .all(|m| m["created_at"] == tied[0]["created_at"])
    );
    assert!(tied.windows(2).all(|w| id_of(w[0]) > id_of(w[1])));
    // `system` (999) sorts before `interesting` (998).
    assert_eq!(listed[0]["category"], "system");
    assert_eq!(listed[29]["category"], "interesting");
}

#[tokio::test]
async fn paging_through_ties_loses_and_repeats_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    thirty_memories(&server, &alice.key).await;
    let all = ids(&list(&server, &alice.key, "?limit=1000").await);
    let mut paged = Vec::new();
    for offset in (0..35).step_by(7) {
        let page = list(&server, &alice.key, &format!("?limit=7&offset={offset}")).await;
        assert!(page.len() <= 7);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn limit_and_offset_default_and_clamp() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    thirty_memories(&server, &alice.key).await;
    let all = ids(&list(&server, &alice.key, "?limit=1000").await);
    assert_eq!(ids(&list(&server, &alice.key, "").await), all[..25]);
    assert_eq!(ids(&list(&server, &alice.key, "?limit=0").await), all[..1]);
    assert_eq!(ids(&list(&server, &alice.key, "?limit=-5").await), all[..1]);
    assert_eq!(
        ids(&list(&server, &alice.key, "?limit=99999999999999999999").await),
        all
    );
    assert_eq!(
        ids(&list(&server, &alice.key, "?limit=2&offset=-3").await),
        all[..2]
    );
    assert_eq!(
        ids(&list(&server, &alice.key, "?offset=28").await),
        all[28..]
    );
    assert!(
        list(&server, &alice.key, "?offset=99999999999999999999")
            .await
            .is_empty()
    );
    for query in ["?limit=abc", "?limit=1.5", "?limit="] {
        server
            .get(&format!("{MEMORIES}{query}"), &alice.key)
            .await
            .assert_error(422, "Validation error: limit must be an integer");
    }
    server
        .get(&format!("{MEMORIES}?offset=x"), &alice.key)
        .await
        .assert_error(422, "Validation error: offset must be an integer");
}

#[tokio::test]
async fn lists_filter_by_categories() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = create_batch(
        &server,
        &alice.key,
        json!([
            {"content": "a", "category": "system"},
            {"content": "b", "category": "interesting"},
            {"content": "c", "category": "workflow"},
            {"content": "d", "category": "system"},
        ]),
    )
    .await;
    assert_eq!(reply.status, 200);
    let contents = |memories: Vec<Value>| -> Vec<String> {
        let mut contents: Vec<String> = memories
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect();
        contents.sort();
        contents
    };
    assert_eq!(
        contents(list(&server, &alice.key, "?categories=system").await),
        ["a", "d"]
    );
    assert_eq!(
        contents(list(&server, &alice.key, "?categories=interesting,workflow").await),
        ["b", "c"]
    );
    assert_eq!(
        contents(list(&server, &alice.key, "?categories=workflow,%20workflow,").await),
        ["c"]
    );
    assert_eq!(list(&server, &alice.key, "?categories=").await.len(), 4);
    assert!(
        list(&server, &alice.key, "?categories=hobbies")
            .await
            .is_empty()
    );
    let d = &reply.body["memories"][3];
    server
        .patch(
            &memory_path(&id_of(d)),
            &alice.key,
            json!({"category": "hobbies"}),
        )
        .await;
    assert_eq!(
        contents(list(&server, &alice.key, "?categories=hobbies").await),
        ["d"]
    );
    let paged = list(
        &server,
        &alice.key,
        "?categories=system,interesting&limit=1&offset=1",
    )
    .await;
    assert_eq!(paged.len(), 1);
    assert_eq!(paged[0]["content"], "b", "system first, then interesting");

    for (query, value) in [
        ("?categories=bogus", "bogus"),
        ("?categories=system,Bogus", "Bogus"),
    ] {
        server
            .get(&format!("{MEMORIES}{query}"), &alice.key)
            .await
            .assert_error(400, &format!("Invalid category: {value}"));
    }
}

// ---- get, patch, delete ----

#[tokio::test]
async fn unknown_and_impossible_ids_are_not_found() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for id in [
        "0192e8a4-0000-7000-8000-000000000000",
        "not*an*id",
        &"a".repeat(65),
    ] {
        let path = memory_path(id);
        server
            .get(&path, &alice.key)
            .await
            .assert_error(404, "Memory not found");
        server
            .patch(&path, &alice.key, json!({"content": "x"}))
            .await
            .assert_error(404, "Memory not found");
        server
            .delete(&path, &alice.key)
            .await
            .assert_error(404, "Memory not found");
    }
}

#[tokio::test]
async fn patching_changes_given_fields_and_keeps_the_id() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(
        &server,
        &alice.key,
        json!({"content": "Alex plays chess", "tags": ["games"]}),
    )
    .await;
    let path = memory_path(&id_of(&memory));

    let recategorised = server
        .patch(&path, &alice.key, json!({"category": "hobbies"}))
        .await;
    assert_eq!(recategorised.status, 200, "{recategorised:?}");
    assert_eq!(recategorised.body["category"], "hobbies", "stored as given");
    assert_eq!(recategorised.body["edited"], false);
    let t = &memory["scoring"].as_str().unwrap()[7..];
    assert_eq!(recategorised.body["scoring"], format!("01_998_{t}"));
    assert!(instant(&recategorised.body["updated_at"]) > instant(&memory["updated_at"]));

    let habits = server
        .patch(&path, &alice.key, json!({"category": "habits"}))
        .await;
    assert_eq!(habits.body["scoring"], format!("01_999_{t}"));

    let edited = server
        .patch(
            &path,
            &alice.key,
            json!({"content": "  Alex plays go ", "visibility": "public", "tags": []}),
        )
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.body["id"], memory["id"]);
    assert_eq!(edited.body["content"], "Alex plays go");
    assert_eq!(edited.body["edited"], true);
    assert_eq!(edited.body["visibility"], "public");
    assert_eq!(edited.body["tags"], json!([]));
    assert_eq!(edited.body["category"], "habits");
    assert_eq!(edited.body["created_at"], memory["created_at"]);
    assert_eq!(server.get(&path, &alice.key).await.body, edited.body);
}

#[tokio::test]
async fn invalid_patches_are_422_and_change_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    let path = memory_path(&id_of(&memory));
    let nothing = "At least one field (content, visibility, tags, or category) must be provided";
    let cases = [
        (json!({}), nothing),
        (json!({"unknown": 1}), nothing),
        (
            json!({"content": null}),
            "Validation error: content cannot be null",
        ),
        (
            json!({"category": null}),
            "Validation error: category cannot be null",
        ),
        (
            json!({"visibility": null}),
            "Validation error: visibility cannot be null",
        ),
        (
            json!({"tags": null}),
            "Validation error: tags cannot be null",
        ),
        (json!({"content": "  "}), "content cannot be empty"),
        (
            json!({"content": "x".repeat(501)}),
            "Validation error: content must be at most 500 characters",
        ),
        (
            json!({"content": "new", "visibility": "friends"}),
            "visibility must be 'public' or 'private'",
        ),
        (
            json!({"category": "interesting", "tags": vec!["t"; 51]}),
            "Validation error: tags must have at most 50 items",
        ),
        (
            json!({"content": "new", "tags": ["t".repeat(101)]}),
            "Validation error: tags[0] must be at most 100 characters",
        ),
    ];
    for (body, detail) in cases {
        server
            .patch(&path, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
    let unknown = server
        .patch(
            &path,
            &alice.key,
            json!({"content": "new", "category": "bogus"}),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .detail()
            .starts_with("Validation error: category must be one of")
    );
    assert_eq!(
        server.get(&path, &alice.key).await.body,
        memory,
        "unchanged"
    );
}

#[tokio::test]
async fn deleting_a_memory_removes_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    let path = memory_path(&id_of(&memory));
    let deleted = server.delete(&path, &alice.key).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"success": true}));
    server
        .get(&path, &alice.key)
        .await
        .assert_error(404, "Memory not found");
    server
        .delete(&path, &alice.key)
        .await
        .assert_error(404, "Memory not found");
    assert!(list(&server, &alice.key, "").await.is_empty());
}

// ---- isolation and scopes ----

#[tokio::test]
async fn another_users_memories_are_not_found_on_every_route() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let memory = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    create(&server, &bob.key, json!({"content": "Bob plays go"})).await;
    let path = memory_path(&id_of(&memory));
    server
        .get(&path, &bob.key)
        .await
        .assert_error(404, "Memory not found");
    server
        .patch(&path, &bob.key, json!({"content": "mine now"}))
        .await
        .assert_error(404, "Memory not found");
    server
        .delete(&path, &bob.key)
        .await
        .assert_error(404, "Memory not found");
    assert_eq!(server.get(&path, &alice.key).await.body, memory);

    let alices = list(&server, &alice.key, "?limit=1000").await;
    let bobs = list(
        &server,
        &bob.key,
        "?limit=1000&categories=system,interesting",
    )
    .await;
    assert_eq!(ids(&alices), vec![id_of(&memory)]);
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["content"], "Bob plays go");
}

#[tokio::test]
async fn every_route_requires_its_scope() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let memory = create(&server, &alice.key, json!({"content": "Alex plays chess"})).await;
    let path = memory_path(&id_of(&memory));
    let read_only = server
        .key_with(&alice, &["memories:read", "goals:write"])
        .await;
    let write_only = server.key_with(&alice, &["memories:write"]).await;
    let no_memories = server.key_with(&alice, &["conversations:read"]).await;
    let needs_read = "Insufficient permissions. Required scope: memories:read";
    let needs_write = "Insufficient permissions. Required scope: memories:write";

    for key in [&write_only, &no_memories] {
        server
            .get(MEMORIES, key)
            .await
            .assert_error(403, needs_read);
        server.get(&path, key).await.assert_error(403, needs_read);
    }
    for key in [&read_only, &no_memories] {
        // The scope is checked before the body: an invalid body still answers 403.
        server
            .post(MEMORIES, key, json!({"content": ""}))
            .await
            .assert_error(403, needs_write);
        server
            .post(BATCH, key, json!({"memories": []}))
            .await
            .assert_error(403, needs_write);
        server
            .patch(&path, key, json!({"content": "x"}))
            .await
            .assert_error(403, needs_write);
        server
            .delete(&path, key)
            .await
            .assert_error(403, needs_write);
    }
    assert_eq!(server.get(&path, &read_only).await.status, 200);
    assert_eq!(
        server
            .patch(&path, &write_only, json!({"tags": ["x"]}))
            .await
            .status,
        200
    );
    assert_eq!(
        server.get(&path, &alice.key).await.body["tags"],
        json!(["x"])
    );
}
