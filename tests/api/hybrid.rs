//! Hybrid search (API.md §13.A.0 "Engine"): with an embeddings endpoint the search routes and
//! ask fuse full-text and semantic ranks and say `X-Search-Mode: hybrid`; an endpoint that is
//! down, slow or answers another dimension leaves them lexical (logged once, never an error).
//! Vectors follow the objects: embedded in the background, dropped with the object, never
//! another user's, and made again when the model changes.

use std::time::{Duration, Instant};

use omi_server::store::vectors::VectorKind;
use serde_json::{Value, json};

use crate::common::{Backend, TestServer, TestUser};
use crate::fake_embeddings::{Behaviour, FakeEmbeddings};

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

/// A server on `backend` whose embeddings come from `fake` under `model`.
async fn server_with(
    backend: Backend,
    fake: &FakeEmbeddings,
    model: &str,
    timeout_ms: u64,
) -> TestServer {
    let base_url = fake.base_url.clone();
    let model = model.to_string();
    TestServer::start_on_with(backend, move |settings| {
        settings.embeddings_base_url = Some(base_url);
        settings.embeddings_model = Some(model);
        settings.embeddings_timeout_ms = timeout_ms;
        settings.embeddings_min_similarity = 0.3;
    })
    .await
}

/// Waits (at most 20 s) until the embedding worker has queued what it found at start and
/// emptied its queue.
async fn embedded(server: &TestServer) {
    let start = Instant::now();
    let prepared = match &server.state.retrieval.semantic {
        Some(semantic) => semantic.queue_prepared.clone(),
        None => return,
    };
    loop {
        let backlog = server.state.store.vector_backlog().await.unwrap();
        if backlog == 0 && prepared.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{backlog} objects still wait for a vector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn memory(server: &TestServer, user: &TestUser, content: &str) -> String {
    let reply = server
        .post(MEMORIES, &user.key, json!({"content": content}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn conversation(server: &TestServer, user: &TestUser, text: &str) -> String {
    let reply = server
        .post(
            CONVERSATIONS,
            &user.key,
            json!({"text": text, "started_at": "2026-07-20T10:00:00Z"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn action_item(server: &TestServer, user: &TestUser, description: &str) -> String {
    let reply = server
        .post(ACTION_ITEMS, &user.key, json!({"description": description}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

/// The search's hits and its `X-Search-Mode`; `query` is the text, then any other parameters
/// after a `&`.
async fn search(server: &TestServer, key: &str, path: &str, query: &str) -> (Vec<Value>, String) {
    let (text, rest) = query.split_once('&').unwrap_or((query, ""));
    let mut url = format!("{path}?query={}", encode(text));
    if !rest.is_empty() {
        url = format!("{url}&{rest}");
    }
    let reply = server.get(&url, key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mode = reply.header("x-search-mode").unwrap().to_string();
    let hits = match &reply.body {
        Value::Array(hits) => hits.clone(),
        body => body["items"].as_array().unwrap().clone(),
    };
    (hits, mode)
}

fn ids(hits: &[Value], object: &str) -> Vec<String> {
    hits.iter()
        .map(|hit| {
            let object = if object.is_empty() { hit } else { &hit[object] };
            object["id"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn every_search_route_fuses_meaning_and_words(backend: Backend) {
    let fake = FakeEmbeddings::start().await;
    let server = server_with(backend, &fake, "fake-v1", 5_000).await;
    let alice = server.user("alice").await;
    let boss = memory(
        &server,
        &alice,
        "Reports to Dana Whitfield, the head of platform engineering",
    )
    .await;
    memory(&server, &alice, "Prefers oat milk flat whites, no sugar").await;
    let wedding = conversation(
        &server,
        &alice,
        "Marco told everyone at the reunion that the wedding will be in Lisbon next June.",
    )
    .await;
    let vet = action_item(&server, &alice, "Take the cat to the vet on Friday").await;
    action_item(&server, &alice, "Renew the passport").await;
    embedded(&server).await;

    // None of these words is in the object it should find: only meaning finds it.
    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "who is my boss").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(ids(&hits, "memory").first(), Some(&boss), "{hits:?}");
    assert_eq!(hits[0]["score"], 1.0);
    let (items, mode) = search(&server, &alice.key, VECTOR_SEARCH, "manager").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(ids(&items, "").first(), Some(&boss), "{items:?}");
    assert!(items[0]["relevance_score"].as_f64().unwrap() > 0.0);
    let (hits, mode) = search(&server, &alice.key, CONVERSATION_SEARCH, "marriage").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(ids(&hits, "conversation"), std::slice::from_ref(&wedding));
    assert!(hits[0]["conversation"]["transcript_segments"].is_null());
    let (hits, mode) = search(&server, &alice.key, ACTION_ITEM_SEARCH, "pet").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(ids(&hits, "action_item"), [vet]);

    // Words still count: an exact match ranks first, and nonsense finds nothing.
    let (hits, _) = search(&server, &alice.key, MEMORY_SEARCH, "oat milk flat whites").await;
    assert_eq!(
        hits[0]["memory"]["content"],
        "Prefers oat milk flat whites, no sugar"
    );
    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "zzqx vvkj").await;
    assert_eq!((hits.len(), mode.as_str()), (0, "hybrid"));

    // Ask grounds on the same retrieval, and every citation is the caller's own conversation.
    let reply = server
        .post(
            ASK,
            &alice.key,
            json!({"question": "Who is getting married?"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-search-mode"), Some("hybrid"));
    assert_eq!(reply.body["sources"][0]["id"], wedding.as_str());
    for source in reply.body["sources"].as_array().unwrap() {
        let id = source["id"].as_str().unwrap();
        let found = server
            .get(&format!("{CONVERSATIONS}/{id}"), &alice.key)
            .await;
        assert_eq!(found.status, 200, "source {id}: {found:?}");
    }
}

async fn another_users_vectors_are_never_used(backend: Backend) {
    let fake = FakeEmbeddings::start().await;
    let server = server_with(backend, &fake, "fake-v1", 5_000).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let own = memory(&server, &alice, "Has a ginger cat called Biscuit").await;
    memory(&server, &bob, "Has a pet dog and a kitten").await;
    memory(&server, &bob, "My supervisor is strict").await;
    let bobs_talk = conversation(&server, &bob, "Our wedding is in Lisbon next June.").await;
    embedded(&server).await;

    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "pet kitten").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(ids(&hits, "memory"), [own]);
    let (hits, _) = search(&server, &alice.key, MEMORY_SEARCH, "boss").await;
    assert!(hits.is_empty(), "{hits:?}");
    let (hits, _) = search(&server, &alice.key, CONVERSATION_SEARCH, "marriage").await;
    assert!(hits.is_empty(), "{hits:?}");
    let reply = server
        .post(
            ASK,
            &alice.key,
            json!({"question": "Who is getting married?"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["sources"], json!([]));
    let (hits, _) = search(&server, &bob.key, CONVERSATION_SEARCH, "marriage").await;
    assert_eq!(ids(&hits, "conversation"), [bobs_talk]);
}

async fn deletes_and_edits_drop_vectors(backend: Backend) {
    let fake = FakeEmbeddings::start().await;
    let server = server_with(backend, &fake, "fake-v1", 5_000).await;
    let alice = server.user("alice").await;
    let store = server.state.store.clone();
    let cat = memory(&server, &alice, "Has a ginger cat called Biscuit").await;
    let item = action_item(&server, &alice, "Take the cat to the vet").await;
    let talk = conversation(&server, &alice, "We talked about the wedding in Lisbon.").await;
    embedded(&server).await;
    for kind in VectorKind::ALL {
        assert_eq!(
            store.vector_count(&alice.id, kind).await.unwrap(),
            1,
            "{kind:?}"
        );
    }

    // An edit drops the stale vector at once; the worker makes the new one.
    let reply = server
        .patch(
            &format!("{MEMORIES}/{cat}"),
            &alice.key,
            json!({"content": "Works as a mortgage broker"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    embedded(&server).await;
    let (hits, _) = search(&server, &alice.key, MEMORY_SEARCH, "loan").await;
    assert_eq!(ids(&hits, "memory"), std::slice::from_ref(&cat));
    let (hits, _) = search(&server, &alice.key, MEMORY_SEARCH, "kitten").await;
    assert!(hits.is_empty(), "{hits:?}");

    for path in [
        format!("{MEMORIES}/{cat}"),
        format!("{ACTION_ITEMS}/{item}"),
        format!("{CONVERSATIONS}/{talk}"),
    ] {
        let reply = server.delete(&path, &alice.key).await;
        assert!(reply.status < 300, "{path}: {reply:?}");
    }
    for kind in VectorKind::ALL {
        assert_eq!(
            store.vector_count(&alice.id, kind).await.unwrap(),
            0,
            "{kind:?}"
        );
    }
    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "loan").await;
    assert_eq!((hits.len(), mode.as_str()), (0, "hybrid"));
}

/// Down, slow, another dimension: lexical answers with the header, the reason logged once per
/// outage however many searches fall back.
async fn an_unusable_endpoint_leaves_search_lexical(backend: Backend) {
    for (behaviour, timeout_ms) in [
        (Behaviour::Down, 5_000),
        (Behaviour::Slow(Duration::from_secs(3)), 200),
        (Behaviour::Dimension(8), 5_000),
    ] {
        let fake = FakeEmbeddings::start().await;
        let server = server_with(backend, &fake, "fake-v1", timeout_ms).await;
        let alice = server.user("alice").await;
        memory(&server, &alice, "Alex is allergic to peanuts").await;
        embedded(&server).await;
        let (_, mode) = search(&server, &alice.key, MEMORY_SEARCH, "peanuts").await;
        assert_eq!(mode, "hybrid");

        fake.set(behaviour);
        let semantic = server.state.retrieval.semantic.as_ref().unwrap();
        let logged = semantic.fallbacks_logged();
        for path in [MEMORY_SEARCH, VECTOR_SEARCH, MEMORY_SEARCH, MEMORY_SEARCH] {
            let started = Instant::now();
            let (hits, mode) = search(&server, &alice.key, path, "peanuts").await;
            assert_eq!(mode, "lexical", "{behaviour:?}");
            assert_eq!(hits.len(), 1, "{behaviour:?}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{behaviour:?}: a fallback waits no longer than the deadline"
            );
        }
        let reply = server
            .post(ASK, &alice.key, json!({"question": "peanuts?"}))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("x-search-mode"), Some("lexical"));
        assert_eq!(
            semantic.fallbacks_logged(),
            logged + 1,
            "{behaviour:?}: logged once"
        );
    }
}

async fn no_endpoint_means_lexical_and_an_empty_queue(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    memory(&server, &alice, "Alex is allergic to peanuts").await;
    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "peanuts").await;
    assert_eq!((hits.len(), mode.as_str()), (1, "lexical"));
    assert!(server.state.retrieval.semantic.is_none());
    assert_eq!(
        server
            .state
            .store
            .vector_count(&alice.id, VectorKind::Memory)
            .await
            .unwrap(),
        0
    );
}

async fn a_new_model_embeds_everything_again(backend: Backend) {
    let fake = FakeEmbeddings::start().await;
    let mut server = server_with(backend, &fake, "fake-v1", 5_000).await;
    let alice = server.user("alice").await;
    memory(&server, &alice, "Has a ginger cat called Biscuit").await;
    memory(&server, &alice, "Prefers oat milk flat whites").await;
    action_item(&server, &alice, "Take the cat to the vet").await;
    conversation(&server, &alice, "We talked about the wedding in Lisbon.").await;
    embedded(&server).await;
    let first = fake.texts();
    let mut objects = 0;
    for kind in VectorKind::ALL {
        objects += server
            .state
            .store
            .vector_count(&alice.id, kind)
            .await
            .unwrap();
    }
    assert!(
        objects >= 4 && first as i64 >= objects,
        "{first} / {objects}"
    );

    // The same model again: nothing to embed.
    let database = server.database.take();
    let settings = server.settings();
    let dir = server.stop().await;
    server = TestServer::start_in(dir, settings.clone()).await;
    embedded(&server).await;
    assert_eq!(fake.texts(), first);

    // Another model: every object again, under the new name.
    let dir = server.stop().await;
    let mut settings = settings;
    settings.embeddings_model = Some("fake-v2".to_string());
    server = TestServer::start_in(dir, settings).await;
    server.database = database;
    embedded(&server).await;
    assert_eq!(fake.texts() as i64, first as i64 + objects);
    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "kitten").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(
        hits[0]["memory"]["content"],
        "Has a ginger cat called Biscuit"
    );
}

/// The routes' filters hold for semantic matches too, and pages do not overlap.
async fn filters_and_pages_apply_to_semantic_matches(backend: Backend) {
    let fake = FakeEmbeddings::start().await;
    let server = server_with(backend, &fake, "fake-v1", 5_000).await;
    let alice = server.user("alice").await;
    let cat = server
        .post(
            MEMORIES,
            &alice.key,
            json!({"content": "Has a ginger cat called Biscuit", "category": "interesting"}),
        )
        .await;
    assert_eq!(cat.status, 200, "{cat:?}");
    let dog = server
        .post(
            MEMORIES,
            &alice.key,
            json!({"content": "Owns a dog", "category": "system"}),
        )
        .await;
    let vet = action_item(&server, &alice, "Take the cat to the vet").await;
    let walk = action_item(&server, &alice, "Walk the dog before work").await;
    let reply = server
        .patch(
            &format!("{ACTION_ITEMS}/{vet}"),
            &alice.key,
            json!({"completed": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    conversation(&server, &alice, "Our wedding will be in Lisbon next June.").await;
    embedded(&server).await;

    let (hits, mode) = search(&server, &alice.key, MEMORY_SEARCH, "pet&categories=system").await;
    assert_eq!(mode, "hybrid");
    assert_eq!(
        ids(&hits, "memory"),
        [dog.body["id"].as_str().unwrap().to_string()]
    );
    let (hits, _) = search(
        &server,
        &alice.key,
        ACTION_ITEM_SEARCH,
        "pet&completed=false",
    )
    .await;
    assert_eq!(ids(&hits, "action_item"), [walk]);
    let (hits, _) = search(
        &server,
        &alice.key,
        CONVERSATION_SEARCH,
        "marriage&start_date=2026-08-01",
    )
    .await;
    assert!(hits.is_empty(), "{hits:?}");

    let (all, _) = search(&server, &alice.key, MEMORY_SEARCH, "pet").await;
    assert_eq!(all.len(), 2);
    let (first, _) = search(&server, &alice.key, MEMORY_SEARCH, "pet&limit=1").await;
    let (second, _) = search(&server, &alice.key, MEMORY_SEARCH, "pet&limit=1&offset=1").await;
    assert_eq!(
        [ids(&first, "memory"), ids(&second, "memory")].concat(),
        ids(&all, "memory")
    );
    assert_eq!(second[0]["score"], all[1]["score"]);
}

crate::backend_tests!(
    filters_and_pages_apply_to_semantic_matches,
    every_search_route_fuses_meaning_and_words,
    another_users_vectors_are_never_used,
    deletes_and_edits_drop_vectors,
    an_unusable_endpoint_leaves_search_lexical,
    no_endpoint_means_lexical_and_an_empty_queue,
    a_new_model_embeds_everything_again,
);

/// `OMI_EMBEDDINGS_API_KEY` is sent as a bearer key; a refused key leaves search lexical.
#[tokio::test]
async fn the_api_key_is_sent_and_a_refused_one_falls_back() {
    let fake = FakeEmbeddings::start_with_key(Some("sk-right")).await;
    for (key, expected) in [("sk-right", "hybrid"), ("sk-wrong", "lexical")] {
        let base_url = fake.base_url.clone();
        let server = TestServer::start_with(move |settings| {
            settings.embeddings_base_url = Some(base_url);
            settings.embeddings_model = Some("fake-v1".to_string());
            settings.embeddings_api_key = Some(omi_server::domain::credentials::Secret::new(
                key.to_string(),
            ));
        })
        .await;
        let alice = server.user("alice").await;
        memory(&server, &alice, "Has a ginger cat called Biscuit").await;
        if expected == "hybrid" {
            embedded(&server).await;
        }
        let (_, mode) = search(&server, &alice.key, MEMORY_SEARCH, "kitten").await;
        assert_eq!(mode, expected, "{key}");
    }
}
