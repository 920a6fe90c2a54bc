//! Several replicas on one PostgreSQL database: two real `omi-server serve` processes share the
//! database (and, when `OMI_TEST_REDIS_URL` is set, one Redis for rate limits). Revocation and
//! rotation through one are seen by the other on the next request, rate limits are shared, and
//! concurrent writes through both keep every per-user rule exact.
//! Skipped with a notice when `OMI_TEST_DATABASE_URL` is unset.

#[path = "support/postgres.rs"]
mod pg_support;

#[path = "support/mirror.rs"]
mod mirror;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Timelike, Utc};
use pg_support::{TestDatabase, skip_notice};
use serde_json::{Value, json};

/// One `omi-server serve` process, killed when dropped.
struct Replica {
    child: Child,
    base_url: String,
    stdout: Arc<Mutex<String>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Launching {
    child: Child,
    address: mpsc::Receiver<String>,
    stdout: Arc<Mutex<String>>,
}

fn launch(database_url: &str, env: &[(&str, String)]) -> Launching {
    let mut command = Command::new(env!("CARGO_BIN_EXE_omi-server"));
    command
        .arg("serve")
        .env("OMI_DATABASE_URL", database_url)
        .env("OMI_LISTEN", "127.0.0.1:0")
        .env("OMI_LOG", "info")
        .env("OMI_RATE_LIMIT_PER_MINUTE", "0")
        .env("OMI_RATE_LIMIT_PER_DAY", "0")
        .env("OMI_FAILED_AUTH_PER_MINUTE", "0")
        .env_remove("OMI_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start omi-server");
    let stdout = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().unwrap();
    let collected = stdout.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut text = collected.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    let (sender, address) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    // Keeps draining the log so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("listening")
                && let Some(rest) = line.split("address=").nth(1)
            {
                let address = rest.split_whitespace().next().unwrap_or_default();
                let _ = sender.send(address.to_string());
            }
        }
    });
    Launching {
        child,
        address,
        stdout,
    }
}

impl Launching {
    async fn ready(self) -> Replica {
        let Launching {
            mut child,
            address,
            stdout,
        } = self;
        let address =
            tokio::task::spawn_blocking(move || address.recv_timeout(Duration::from_secs(60)))
                .await
                .unwrap();
        let Ok(address) = address else {
            let _ = child.kill();
            panic!("omi-server did not log its listening address");
        };
        Replica {
            child,
            base_url: format!("http://{address}"),
            stdout,
        }
    }
}

/// Two replicas started together on a fresh database, and the bootstrap secrets one printed.
struct Cluster {
    a: Replica,
    b: Replica,
    account_token: String,
    key: String,
    http: reqwest::Client,
    _database: TestDatabase,
}

impl Cluster {
    async fn start(env: &[(&str, String)]) -> Cluster {
        let database = TestDatabase::create().await;
        let (a, b) = (launch(&database.url, env), launch(&database.url, env));
        let (a, b) = (a.ready().await, b.ready().await);
        let printed = bootstrap_output(&a, &b).await;
        let bootstrapped: Vec<&String> = printed
            .iter()
            .filter(|out| out.contains("account token"))
            .collect();
        assert_eq!(
            bootstrapped.len(),
            1,
            "exactly one replica creates the first user: {printed:?}"
        );
        let secret_after = |label: &str| {
            bootstrapped[0]
                .lines()
                .find(|line| line.contains(label))
                .and_then(|line| line.split_whitespace().last())
                .unwrap_or_else(|| panic!("no {label} in {}", bootstrapped[0]))
                .to_string()
        };
        Cluster {
            account_token: secret_after("account token"),
            key: secret_after("developer key"),
            a,
            b,
            http: omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap(),
            _database: database,
        }
    }

    /// `(status, body)` of a request to `replica`.
    async fn call(
        &self,
        replica: &Replica,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", replica.base_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn create_key(&self, replica: &Replica, name: &str) -> (u16, Value) {
        self.call(
            replica,
            reqwest::Method::POST,
            "/v1/dev/keys",
            &self.account_token,
            Some(json!({"name": name})),
        )
        .await
    }

    async fn whoami(&self, replica: &Replica, key: &str) -> u16 {
        self.call(replica, reqwest::Method::GET, "/v1/dev/key", key, None)
            .await
            .0
    }
}

/// What each replica printed on stdout. The secrets of an empty database are printed before
/// the listening address is logged, but reach us through another pipe: wait (bounded) until one
/// replica's output is complete.
async fn bootstrap_output(a: &Replica, b: &Replica) -> Vec<String> {
    for _ in 0..100 {
        let printed: Vec<String> = [a, b]
            .iter()
            .map(|replica| replica.stdout.lock().unwrap().clone())
            .collect();
        if printed.iter().any(|out| out.contains("curl")) {
            return printed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("neither replica printed the bootstrap secrets");
}

fn postgres_configured(test: &str) -> bool {
    match skip_notice(test) {
        Some(notice) => {
            eprintln!("{notice}");
            false
        }
        None => true,
    }
}

#[tokio::test]
async fn a_key_revoked_or_rotated_through_one_replica_is_refused_by_the_other() {
    if !postgres_configured("replicas::revocation") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let (a, b) = (&cluster.a, &cluster.b);
    assert_eq!(cluster.whoami(b, &cluster.key).await, 200);

    let (status, created) = cluster.create_key(a, "laptop").await;
    assert_eq!(status, 200);
    let laptop = created["key"].as_str().unwrap();
    assert_eq!(cluster.whoami(b, laptop).await, 200);
    let (status, _) = cluster
        .call(
            a,
            reqwest::Method::DELETE,
            &format!("/v1/dev/keys/{}", created["id"].as_str().unwrap()),
            &cluster.account_token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(cluster.whoami(b, laptop).await, 401, "revoked everywhere");

    let (_, phone) = cluster.create_key(b, "phone").await;
    let old = phone["key"].as_str().unwrap();
    assert_eq!(cluster.whoami(a, old).await, 200);
    let (status, rotated) = cluster
        .call(
            a,
            reqwest::Method::POST,
            &format!("/v1/dev/keys/{}/rotate", phone["id"].as_str().unwrap()),
            &cluster.account_token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(cluster.whoami(b, old).await, 401, "the old secret is dead");
    assert_eq!(
        cluster.whoami(b, rotated["key"].as_str().unwrap()).await,
        200
    );
}

#[tokio::test]
async fn the_key_cap_is_exact_under_concurrent_creation_through_both_replicas() {
    if !postgres_configured("replicas::key_cap") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    // The bootstrap user holds one key already.
    let attempts = (0..130).map(|i| {
        let replica = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        let cluster = &cluster;
        async move { cluster.create_key(replica, &format!("racer {i}")).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let created = outcomes.iter().filter(|(status, _)| *status == 200).count();
    for (status, body) in outcomes.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(
            (*status, body["detail"].as_str()),
            (422, Some("Maximum 100 API keys per user"))
        );
    }
    assert_eq!(created, 99);
    let (_, listed) = cluster
        .call(
            &cluster.b,
            reqwest::Method::GET,
            "/v1/dev/keys",
            &cluster.account_token,
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn rate_limits_are_shared_by_replicas_through_redis() {
    if !postgres_configured("replicas::rate_limits") {
        return;
    }
    let Some(redis_url) = std::env::var("OMI_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!("skipped replicas::rate_limits: set OMI_TEST_REDIS_URL to run it");
        return;
    };
    let prefix = format!("omi-test-{}:", uuid::Uuid::new_v4().simple());
    let cluster = Cluster::start(&[
        ("OMI_REDIS_URL", redis_url),
        ("OMI_REDIS_KEY_PREFIX", prefix),
        ("OMI_RATE_LIMIT_PER_MINUTE", "10".to_string()),
    ])
    .await;
    // The minute window is a calendar minute: start well inside one so all 30 requests fall
    // into the same window.
    let second = Utc::now().second();
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let mut admitted = 0;
    let mut limited = 0;
    for i in 0..30 {
        let replica = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        match cluster.whoami(replica, &cluster.key).await {
            200 => admitted += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((admitted, limited), (10, 20));
}

#[tokio::test]
async fn goal_and_memory_rules_hold_under_concurrent_writes_through_both_replicas() {
    if !postgres_configured("replicas::goals_and_memories") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let replica = |i: usize| {
        if i.is_multiple_of(2) {
            &cluster.a
        } else {
            &cluster.b
        }
    };
    let post = |i: usize, path: &'static str, body: Value| {
        let cluster = &cluster;
        async move {
            cluster
                .call(
                    replica(i),
                    reqwest::Method::POST,
                    path,
                    &cluster.key,
                    Some(body),
                )
                .await
        }
    };

    let goals = (0..12).map(|i| {
        post(
            i,
            "/v1/dev/user/goals",
            json!({"title": format!("goal {i}"), "target_value": 10}),
        )
    });
    for (status, body) in futures::future::join_all(goals).await {
        assert_eq!(status, 200, "{body}");
    }
    let list = |path: &'static str| {
        let cluster = &cluster;
        async move {
            let (status, body) = cluster
                .call(&cluster.a, reqwest::Method::GET, path, &cluster.key, None)
                .await;
            assert_eq!(status, 200, "{body}");
            body.as_array().unwrap().clone()
        }
    };
    assert_eq!(
        list("/v1/dev/user/goals?limit=100").await.len(),
        12,
        "no goal is deactivated implicitly (API.md §13.F.2)"
    );
    assert_eq!(
        list("/v1/dev/user/goals?include_inactive=true&limit=100")
            .await
            .len(),
        12
    );

    let memories = (0..20).map(|i| {
        post(
            i,
            "/v1/dev/user/memories",
            json!({"content": "Alex is allergic to peanuts", "tags": [format!("t{i}")]}),
        )
    });
    let saved: Vec<Value> = futures::future::join_all(memories)
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 200, "{body}");
            body
        })
        .collect();
    let stored = list("/v1/dev/user/memories").await;
    assert_eq!(stored.len(), 1, "one memory per content");
    assert!(
        saved.iter().all(|memory| memory["id"] == stored[0]["id"]
            && memory["created_at"] == stored[0]["created_at"]),
        "every save after the first updated the one memory"
    );
}

#[tokio::test]
async fn a_client_session_id_creates_one_conversation_across_replicas() {
    if !postgres_configured("replicas::idempotency") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let body = json!({
        "transcript_segments": [{"text": "I need to call the dentist tomorrow about my appointment",
                                 "speaker": "SPEAKER_00", "is_user": true, "start": 0.0, "end": 4.0}],
        "client_session_id": "burst",
    });
    let attempts = (0..10).map(|i| {
        let replica = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        let (cluster, body) = (&cluster, body.clone());
        async move {
            cluster
                .call(
                    replica,
                    reqwest::Method::POST,
                    "/v1/dev/user/conversations/from-segments",
                    &cluster.key,
                    Some(body),
                )
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let ids: Vec<&Value> = replies
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| &body["id"])
        .collect();
    assert!(!ids.is_empty(), "{replies:?}");
    for (status, body) in &replies {
        match status {
            200 => assert_eq!(&body["id"], ids[0]),
            409 => assert_eq!(body["detail"], "Conversation creation already in progress"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // A repeat after the burst, through either replica, answers the first result.
    for replica in [&cluster.a, &cluster.b] {
        let (status, again) = cluster
            .call(
                replica,
                reqwest::Method::POST,
                "/v1/dev/user/conversations/from-segments",
                &cluster.key,
                Some(body.clone()),
            )
            .await;
        assert_eq!((status, &again["id"]), (200, ids[0]));
    }
    let (_, listed) = cluster
        .call(
            &cluster.b,
            reqwest::Method::GET,
            "/v1/dev/user/conversations",
            &cluster.key,
            None,
        )
        .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "one conversation: {listed:?}");
    assert_eq!(&listed[0]["id"], ids[0]);
}

#[tokio::test]
async fn an_idempotency_key_creates_once_across_replicas() {
    if !postgres_configured("replicas::idempotency_key") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let body = json!({"description": "Renew the passport"});
    let attempts = (0..10).map(|i| {
        let replica = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        let (cluster, body) = (&cluster, body.clone());
        async move {
            let response = cluster
                .http
                .post(format!("{}/v1/dev/user/action-items", replica.base_url))
                .bearer_auth(&cluster.key)
                .header("Idempotency-Key", "passport-1")
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let replayed = response.headers().contains_key("idempotent-replayed");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, replayed, body)
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let created: Vec<&Value> = replies
        .iter()
        .filter(|(status, replayed, _)| *status == 200 && !replayed)
        .map(|(_, _, body)| &body["id"])
        .collect();
    assert_eq!(created.len(), 1, "exactly one request ran: {replies:?}");
    for (status, _, body) in &replies {
        match status {
            200 => assert_eq!(&body["id"], created[0]),
            409 => assert_eq!(
                body["detail"],
                "A request with this Idempotency-Key is still in progress"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (_, listed) = cluster
        .call(
            &cluster.b,
            reqwest::Method::GET,
            "/v1/dev/user/action-items",
            &cluster.key,
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_reading_both_replicas_equals_the_database_after_writes_through_both() {
    if !postgres_configured("replicas::change_feed") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let bases = vec![cluster.a.base_url.clone(), cluster.b.base_url.clone()];
    // Two writers, each alternating between the replicas, while the mirror pages through both.
    let writers: Vec<_> = [3_u64, 5]
        .into_iter()
        .map(|seed| {
            let (http, bases, key) = (cluster.http.clone(), bases.clone(), cluster.key.clone());
            tokio::spawn(
                async move { mirror::write_at_random(&http, &bases, &key, 80, seed).await },
            )
        })
        .collect();
    let mut copy = mirror::Mirror::default();
    for _ in 0..200 {
        if writers.iter().all(|writer| writer.is_finished()) {
            break;
        }
        copy.sync(&cluster.http, &bases, &cluster.key).await;
    }
    let mut written = mirror::Written::default();
    for writer in writers {
        let done = writer.await.unwrap();
        written.conversations.extend(done.conversations);
        written.goals.extend(done.goals);
    }
    copy.sync(&cluster.http, &bases, &cluster.key).await;
    let truth =
        mirror::server_objects(&cluster.http, &cluster.a.base_url, &cluster.key, &written).await;
    mirror::assert_same(&copy.objects, &truth);
    assert!(truth.len() > 10, "{} objects", truth.len());
}
