//! Search and ask (API.md §13.A, §13.B): literal routes, shapes, ranking, isolation, the index
//! following deletes at once, and the contract's answers to bad input.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, TestServer, TestUser};
use crate::fake_llm::{FakeLlm, FakeReply};

const MEMORIES: &str = "/v1/dev/user/memories";
const MEMORY_SEARCH: &str = "/v1/dev/user/memories/search";
const VECTOR_SEARCH: &str = "/v1/dev/user/memories/vector/search";
const CONVERSATIONS: &str = "/v1/dev/user/conversations";
const CONVERSATION_SEARCH: &str = "/v1/dev/user/conversations/search";
const ACTION_ITEMS: &str = "/v1/dev/user/action-items";
const ACTION_ITEM_SEARCH: &str = "/v1/dev/user/action-items/search";
const ASK: &str = "/v1/dev/user/ask";

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn memory(server: &TestServer, user: &TestUser, content: &str) -> String {
    let reply = server
        .post(MEMORIES, &user.key, json!({"content": content}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn conversation(
    server: &TestServer,
    user: &TestUser,
    text: &str,
    started_at: &str,
) -> String {
    let reply = server
        .post(
            CONVERSATIONS,
            &user.key,
            json!({"text": text, "started_at": started_at}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn search(server: &TestServer, key: &str, path: &str, params: &str) -> Vec<Value> {
    let reply = server.get(&format!("{path}?{params}"), key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-search-mode"), Some("lexical"));
    reply.body.as_array().expect("a list").clone()
}

async fn memory_search_ranks_the_exact_phrase_first_and_sees_only_the_owner(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let exact = memory(&server, &alice, "Alex is allergic to peanuts").await;
    memory(
        &server,
        &alice,
        "Peanut sauce recipe; allergic guests should skip it",
    )
    .await;
    memory(&server, &alice, "Prefers window seats on long flights").await;
    let bobs = memory(&server, &bob, "Bob is allergic to peanuts as well").await;

    let hits = search(
        &server,
        &alice.key,
        MEMORY_SEARCH,
        &format!("query={}", encode("allergic to peanuts")),
    )
    .await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0]["memory"]["id"], exact.as_str());
    assert_eq!(hits[0]["score"], 1.0);
    let second = hits[1]["score"].as_f64().unwrap();
    assert!(second > 0.0 && second < 1.0, "{hits:?}");
    assert!(hits.iter().all(|hit| hit["memory"]["id"] != bobs.as_str()));
    assert_eq!(hits[0]["memory"]["content"], "Alex is allergic to peanuts");
    assert!(
        hits[0]["memory"]["scoring"].is_string(),
        "the whole memory object"
    );

    let limited = search(&server, &alice.key, MEMORY_SEARCH, "query=peanuts&limit=1").await;
    assert_eq!(limited.len(), 1);
    let paged = search(
        &server,
        &alice.key,
        MEMORY_SEARCH,
        "query=peanuts&limit=1&offset=1",
    )
    .await;
    assert_eq!(paged.len(), 1);
    assert_ne!(paged[0]["memory"]["id"], limited[0]["memory"]["id"]);
    assert!(
        search(
            &server,
            &alice.key,
            MEMORY_SEARCH,
            "query=peanuts&categories=interesting"
        )
        .await
        .is_empty()
    );
    assert!(
        search(&server, &alice.key, MEMORY_SEARCH, "query=zebra")
            .await
            .is_empty()
    );

    let reply = server
        .get(
            &format!("{VECTOR_SEARCH}?query={}", encode("peanut allergy")),
            &alice.key,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-search-mode"), Some("lexical"));
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(reply.body["returned_count"], items.len());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["relevance_score"], 1.0);
    assert!(items[0]["content"].is_string() && items[0]["category"].is_string());
    assert_eq!(reply.body["archive_default_visible"], false);
    assert_eq!(
        reply.body["policy"],
        json!({"consumer": "developer_api", "app_has_default_memory_grant": true,
               "archive_capability": false, "raw_provenance_capability": false})
    );

    // A delete leaves the index at once.
    assert_eq!(
        server
            .delete(&format!("{MEMORIES}/{exact}"), &alice.key)
            .await
            .status,
        200
    );
    let after = search(&server, &alice.key, MEMORY_SEARCH, "query=allergic").await;
    assert_eq!(after.len(), 1);
    assert_ne!(after[0]["memory"]["id"], exact.as_str());
    // An edit too.
    let window = after[0]["memory"]["id"].as_str().unwrap().to_string();
    let edited = server
        .patch(
            &format!("{MEMORIES}/{window}"),
            &alice.key,
            json!({"content": "Satay is fine now"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert!(
        search(&server, &alice.key, MEMORY_SEARCH, "query=allergic")
            .await
            .is_empty()
    );
    assert_eq!(
        search(&server, &alice.key, MEMORY_SEARCH, "query=satay")
            .await
            .len(),
        1
    );
}

async fn search_routes_check_their_input(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let long = "a".repeat(10_000);
    for path in [
        MEMORY_SEARCH,
        VECTOR_SEARCH,
        CONVERSATION_SEARCH,
        ACTION_ITEM_SEARCH,
    ] {
        server
            .get(path, &alice.key)
            .await
            .assert_error(422, "Validation error: query is required");
        for blank in ["", "%20%20", "%09"] {
            server
                .get(&format!("{path}?query={blank}"), &alice.key)
                .await
                .assert_error(422, "query cannot be empty");
        }
        server
            .get(&format!("{path}?query={long}"), &alice.key)
            .await
            .assert_error(
                422,
                "Validation error: query must be at most 500 characters",
            );
        server
            .get(&format!("{path}?query=x&limit=lots"), &alice.key)
            .await
            .assert_error(422, "Validation error: limit must be an integer");
        // Query syntax of either engine is plain text, never an error.
        for text in [
            "NEAR(a",
            "\"unclosed",
            "a:b OR -c*",
            "' OR 1=1 --",
            "!!!",
            "<->",
            "&|!",
        ] {
            let reply = server
                .get(
                    &format!("{path}?query={}&limit=1000", encode(text)),
                    &alice.key,
                )
                .await;
            assert_eq!(reply.status, 200, "{text}: {reply:?}");
        }
    }
    server
        .get(
            &format!("{MEMORY_SEARCH}?query=x&categories=system,nope"),
            &alice.key,
        )
        .await
        .assert_error(400, "Invalid category: nope");
    server
        .get(
            &format!("{CONVERSATION_SEARCH}?query=x&start_date=2026-01-01T00:00:00.900Z&end_date=2026-01-01T00:00:00.100Z"),
            &alice.key,
        )
        .await
        .assert_error(422, "Validation error: start_date must not be after end_date");
    let same_day = server
        .get(
            &format!(
                "{CONVERSATION_SEARCH}?query=x&start_date=2026-01-01T10:00:00Z&end_date=2026-01-01"
            ),
            &alice.key,
        )
        .await;
    assert_eq!(
        same_day.status, 200,
        "a bare end date includes its whole day"
    );
    server
        .get(
            &format!("{CONVERSATION_SEARCH}?query=x&start_date=yesterday"),
            &alice.key,
        )
        .await
        .assert_error(
            422,
            "Validation error: start_date must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
        );
    server
        .get(
            &format!("{ACTION_ITEM_SEARCH}?query=x&completed=maybe"),
            &alice.key,
        )
        .await
        .assert_error(
            422,
            "Validation error: completed must be a boolean (true or false)",
        );
}

async fn search_paths_are_literal_and_scoped(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    for (path, scope, other) in [
        (MEMORY_SEARCH, "memories:read", "conversations:read"),
        (VECTOR_SEARCH, "memories:read", "conversations:read"),
        (CONVERSATION_SEARCH, "conversations:read", "memories:read"),
        (ACTION_ITEM_SEARCH, "action_items:read", "memories:read"),
    ] {
        for method in [Method::PATCH, Method::DELETE, Method::POST] {
            let reply = server
                .call(
                    method.clone(),
                    path,
                    Some(&alice.key),
                    Some(json!({"title": "x"})),
                )
                .await;
            reply.assert_error(405, "Method Not Allowed");
            // HEAD comes with every GET route.
            assert_eq!(reply.header("allow"), Some("GET,HEAD"), "{method} {path}");
        }
        let wrong = server.key_with(&alice, &[other]).await;
        server
            .get(&format!("{path}?query=x"), &wrong)
            .await
            .assert_error(
                403,
                &format!("Insufficient permissions. Required scope: {scope}"),
            );
        let right = server.key_with(&alice, &[scope]).await;
        assert_eq!(
            server.get(&format!("{path}?query=x"), &right).await.status,
            200
        );
    }
    let reply = server.call(Method::GET, ASK, Some(&alice.key), None).await;
    assert_eq!(reply.status, 405, "{reply:?}");
    let memories_only = server.key_with(&alice, &["memories:read"]).await;
    server
        .post(ASK, &memories_only, json!({"question": "x"}))
        .await
        .assert_error(
            403,
            "Insufficient permissions. Required scope: conversations:read",
        );
}

async fn conversation_and_action_item_search_find_the_users_own(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let old = conversation(
        &server,
        &alice,
        "We reviewed the kangaroo enclosure budget with the zoo director. The kangaroo enclosure needs a new fence before spring.",
        "2026-03-02T10:00:00Z",
    )
    .await;
    let new = conversation(
        &server,
        &alice,
        "Planning the family trip to Lisbon. We will book the hotel near the river and visit the aquarium.",
        "2026-04-10T10:00:00Z",
    )
    .await;
    conversation(
        &server,
        &bob,
        "Bob talked about the kangaroo enclosure too.",
        "2026-03-02T10:00:00Z",
    )
    .await;

    let hits = search(
        &server,
        &alice.key,
        CONVERSATION_SEARCH,
        "query=kangaroo%20enclosure",
    )
    .await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["conversation"]["id"], old.as_str());
    assert_eq!(hits[0]["score"], 1.0);
    assert_eq!(hits[0]["conversation"]["transcript_segments"], Value::Null);
    assert!(hits[0]["conversation"]["folder_name"].is_string());
    assert!(hits[0]["conversation"]["structured"]["title"].is_string());
    let lisbon = search(
        &server,
        &alice.key,
        CONVERSATION_SEARCH,
        "query=aquarium&start_date=2026-04-01&end_date=2026-04-30",
    )
    .await;
    assert_eq!(lisbon.len(), 1);
    assert_eq!(lisbon[0]["conversation"]["id"], new.as_str());
    assert!(
        search(
            &server,
            &alice.key,
            CONVERSATION_SEARCH,
            "query=aquarium&end_date=2026-04-09"
        )
        .await
        .is_empty()
    );

    // Discarding and deleting take a conversation out at once.
    let discarded = server
        .patch(
            &format!("{CONVERSATIONS}/{new}"),
            &alice.key,
            json!({"discarded": true}),
        )
        .await;
    assert_eq!(discarded.status, 200, "{discarded:?}");
    assert!(
        search(&server, &alice.key, CONVERSATION_SEARCH, "query=aquarium")
            .await
            .is_empty()
    );
    assert_eq!(
        server
            .delete(&format!("{CONVERSATIONS}/{old}"), &alice.key)
            .await
            .status,
        200
    );
    assert!(
        search(&server, &alice.key, CONVERSATION_SEARCH, "query=kangaroo")
            .await
            .is_empty()
    );

    let items = server
        .post(
            &format!("{ACTION_ITEMS}/batch"),
            &alice.key,
            json!({"action_items": [
                {"description": "Renew the passport before the trip"},
                {"description": "Book the passport photo", "completed": true},
                {"description": "Water the plants"}
            ]}),
        )
        .await;
    assert_eq!(items.status, 200, "{items:?}");
    server
        .post(
            ACTION_ITEMS,
            &bob.key,
            json!({"description": "Bob's passport"}),
        )
        .await;
    let found = search(&server, &alice.key, ACTION_ITEM_SEARCH, "query=passport").await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|hit| {
        hit["action_item"]["description"]
            .as_str()
            .unwrap()
            .contains("passport")
    }));
    assert!(found[0]["score"].as_f64().unwrap() <= 1.0);
    let open = search(
        &server,
        &alice.key,
        ACTION_ITEM_SEARCH,
        "query=passport&completed=false",
    )
    .await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0]["action_item"]["description"],
        "Renew the passport before the trip"
    );
}

async fn ask_answers_from_the_users_own_conversations_offline(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let pricing = conversation(
        &server,
        &alice,
        "In the pricing sync we decided to raise prices by ten percent starting in January. Marketing will announce the pricing change in December.",
        "2026-07-20T09:00:00Z",
    )
    .await;
    conversation(
        &server,
        &alice,
        "Talked with Sam about the garden and the tomatoes.",
        "2026-07-21T09:00:00Z",
    )
    .await;
    let bobs = conversation(
        &server,
        &bob,
        "Bob decided on pricing for his bakery.",
        "2026-07-20T09:00:00Z",
    )
    .await;

    let reply = server
        .post(
            ASK,
            &alice.key,
            json!({"question": "What did we decide about pricing?", "limit": 5, "timezone": "UTC"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-omi-answer-mode"), Some("extractive"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let sources = reply.body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{reply:?}");
    assert_eq!(sources[0]["id"], pricing.as_str());
    assert!(sources[0]["title"].is_string());
    assert!(sources[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(sources.iter().all(|s| s["id"] != bobs.as_str()));
    let answer = reply.body["answer"].as_str().unwrap();
    assert!(
        answer.starts_with("Here is what I found in your conversations:\n- "),
        "{answer}"
    );
    assert!(
        answer.contains("[1]") && !answer.contains("[2]"),
        "{answer}"
    );

    let none = server
        .post(ASK, &alice.key, json!({"question": "submarine voyages"}))
        .await;
    assert_eq!(none.status, 200);
    assert_eq!(
        none.body,
        json!({"answer": "I couldn't find anything in your conversations about that.", "sources": []})
    );

    // A relative date limits retrieval to that local day.
    let dated = server
        .post(
            ASK,
            &alice.key,
            json!({"question": "What did we decide about pricing on July 21?"}),
        )
        .await;
    assert_eq!(dated.status, 200);

    for (body, detail) in [
        (json!({"question": "   "}), "question cannot be empty"),
        (json!({"question": ""}), "question cannot be empty"),
        (
            json!({"question": "x".repeat(1001)}),
            "Validation error: question must be at most 1000 characters",
        ),
        (
            json!({"question": "x", "limit": 0}),
            "Validation error: limit must be between 1 and 10",
        ),
        (
            json!({"question": "x", "limit": 11}),
            "Validation error: limit must be between 1 and 10",
        ),
        (
            json!({"question": "x", "timezone": "Not/Real"}),
            "Validation error: timezone must be an IANA time zone name",
        ),
        (json!({}), "Validation error: question is required"),
    ] {
        server
            .post(ASK, &alice.key, body)
            .await
            .assert_error(422, detail);
    }
}

async fn ask_with_a_model_cites_only_real_sources_and_falls_back(backend: Backend) {
    let fake = FakeLlm::start(|request| {
        if request.system().starts_with("You answer a user's question") {
            assert!(request.user().contains("[1] "), "{}", request.user());
            FakeReply::json(json!({"answer": "You will raise prices by 10% in January [1][4]."}))
        } else {
            FakeReply::Status(500)
        }
    })
    .await;
    let base_url = fake.base_url.clone();
    let server = TestServer::start_on_with(backend, move |s| {
        s.llm_base_url = Some(base_url);
        s.llm_model = Some("test-model".to_string());
        s.llm_timeout_ms = 10_000;
    })
    .await;
    let alice = server.user("alice").await;
    let id = conversation(
        &server,
        &alice,
        "In the pricing sync we decided to raise prices by ten percent starting in January.",
        "2026-07-20T09:00:00Z",
    )
    .await;
    let reply = server
        .post(
            ASK,
            &alice.key,
            json!({"question": "When do prices go up?"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-omi-answer-mode"), Some("llm"));
    assert_eq!(
        reply.body["answer"],
        "You will raise prices by 10% in January [1]."
    );
    assert_eq!(reply.body["sources"][0]["id"], id.as_str());

    // No hit: the model is not asked.
    let asked = fake.received().len();
    let none = server
        .post(ASK, &alice.key, json!({"question": "submarine"}))
        .await;
    assert_eq!(none.body["sources"], json!([]));
    assert_eq!(fake.received().len(), asked);

    // A model that fails leaves the extractive answer.
    let failing = FakeLlm::start(|_| FakeReply::Status(500)).await;
    let failing_url = failing.base_url.clone();
    let server = TestServer::start_on_with(backend, move |s| {
        s.llm_base_url = Some(failing_url);
        s.llm_model = Some("test-model".to_string());
    })
    .await;
    let alice = server.user("alice").await;
    conversation(
        &server,
        &alice,
        "We decided to raise prices in January.",
        "2026-07-20T09:00:00Z",
    )
    .await;
    let reply = server
        .post(ASK, &alice.key, json!({"question": "prices"}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-omi-answer-mode"), Some("extractive"));
    assert!(reply.body["answer"].as_str().unwrap().contains("[1]"));
}

async fn ask_has_its_own_hourly_limit_per_key(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.ask_rate_limit_per_hour = 2).await;
    let alice = server.user("alice").await;
    for _ in 0..2 {
        let reply = server
            .post(ASK, &alice.key, json!({"question": "pricing"}))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let refused = server
        .post(ASK, &alice.key, json!({"question": "pricing"}))
        .await;
    assert_eq!(refused.status, 429, "{refused:?}");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    assert_eq!(
        refused.detail(),
        format!("Rate limit exceeded. Try again in {retry}s.")
    );
    // Another key, and other routes, are not held back.
    let other = server.key_with(&alice, &["conversations:read"]).await;
    assert_eq!(
        server
            .post(ASK, &other, json!({"question": "pricing"}))
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .get(&format!("{CONVERSATION_SEARCH}?query=x"), &alice.key)
            .await
            .status,
        200
    );
}

async fn search_answers_during_concurrent_writes_and_sees_every_commit(backend: Backend) {
    let server = std::sync::Arc::new(TestServer::start_on(backend).await);
    let alice = server.user("alice").await;
    let key = alice.key.clone();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let server = server.clone();
            let key = key.clone();
            tokio::spawn(async move {
                for batch in 0..5 {
                    let memories: Vec<Value> = (0..10)
                        .map(|n| json!({"content": format!("Walrus sighting {writer}-{batch}-{n} at the pier")}))
                        .collect();
                    let reply = server
                        .post(&format!("{MEMORIES}/batch"), &key, json!({"memories": memories}))
                        .await;
                    assert_eq!(reply.status, 200, "{reply:?}");
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..20 {
                    let hits = search(
                        &server,
                        &key,
                        MEMORY_SEARCH,
                        "query=walrus%20pier&limit=100",
                    )
                    .await;
                    // Commits only add matches: a later search never sees fewer.
                    assert!(hits.len() >= last, "{} after {last}", hits.len());
                    last = hits.len();
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.unwrap();
    }
    let all = search(&server, &key, MEMORY_SEARCH, "query=walrus&limit=100").await;
    assert_eq!(all.len(), 100);
}

crate::backend_tests!(
    search_answers_during_concurrent_writes_and_sees_every_commit,
    ask_has_its_own_hourly_limit_per_key,
    memory_search_ranks_the_exact_phrase_first_and_sees_only_the_owner,
    search_routes_check_their_input,
    search_paths_are_literal_and_scoped,
    conversation_and_action_item_search_find_the_users_own,
    ask_answers_from_the_users_own_conversations_offline,
    ask_with_a_model_cites_only_real_sources_and_falls_back,
);
