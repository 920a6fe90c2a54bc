//! The storage conformance suite (ARCHITECTURE.md habit 4): every store operation, run against
//! every backend through the same `Store` trait. The PostgreSQL variants use a fresh database on
//! the server named by `OMI_TEST_DATABASE_URL` and are skipped with a notice when it is unset.

#[path = "support/postgres.rs"]
mod pg_support;

use std::sync::Arc;

use chrono::Duration;
use omi_server::config::Settings;
use omi_server::domain::action_items::{ActionItem, ActionItemChanges, ActionItemFilter};
use omi_server::domain::conversations::{Event, Geolocation, NewSegment};
use omi_server::domain::credentials::{Secret, hash_secret};
use omi_server::domain::folders::SystemFolderSpec;
use omi_server::domain::goals::{Goal, GoalChanges, GoalType, new_goal_id};
use omi_server::domain::ids::new_id;
use omi_server::domain::memories::{MemoryCategory, MemoryChanges, NewMemory, Visibility};
use omi_server::domain::paging::Page;
use omi_server::domain::patch::Patch;
use omi_server::domain::scope::{Scope, ScopeSet};
use omi_server::domain::text::normalize_for_dedup;
use omi_server::domain::time::{self, Timestamp};
use omi_server::processing::SystemFolder;
use omi_server::store::conversations::{
    Claim, ConversationBody, ConversationFilter, ConversationUpdate, FolderChange, NewConversation,
    ProcessedRecord, StructuredRecord,
};
use omi_server::store::import::{
    FolderRef, ImportKey, ImportOutcome, ImportRecord, ImportedConversation, ImportedFolder,
};
use omi_server::store::{NewApiKey, NewUser, Store, StoreError};
use pg_support::{TestDatabase, skip_notice};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// An opened store and what keeps its storage alive.
struct Opened {
    store: Arc<dyn Store>,
    _dir: TempDir,
    _database: Option<TestDatabase>,
}

async fn open(backend: Backend) -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults();
    let database = match backend {
        Backend::Sqlite => {
            settings.database_url =
                Secret::new(format!("sqlite://{}/omi.db", dir.path().display()));
            None
        }
        Backend::Postgres => {
            let database = TestDatabase::create().await;
            settings.database_url = Secret::new(database.url.clone());
            Some(database)
        }
    };
    let store = omi_server::store::open(&settings)
        .await
        .expect("open store");
    Opened {
        store,
        _dir: dir,
        _database: database,
    }
}

/// Generates `sqlite::<name>` and `postgres::<name>` from `async fn <name>(store: Arc<dyn Store>)`.
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let opened = super::open(super::Backend::Sqlite).await;
                    super::$name(opened.store.clone()).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(notice) = super::skip_notice(stringify!($name)) {
                        eprintln!("{notice}");
                        return;
                    }
                    let opened = super::open(super::Backend::Postgres).await;
                    super::$name(opened.store.clone()).await;
                }
            )+
        }
    };
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: new_id(),
        name: name.to_string(),
        display_name: format!("{name} display"),
        token_hash: hash_secret(&new_id()),
        created_at: time::now(),
    }
}

fn new_key(user_id: &str, name: &str, created_at: Timestamp) -> NewApiKey {
    let secret = new_id();
    NewApiKey {
        id: new_id(),
        user_id: user_id.to_string(),
        name: name.to_string(),
        key_hash: hash_secret(&secret),
        key_prefix: format!("omi_dev_{}...", &secret[..4]),
        scopes: [Scope::MemoriesRead, Scope::GoalsWrite]
            .into_iter()
            .collect(),
        created_at,
    }
}

async fn users_are_created_found_listed_and_counted(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let alice = new_user("alice");
    let created = store.create_user(alice.clone()).await.unwrap();
    assert_eq!(created.id, alice.id);
    assert_eq!(created.display_name, "alice display");
    let bob = store.create_user(new_user("bob")).await.unwrap();

    assert_eq!(store.count_users().await.unwrap(), 2);
    let listed = store.list_users().await.unwrap();
    assert_eq!(listed, vec![created.clone(), bob.clone()], "oldest first");
    assert_eq!(
        store.find_user(&alice.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store.find_user("alice").await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.find_user("carol").await.unwrap(), None);
    assert_eq!(
        store
            .find_user_by_token_hash(&alice.token_hash)
            .await
            .unwrap(),
        Some(created)
    );
    assert_eq!(
        store
            .find_user_by_token_hash(&hash_secret("nobody"))
            .await
            .unwrap(),
        None
    );
}

async fn a_user_name_is_unique(store: Arc<dyn Store>) {
    store.create_user(new_user("alice")).await.unwrap();
    let again = store.create_user(new_user("alice")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn an_id_match_wins_over_a_name_match(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    // A user whose name is alice's id.
    let mut impostor = new_user(&alice.id);
    impostor.name = alice.id.clone();
    let impostor = store.create_user(impostor).await.unwrap();
    assert_eq!(store.find_user(&alice.id).await.unwrap(), Some(alice));
    assert_eq!(store.find_user(&impostor.id).await.unwrap(), Some(impostor));
}

async fn keys_round_trip_and_list_newest_first(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let base = time::now();
    let older = new_key(&alice.id, "older", base);
    let newer = new_key(&alice.id, "newer", base + Duration::seconds(1));
    // Same creation time: the larger id comes first.
    let mut tie = new_key(&alice.id, "tie", base + Duration::seconds(1));
    tie.id = format!("{}-z", newer.id);
    let scopes = older.scopes;
    let created = store.create_key(older.clone(), 100).await.unwrap();
    assert_eq!(created.scopes, scopes);
    assert_eq!(created.last_used_at, None);
    assert_eq!(created.created_at, base);
    store.create_key(newer.clone(), 100).await.unwrap();
    store.create_key(tie.clone(), 100).await.unwrap();
    store
        .create_key(new_key(&bob.id, "bob's", base), 100)
        .await
        .unwrap();

    let listed = store.list_keys(&alice.id).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|key| key.name.as_str()).collect();
    assert_eq!(names, ["tie", "newer", "older"]);
    assert_eq!(
        listed[2], created,
        "what is read back equals what was written"
    );

    let found = store
        .find_key_by_hash(&older.key_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user_id.as_str(), &found.key),
        (alice.id.as_str(), &created)
    );
    let by_id = store.find_key_by_id(&older.id).await.unwrap().unwrap();
    assert_eq!(by_id.key, created);
    assert!(
        store
            .find_key_by_hash(&hash_secret("unknown"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.find_key_by_id(&new_id()).await.unwrap().is_none());
}

async fn every_scope_set_round_trips(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    for (i, scopes) in [
        ScopeSet::EMPTY,
        ScopeSet::all(),
        ScopeSet::default_read_only(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut key = new_key(&alice.id, &format!("k{i}"), time::now());
        key.scopes = scopes;
        store.create_key(key.clone(), 100).await.unwrap();
        let found = store.find_key_by_id(&key.id).await.unwrap().unwrap();
        assert_eq!(found.key.scopes, scopes);
    }
}

async fn the_key_cap_refuses_the_key_over_the_limit(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    for i in 0..3 {
        store
            .create_key(new_key(&alice.id, &format!("k{i}"), time::now()), 3)
            .await
            .unwrap();
    }
    let over = store
        .create_key(new_key(&alice.id, "over", time::now()), 3)
        .await;
    assert!(matches!(over, Err(StoreError::LimitReached)), "{over:?}");
    assert_eq!(store.list_keys(&alice.id).await.unwrap().len(), 3);
    store
        .create_key(new_key(&bob.id, "bob's", time::now()), 3)
        .await
        .expect("the cap is per user");
}

async fn the_key_cap_is_exact_under_concurrent_creation(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let attempts = (0..40).map(|i| {
        let store = store.clone();
        let key = new_key(&alice.id, &format!("k{i}"), time::now());
        tokio::spawn(async move { store.create_key(key, 25).await })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let created = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(_))))
        .count();
    assert_eq!(created, 25);
    assert!(
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, Ok(Ok(_)) | Ok(Err(StoreError::LimitReached))))
    );
    assert_eq!(store.list_keys(&alice.id).await.unwrap().len(), 25);
}

async fn a_duplicate_key_hash_is_a_conflict(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let first = new_key(&alice.id, "first", time::now());
    store.create_key(first.clone(), 100).await.unwrap();
    let mut second = new_key(&alice.id, "second", time::now());
    second.key_hash = first.key_hash.clone();
    let outcome = store.create_key(second, 100).await;
    assert!(
        matches!(outcome, Err(StoreError::Conflict(_))),
        "{outcome:?}"
    );
}

async fn rotation_replaces_the_secret_of_the_owners_key_only(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let key = new_key(&alice.id, "laptop", time::now());
    store.create_key(key.clone(), 100).await.unwrap();
    let now = time::now();
    store
        .touch_key(&key.id, now, now - Duration::seconds(60))
        .await
        .unwrap();

    let new_hash = hash_secret("rotated");
    assert!(
        store
            .rotate_key(&bob.id, &key.id, &new_hash, "omi_dev_bob")
            .await
            .unwrap()
            .is_none(),
        "another user's key"
    );
    assert!(
        store
            .rotate_key(&alice.id, &new_id(), &new_hash, "omi_dev_x")
            .await
            .unwrap()
            .is_none()
    );
    let rotated = store
        .rotate_key(&alice.id, &key.id, &new_hash, "omi_dev_new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rotated.id.as_str(), rotated.name.as_str(), rotated.scopes),
        (key.id.as_str(), "laptop", key.scopes)
    );
    assert_eq!(rotated.key_prefix, "omi_dev_new");
    assert_eq!(rotated.last_used_at, None, "rotation resets last use");
    assert!(
        store
            .find_key_by_hash(&key.key_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .find_key_by_hash(&new_hash)
            .await
            .unwrap()
            .unwrap()
            .key,
        rotated
    );
}

async fn deletion_removes_the_owners_key_only(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let key = new_key(&alice.id, "laptop", time::now());
    store.create_key(key.clone(), 100).await.unwrap();
    assert!(!store.delete_key(&bob.id, &key.id).await.unwrap());
    assert!(store.find_key_by_id(&key.id).await.unwrap().is_some());
    assert!(store.delete_key(&alice.id, &key.id).await.unwrap());
    assert!(!store.delete_key(&alice.id, &key.id).await.unwrap());
    assert!(
        store
            .find_key_by_hash(&key.key_hash)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_use_is_recorded_only_when_the_stored_one_is_stale(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let key = new_key(&alice.id, "laptop", time::now());
    store.create_key(key.clone(), 100).await.unwrap();
    let last_used = |store: Arc<dyn Store>, id: String| async move {
        store
            .find_key_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .key
            .last_used_at
    };
    let first = time::now();
    store
        .touch_key(&key.id, first, first - Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(last_used(store.clone(), key.id.clone()).await, Some(first));
    let soon = first + Duration::seconds(10);
    store
        .touch_key(&key.id, soon, soon - Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(
        last_used(store.clone(), key.id.clone()).await,
        Some(first),
        "fresh enough: not rewritten"
    );
    let later = first + Duration::seconds(61);
    store
        .touch_key(&key.id, later, later - Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(last_used(store.clone(), key.id.clone()).await, Some(later));
}

async fn the_store_answers_pings_and_closes(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    store.close().await.unwrap();
}

fn memory_request(content: &str, category: Option<MemoryCategory>) -> NewMemory {
    NewMemory {
        content: content.to_string(),
        category,
        visibility: None,
        tags: None,
    }
}

fn page(limit: i64, offset: i64) -> Page {
    Page { limit, offset }
}

async fn memories_are_saved_read_and_listed_in_scoring_order(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let now = time::now();
    let saved = store
        .save_memories(
            &alice.id,
            vec![
                memory_request("Alex likes tea", Some(MemoryCategory::System)),
                memory_request("Alex reads at night", Some(MemoryCategory::Interesting)),
                memory_request("Alex runs on Sundays", Some(MemoryCategory::System)),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(saved.len(), 3);
    store
        .save_memories(&bob.id, vec![memory_request("Alex likes tea", None)], now)
        .await
        .unwrap();

    let got = store.get_memory(&alice.id, &saved[0].id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&saved[0]), "reads back equal");
    assert!(
        store
            .get_memory(&alice.id, &new_id())
            .await
            .unwrap()
            .is_none()
    );

    let listed = store
        .list_memories(&alice.id, &[], page(25, 0))
        .await
        .unwrap();
    let mut expected = saved.clone();
    expected
        .sort_by(|a, b| (&b.scoring, b.created_at, &b.id).cmp(&(&a.scoring, a.created_at, &a.id)));
    assert_eq!(
        listed, expected,
        "scoring desc, then created_at desc, then id desc"
    );
    let systems = store
        .list_memories(&alice.id, &[MemoryCategory::System], page(25, 0))
        .await
        .unwrap();
    assert_eq!(systems.len(), 2);
    assert!(systems.iter().all(|m| m.category == MemoryCategory::System));
    let both = store
        .list_memories(
            &alice.id,
            &[MemoryCategory::System, MemoryCategory::Interesting],
            page(25, 0),
        )
        .await
        .unwrap();
    assert_eq!(both, expected);
    let second_page = store
        .list_memories(&alice.id, &[], page(2, 1))
        .await
        .unwrap();
    assert_eq!(second_page, expected[1..3]);
    assert_eq!(
        store
            .list_memories(&bob.id, &[], page(25, 0))
            .await
            .unwrap()
            .len(),
        1,
        "lists never mix users"
    );
}

async fn saving_existing_content_updates_the_memory(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let first = time::now();
    let created = store
        .save_memories(
            &alice.id,
            vec![memory_request("Alex likes tea", None)],
            first,
        )
        .await
        .unwrap()
        .remove(0);
    let later = first + Duration::seconds(5);
    let mut again = memory_request("Alex likes tea", Some(MemoryCategory::Interesting));
    again.tags = Some(vec!["drinks".to_string()]);
    let updated = store
        .save_memories(&alice.id, vec![again], later)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.category, MemoryCategory::Interesting);
    assert_eq!(updated.tags, ["drinks"]);
    let listed = store
        .list_memories(&alice.id, &[], page(25, 0))
        .await
        .unwrap();
    assert_eq!(listed, vec![updated]);
}

async fn concurrent_saves_of_one_content_make_one_memory(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let saves = (0..20).map(|i| {
        let store = store.clone();
        let user_id = alice.id.clone();
        tokio::spawn(async move {
            let mut request = memory_request("Alex likes tea", None);
            request.tags = Some(vec![format!("t{i}")]);
            store
                .save_memories(&user_id, vec![request], time::now())
                .await
        })
    });
    let saved: Vec<_> = futures::future::join_all(saves)
        .await
        .into_iter()
        .map(|outcome| outcome.unwrap().expect("every save succeeds").remove(0))
        .collect();
    let stored = store
        .list_memories(&alice.id, &[], page(25, 0))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    // One save created the memory and every other one updated it; none created a copy that
    // was then thrown away.
    assert!(
        saved
            .iter()
            .all(|memory| memory.created_at == stored[0].created_at),
        "{saved:?}"
    );
    assert!(
        saved.contains(&stored[0]),
        "the last save is what is stored"
    );
}

async fn memory_updates_apply_changes_and_never_lose_one(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let memory = store
        .save_memories(
            &alice.id,
            vec![memory_request("Alex likes tea", None)],
            time::now(),
        )
        .await
        .unwrap()
        .remove(0);
    let content_change = MemoryChanges {
        content: Some("Alex likes green tea".to_string()),
        ..MemoryChanges::default()
    };
    assert!(
        store
            .update_memory(&bob.id, &memory.id, content_change.clone(), time::now())
            .await
            .unwrap()
            .is_none(),
        "another user's memory"
    );
    // Concurrent PATCHes of different fields: every one survives.
    let changes = [
        content_change,
        MemoryChanges {
            visibility: Some(Visibility::Public),
            ..MemoryChanges::default()
        },
        MemoryChanges {
            category: Some(MemoryCategory::Workflow),
            ..MemoryChanges::default()
        },
        MemoryChanges {
            tags: Some(vec!["drinks".to_string()]),
            ..MemoryChanges::default()
        },
    ];
    let updates = changes.into_iter().map(|change| {
        let (store, user_id, id) = (store.clone(), alice.id.clone(), memory.id.clone());
        tokio::spawn(async move {
            store
                .update_memory(&user_id, &id, change, time::now())
                .await
        })
    });
    for outcome in futures::future::join_all(updates).await {
        assert!(outcome.unwrap().unwrap().is_some());
    }
    let stored = store
        .get_memory(&alice.id, &memory.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.content, "Alex likes green tea");
    assert_eq!(stored.visibility, Visibility::Public);
    assert_eq!(stored.category, MemoryCategory::Workflow);
    assert_eq!(stored.tags, ["drinks"]);
    assert!(stored.edited);
    assert_eq!(stored.id, memory.id, "the id never changes");
}

async fn memories_are_deleted_for_their_owner_only(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let memory = store
        .save_memories(
            &alice.id,
            vec![memory_request("Alex likes tea", None)],
            time::now(),
        )
        .await
        .unwrap()
        .remove(0);
    assert!(!store.delete_memory(&bob.id, &memory.id).await.unwrap());
    assert!(store.delete_memory(&alice.id, &memory.id).await.unwrap());
    assert!(!store.delete_memory(&alice.id, &memory.id).await.unwrap());
    assert!(
        store
            .get_memory(&alice.id, &memory.id)
            .await
            .unwrap()
            .is_none()
    );
}

fn action_item(description: &str, created_at: Timestamp) -> ActionItem {
    ActionItem {
        id: new_id(),
        description: description.to_string(),
        completed: false,
        created_at,
        updated_at: created_at,
        due_at: None,
        completed_at: None,
        conversation_id: None,
    }
}

async fn action_items_are_listed_open_first_then_by_due_date(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let base = time::now();
    let at = |seconds: i64| base + Duration::seconds(seconds);
    let undated_old = action_item("undated old", at(0));
    let undated_new = action_item("undated new", at(1));
    let mut due_late = action_item("due late", at(2));
    due_late.due_at = Some(at(1000));
    let mut due_soon = action_item("due soon", at(3));
    due_soon.due_at = Some(at(500));
    let mut done = action_item("done", at(4));
    done.completed = true;
    done.completed_at = Some(at(4));
    let mut from_conversation = action_item("from a conversation", at(5));
    from_conversation.conversation_id = Some("conv-1".to_string());
    store
        .create_action_items(
            &alice.id,
            vec![
                undated_old.clone(),
                undated_new.clone(),
                due_late.clone(),
                due_soon.clone(),
                done.clone(),
                from_conversation.clone(),
            ],
        )
        .await
        .unwrap();
    store
        .create_action_items(&bob.id, vec![action_item("bob's", at(0))])
        .await
        .unwrap();

    let list = |filter: ActionItemFilter| {
        let (store, user_id) = (store.clone(), alice.id.clone());
        async move {
            store
                .list_action_items(&user_id, filter, page(100, 0))
                .await
                .unwrap()
                .into_iter()
                .map(|item| item.description)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ActionItemFilter::default()).await,
        [
            "due soon",
            "due late",
            "from a conversation",
            "undated new",
            "undated old",
            "done"
        ]
    );
    let open = ActionItemFilter {
        completed: Some(false),
        ..Default::default()
    };
    assert_eq!(list(open).await.len(), 5);
    let of_conversation = ActionItemFilter {
        conversation_id: Some("conv-1".to_string()),
        ..Default::default()
    };
    assert_eq!(list(of_conversation).await, ["from a conversation"]);
    let window = ActionItemFilter {
        created_from: Some(at(1)),
        created_before: Some(at(3)),
        ..Default::default()
    };
    assert_eq!(list(window).await, ["due late", "undated new"]);
    let empty = ActionItemFilter {
        created_from: Some(at(3)),
        created_before: Some(at(1)),
        ..Default::default()
    };
    assert!(list(empty).await.is_empty());
    let second_page = store
        .list_action_items(&alice.id, ActionItemFilter::default(), page(2, 1))
        .await
        .unwrap();
    assert_eq!(second_page[0].description, "due late");
    assert_eq!(second_page.len(), 2);

    assert_eq!(
        store.get_action_item(&alice.id, &done.id).await.unwrap(),
        Some(done.clone()),
        "reads back equal"
    );
    assert!(
        store
            .get_action_item(&bob.id, &done.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_failing_action_item_batch_stores_nothing(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let first = action_item("first", time::now());
    store
        .create_action_items(&alice.id, vec![first.clone()])
        .await
        .unwrap();
    let mut duplicate = action_item("duplicate id", time::now());
    duplicate.id = first.id.clone();
    let outcome = store
        .create_action_items(
            &alice.id,
            vec![action_item("fresh", time::now()), duplicate],
        )
        .await;
    assert!(outcome.is_err());
    let listed = store
        .list_action_items(&alice.id, ActionItemFilter::default(), page(100, 0))
        .await
        .unwrap();
    assert_eq!(listed, vec![first], "all or nothing");
}

async fn action_item_updates_apply_changes_and_never_lose_one(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let item = action_item("Review the report", time::now());
    store
        .create_action_items(&alice.id, vec![item.clone()])
        .await
        .unwrap();
    let describe = ActionItemChanges {
        description: Some("Review the Q1 report".to_string()),
        ..Default::default()
    };
    assert!(
        store
            .update_action_item(&bob.id, &item.id, describe.clone(), time::now())
            .await
            .unwrap()
            .is_none()
    );
    let due = time::now() + Duration::days(2);
    let changes = [
        describe,
        ActionItemChanges {
            completed: Some(true),
            ..Default::default()
        },
        ActionItemChanges {
            due_at: Patch::Value(due),
            ..Default::default()
        },
    ];
    let updates = changes.into_iter().map(|change| {
        let (store, user_id, id) = (store.clone(), alice.id.clone(), item.id.clone());
        tokio::spawn(async move {
            store
                .update_action_item(&user_id, &id, change, time::now())
                .await
        })
    });
    for outcome in futures::future::join_all(updates).await {
        assert!(outcome.unwrap().unwrap().is_some());
    }
    let stored = store
        .get_action_item(&alice.id, &item.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.description, "Review the Q1 report");
    assert!(stored.completed && stored.completed_at.is_some());
    assert_eq!(stored.due_at, Some(due));

    let cleared = store
        .update_action_item(
            &alice.id,
            &item.id,
            ActionItemChanges {
                due_at: Patch::Null,
                ..Default::default()
            },
            time::now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.due_at, None);
    assert!(!store.delete_action_item(&bob.id, &item.id).await.unwrap());
    assert!(store.delete_action_item(&alice.id, &item.id).await.unwrap());
    assert!(!store.delete_action_item(&alice.id, &item.id).await.unwrap());
}

fn goal(title: &str, created_at: Timestamp) -> Goal {
    Goal {
        id: new_goal_id(),
        title: title.to_string(),
        goal_type: GoalType::Numeric,
        target_value: 10.0,
        current_value: 1.5,
        min_value: 0.0,
        max_value: 10.0,
        unit: Some("km".to_string()),
        is_active: true,
        created_at,
        updated_at: created_at,
    }
}

async fn goals_keep_three_active_and_list_in_both_orders(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let base = time::now();
    let goals: Vec<Goal> = (0..5)
        .map(|i| goal(&format!("g{i}"), base + Duration::seconds(i)))
        .collect();
    for goal in &goals {
        store.create_goal(&alice.id, goal.clone(), 3).await.unwrap();
    }
    store
        .create_goal(&bob.id, goal("bob's", base), 3)
        .await
        .unwrap();
    let titles = |goals: Vec<Goal>| goals.into_iter().map(|g| g.title).collect::<Vec<_>>();
    assert_eq!(
        titles(
            store
                .list_goals(&alice.id, false, page(10, 0))
                .await
                .unwrap()
        ),
        ["g2", "g3", "g4"],
        "the three newest stay active, oldest first"
    );
    let all = store
        .list_goals(&alice.id, true, page(10, 0))
        .await
        .unwrap();
    assert_eq!(titles(all.clone()), ["g4", "g3", "g2", "g1", "g0"]);
    assert!(!all[4].is_active && !all[3].is_active);
    assert_eq!(
        titles(store.list_goals(&alice.id, true, page(2, 1)).await.unwrap()),
        ["g3", "g2"]
    );
    assert_eq!(
        store.get_goal(&alice.id, &goals[4].id).await.unwrap(),
        Some(goals[4].clone()),
        "reads back equal"
    );
    assert!(
        store
            .get_goal(&bob.id, &goals[4].id)
            .await
            .unwrap()
            .is_none()
    );
    let again = store.create_goal(&alice.id, goals[4].clone(), 3).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

async fn the_active_goal_limit_is_exact_under_concurrent_creation(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let creations = (0..12).map(|i| {
        let (store, user_id) = (store.clone(), alice.id.clone());
        tokio::spawn(async move {
            store
                .create_goal(&user_id, goal(&format!("g{i}"), time::now()), 3)
                .await
        })
    });
    for outcome in futures::future::join_all(creations).await {
        outcome.unwrap().unwrap();
    }
    assert_eq!(
        store
            .list_goals(&alice.id, false, page(100, 0))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_goals(&alice.id, true, page(100, 0))
            .await
            .unwrap()
            .len(),
        12
    );
}

async fn goal_history_keeps_the_last_value_of_each_day(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let day =
        |d: u32, h: u32| time::parse_datetime(&format!("2025-03-{d:02}T{h:02}:00:00Z")).unwrap();
    let created = goal("run", day(1, 8));
    store
        .create_goal(&alice.id, created.clone(), 3)
        .await
        .unwrap();
    for (at, value) in [(day(1, 20), 2.0), (day(3, 9), 4.0), (day(3, 22), 5.0)] {
        store
            .update_goal(&alice.id, &created.id, GoalChanges::progress(value), at)
            .await
            .unwrap()
            .unwrap();
    }
    let renamed = store
        .update_goal(
            &alice.id,
            &created.id,
            GoalChanges {
                title: Some("run far".to_string()),
                unit: Patch::Null,
                ..Default::default()
            },
            day(4, 9),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.title.as_str(), renamed.unit.as_ref()),
        ("run far", None)
    );
    let history = store
        .goal_history(&alice.id, &created.id, day(1, 0).date_naive())
        .await
        .unwrap()
        .unwrap();
    let values: Vec<(String, f64)> = history
        .iter()
        .map(|p| (p.date.to_string(), p.value))
        .collect();
    assert_eq!(
        values,
        [
            ("2025-03-03".to_string(), 5.0),
            ("2025-03-01".to_string(), 2.0)
        ],
        "newest first, the last value of each day, no entry for a change without a value"
    );
    assert_eq!(history[0].recorded_at, day(3, 22));
    let recent = store
        .goal_history(&alice.id, &created.id, day(2, 0).date_naive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recent.len(), 1);

    let bob = store.create_user(new_user("bob")).await.unwrap();
    assert!(
        store
            .goal_history(&bob.id, &created.id, day(1, 0).date_naive())
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.delete_goal(&bob.id, &created.id).await.unwrap());
    assert!(store.delete_goal(&alice.id, &created.id).await.unwrap());
    assert!(
        store
            .goal_history(&alice.id, &created.id, day(1, 0).date_naive())
            .await
            .unwrap()
            .is_none()
    );
    // A new goal with the same id starts with an empty history: the old one went with it.
    let mut reborn = goal("again", day(5, 8));
    reborn.id = created.id.clone();
    store.create_goal(&alice.id, reborn, 3).await.unwrap();
    let history = store
        .goal_history(&alice.id, &created.id, day(1, 0).date_naive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.len(), 1);
}

fn structured(title: &str, category: &str, discarded: bool) -> StructuredRecord {
    StructuredRecord {
        title: title.to_string(),
        overview: format!("About {title}"),
        emoji: "🧠".to_string(),
        category: category.to_string(),
        events: Vec::new(),
        discarded,
        processed_by: "offline".to_string(),
        processing_parts: Default::default(),
    }
}

/// A conversation from text, filed in the system folder of `folder` unless discarded.
fn text_conversation(
    title: &str,
    category: &str,
    folder: SystemFolder,
    started_at: Timestamp,
) -> NewConversation {
    NewConversation {
        id: new_id(),
        started_at,
        finished_at: started_at + Duration::minutes(5),
        processed_at: started_at + Duration::minutes(6),
        language: "en".to_string(),
        source: "external_integration".to_string(),
        geolocation: None,
        body: ConversationBody::Text {
            text: format!("We talked about {title}."),
            text_source: "other_text".to_string(),
            text_source_spec: None,
        },
        processed: ProcessedRecord {
            structured: structured(title, category, false),
            action_items: Vec::new(),
            memories: Vec::new(),
            folder: Some(SystemFolderSpec::of(folder)),
        },
        client_session_id: None,
    }
}

fn segment(text: &str, start: f64, is_user: bool) -> NewSegment {
    NewSegment {
        id: new_id(),
        text: text.to_string(),
        speaker: if is_user { "SPEAKER_00" } else { "SPEAKER_01" }.to_string(),
        speaker_id: i64::from(!is_user),
        is_user,
        person_id: None,
        start,
        end: start + 2.5,
    }
}

async fn conversations_are_stored_with_their_extracted_items_and_folders(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let base = time::now();
    let mut meeting = text_conversation("Budget review", "business", SystemFolder::Work, base);
    let mut item = action_item("Send the budget", meeting.processed_at);
    item.conversation_id = Some(meeting.id.clone());
    meeting.processed.action_items = vec![item.clone()];
    meeting.processed.memories = vec![
        NewMemory {
            content: "Alex owns the budget".to_string(),
            category: Some(MemoryCategory::System),
            visibility: None,
            tags: None,
        }
        .into_memory(meeting.processed_at, |_| MemoryCategory::System),
    ];
    meeting.geolocation = Some(Geolocation {
        latitude: 52.5,
        longitude: 13.4,
        address: Some("Berlin".to_string()),
        google_place_id: None,
        location_type: None,
    });
    meeting.processed.structured.events = vec![Event {
        title: "Follow-up".to_string(),
        description: String::new(),
        start: base + Duration::days(1),
        duration: 30,
        created: false,
    }];
    let mut call = text_conversation(
        "Dentist",
        "health",
        SystemFolder::Personal,
        base + Duration::minutes(10),
    );
    call.body = ConversationBody::Segments(vec![
        segment("My tooth hurts", 0.0, true),
        segment("Come in tomorrow", 3.0, false),
    ]);
    let mut noise = text_conversation(
        "",
        "other",
        SystemFolder::Personal,
        base + Duration::minutes(20),
    );
    noise.processed.structured = structured("", "other", true);
    noise.processed.folder = None;
    for conversation in [&meeting, &call, &noise] {
        assert_eq!(
            store
                .create_conversation(&alice.id, conversation.clone())
                .await
                .unwrap(),
            Claim::Claimed
        );
    }

    let got = store
        .get_conversation(&alice.id, &meeting.id, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.structured.title, "Budget review");
    assert_eq!(got.structured.events, meeting.processed.structured.events);
    assert_eq!(got.structured.action_items, vec![item.clone()]);
    assert_eq!(got.geolocation, meeting.geolocation);
    assert_eq!(got.folder_name.as_deref(), Some("Work"));
    assert_eq!(
        got.transcript_segments,
        Some(Vec::new()),
        "text has no transcript"
    );
    assert_eq!((got.created_at, got.started_at), (base, base));
    let got_call = store
        .get_conversation(&alice.id, &call.id, true)
        .await
        .unwrap()
        .unwrap();
    let transcript = got_call.transcript_segments.unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(
        (transcript[0].text.as_str(), transcript[0].is_user),
        ("My tooth hurts", true)
    );
    assert_eq!(transcript[1].speaker_name, "Speaker 1");
    assert!(
        store
            .get_conversation(&alice.id, &call.id, false)
            .await
            .unwrap()
            .unwrap()
            .transcript_segments
            .is_none()
    );
    assert!(
        store
            .get_conversation(&bob.id, &call.id, false)
            .await
            .unwrap()
            .is_none()
    );

    let listed = store
        .list_conversations(
            &alice.id,
            &ConversationFilter::default(),
            page(25, 0),
            false,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [call.id.as_str(), meeting.id.as_str()],
        "kept ones, newest first"
    );
    let health = ConversationFilter {
        categories: vec!["health".to_string()],
        ..Default::default()
    };
    let several = ConversationFilter {
        categories: vec!["health".to_string(), "business".to_string()],
        ..Default::default()
    };
    let in_work = ConversationFilter {
        folder_id: got.folder_id.clone(),
        ..Default::default()
    };
    let window = ConversationFilter {
        created_from: Some(base),
        created_before: Some(base + Duration::minutes(1)),
        ..Default::default()
    };
    for (filter, expected) in [
        (health, vec![&call.id]),
        (several, vec![&call.id, &meeting.id]),
        (in_work, vec![&meeting.id]),
        (window, vec![&meeting.id]),
    ] {
        let listed = store
            .list_conversations(&alice.id, &filter, page(25, 0), true)
            .await
            .unwrap();
        let ids: Vec<&String> = listed.iter().map(|c| &c.id).collect();
        assert_eq!(ids, expected, "{filter:?}");
    }

    let folders = store.list_folders(&alice.id).await.unwrap();
    let summary: Vec<(&str, i64)> = folders
        .iter()
        .map(|f| (f.name.as_str(), f.conversation_count))
        .collect();
    assert_eq!(summary, [("Work", 1), ("Personal", 1), ("Social", 0)]);
    assert!(store.list_folders(&bob.id).await.unwrap().is_empty());

    let existing = store
        .existing_texts(
            &alice.id,
            &[
                normalize_for_dedup("Send the budget"),
                "nothing".to_string(),
            ],
            base,
            &[normalize_for_dedup("Alex owns the budget")],
        )
        .await
        .unwrap();
    assert_eq!(
        existing.open_action_items.into_iter().collect::<Vec<_>>(),
        [normalize_for_dedup("Send the budget")]
    );
    assert_eq!(existing.memories.len(), 1);

    let input = store
        .conversation_input(&alice.id, &call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(input.user_display_name, "alice display");
    assert!(matches!(input.body, ConversationBody::Segments(ref s) if s.len() == 2));

    assert!(
        store
            .delete_conversation(&alice.id, &meeting.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_conversation(&alice.id, &meeting.id)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_action_item(&alice.id, &item.id)
            .await
            .unwrap()
            .is_some(),
        "extracted items stay"
    );
    assert_eq!(
        store
            .list_memories(&alice.id, &[], page(25, 0))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn conversation_updates_change_title_discarded_and_folder(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let conversation = text_conversation("Budget", "business", SystemFolder::Work, time::now());
    store
        .create_conversation(&alice.id, conversation.clone())
        .await
        .unwrap();
    let update =
        |title: Option<&str>, discarded: Option<bool>, folder: FolderChange| ConversationUpdate {
            title: title.map(str::to_string),
            discarded,
            folder,
            reprocessed: None,
            updated_at: time::now(),
        };
    assert!(
        !store
            .update_conversation(
                &bob.id,
                &conversation.id,
                update(Some("x"), None, FolderChange::Keep)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .update_conversation(
                &alice.id,
                &conversation.id,
                update(None, Some(true), FolderChange::Clear)
            )
            .await
            .unwrap()
    );
    let discarded = store
        .get_conversation(&alice.id, &conversation.id, false)
        .await
        .unwrap()
        .unwrap();
    assert!(discarded.discarded && discarded.folder_id.is_none());
    assert_eq!(
        discarded.structured.title, "Budget",
        "an absent title stays"
    );
    let social = SystemFolderSpec::of(SystemFolder::Social);
    store
        .update_conversation(
            &alice.id,
            &conversation.id,
            update(Some("Party"), Some(false), FolderChange::File(social)),
        )
        .await
        .unwrap();
    let restored = store
        .get_conversation(&alice.id, &conversation.id, false)
        .await
        .unwrap()
        .unwrap();
    assert!(!restored.discarded);
    assert_eq!(restored.structured.title, "Party");
    assert_eq!(restored.folder_name.as_deref(), Some("Social"));
}

async fn a_client_session_id_is_claimed_once(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let now = time::now();
    let abandoned_before = now - Duration::minutes(2);
    let mut first = text_conversation("Budget", "business", SystemFolder::Work, now);
    first.client_session_id = Some("session-1".to_string());
    let claim = |conversation_id: String, now: Timestamp| {
        let (store, user_id) = (store.clone(), alice.id.clone());
        async move {
            store
                .claim_conversation(
                    &user_id,
                    "session-1",
                    &conversation_id,
                    now,
                    now - Duration::minutes(2),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(claim(first.id.clone(), now).await, Claim::Claimed);
    assert_eq!(
        claim(new_id(), now).await,
        Claim::InProgress,
        "the first claim is still fresh"
    );
    assert_eq!(
        store
            .create_conversation(&alice.id, first.clone())
            .await
            .unwrap(),
        Claim::Claimed
    );
    let completed = Claim::Completed {
        conversation_id: first.id.clone(),
        discarded: false,
    };
    assert_eq!(claim(new_id(), now).await, completed);
    assert_eq!(
        claim(new_id(), now + Duration::minutes(10)).await,
        completed,
        "completed claims never expire"
    );

    // An abandoned claim is taken over; the one that abandoned it can no longer store.
    let mut slow = text_conversation("Slow", "business", SystemFolder::Work, now);
    slow.client_session_id = Some("session-2".to_string());
    store
        .claim_conversation(
            &alice.id,
            "session-2",
            &slow.id,
            now - Duration::minutes(3),
            abandoned_before,
        )
        .await
        .unwrap();
    let mut fast = slow.clone();
    fast.id = new_id();
    assert_eq!(
        store
            .claim_conversation(&alice.id, "session-2", &fast.id, now, abandoned_before)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store.create_conversation(&alice.id, slow).await.unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        store
            .create_conversation(&alice.id, fast.clone())
            .await
            .unwrap(),
        Claim::Claimed
    );

    // A released claim can be claimed again at once.
    let third = new_id();
    store
        .claim_conversation(&alice.id, "session-3", &third, now, abandoned_before)
        .await
        .unwrap();
    store
        .release_claim(&alice.id, "session-3", &third)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_conversation(&alice.id, "session-3", &new_id(), now, abandoned_before)
            .await
            .unwrap(),
        Claim::Claimed
    );
}

async fn concurrent_claims_of_one_session_id_admit_one(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let now = time::now();
    let claims = (0..12).map(|_| {
        let (store, user_id) = (store.clone(), alice.id.clone());
        tokio::spawn(async move {
            store
                .claim_conversation(
                    &user_id,
                    "session",
                    &new_id(),
                    now,
                    now - Duration::minutes(2),
                )
                .await
                .unwrap()
        })
    });
    let outcomes: Vec<Claim> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        outcomes.iter().filter(|c| **c == Claim::Claimed).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|c| matches!(c, Claim::Claimed | Claim::InProgress))
    );
}

fn import_key(source_id: &str, fingerprint: &str) -> ImportKey {
    ImportKey {
        source: "https://source.example".into(),
        source_id: source_id.into(),
        fingerprint: fingerprint.into(),
    }
}

fn imported_conversation(id: &str, title: &str, folder: Option<FolderRef>) -> ImportRecord {
    let at = time::parse_datetime("2025-05-01T09:00:00.123456Z").unwrap();
    ImportRecord::Conversation(Box::new(ImportedConversation {
        id: id.into(),
        created_at: at,
        started_at: at + Duration::seconds(1),
        finished_at: at + Duration::seconds(90),
        updated_at: at + Duration::seconds(100),
        title: title.into(),
        overview: "An overview".into(),
        emoji: "🦷".into(),
        category: "health".into(),
        events: vec![Event {
            title: "Cleaning".into(),
            description: "moved".into(),
            start: at + Duration::days(3),
            duration: 60,
            created: false,
        }],
        language: "nl".into(),
        source: "omi".into(),
        discarded: false,
        processed_by: "llm".into(),
        folder,
        geolocation: Some(Geolocation {
            latitude: 52.1,
            longitude: 4.9,
            address: Some("Keizersgracht 12".into()),
            google_place_id: None,
            location_type: None,
        }),
        segments: vec![NewSegment {
            id: "seg-1".into(),
            text: "Hello there".into(),
            speaker: "SPEAKER_01".into(),
            speaker_id: 1,
            is_user: false,
            person_id: Some("person-1".into()),
            start: 0.5,
            end: 2.25,
        }],
    }))
}

async fn imports_are_faithful_idempotent_and_checkpointed(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("importer")).await.unwrap();
    let other = store.create_user(new_user("other")).await.unwrap();
    let now = time::now();
    let folder = ImportRecord::Folder(ImportedFolder {
        name: "Dentist".into(),
        description: Some("teeth".into()),
        color: "#112233".into(),
        icon: "🦷".into(),
        order: 7,
        created_at: now,
        updated_at: now,
        system: None,
    });
    let made = store
        .import_record(&user.id, import_key("f1", "a"), folder, now)
        .await
        .unwrap();
    assert_eq!(made.outcome, ImportOutcome::Created);
    let folder_ref = Some(FolderRef {
        source_id: "f1".into(),
        system: None,
    });
    let record = imported_conversation("conv-1", "First", folder_ref.clone());
    let first = store
        .import_record(&user.id, import_key("conv-1", "v1"), record.clone(), now)
        .await
        .unwrap();
    assert_eq!(
        (first.outcome, first.local_id.as_str()),
        (ImportOutcome::Created, "conv-1")
    );
    let again = store
        .import_record(&user.id, import_key("conv-1", "v1"), record.clone(), now)
        .await
        .unwrap();
    assert_eq!(again.outcome, ImportOutcome::Unchanged);
    let stored = store
        .get_conversation(&user.id, "conv-1", true)
        .await
        .unwrap()
        .unwrap();
    let ImportRecord::Conversation(wanted) = &record else {
        unreachable!()
    };
    assert_eq!(stored.created_at, wanted.created_at);
    assert_eq!(stored.started_at, wanted.started_at);
    assert_eq!(stored.finished_at, wanted.finished_at);
    assert_eq!(stored.structured.events, wanted.events);
    assert_eq!(
        (
            stored.language.as_str(),
            stored.source.as_str(),
            stored.processed_by.as_str()
        ),
        ("nl", "omi", "llm")
    );
    assert_eq!(stored.folder_name.as_deref(), Some("Dentist"));
    assert_eq!(stored.folder_id.as_deref(), Some(made.local_id.as_str()));
    assert_eq!(stored.geolocation, wanted.geolocation);
    let segments = stored.transcript_segments.unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(
        (
            segments[0].speaker_id,
            segments[0].person_id.as_deref(),
            segments[0].end
        ),
        (1, Some("person-1"), 2.25)
    );

    // A changed source version replaces the object in place.
    let changed = imported_conversation("conv-1", "Second", folder_ref);
    let updated = store
        .import_record(&user.id, import_key("conv-1", "v2"), changed, now)
        .await
        .unwrap();
    assert_eq!(updated.outcome, ImportOutcome::Updated);
    let stored = store
        .get_conversation(&user.id, "conv-1", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.structured.title, "Second");
    assert_eq!(stored.transcript_segments.unwrap().len(), 1);

    // Another user importing the same source id gets its own object under a new id.
    let theirs = store
        .import_record(&other.id, import_key("conv-1", "v1"), record, now)
        .await
        .unwrap();
    assert_eq!(theirs.outcome, ImportOutcome::Created);
    assert_ne!(theirs.local_id, "conv-1");

    // An action item names the imported conversation.
    let item = ActionItem {
        conversation_id: Some("conv-1".into()),
        completed: true,
        completed_at: Some(now),
        due_at: Some(now + Duration::days(1)),
        ..action_item("Call the dentist", now)
    };
    let item_id = item.id.clone();
    let imported = store
        .import_record(
            &other.id,
            import_key(&item_id, "x"),
            ImportRecord::ActionItem(item),
            now,
        )
        .await
        .unwrap();
    let stored = store
        .get_action_item(&other.id, &imported.local_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.conversation_id.as_deref(),
        Some(theirs.local_id.as_str())
    );
    assert!(stored.completed && stored.completed_at.is_some() && stored.due_at.is_some());

    let checkpoint = |offset| {
        let store = store.clone();
        let user_id = user.id.clone();
        async move {
            store
                .save_import_checkpoint(&user_id, "https://source.example", "memories", offset, now)
                .await
                .unwrap();
            store
                .import_checkpoint(&user_id, "https://source.example", "memories")
                .await
                .unwrap()
        }
    };
    assert_eq!(checkpoint(Some(200)).await, Some(200));
    assert_eq!(checkpoint(Some(300)).await, Some(300));
    assert_eq!(checkpoint(None).await, None);
    assert_eq!(
        store
            .import_status(&user.id, "conversation", &import_key("conv-1", "v2"))
            .await
            .unwrap(),
        Some(true)
    );
}

conformance!(
    users_are_created_found_listed_and_counted,
    a_user_name_is_unique,
    an_id_match_wins_over_a_name_match,
    keys_round_trip_and_list_newest_first,
    every_scope_set_round_trips,
    the_key_cap_refuses_the_key_over_the_limit,
    the_key_cap_is_exact_under_concurrent_creation,
    a_duplicate_key_hash_is_a_conflict,
    rotation_replaces_the_secret_of_the_owners_key_only,
    deletion_removes_the_owners_key_only,
    a_use_is_recorded_only_when_the_stored_one_is_stale,
    the_store_answers_pings_and_closes,
    memories_are_saved_read_and_listed_in_scoring_order,
    saving_existing_content_updates_the_memory,
    concurrent_saves_of_one_content_make_one_memory,
    memory_updates_apply_changes_and_never_lose_one,
    memories_are_deleted_for_their_owner_only,
    action_items_are_listed_open_first_then_by_due_date,
    a_failing_action_item_batch_stores_nothing,
    action_item_updates_apply_changes_and_never_lose_one,
    goals_keep_three_active_and_list_in_both_orders,
    the_active_goal_limit_is_exact_under_concurrent_creation,
    goal_history_keeps_the_last_value_of_each_day,
    conversations_are_stored_with_their_extracted_items_and_folders,
    conversation_updates_change_title_discarded_and_folder,
    a_client_session_id_is_claimed_once,
    concurrent_claims_of_one_session_id_admit_one,
    imports_are_faithful_idempotent_and_checkpointed,
);
