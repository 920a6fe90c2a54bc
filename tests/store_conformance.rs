//! The storage conformance suite (ARCHITECTURE.md habit 4): every store operation, run against
//! every backend through the same `Store` trait. The PostgreSQL variants use a fresh database on
//! the server named by `OMI_TEST_DATABASE_URL` and are skipped with a notice when it is unset.

#[path = "support/postgres.rs"]
mod pg_support;

use std::sync::Arc;

use chrono::Duration;
use omi_server::auth::credentials::{Secret, hash_secret};
use omi_server::auth::scope::{Scope, ScopeSet};
use omi_server::config::Settings;
use omi_server::domain::ids::new_id;
use omi_server::domain::time::{self, Timestamp};
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
                #[tokio::test]
                async fn $name() {
                    let opened = super::open(super::Backend::Sqlite).await;
                    super::$name(opened.store.clone()).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
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
);
