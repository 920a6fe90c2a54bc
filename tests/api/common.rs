//! A real server on 127.0.0.1:0 over a fresh database, and a real HTTP client.
//!
//! `TestServer::start()` runs on a fresh SQLite file. Tests written as `async fn name(backend:
//! Backend)` and listed in `backend_tests!` run once per backend: on SQLite, and on a fresh
//! PostgreSQL database when `OMI_TEST_DATABASE_URL` names a server (skipped with a notice
//! otherwise).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use omi_server::app;
use omi_server::config::Settings;
use omi_server::domain::credentials::Secret;
use omi_server::processing::Processor;
use omi_server::state::{self, AppState};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "../support/postgres.rs"]
pub mod pg_support;

use pg_support::{TestDatabase, skip_notice};

/// The storage a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `Some(Postgres)` when a PostgreSQL server is configured; otherwise prints why the
    /// PostgreSQL variant of `test` is skipped and gives `None`.
    pub fn postgres_if_configured(test: &str) -> Option<Backend> {
        match skip_notice(test) {
            None => Some(Backend::Postgres),
            Some(notice) => {
                eprintln!("{notice}");
                None
            }
        }
    }
}

/// Generates `sqlite::<name>` and `postgres::<name>` tests from each
/// `async fn <name>(backend: Backend)` in the calling module.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    if let Some(backend) = $crate::common::Backend::postgres_if_configured(test) {
                        super::$name(backend).await
                    }
                }
            )+
        }
    };
}

pub struct TestServer {
    pub base_url: String,
    /// The metrics listener's base URL, when the settings turn metrics on (it is bound on port
    /// 0 whatever address they name).
    pub metrics_url: Option<String>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: TempDir,
    /// The PostgreSQL database of a `Backend::Postgres` server, dropped after the last server
    /// using it.
    pub database: Option<Arc<TestDatabase>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Test settings: a file in `dir`, and rate limits off unless a test turns them on.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut settings = Settings::defaults();
    settings.database_url = Secret::new(format!("sqlite://{}/omi.db", dir.path().display()));
    settings.rate_limit_per_minute = 0;
    settings.rate_limit_per_day = 0;
    settings.failed_auth_per_minute = 0;
    settings
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(&dir);
        configure(&mut settings);
        Self::start_in(dir, settings).await
    }

    /// On `backend`, with the test settings.
    pub async fn start_on(backend: Backend) -> Self {
        Self::start_on_with(backend, |_| {}).await
    }

    /// On `backend`, with the test settings changed by `configure`.
    pub async fn start_on_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(&dir);
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                settings.database_url = Secret::new(database.url.clone());
                Some(Arc::new(database))
            }
        };
        configure(&mut settings);
        let mut server = Self::start_in(dir, settings).await;
        server.database = database;
        server
    }

    /// Stops gracefully and starts again on the same storage and settings.
    pub async fn restart(mut self) -> Self {
        let database = self.database.take();
        let settings = self.settings();
        let dir = self.stop().await;
        let mut restarted = Self::start_in(dir, settings).await;
        restarted.database = database;
        restarted
    }

    pub async fn start_in(dir: TempDir, settings: Settings) -> Self {
        let state = state::build_state(settings).await.expect("state");
        Self::serve(dir, state).await
    }

    /// A server whose conversations are processed by `processor`.
    pub async fn start_with_processor(processor: Arc<dyn Processor>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut state = state::build_state(test_settings(&dir))
            .await
            .expect("state");
        state.processor = processor;
        Self::serve(dir, state).await
    }

    async fn serve(dir: TempDir, state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let metrics_listener = match state.settings.metrics_listen.address() {
            Some(_) => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind metrics"),
            ),
            None => None,
        };
        let metrics_url = metrics_listener
            .as_ref()
            .map(|l| format!("http://{}", l.local_addr().unwrap()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app::serve_with_metrics(
            state.clone(),
            listener,
            metrics_listener,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            base_url,
            metrics_url,
            client: omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap(),
            state,
            dir,
            database: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("omi.db")
    }

    /// Stops the server gracefully and hands back its folder, for restart tests.
    pub async fn stop(mut self) -> TempDir {
        self.stop.take().unwrap().send(()).ok();
        self.task.take().unwrap().await.unwrap().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn settings(&self) -> Settings {
        (*self.state.settings).clone()
    }

    /// A new user with its account token and a developer key holding every scope.
    pub async fn user(&self, name: &str) -> TestUser {
        let (user, token) = omi_server::cli::create_user(&*self.state.store, name, None)
            .await
            .expect("user");
        let mut test_user = TestUser {
            id: user.id,
            account_token: token.expose().to_string(),
            key: String::new(),
            key_id: String::new(),
        };
        let all: Vec<&str> = omi_server::domain::scope::Scope::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let created = self.create_key(&test_user, "all", Some(&all)).await;
        test_user.key = created.body["key"].as_str().unwrap().to_string();
        test_user.key_id = created.body["id"].as_str().unwrap().to_string();
        test_user
    }

    /// Creates a key through the API; panics unless it succeeds.
    pub async fn create_key(&self, user: &TestUser, name: &str, scopes: Option<&[&str]>) -> Reply {
        let body = match scopes {
            Some(scopes) => serde_json::json!({"name": name, "scopes": scopes}),
            None => serde_json::json!({"name": name}),
        };
        let reply = self
            .call(
                Method::POST,
                "/v1/dev/keys",
                Some(&user.account_token),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply
    }

    /// A key with exactly these scopes.
    pub async fn key_with(&self, user: &TestUser, scopes: &[&str]) -> String {
        let reply = self.create_key(user, "scoped", Some(scopes)).await;
        reply.body["key"].as_str().unwrap().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }
}

pub struct TestUser {
    pub id: String,
    pub account_token: String,
    /// A developer key with every scope.
    pub key: String,
    pub key_id: String,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Value::Null` when it is empty or not JSON.
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("<no detail>")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts status and exact `detail`.
    pub fn assert_error(&self, status: u16, detail: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.detail(), detail, "{self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "error without JSON content type: {self:?}"
        );
    }
}

/// The strings in order: JSON objects here come back with their keys sorted.
pub fn sorted<'a>(list: &[&'a str]) -> Vec<&'a str> {
    let mut list = list.to_vec();
    list.sort_unstable();
    list
}
