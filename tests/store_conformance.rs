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
use omi_server::domain::feed::{FeedPosition, FeedWindow, TombstoneType};
use omi_server::domain::folders::SystemFolderSpec;
use omi_server::domain::goals::{
    Goal, GoalChanges, GoalMetric, GoalSource, GoalStatus, GoalType, NewGoal, new_goal_id,
};
use omi_server::domain::ids::new_id;
use omi_server::domain::memories::{MemoryCategory, MemoryChanges, NewMemory, Visibility};
use omi_server::domain::oauth;
use omi_server::domain::paging::Page;
use omi_server::domain::patch::Patch;
use omi_server::domain::scope::{Scope, ScopeSet};
use omi_server::domain::text::normalize_for_dedup;
use omi_server::domain::time::{self, Timestamp};
use omi_server::processing::SystemFolder;
use omi_server::search::LexicalQuery;
use omi_server::store::conversations::{
    Claim, ConversationBody, ConversationFilter, ConversationUpdate, FolderChange, NewConversation,
    ProcessedRecord, StructuredRecord,
};
use omi_server::store::import::{
    FolderRef, ImportKey, ImportOutcome, ImportRecord, ImportedConversation, ImportedFolder,
    PageCheckpoint,
};
use omi_server::store::oauth::{
    CodeRedemption, NewAuthorizationCode, NewTokens, OAuthClient, Redeemed, Refreshed,
};
use omi_server::store::{ConversationSearchFilter, NewApiKey, NewUser, Store, StoreError};
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

/// A registered OAuth client with one redirect URI.
async fn oauth_client(store: &Arc<dyn Store>, name: &str) -> OAuthClient {
    let client = OAuthClient {
        id: oauth::new_client_id(),
        name: name.to_string(),
        redirect_uris: vec!["https://client.example/cb".to_string()],
        created_at: time::now(),
    };
    assert!(
        store
            .register_oauth_client(client.clone(), time::now() - Duration::days(1), 100)
            .await
            .unwrap()
    );
    client
}

fn oauth_tokens(now: Timestamp, access_lifetime: Duration) -> (NewTokens, String, String) {
    let access = oauth::issue_access_token();
    let refresh = oauth::issue_refresh_token();
    (
        NewTokens {
            access_hash: access.hash.clone(),
            access_expires_at: now + access_lifetime,
            refresh_hash: refresh.hash.clone(),
            refresh_expires_at: now + Duration::days(30),
        },
        access.hash,
        refresh.hash,
    )
}

/// Stores a code for `client` and `user`, and answers what redeeming it needs.
async fn oauth_code(
    store: &Arc<dyn Store>,
    client: &OAuthClient,
    user_id: &str,
    scopes: ScopeSet,
) -> (String, String) {
    let code = oauth::issue_code();
    let challenge = oauth::s256_challenge(&"v".repeat(43)).unwrap();
    let now = time::now();
    store
        .create_authorization_code(
            NewAuthorizationCode {
                code_hash: code.hash.clone(),
                client_id: client.id.clone(),
                user_id: user_id.to_string(),
                redirect_uri: client.redirect_uris[0].clone(),
                scopes,
                code_challenge: challenge.clone(),
                created_at: now,
                expires_at: now + Duration::seconds(60),
            },
            now - Duration::days(1),
        )
        .await
        .unwrap();
    (code.hash, challenge)
}

fn redemption(
    client: &OAuthClient,
    code_hash: &str,
    challenge: &str,
    tokens: NewTokens,
) -> CodeRedemption {
    CodeRedemption {
        code_hash: code_hash.to_string(),
        client_id: client.id.clone(),
        redirect_uri: client.redirect_uris[0].clone(),
        code_challenge: challenge.to_string(),
        now: time::now(),
        grant_id: new_id(),
        tokens,
    }
}

async fn oauth_codes_redeem_once_and_a_replay_revokes_the_grant(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("oauth-a")).await.unwrap();
    let client = oauth_client(&store, "Connector").await;
    let scopes: ScopeSet = [Scope::MemoriesRead, Scope::GoalsRead]
        .into_iter()
        .collect();
    let (code, challenge) = oauth_code(&store, &client, &user.id, scopes).await;

    // A wrong verifier spends the code.
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    let wrong = redemption(&client, &code, "not-the-challenge", tokens);
    assert_eq!(
        store.redeem_authorization_code(wrong).await.unwrap(),
        Redeemed::Mismatch
    );
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .redeem_authorization_code(redemption(&client, &code, &challenge, tokens))
            .await
            .unwrap(),
        Redeemed::Reused
    );

    let (code, challenge) = oauth_code(&store, &client, &user.id, scopes).await;
    let (tokens, access, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .redeem_authorization_code(redemption(&client, &code, &challenge, tokens))
            .await
            .unwrap(),
        Redeemed::Granted { scopes }
    );
    let found = store
        .find_access_token(&access, time::now())
        .await
        .unwrap()
        .expect("the access token authenticates");
    assert_eq!(found.user_id, user.id);
    assert_eq!(found.key.scopes, scopes);
    assert_eq!(found.key.name, "Connector");
    // Past its lifetime it does not.
    assert!(
        store
            .find_access_token(&access, time::now() + Duration::hours(2))
            .await
            .unwrap()
            .is_none()
    );
    // Use is recorded on the grant.
    let now = time::now();
    store
        .touch_key(&found.key.id, now, now - Duration::seconds(60))
        .await
        .unwrap();
    let grants = store.list_oauth_grants(&user.id).await.unwrap();
    assert!(grants[0].last_used_at.is_some());

    // Replaying the code revokes what it obtained.
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .redeem_authorization_code(redemption(&client, &code, &challenge, tokens))
            .await
            .unwrap(),
        Redeemed::Reused
    );
    assert!(
        store
            .find_access_token(&access, time::now())
            .await
            .unwrap()
            .is_none()
    );
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .redeem_authorization_code(redemption(
                &client,
                "0".repeat(64).as_str(),
                &challenge,
                tokens
            ))
            .await
            .unwrap(),
        Redeemed::Unknown
    );
}

async fn oauth_refresh_tokens_rotate_and_reuse_revokes(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("oauth-b")).await.unwrap();
    let client = oauth_client(&store, "Connector").await;
    let other = oauth_client(&store, "Other").await;
    let scopes = ScopeSet::EMPTY.with(Scope::GoalsRead);
    let (code, challenge) = oauth_code(&store, &client, &user.id, scopes).await;
    let (tokens, access, refresh) = oauth_tokens(time::now(), Duration::hours(1));
    store
        .redeem_authorization_code(redemption(&client, &code, &challenge, tokens))
        .await
        .unwrap();

    // Another client cannot use (or revoke) it.
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .rotate_refresh_token(&refresh, &other.id, time::now(), tokens)
            .await
            .unwrap(),
        Refreshed::Invalid
    );
    store.revoke_oauth_token(&refresh, &other.id).await.unwrap();

    let (tokens, new_access, new_refresh) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .rotate_refresh_token(&refresh, &client.id, time::now(), tokens)
            .await
            .unwrap(),
        Refreshed::Rotated { scopes }
    );
    for token in [&access, &new_access] {
        assert!(
            store
                .find_access_token(token, time::now())
                .await
                .unwrap()
                .is_some()
        );
    }
    // Revoking an access token ends only that token.
    store.revoke_oauth_token(&access, &client.id).await.unwrap();
    assert!(
        store
            .find_access_token(&access, time::now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_access_token(&new_access, time::now())
            .await
            .unwrap()
            .is_some()
    );

    // The spent refresh token again: the whole grant goes.
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .rotate_refresh_token(&refresh, &client.id, time::now(), tokens)
            .await
            .unwrap(),
        Refreshed::Reused
    );
    assert!(
        store
            .find_access_token(&new_access, time::now())
            .await
            .unwrap()
            .is_none()
    );
    let (tokens, _, _) = oauth_tokens(time::now(), Duration::hours(1));
    assert_eq!(
        store
            .rotate_refresh_token(&new_refresh, &client.id, time::now(), tokens)
            .await
            .unwrap(),
        Refreshed::Invalid
    );
    assert!(store.list_oauth_grants(&user.id).await.unwrap().is_empty());
}

async fn oauth_clients_are_bounded_and_grants_listed_per_user(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("oauth-c")).await.unwrap();
    let bob = store.create_user(new_user("oauth-d")).await.unwrap();
    let client = oauth_client(&store, "Connector").await;
    let found = store.find_oauth_client(&client.id).await.unwrap().unwrap();
    assert_eq!(found.redirect_uris, client.redirect_uris);
    assert!(store.find_oauth_client("nope").await.unwrap().is_none());

    let scopes = ScopeSet::EMPTY.with(Scope::MemoriesRead);
    let (code, challenge) = oauth_code(&store, &client, &alice.id, scopes).await;
    let (tokens, access, _) = oauth_tokens(time::now(), Duration::hours(1));
    store
        .redeem_authorization_code(redemption(&client, &code, &challenge, tokens))
        .await
        .unwrap();
    let grants = store.list_oauth_grants(&alice.id).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].client_name, "Connector");
    assert_eq!(grants[0].scopes, ["memories:read"]);
    assert!(store.list_oauth_grants(&bob.id).await.unwrap().is_empty());
    assert!(
        !store
            .delete_oauth_grant(&bob.id, &grants[0].id)
            .await
            .unwrap()
    );
    assert!(
        store
            .find_access_token(&access, time::now())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .delete_oauth_grant(&alice.id, &grants[0].id)
            .await
            .unwrap()
    );
    assert!(
        store
            .find_access_token(&access, time::now())
            .await
            .unwrap()
            .is_none()
    );

    // Registration is bounded; old clients without a grant are forgotten to make room.
    let unused = OAuthClient {
        id: oauth::new_client_id(),
        name: "Old".into(),
        redirect_uris: vec!["https://old.example/cb".into()],
        created_at: time::now() - Duration::days(2),
    };
    let cutoff = time::now() - Duration::days(1);
    assert!(
        store
            .register_oauth_client(unused.clone(), cutoff, 100)
            .await
            .unwrap()
    );
    // `client` and `unused` are the two clients of this database.
    let max = 2;
    let full = OAuthClient {
        id: oauth::new_client_id(),
        ..unused.clone()
    };
    assert!(
        !store
            .register_oauth_client(full.clone(), time::now() - Duration::days(3), max)
            .await
            .unwrap(),
        "full"
    );
    assert!(
        store
            .register_oauth_client(full, cutoff, max)
            .await
            .unwrap(),
        "room made by forgetting the unused old client"
    );
    assert!(store.find_oauth_client(&unused.id).await.unwrap().is_none());
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

    // One batch is one change: its items share the change time of the latest.
    let stored_done = store.get_action_item(&alice.id, &done.id).await.unwrap();
    assert_eq!(
        stored_done,
        Some(ActionItem {
            updated_at: at(5),
            ..done.clone()
        }),
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
    let fields = NewGoal {
        title: title.to_string(),
        desired_outcome: format!("{title} done"),
        why_it_matters: Some("health".to_string()),
        success_criteria: vec!["twice a week".to_string()],
        horizon_at: Some(created_at + Duration::days(30)),
        status: GoalStatus::Background,
        source: GoalSource::User,
        metric: Some(GoalMetric {
            metric_type: GoalType::Numeric,
            current: 1.5,
            target: 10.0,
            min: Some(0.0),
            max: None,
            unit: Some("km".to_string()),
        }),
    };
    Goal::from_parts(new_goal_id(), fields, created_at, created_at, None)
}

async fn goals_are_never_deactivated_implicitly_and_list_in_both_orders(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let base = time::now();
    let goals: Vec<Goal> = (0..5)
        .map(|i| goal(&format!("g{i}"), base + Duration::seconds(i)))
        .collect();
    for goal in &goals {
        store.create_goal(&alice.id, goal.clone()).await.unwrap();
    }
    let mut qualitative = goal("bob's", base);
    qualitative.metric = None;
    let qualitative = Goal::from_parts(
        qualitative.id.clone(),
        qualitative.fields(),
        base,
        base,
        None,
    );
    store
        .create_goal(&bob.id, qualitative.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_goal(&bob.id, &qualitative.id).await.unwrap(),
        Some(qualitative)
    );
    let titles = |goals: Vec<Goal>| goals.into_iter().map(|g| g.title).collect::<Vec<_>>();
    assert_eq!(
        titles(
            store
                .list_goals(&alice.id, false, page(10, 0))
                .await
                .unwrap()
        ),
        ["g0", "g1", "g2", "g3", "g4"],
        "every goal stays active, oldest first"
    );
    assert!(
        store
            .abandon_goal(&alice.id, &goals[0].id, base + Duration::minutes(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .abandon_goal(&bob.id, &goals[0].id, base)
            .await
            .unwrap()
    );
    assert_eq!(
        titles(
            store
                .list_goals(&alice.id, false, page(10, 0))
                .await
                .unwrap()
        ),
        ["g1", "g2", "g3", "g4"]
    );
    let all = store
        .list_goals(&alice.id, true, page(10, 0))
        .await
        .unwrap();
    assert_eq!(titles(all.clone()), ["g4", "g3", "g2", "g1", "g0"]);
    assert_eq!(all[4].status, GoalStatus::Abandoned);
    assert!(!all[4].is_active);
    assert_eq!(all[4].ended_at, Some(base + Duration::minutes(1)));
    assert_eq!(
        titles(store.list_goals(&alice.id, true, page(2, 1)).await.unwrap()),
        ["g3", "g2"]
    );
    assert_eq!(
        store.get_goal(&alice.id, &goals[4].id).await.unwrap(),
        Some(goals[4].clone()),
        "reads back equal, v2 fields and metric included"
    );
    assert!(
        store
            .get_goal(&bob.id, &goals[4].id)
            .await
            .unwrap()
            .is_none()
    );
    let again = store.create_goal(&alice.id, goals[4].clone()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

async fn concurrent_creations_all_stay_active(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let creations = (0..12).map(|i| {
        let (store, user_id) = (store.clone(), alice.id.clone());
        tokio::spawn(async move {
            store
                .create_goal(&user_id, goal(&format!("g{i}"), time::now()))
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
        12
    );
}

async fn goal_history_keeps_the_last_value_of_each_day(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let day =
        |d: u32, h: u32| time::parse_datetime(&format!("2025-03-{d:02}T{h:02}:00:00Z")).unwrap();
    let created = goal("run", day(1, 8));
    store.create_goal(&alice.id, created.clone()).await.unwrap();
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
    assert!(
        !store
            .abandon_goal(&bob.id, &created.id, day(5, 8))
            .await
            .unwrap()
    );
    assert!(
        store
            .abandon_goal(&alice.id, &created.id, day(5, 8))
            .await
            .unwrap()
    );
    let kept = store
        .goal_history(&alice.id, &created.id, day(1, 0).date_naive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.len(), 2, "an abandoned goal keeps its history");
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
            starred: None,
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

fn q(text: &str) -> LexicalQuery {
    LexicalQuery::parse(text)
}

async fn memory_hits(store: &Arc<dyn Store>, user_id: &str, text: &str) -> Vec<(String, f64)> {
    store
        .search_memories(user_id, &q(text), &[], page(10, 0))
        .await
        .unwrap()
        .into_iter()
        .map(|hit| (hit.item.content, hit.score))
        .collect()
}

async fn memory_search_ranks_the_exact_phrase_first_and_sees_only_the_owner(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let mut tagged = memory_request("The café in München serves great coffee", None);
    tagged.tags = Some(vec!["travel".to_string()]);
    store
        .save_memories(
            &alice.id,
            vec![
                memory_request(
                    "Peanut butter cookies are a family recipe, allergic guests beware",
                    None,
                ),
                memory_request("Alex is allergic to peanuts", None),
                memory_request("Went to the cinema on Friday", None),
                tagged,
            ],
            time::now(),
        )
        .await
        .unwrap();
    store
        .save_memories(
            &bob.id,
            vec![memory_request("Bob is allergic to peanuts too", None)],
            time::now(),
        )
        .await
        .unwrap();

    let hits = memory_hits(&store, &alice.id, "allergic to peanuts").await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].0, "Alex is allergic to peanuts");
    assert_eq!(hits[0].1, 1.0);
    assert!(hits[1].1 > 0.0 && hits[1].1 < 1.0, "{hits:?}");
    assert!(hits.iter().all(|(content, _)| !content.starts_with("Bob")));

    // Diacritics folded, stems and prefixes matched, tags indexed.
    assert_eq!(
        memory_hits(&store, &alice.id, "cafe munchen").await.len(),
        1
    );
    assert_eq!(memory_hits(&store, &alice.id, "coffees").await.len(), 1);
    assert_eq!(memory_hits(&store, &alice.id, "cinem").await.len(), 1);
    assert_eq!(memory_hits(&store, &alice.id, "travel ").await.len(), 1);
    // A required phrase in the wrong order matches nothing; query syntax is never an error.
    assert!(
        memory_hits(&store, &alice.id, "\"peanuts allergic\"")
            .await
            .is_empty()
    );
    for text in [
        "NEAR(\"a",
        "content:x OR",
        "*",
        "\"\"",
        "' OR 1=1 --",
        "a AND NOT",
    ] {
        store
            .search_memories(&alice.id, &q(text), &[], page(10, 0))
            .await
            .unwrap();
    }
    // Categories filter, pages keep the first page's scale.
    let system = store
        .search_memories(
            &alice.id,
            &q("allergic"),
            &[MemoryCategory::Interesting],
            page(10, 0),
        )
        .await
        .unwrap();
    assert!(system.is_empty(), "{system:?}");
    let second = store
        .search_memories(&alice.id, &q("allergic to peanuts"), &[], page(1, 1))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert!(second[0].score < 1.0);
}

async fn memory_search_follows_edits_and_deletes_at_once(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let saved = store
        .save_memories(
            &alice.id,
            vec![memory_request("Loves sailing on the lake", None)],
            time::now(),
        )
        .await
        .unwrap();
    let id = saved[0].id.clone();
    assert_eq!(memory_hits(&store, &alice.id, "sailing").await.len(), 1);
    store
        .update_memory(
            &alice.id,
            &id,
            MemoryChanges {
                content: Some("Loves climbing in the mountains".to_string()),
                tags: Some(vec!["hobby".to_string()]),
                ..Default::default()
            },
            time::now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(memory_hits(&store, &alice.id, "sailing").await.is_empty());
    assert_eq!(memory_hits(&store, &alice.id, "climbing").await.len(), 1);
    assert_eq!(memory_hits(&store, &alice.id, "hobby").await.len(), 1);
    assert!(store.delete_memory(&alice.id, &id).await.unwrap());
    assert!(memory_hits(&store, &alice.id, "climbing").await.is_empty());
}

/// Past `search::CANDIDATES` matches only the newest are ranked, but the filters and the owner
/// are applied before counting them, and a deep page still reaches every match.
async fn a_common_query_bounds_the_ranked_matches_after_filtering(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let candidates = omi_server::search::CANDIDATES as usize;
    let long_ago = time::now() - Duration::days(30);
    store
        .save_memories(
            &alice.id,
            vec![memory_request(
                "Peanuts came up at the clinic",
                Some(MemoryCategory::Interesting),
            )],
            long_ago,
        )
        .await
        .unwrap();
    let recent: Vec<NewMemory> = (0..10)
        .map(|n| memory_request(&format!("Alice avoids peanuts, note {n}"), None))
        .collect();
    store
        .save_memories(&alice.id, recent, time::now() - Duration::days(1))
        .await
        .unwrap();
    // Bob's matches are newer and more than the bound: they must not take Alice's places.
    let many: Vec<NewMemory> = (0..candidates + 20)
        .map(|n| memory_request(&format!("Bob eats peanuts, note {n}"), None))
        .collect();
    store
        .save_memories(&bob.id, many, time::now())
        .await
        .unwrap();

    let alices = store
        .search_memories(&alice.id, &q("peanuts"), &[], page(100, 0))
        .await
        .unwrap();
    assert_eq!(alices.len(), 11);
    assert!(alices.iter().any(|hit| hit.item.content.contains("clinic")));

    let filtered = store
        .search_memories(
            &alice.id,
            &q("peanuts"),
            &[MemoryCategory::Interesting],
            page(10, 0),
        )
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1, "{filtered:?}");

    let first = store
        .search_memories(&bob.id, &q("peanuts"), &[], page(10, 0))
        .await
        .unwrap();
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|hit| hit.score > 0.0 && hit.score <= 1.0));
    let deep = store
        .search_memories(
            &bob.id,
            &q("peanuts"),
            &[],
            page(10, (candidates + 15) as i64),
        )
        .await
        .unwrap();
    assert_eq!(deep.len(), 5, "the last page past the bound");
}

async fn action_item_search_filters_completion_and_follows_changes(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let now = time::now();
    let open = action_item("Review the quarterly report", now);
    let mut done = action_item("Send the report to Maria", now);
    done.completed = true;
    done.completed_at = Some(now);
    store
        .create_action_items(&alice.id, vec![open.clone(), done.clone()])
        .await
        .unwrap();
    store
        .create_action_items(&bob.id, vec![action_item("Bob's report", now)])
        .await
        .unwrap();
    let search = |completed: Option<bool>, text: &'static str| {
        let store = store.clone();
        let user = alice.id.clone();
        async move {
            store
                .search_action_items(&user, &q(text), completed, page(10, 0))
                .await
                .unwrap()
                .into_iter()
                .map(|hit| hit.item.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(None, "reports").await.len(), 2);
    assert_eq!(search(Some(false), "report").await, vec![open.id.clone()]);
    assert_eq!(search(Some(true), "report").await, vec![done.id.clone()]);
    store
        .update_action_item(
            &alice.id,
            &open.id,
            ActionItemChanges {
                description: Some("Book the dentist".to_string()),
                completed: None,
                due_at: Patch::Absent,
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(search(None, "dentist").await, vec![open.id.clone()]);
    assert_eq!(search(None, "quarterly").await, Vec::<String>::new());
    assert!(store.delete_action_item(&alice.id, &done.id).await.unwrap());
    assert!(search(None, "maria").await.is_empty());
}

async fn conversation_search_covers_title_overview_and_transcript(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let base = time::now() - Duration::days(10);
    let pricing = text_conversation("Pricing sync", "business", SystemFolder::Work, base);
    let mut call = text_conversation(
        "Weekly call",
        "business",
        SystemFolder::Work,
        base + Duration::days(5),
    );
    call.body = ConversationBody::Segments(vec![
        segment("The kangaroo exhibit opens in March", 0.0, true),
        segment("Let's take the kids", 3.0, false),
    ]);
    let mut discarded = text_conversation("Pricing noise", "other", SystemFolder::Work, base);
    discarded.processed.structured.discarded = true;
    discarded.processed.folder = None;
    for conversation in [pricing.clone(), call.clone(), discarded.clone()] {
        store
            .create_conversation(&alice.id, conversation)
            .await
            .unwrap();
    }
    store
        .create_conversation(
            &bob.id,
            text_conversation("Pricing for Bob", "business", SystemFolder::Work, base),
        )
        .await
        .unwrap();
    let search = |text: &'static str, filter: ConversationSearchFilter| {
        let store = store.clone();
        let user = alice.id.clone();
        async move {
            store
                .search_conversations(&user, &q(text), filter, page(10, 0), false)
                .await
                .unwrap()
        }
    };
    let found = search("pricing", ConversationSearchFilter::default()).await;
    assert_eq!(
        found.len(),
        1,
        "discarded and other users' conversations never match"
    );
    assert_eq!(found[0].item.id, pricing.id);
    assert_eq!(found[0].item.folder_name.as_deref(), Some("Work"));
    assert_eq!(found[0].item.transcript_segments, None);
    assert_eq!(found[0].score, 1.0);
    let kangaroo = search("kangaroos", ConversationSearchFilter::default()).await;
    assert_eq!(kangaroo.len(), 1, "segments are indexed");
    assert_eq!(kangaroo[0].item.id, call.id);
    let later = ConversationSearchFilter {
        created_from: Some(base + Duration::days(1)),
        created_before: None,
    };
    assert!(search("pricing", later).await.is_empty());
    assert_eq!(search("kangaroo", later).await.len(), 1);

    store
        .update_conversation(
            &alice.id,
            &call.id,
            ConversationUpdate {
                title: Some("Zoo planning".to_string()),
                discarded: None,
                starred: None,
                folder: FolderChange::Keep,
                reprocessed: None,
                updated_at: time::now(),
            },
        )
        .await
        .unwrap();
    let renamed = search("zoo", ConversationSearchFilter::default()).await;
    assert_eq!(renamed.len(), 1);
    assert_eq!(renamed[0].item.structured.title, "Zoo planning");
    assert_eq!(
        search("kangaroo", ConversationSearchFilter::default())
            .await
            .len(),
        1,
        "the transcript stays indexed"
    );
    assert!(
        store
            .delete_conversation(&alice.id, &call.id)
            .await
            .unwrap()
    );
    assert!(
        search("kangaroo", ConversationSearchFilter::default())
            .await
            .is_empty()
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

async fn conversation_titles(store: &Arc<dyn Store>, user_id: &str, text: &str) -> Vec<String> {
    store
        .search_conversations(
            user_id,
            &q(text),
            ConversationSearchFilter::default(),
            page(10, 0),
            false,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|hit| hit.item.structured.title)
        .collect()
}

/// An imported conversation is searchable by its title, overview and transcript, once, and a
/// re-import of a changed version replaces what the index holds.
async fn imported_conversations_are_indexed_for_search(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("importer")).await.unwrap();
    let other = store.create_user(new_user("other")).await.unwrap();
    let now = time::now();
    let record = imported_conversation("conv-1", "Dentist visit", None);
    store
        .import_record(&user.id, import_key("conv-1", "v1"), record, now)
        .await
        .unwrap();
    assert_eq!(
        conversation_titles(&store, &user.id, "hello").await,
        ["Dentist visit"]
    );
    assert_eq!(
        conversation_titles(&store, &user.id, "dentist").await,
        ["Dentist visit"]
    );
    assert!(
        conversation_titles(&store, &other.id, "hello")
            .await
            .is_empty()
    );

    let changed = imported_conversation("conv-1", "Orthodontist visit", None);
    store
        .import_record(&user.id, import_key("conv-1", "v2"), changed, now)
        .await
        .unwrap();
    assert!(
        conversation_titles(&store, &user.id, "dentist")
            .await
            .is_empty()
    );
    assert_eq!(
        conversation_titles(&store, &user.id, "hello").await,
        ["Orthodontist visit"]
    );
    assert!(store.delete_conversation(&user.id, "conv-1").await.unwrap());
    assert!(
        conversation_titles(&store, &user.id, "hello")
            .await
            .is_empty()
    );
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

// The change feed (store::feed): every write transaction of a user takes its time from the
// user's change clock, so `(updated_at, id)` order is commit order even when the callers'
// clocks stand still or step back.

fn window(since: Option<Timestamp>, after: Option<FeedPosition>, limit: i64) -> FeedWindow {
    FeedWindow {
        since,
        after,
        limit,
    }
}

async fn the_change_clock_orders_writes_whatever_the_callers_clock_says(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let now = time::now();
    // One batch, one change time.
    let batch = store
        .save_memories(
            &alice.id,
            vec![
                memory_request("Fact a", None),
                memory_request("Fact b", None),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(batch[0].updated_at, now);
    assert_eq!(batch[0].updated_at, batch[1].updated_at);
    // The same instant again, then an earlier one: each still comes after the last change.
    let same = store
        .save_memories(&alice.id, vec![memory_request("Fact c", None)], now)
        .await
        .unwrap();
    assert!(same[0].updated_at > now, "{:?}", same[0].updated_at);
    let earlier = store
        .update_memory(
            &alice.id,
            &batch[0].id,
            MemoryChanges {
                tags: Some(vec!["x".into()]),
                ..Default::default()
            },
            now - Duration::hours(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(earlier.updated_at > same[0].updated_at);
    assert_eq!(
        store
            .get_memory(&alice.id, &batch[0].id)
            .await
            .unwrap()
            .unwrap(),
        earlier,
        "what was answered is what is stored"
    );
    // Another user's clock is their own.
    let theirs = store
        .save_memories(&bob.id, vec![memory_request("Fact a", None)], now)
        .await
        .unwrap();
    assert_eq!(theirs[0].updated_at, now);

    // The feed: (updated_at, id) ascending, `since` inclusive, `after` exclusive.
    let all = store
        .memories_changed(&alice.id, &[], &window(None, None, 10))
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    let mut first_two = [batch[0].id.as_str(), batch[1].id.as_str()];
    first_two.sort();
    // batch[0] moved last when it was edited.
    let other = if first_two[0] == batch[0].id {
        first_two[1]
    } else {
        first_two[0]
    };
    assert_eq!(ids, vec![other, same[0].id.as_str(), batch[0].id.as_str()]);
    let since = store
        .memories_changed(&alice.id, &[], &window(Some(same[0].updated_at), None, 10))
        .await
        .unwrap();
    assert_eq!(since.len(), 2, "inclusive");
    let after = FeedPosition {
        at: same[0].updated_at,
        id: same[0].id.clone(),
    };
    let rest = store
        .memories_changed(&alice.id, &[], &window(None, Some(after), 10))
        .await
        .unwrap();
    assert_eq!(rest, vec![earlier]);
    let limited = store
        .memories_changed(&alice.id, &[], &window(None, None, 1))
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
}

async fn concurrent_writers_of_one_user_get_distinct_change_times(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let now = time::now();
    let writes = (0..16).map(|i| {
        let store = store.clone();
        let user_id = alice.id.clone();
        async move {
            store
                .save_memories(
                    &user_id,
                    vec![memory_request(&format!("Fact {i}"), None)],
                    now,
                )
                .await
                .unwrap()
        }
    });
    let saved: Vec<_> = futures::future::join_all(writes).await;
    let mut times: Vec<Timestamp> = saved.iter().map(|s| s[0].updated_at).collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), 16, "one change time per transaction");
    let feed = store
        .memories_changed(&alice.id, &[], &window(None, None, 100))
        .await
        .unwrap();
    let order: Vec<Timestamp> = feed.iter().map(|m| m.updated_at).collect();
    assert_eq!(order, times);
}

async fn every_list_has_a_feed_with_its_filters(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let now = time::now();
    store
        .create_action_items(
            &alice.id,
            vec![action_item("One", now), action_item("Two", now)],
        )
        .await
        .unwrap();
    let items = store
        .action_items_changed(
            &alice.id,
            ActionItemFilter::default(),
            &window(None, None, 10),
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].updated_at, items[1].updated_at,
        "one batch, one time"
    );
    let open_only = ActionItemFilter {
        completed: Some(true),
        ..Default::default()
    };
    assert!(
        store
            .action_items_changed(&alice.id, open_only, &window(None, None, 10))
            .await
            .unwrap()
            .is_empty()
    );

    let goal = goal("Run", now);
    store.create_goal(&alice.id, goal.clone()).await.unwrap();
    assert!(store.abandon_goal(&alice.id, &goal.id, now).await.unwrap());
    let goals = store
        .goals_changed(&alice.id, &window(None, None, 10))
        .await
        .unwrap();
    assert_eq!(goals.len(), 1, "ended goals are in the feed");
    assert_eq!(goals[0].status, GoalStatus::Abandoned);

    let conversation = text_conversation("Budget", "business", SystemFolder::Work, now);
    store
        .create_conversation(&alice.id, conversation.clone())
        .await
        .unwrap();
    let folders = store
        .folders_changed(&alice.id, &window(None, None, 10))
        .await
        .unwrap();
    assert_eq!(folders.len(), 3);
    let work = folders
        .iter()
        .find(|f| f.conversation_count == 1)
        .unwrap()
        .clone();
    let discard = ConversationUpdate {
        title: None,
        discarded: Some(true),
        starred: None,
        folder: FolderChange::Keep,
        reprocessed: None,
        updated_at: now,
    };
    assert!(
        store
            .update_conversation(&alice.id, &conversation.id, discard)
            .await
            .unwrap()
    );
    let changed = store
        .conversations_changed(
            &alice.id,
            &ConversationFilter::default(),
            &window(None, None, 10),
            false,
        )
        .await
        .unwrap();
    assert_eq!(changed.len(), 1, "discarded conversations are in the feed");
    assert!(changed[0].discarded);
    let since = work.updated_at + Duration::microseconds(1);
    let recounted = store
        .folders_changed(&alice.id, &window(Some(since), None, 10))
        .await
        .unwrap();
    assert_eq!(
        recounted.len(),
        1,
        "the folder's count changed, so the folder did"
    );
    assert_eq!(recounted[0].id, work.id);
    assert_eq!(recounted[0].conversation_count, 0);
}

async fn deletions_leave_tombstones_that_age_out(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let bob = store.create_user(new_user("bob")).await.unwrap();
    let now = time::now();
    let memory = store
        .save_memories(&alice.id, vec![memory_request("Short-lived", None)], now)
        .await
        .unwrap()
        .remove(0);
    let item = action_item("Gone", now);
    store
        .create_action_items(&alice.id, vec![item.clone()])
        .await
        .unwrap();
    let conversation = text_conversation("Budget", "business", SystemFolder::Work, now);
    store
        .create_conversation(&alice.id, conversation.clone())
        .await
        .unwrap();
    let key = store
        .create_key(new_key(&alice.id, "k", now), 100)
        .await
        .unwrap();

    assert!(!store.delete_memory(&bob.id, &memory.id).await.unwrap());
    assert!(store.delete_memory(&alice.id, &memory.id).await.unwrap());
    assert!(store.delete_action_item(&alice.id, &item.id).await.unwrap());
    assert!(
        store
            .delete_conversation(&alice.id, &conversation.id)
            .await
            .unwrap()
    );
    assert!(store.delete_key(&alice.id, &key.id).await.unwrap());
    assert!(!store.delete_key(&alice.id, &key.id).await.unwrap(), "once");

    let all = store
        .deletions(&alice.id, &[], &window(None, None, 10))
        .await
        .unwrap();
    let seen: Vec<(TombstoneType, &str)> = all.iter().map(|t| (t.kind, t.id.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            (TombstoneType::Memory, memory.id.as_str()),
            (TombstoneType::ActionItem, item.id.as_str()),
            (TombstoneType::Conversation, conversation.id.as_str()),
            (TombstoneType::Key, key.id.as_str()),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].deleted_at < w[1].deleted_at));
    assert!(
        store
            .deletions(&bob.id, &[], &window(None, None, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let only = store
        .deletions(&alice.id, &[TombstoneType::Key], &window(None, None, 10))
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    let after = store
        .deletions(&alice.id, &[], &window(None, Some(all[1].position()), 10))
        .await
        .unwrap();
    assert_eq!(after, all[2..].to_vec());

    // The memory exists again: no longer deleted.
    store
        .save_memories(&alice.id, vec![memory_request("Short-lived", None)], now)
        .await
        .unwrap();
    assert_eq!(
        store
            .deletions(&alice.id, &[TombstoneType::Memory], &window(None, None, 10))
            .await
            .unwrap(),
        vec![]
    );

    // Pruning goes by age, a bounded batch at a time.
    assert_eq!(
        store
            .prune_tombstones(now - Duration::days(1), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .prune_tombstones(time::now() + Duration::days(1), 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .prune_tombstones(time::now() + Duration::days(1), 100)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .deletions(&alice.id, &[], &window(None, None, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A page commits its objects and its checkpoint together; the same page again changes nothing.
async fn an_import_page_commits_its_objects_with_its_checkpoint(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("pager")).await.unwrap();
    let now = time::now();
    let page = || {
        vec![
            (
                import_key("conv-a", "v1"),
                imported_conversation("conv-a", "First", None),
            ),
            (
                import_key("conv-b", "v1"),
                imported_conversation("conv-b", "Second", None),
            ),
        ]
    };
    let checkpoint = PageCheckpoint {
        source: "https://source.example".into(),
        resource: "conversations".into(),
        next_offset: 2,
    };
    let outcomes = store
        .import_page(&user.id, page(), Some(checkpoint.clone()), now)
        .await
        .unwrap();
    let outcomes: Vec<ImportOutcome> = outcomes.into_iter().map(|o| o.unwrap().outcome).collect();
    assert_eq!(outcomes, [ImportOutcome::Created, ImportOutcome::Created]);
    assert_eq!(
        store
            .import_checkpoint(&user.id, "https://source.example", "conversations")
            .await
            .unwrap(),
        Some(2)
    );
    for id in ["conv-a", "conv-b"] {
        assert!(
            store
                .get_conversation(&user.id, id, false)
                .await
                .unwrap()
                .is_some()
        );
    }
    let again = store
        .import_page(&user.id, page(), None, now)
        .await
        .unwrap();
    assert!(
        again
            .into_iter()
            .all(|o| o.unwrap().outcome == ImportOutcome::Unchanged)
    );
    // A page with nothing new still moves the checkpoint.
    let moved = PageCheckpoint {
        next_offset: 4,
        ..checkpoint
    };
    assert!(
        store
            .import_page(&user.id, vec![], Some(moved), now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .import_checkpoint(&user.id, "https://source.example", "conversations")
            .await
            .unwrap(),
        Some(4)
    );
}

/// Processed inbox rows go by processing time, a bounded batch at a time, oldest first; pending
/// and failed rows stay whatever their age, and a pruned row's dedupe key is free again.
async fn processed_inbox_rows_age_out(store: Arc<dyn Store>) {
    use omi_server::store::ingest::NewDelivery;
    let user = store.create_user(new_user("inbox")).await.unwrap();
    let start = time::now();
    let accept = |key: &str| {
        store.accept_delivery(NewDelivery {
            user_id: user.id.clone(),
            kind: "conversation".into(),
            dedupe_key: key.into(),
            body: b"{}".to_vec(),
            params: "{}".into(),
            received_at: start,
        })
    };
    for key in ["a", "b", "c", "failed", "pending"] {
        assert!(accept(key).await.unwrap());
    }
    let claimed = store
        .claim_inbox_deliveries(start, start + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    // a, b and c processed a day apart; "failed" given up on; "pending" to be retried.
    for (day, delivery) in claimed[..3].iter().enumerate() {
        store
            .finish_delivery(delivery.seq, start + Duration::days(day as i64))
            .await
            .unwrap();
    }
    store
        .fail_delivery(claimed[3].seq, "broken", None)
        .await
        .unwrap();
    store
        .fail_delivery(claimed[4].seq, "busy", Some(start + Duration::days(30)))
        .await
        .unwrap();

    assert_eq!(store.prune_inbox(start, 100).await.unwrap(), 0);
    let before_c = start + Duration::days(2);
    assert_eq!(store.prune_inbox(before_c, 1).await.unwrap(), 1);
    assert!(!accept("b").await.unwrap(), "b is still held");
    assert!(accept("a").await.unwrap(), "a went first: its key is free");
    assert_eq!(store.prune_inbox(before_c, 100).await.unwrap(), 1);
    let far = start + Duration::days(365);
    assert_eq!(store.prune_inbox(far, 100).await.unwrap(), 1);
    let inbox = store.inbox_summary(10).await.unwrap();
    // The new "a", "failed" and "pending" remain.
    assert_eq!((inbox.pending, inbox.done, inbox.failed), (2, 0, 1));
}

/// Fifty items with every nullable field both set and unset, stored by one call: each reads
/// back as given (with the batch's change time), in one change.
async fn a_full_action_item_batch_keeps_every_field(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let base = time::now();
    let items: Vec<ActionItem> = (0..50)
        .map(|n| {
            let mut item = action_item(&format!("item {n}"), base + Duration::milliseconds(n));
            if n % 2 == 0 {
                item.due_at = Some(base + Duration::days(n));
            }
            if n % 3 == 0 {
                item.completed = true;
                item.completed_at = Some(base + Duration::seconds(n));
            }
            if n % 5 == 0 {
                item.conversation_id = Some(format!("conversation-{n}"));
            }
            item
        })
        .collect();
    store
        .create_action_items(&alice.id, items.clone())
        .await
        .unwrap();
    let latest = base + Duration::milliseconds(49);
    for item in &items {
        let stored = store.get_action_item(&alice.id, &item.id).await.unwrap();
        let expected = ActionItem {
            updated_at: latest,
            ..item.clone()
        };
        assert_eq!(stored, Some(expected), "{}", item.description);
    }
    let listed = store
        .list_action_items(&alice.id, ActionItemFilter::default(), page(100, 0))
        .await
        .unwrap();
    assert_eq!(listed.len(), 50);
}

/// A batch is all or nothing wherever the failing item sits, and whatever it collides with.
async fn a_full_action_item_batch_with_one_taken_id_stores_nothing(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let first = action_item("first", time::now());
    store
        .create_action_items(&alice.id, vec![first.clone()])
        .await
        .unwrap();
    let fresh = |count: usize| -> Vec<ActionItem> {
        (0..count)
            .map(|n| action_item(&format!("fresh {n}"), time::now()))
            .collect()
    };
    // The last of fifty takes a stored id.
    let mut batch = fresh(49);
    let mut taken = action_item("taken id", time::now());
    taken.id = first.id.clone();
    batch.push(taken);
    let outcome = store.create_action_items(&alice.id, batch).await;
    assert!(
        matches!(outcome, Err(StoreError::Conflict(_))),
        "{outcome:?}"
    );
    // Two items of one batch share an id.
    let mut batch = fresh(50);
    batch[30].id = batch[10].id.clone();
    let outcome = store.create_action_items(&alice.id, batch).await;
    assert!(
        matches!(outcome, Err(StoreError::Conflict(_))),
        "{outcome:?}"
    );
    let listed = store
        .list_action_items(&alice.id, ActionItemFilter::default(), page(100, 0))
        .await
        .unwrap();
    assert_eq!(listed, vec![first], "all or nothing");
}

/// One call saving new and existing contents, one of them twice: each request applies to what
/// the ones before it left, as if saved one by one, and each content is stored once.
async fn a_memory_batch_applies_its_requests_in_order(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let first = time::now();
    let mut tagged = memory_request("Alex likes tea", None);
    tagged.tags = Some(vec!["drinks".to_string()]);
    let existing = store
        .save_memories(&alice.id, vec![tagged], first)
        .await
        .unwrap()
        .remove(0);
    let later = first + Duration::seconds(5);
    let mut public = memory_request("Alex runs on Sundays", Some(MemoryCategory::System));
    public.visibility = Some(Visibility::Public);
    let mut retagged = memory_request("Alex runs on Sundays", Some(MemoryCategory::Interesting));
    retagged.tags = Some(vec!["sport".to_string()]);
    let mut requests = vec![
        public,
        memory_request("Alex likes tea", Some(MemoryCategory::Interesting)),
        retagged,
    ];
    requests.extend((0..20).map(|n| memory_request(&format!("Alex knows fact {n}"), None)));
    let saved = store
        .save_memories(&alice.id, requests, later)
        .await
        .unwrap();
    assert_eq!(saved.len(), 23, "one memory per request");
    // The existing one keeps its creation and the fields the request left out.
    assert_eq!(saved[1].id, existing.id);
    assert_eq!(saved[1].created_at, existing.created_at);
    assert_eq!(saved[1].tags, ["drinks"]);
    assert_eq!(saved[1].category, MemoryCategory::Interesting);
    // The repeat applies to the memory the first request created.
    assert_eq!(saved[0].id, saved[2].id);
    assert_eq!(saved[2].created_at, saved[0].created_at);
    assert_eq!(saved[2].visibility, Visibility::Public);
    assert_eq!(saved[2].category, MemoryCategory::Interesting);
    assert_eq!(saved[2].tags, ["sport"]);
    for memory in saved.iter().skip(1) {
        assert_eq!(
            store
                .get_memory(&alice.id, &memory.id)
                .await
                .unwrap()
                .as_ref(),
            Some(memory),
            "{}",
            memory.content
        );
    }
    let listed = store
        .list_memories(&alice.id, &[], page(100, 0))
        .await
        .unwrap();
    assert_eq!(listed.len(), 22, "each content once");
}

/// A long transcript with every optional segment field, and several extracted items, read back
/// in order.
async fn a_conversations_transcript_and_extracted_items_read_back_in_order(store: Arc<dyn Store>) {
    let alice = store.create_user(new_user("alice")).await.unwrap();
    let base = time::now();
    let mut call = text_conversation("Planning", "work", SystemFolder::Work, base);
    let segments: Vec<NewSegment> = (0..60)
        .map(|n| {
            let mut segment = segment(&format!("line {n}"), f64::from(n) * 2.25, n % 2 == 0);
            segment.speaker_id = if n % 7 == 0 { i64::MAX } else { n.into() };
            segment.person_id = (n % 3 == 0).then(|| format!("person-{n}"));
            segment
        })
        .collect();
    call.body = ConversationBody::Segments(segments.clone());
    call.processed.action_items = (0..10)
        .map(|n| {
            let mut item = action_item(&format!("task {n}"), call.processed_at);
            item.conversation_id = Some(call.id.clone());
            item.due_at = (n % 2 == 0).then(|| base + Duration::days(n));
            item
        })
        .collect();
    call.processed.memories = (0..10)
        .map(|n| {
            memory_request(&format!("Alex plans item {n}"), None)
                .into_memory(call.processed_at, |_| MemoryCategory::System)
        })
        .collect();
    assert_eq!(
        store
            .create_conversation(&alice.id, call.clone())
            .await
            .unwrap(),
        Claim::Claimed
    );
    let got = store
        .get_conversation(&alice.id, &call.id, true)
        .await
        .unwrap()
        .unwrap();
    let transcript = got.transcript_segments.unwrap();
    assert_eq!(transcript.len(), 60);
    for (stored, given) in transcript.iter().zip(&segments) {
        assert_eq!(stored.id, given.id);
        assert_eq!(stored.text, given.text);
        assert_eq!(stored.speaker, given.speaker);
        assert_eq!(stored.speaker_id, given.speaker_id);
        assert_eq!(stored.is_user, given.is_user);
        assert_eq!(stored.person_id, given.person_id);
        assert_eq!((stored.start, stored.end), (given.start, given.end));
    }
    let mut items = got.structured.action_items;
    items.sort_by(|a, b| a.description.cmp(&b.description));
    assert_eq!(items.len(), 10);
    for (stored, given) in items.iter().zip(&call.processed.action_items) {
        assert_eq!(
            (&stored.id, stored.due_at, &stored.conversation_id),
            (&given.id, given.due_at, &given.conversation_id)
        );
    }
    for memory in &call.processed.memories {
        let stored = store.get_memory(&alice.id, &memory.id).await.unwrap();
        assert_eq!(stored.map(|m| m.content), Some(memory.content.clone()));
    }
}

conformance!(
    processed_inbox_rows_age_out,
    a_full_action_item_batch_keeps_every_field,
    a_full_action_item_batch_with_one_taken_id_stores_nothing,
    a_memory_batch_applies_its_requests_in_order,
    a_conversations_transcript_and_extracted_items_read_back_in_order,
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
    goals_are_never_deactivated_implicitly_and_list_in_both_orders,
    concurrent_creations_all_stay_active,
    goal_history_keeps_the_last_value_of_each_day,
    conversations_are_stored_with_their_extracted_items_and_folders,
    conversation_updates_change_title_discarded_and_folder,
    a_client_session_id_is_claimed_once,
    concurrent_claims_of_one_session_id_admit_one,
    memory_search_ranks_the_exact_phrase_first_and_sees_only_the_owner,
    memory_search_follows_edits_and_deletes_at_once,
    a_common_query_bounds_the_ranked_matches_after_filtering,
    action_item_search_filters_completion_and_follows_changes,
    conversation_search_covers_title_overview_and_transcript,
    imports_are_faithful_idempotent_and_checkpointed,
    imported_conversations_are_indexed_for_search,
    an_import_page_commits_its_objects_with_its_checkpoint,
    the_change_clock_orders_writes_whatever_the_callers_clock_says,
    concurrent_writers_of_one_user_get_distinct_change_times,
    every_list_has_a_feed_with_its_filters,
    deletions_leave_tombstones_that_age_out,
    oauth_codes_redeem_once_and_a_replay_revokes_the_grant,
    oauth_refresh_tokens_rotate_and_reuse_revokes,
    oauth_clients_are_bounded_and_grants_listed_per_user,
);

/// The migrations before goals v2, as released.
const BEFORE_GOALS_V2: [(i32, &str, &str, &str); 10] = [
    (
        1,
        "identity",
        include_str!("../migrations/sqlite/0001_identity.sql"),
        include_str!("../migrations/postgres/0001_identity.sql"),
    ),
    (
        2,
        "memories",
        include_str!("../migrations/sqlite/0002_memories.sql"),
        include_str!("../migrations/postgres/0002_memories.sql"),
    ),
    (
        3,
        "action_items",
        include_str!("../migrations/sqlite/0003_action_items.sql"),
        include_str!("../migrations/postgres/0003_action_items.sql"),
    ),
    (
        4,
        "goals",
        include_str!("../migrations/sqlite/0004_goals.sql"),
        include_str!("../migrations/postgres/0004_goals.sql"),
    ),
    (
        5,
        "conversations",
        include_str!("../migrations/sqlite/0005_conversations.sql"),
        include_str!("../migrations/postgres/0005_conversations.sql"),
    ),
    (
        6,
        "processing_parts",
        include_str!("../migrations/sqlite/0006_processing_parts.sql"),
        include_str!("../migrations/postgres/0006_processing_parts.sql"),
    ),
    (
        7,
        "conversation_items_index",
        include_str!("../migrations/sqlite/0007_conversation_items_index.sql"),
        include_str!("../migrations/postgres/0007_conversation_items_index.sql"),
    ),
    (
        8,
        "idempotency",
        include_str!("../migrations/sqlite/0008_idempotency.sql"),
        include_str!("../migrations/postgres/0008_idempotency.sql"),
    ),
    (
        9,
        "conversation_starred",
        include_str!("../migrations/sqlite/0009_conversation_starred.sql"),
        include_str!("../migrations/postgres/0009_conversation_starred.sql"),
    ),
    (
        10,
        "insights",
        include_str!("../migrations/sqlite/0010_insights.sql"),
        include_str!("../migrations/postgres/0010_insights.sql"),
    ),
];

/// Two goals as the first goals schema stored them: an active one, and one the three-active rule
/// had deactivated; then the current migrations run and the store reads them.
const OLD_GOALS_SQL: &str = "
    INSERT INTO users (id, name, display_name, token_hash, created_at)
        VALUES ('u1', 'alice', 'Alice', '{hash}', {t0});
    INSERT INTO goals (user_id, id, title, goal_type, target_value, current_value, min_value,
            max_value, unit, is_active, created_at, updated_at)
        VALUES ('u1', 'goal_00000000000a', 'Run', 'numeric', 42.5, 7.25, 1, 50, 'km', {yes}, {t0}, {t1}),
               ('u1', 'goal_00000000000b', 'Read', 'scale', 10, 3, 0, 10, NULL, {no}, {t0}, {t2});
    INSERT INTO goal_history (user_id, goal_id, date, value, recorded_at)
        VALUES ('u1', 'goal_00000000000a', '2025-03-01', 7.25, {t1});";

async fn assert_old_goals_carried_over(store: Arc<dyn Store>) {
    let t = |text: &str| time::parse_datetime(text).unwrap();
    let active = store
        .get_goal("u1", "goal_00000000000a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.title, "Run");
    assert_eq!(active.desired_outcome, "Run");
    assert_eq!(
        (active.status, active.is_active),
        (GoalStatus::Background, true)
    );
    assert_eq!(active.source, GoalSource::User);
    assert_eq!(
        active.metric,
        Some(GoalMetric {
            metric_type: GoalType::Numeric,
            current: 7.25,
            target: 42.5,
            min: Some(1.0),
            max: Some(50.0),
            unit: Some("km".to_string()),
        })
    );
    assert_eq!(
        (
            active.target_value,
            active.current_value,
            active.min_value,
            active.max_value
        ),
        (42.5, 7.25, 1.0, 50.0)
    );
    assert_eq!(active.ended_at, None);
    assert_eq!(active.created_at, t("2025-03-01T08:00:00Z"));
    assert_eq!(active.updated_at, t("2025-03-01T09:00:00Z"));
    let retired = store
        .get_goal("u1", "goal_00000000000b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retired.status, retired.is_active),
        (GoalStatus::Abandoned, false)
    );
    assert_eq!(retired.ended_at, Some(t("2025-03-02T10:00:00Z")));
    assert_eq!(retired.metric.as_ref().unwrap().unit, None);
    assert_eq!(retired.max_value, 10.0);
    let active_list = store.list_goals("u1", false, page(10, 0)).await.unwrap();
    assert_eq!(active_list, vec![active.clone()]);
    let history = store
        .goal_history(
            "u1",
            "goal_00000000000a",
            t("2025-01-01T00:00:00Z").date_naive(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.len(), 1);
    // An old goal changes like a new one.
    let changed = store
        .update_goal(
            "u1",
            &active.id,
            GoalChanges::progress(8.0),
            t("2025-03-03T09:00:00Z"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.metric.unwrap().current, 8.0);
}

#[tokio::test]
async fn goals_from_before_v2_are_carried_over_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omi.db");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                     applied_at INTEGER NOT NULL) STRICT;",
            )
            .unwrap();
        for (version, name, sql, _) in BEFORE_GOALS_V2 {
            connection.execute_batch(sql).unwrap();
            connection
                .execute(
                    "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                    rusqlite::params![version, name],
                )
                .unwrap();
        }
        let micros = |text: &str| time::to_micros(time::parse_datetime(text).unwrap()).to_string();
        connection
            .execute_batch(
                &OLD_GOALS_SQL
                    .replace("{t0}", &micros("2025-03-01T08:00:00Z"))
                    .replace("{t1}", &micros("2025-03-01T09:00:00Z"))
                    .replace("{t2}", &micros("2025-03-02T10:00:00Z"))
                    .replace("{yes}", "1")
                    .replace("{no}", "0")
                    .replace("{hash}", &"a".repeat(64)),
            )
            .unwrap();
    }
    let mut settings = Settings::defaults();
    settings.database_url = Secret::new(format!("sqlite://{}", path.display()));
    let store = omi_server::store::open(&settings).await.unwrap();
    assert_old_goals_carried_over(store).await;
}

#[tokio::test]
async fn goals_from_before_v2_are_carried_over_on_postgres() {
    if let Some(notice) = skip_notice("goals_from_before_v2_are_carried_over_on_postgres") {
        eprintln!("{notice}");
        return;
    }
    let database = TestDatabase::create().await;
    let client = database.connect().await;
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                 applied_at timestamptz NOT NULL)",
        )
        .await
        .unwrap();
    for (version, name, _, sql) in BEFORE_GOALS_V2 {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, now())",
                &[&version, &name],
            )
            .await
            .unwrap();
    }
    client
        .batch_execute(
            &OLD_GOALS_SQL
                .replace("{t0}", "'2025-03-01T08:00:00Z'")
                .replace("{t1}", "'2025-03-01T09:00:00Z'")
                .replace("{t2}", "'2025-03-02T10:00:00Z'")
                .replace("{yes}", "true")
                .replace("{no}", "false")
                .replace("{hash}", &"a".repeat(64)),
        )
        .await
        .unwrap();
    drop(client);
    let mut settings = Settings::defaults();
    settings.database_url = Secret::new(database.url.clone());
    let store = omi_server::store::open(&settings).await.unwrap();
    assert_old_goals_carried_over(store.clone()).await;
    store.close().await.unwrap();
}

/// On PostgreSQL every change-feed page is an index range scan of its table's
/// `(user_id, updated_at, id)` index, in feed order (no sort): its cost does not grow with the
/// number of objects the user has. Sequential scans are switched off so that the planner's
/// choice on an empty table does not hide which index it would use.
#[tokio::test]
async fn postgres_feed_queries_read_the_feed_index_in_order() {
    if let Some(notice) = skip_notice("postgres_feed_queries_read_the_feed_index_in_order") {
        eprintln!("{notice}");
        return;
    }
    let opened = open(Backend::Postgres).await;
    let client = opened._database.as_ref().unwrap().connect().await;
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let user = "u";
    let user_ref = &user;
    let window = FeedWindow::probing(
        Some(time::now()),
        Some(FeedPosition {
            at: time::now(),
            id: "x".into(),
        }),
        25,
    );
    for (table, columns) in [
        ("memories", "id"),
        ("action_items", "id"),
        ("goals", "id"),
        ("conversations", "id"),
        ("folders", "id"),
    ] {
        let base = format!("SELECT {columns} FROM {table} WHERE user_id = $1");
        let feed =
            omi_server::store::postgres::feed::FeedQuery::new(&base, user_ref).window("", &window);
        let rows = client
            .query(&format!("EXPLAIN {}", feed.sql), &feed.params)
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        let plan = plan.join("\n");
        eprintln!("EXPLAIN {}\n{plan}", feed.sql);
        assert!(plan.contains(&format!("{table}_feed")), "{table}: {plan}");
        assert!(!plan.contains("Sort"), "{table}: {plan}");
    }
}
