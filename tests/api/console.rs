//! The web console over real HTTP: sign-in, sessions and their cookie, CSRF, isolation between
//! users, security headers, and that its forms change the same data the API serves.

use std::collections::HashMap;

use chrono::Duration;
use omi_server::domain::console::generate_session;
use omi_server::domain::time;
use omi_server::store::console::{NewConsoleSession, SessionBounds};
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;

use crate::common::{Backend, TestServer, TestUser};

/// A browser without JavaScript: keeps the console's cookies, follows no redirect by itself.
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) html: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub(crate) fn csrf(&self) -> String {
        let pattern = regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#).unwrap();
        pattern
            .captures(&self.html)
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.html))[1]
            .to_string()
    }

    fn cookie_line(&self, name: &str) -> &str {
        self.set_cookies
            .iter()
            .find(|line| line.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", self.set_cookies))
    }
}

impl Browser {
    pub(crate) fn new(server: &TestServer) -> Self {
        Browser {
            client: omi_server::outbound::Outbound::system()
                .http_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base_url.clone(),
            cookies: HashMap::new(),
        }
    }

    /// The `Cookie` header this browser sends.
    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie_header: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = if cookie_header.is_empty() {
            request
        } else {
            request.header("cookie", cookie_header.join("; "))
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_string())
            .collect();
        for line in &set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status,
            location: headers
                .get("location")
                .map(|value| value.to_str().unwrap().to_string()),
            set_cookies,
            headers,
            html: response.text().await.unwrap_or_default(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = form_body(self.client.post(format!("{}{path}", self.base)), form);
        self.send(request).await
    }

    pub(crate) async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200, "{form:?}");
        let csrf = form.csrf();
        self.post("/console/login", &[("csrf", &csrf), ("token", token)])
            .await
    }

    /// Signs in and answers the CSRF token of the session.
    pub(crate) async fn signed_in(server: &TestServer, user: &TestUser) -> (Browser, String) {
        let mut browser = Browser::new(server);
        let signed_in = browser.sign_in(&user.account_token).await;
        assert_eq!(signed_in.status, 303, "{signed_in:?}");
        assert_eq!(signed_in.location.as_deref(), Some("/console"));
        let overview = browser.get("/console").await;
        assert_eq!(overview.status, 200, "{overview:?}");
        let csrf = overview.csrf();
        (browser, csrf)
    }
}

/// A form post's body, as a browser encodes it.
fn form_body(request: reqwest::RequestBuilder, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
}

async fn create_memory(server: &TestServer, user: &TestUser, content: &str) -> String {
    let reply = server
        .post(
            "/v1/dev/user/memories",
            &user.key,
            json!({"content": content}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn create_action_item(server: &TestServer, user: &TestUser, description: &str) -> String {
    let reply = server
        .post(
            "/v1/dev/user/action-items",
            &user.key,
            json!({"description": description}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn create_conversation(server: &TestServer, user: &TestUser) -> String {
    let body = json!({"transcript_segments": [
        {"text": "We should repaint the kitchen walls this spring.", "speaker": "SPEAKER_00", "start": 0.0, "end": 4.0},
        {"text": "I need to call the painter tomorrow about the quote.", "speaker": "SPEAKER_01", "start": 4.5, "end": 9.0}],
        "started_at": "2025-02-01T12:00:00Z"});
    let reply = server
        .post("/v1/dev/user/conversations/from-segments", &user.key, body)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_string()
}

async fn signing_in_sets_a_strict_http_only_session_cookie(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let mut browser = Browser::new(&server);
    assert_eq!(
        browser.get("/console/memories").await.location.as_deref(),
        Some("/console/login"),
        "signed out, pages send to the sign-in form"
    );
    let signed_in = browser.sign_in(&alice.account_token).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let line = signed_in.cookie_line(omi_server::console::COOKIE_NAME);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(line.contains(flag), "{line} lacks {flag}");
    }
    assert!(
        !line.contains("Secure"),
        "plain HTTP from a non-proxy: {line}"
    );
    let raw = line.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(!raw.is_empty());

    let overview = browser.get("/console").await;
    assert_eq!(overview.status, 200);
    assert!(overview.html.contains("alice"), "{}", overview.html);

    let csrf = overview.csrf();
    let out = browser.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/console/login"));
    assert_eq!(
        browser.get("/console").await.location.as_deref(),
        Some("/console/login"),
        "signed out"
    );
}

async fn behind_a_trusted_https_proxy_the_cookie_is_secure(backend: Backend) {
    let server = TestServer::start_on_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let alice = server.user("alice").await;
    let mut browser = Browser::new(&server);
    let form = browser
        .send(
            browser
                .client
                .get(format!("{}/console/login", browser.base))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    let csrf = form.csrf();
    let request = browser
        .client
        .post(format!("{}/console/login", browser.base))
        .header("x-forwarded-proto", "https");
    let request = form_body(
        request,
        &[("csrf", csrf.as_str()), ("token", &alice.account_token)],
    );
    let signed_in = browser.send(request).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    assert!(
        signed_in
            .cookie_line(omi_server::console::COOKIE_NAME)
            .contains("; Secure"),
        "{signed_in:?}"
    );
}

async fn a_wrong_token_is_refused_and_counted_as_a_failed_authentication(backend: Backend) {
    let server = TestServer::start_on_with(backend, |settings| {
        settings.failed_auth_per_minute = 2;
    })
    .await;
    let mut browser = Browser::new(&server);
    let wrong = format!("omi_acct_{}", "0".repeat(32));
    let first = browser.sign_in(&wrong).await;
    assert_eq!(first.status, 401, "{first:?}");
    assert!(
        first.html.contains("not a valid account token"),
        "{}",
        first.html
    );
    assert!(
        !first
            .set_cookies
            .iter()
            .any(|line| line.starts_with("omi_console=")),
        "no session for a wrong token"
    );
    assert_eq!(browser.sign_in("not even a token").await.status, 401);
    let blocked = browser.sign_in(&wrong).await;
    assert_eq!(blocked.status, 429, "{blocked:?}");
    assert!(blocked.headers.get("retry-after").is_some());
}

async fn a_sign_in_without_its_form_token_is_refused(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let mut browser = Browser::new(&server);
    let refused = browser
        .post("/console/login", &[("token", &alice.account_token)])
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.set_cookies.is_empty());
}

async fn a_form_posted_without_its_csrf_token_changes_nothing(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let memory = create_memory(&server, &alice, "I like green tea").await;
    let (mut browser, csrf) = Browser::signed_in(&server, &alice).await;
    let path = format!("/console/memories/{memory}/delete");

    let missing = browser.post(&path, &[]).await;
    assert_eq!(missing.status, 403, "{missing:?}");
    assert!(missing.html.contains("This form expired"), "{missing:?}");
    let wrong = browser.post(&path, &[("csrf", &"0".repeat(64))]).await;
    assert_eq!(wrong.status, 403, "{wrong:?}");
    let still = server
        .get(&format!("/v1/dev/user/memories/{memory}"), &alice.key)
        .await;
    assert_eq!(still.status, 200, "the memory survives: {still:?}");

    // Another session's token does not do either.
    let (_, other_csrf) = Browser::signed_in(&server, &alice).await;
    assert_ne!(other_csrf, csrf);
    assert_eq!(
        browser.post(&path, &[("csrf", &other_csrf)]).await.status,
        403
    );

    let deleted = browser.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 303, "{deleted:?}");
    let gone = server
        .get(&format!("/v1/dev/user/memories/{memory}"), &alice.key)
        .await;
    assert_eq!(gone.status, 404);
}

async fn another_users_objects_answer_404(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let memory = create_memory(&server, &bob, "Bob's secret plan").await;
    let item = create_action_item(&server, &bob, "Bob's errand").await;
    let conversation = create_conversation(&server, &bob).await;
    let (mut browser, csrf) = Browser::signed_in(&server, &alice).await;

    let page = browser
        .get(&format!("/console/conversations/{conversation}"))
        .await;
    assert_eq!(page.status, 404, "{page:?}");
    assert!(page.html.contains("nothing here"), "an HTML page: {page:?}");
    assert!(!page.html.contains("kitchen"));
    for (path, form) in [
        (
            format!("/console/memories/{memory}"),
            vec![("content", "hijacked")],
        ),
        (format!("/console/memories/{memory}/delete"), vec![]),
        (
            format!("/console/action-items/{item}"),
            vec![("action", "complete")],
        ),
        (
            format!("/console/conversations/{conversation}/star"),
            vec![("starred", "true")],
        ),
        (
            format!("/console/conversations/{conversation}/delete"),
            vec![],
        ),
        (format!("/console/keys/{}/revoke", bob.key_id), vec![]),
        (format!("/console/keys/{}/rotate", bob.key_id), vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let answer = browser.post(&path, &form).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
    for path in [
        "/console/memories",
        "/console/action-items",
        "/console/conversations",
        "/console/keys",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        for foreign in ["Bob's secret plan", "Bob's errand", "kitchen", &bob.key_id] {
            assert!(!page.html.contains(foreign), "{path} shows {foreign}");
        }
    }
    let memory = server
        .get(&format!("/v1/dev/user/memories/{memory}"), &bob.key)
        .await;
    assert_eq!(memory.body["content"], "Bob's secret plan");
    let still_works = server.get("/v1/dev/user/memories", &bob.key).await;
    assert_eq!(
        still_works.status, 200,
        "bob's key was neither revoked nor rotated"
    );
}

async fn every_console_answer_carries_the_security_headers(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let conversation = create_conversation(&server, &alice).await;
    let (mut browser, _) = Browser::signed_in(&server, &alice).await;
    let mut pages = vec![
        "/console".to_string(),
        "/console/login".to_string(),
        "/console/keys".to_string(),
        "/console/memories".to_string(),
        "/console/conversations".to_string(),
        format!("/console/conversations/{conversation}"),
        "/console/action-items".to_string(),
        "/console/goals".to_string(),
        "/console/no-such-page".to_string(),
    ];
    pages.push("/console/assets/console.css".into());
    for path in pages {
        let page = browser.get(&path).await;
        assert!(page.status == 200 || page.status == 404, "{path}: {page:?}");
        let header = |name: &str| {
            page.headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{path} lacks {name}"))
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("x-content-type-options"), "nosniff");
        if page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
        {
            assert!(!page.html.contains("<script>"), "{path}: no inline script");
            assert!(!page.html.contains("style=\""), "{path}: no inline style");
        }
    }
}

async fn replacing_the_account_token_ends_every_session(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let (mut first, csrf) = Browser::signed_in(&server, &alice).await;
    let (mut second, _) = Browser::signed_in(&server, &alice).await;

    let replaced = first
        .post("/console/account/token", &[("csrf", &csrf)])
        .await;
    assert_eq!(replaced.status, 200, "{replaced:?}");
    let token = regex::Regex::new(r"omi_acct_[0-9a-f]{32}")
        .unwrap()
        .find(&replaced.html)
        .expect("the new token is shown")
        .as_str()
        .to_string();
    assert_ne!(token, alice.account_token);

    for browser in [&mut first, &mut second] {
        assert_eq!(
            browser.get("/console").await.location.as_deref(),
            Some("/console/login"),
            "the session ended with its token"
        );
    }
    assert_eq!(
        server
            .get("/v1/dev/keys", &alice.account_token)
            .await
            .status,
        401,
        "the old token is refused by the API too"
    );
    assert_eq!(server.get("/v1/dev/keys", &token).await.status, 200);
    assert_eq!(
        first.sign_in(&alice.account_token).await.status,
        401,
        "the old token cannot sign in"
    );
    assert_eq!(first.sign_in(&token).await.status, 303);
    assert_eq!(first.get("/console").await.status, 200);
}

async fn sessions_end_after_their_idle_and_absolute_lifetimes(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let store = &server.state.store;
    let user = store.find_user("alice").await.unwrap().unwrap();
    let token_hash = {
        let secret = alice.account_token.strip_prefix("omi_acct_").unwrap();
        omi_server::domain::credentials::hash_secret(secret)
    };
    let now = time::now();
    let bounds = SessionBounds {
        created_after: now - Duration::days(7),
        seen_after: now - Duration::hours(12),
    };
    let open = |created_at| {
        let generated = generate_session();
        (
            generated.hash.clone(),
            NewConsoleSession {
                id_hash: generated.hash,
                user_id: user.id.clone(),
                token_hash: token_hash.clone(),
                created_at,
            },
        )
    };
    let old_bounds = SessionBounds {
        created_after: now - Duration::days(30),
        seen_after: now - Duration::days(30),
    };

    // Idle: signed in 13 hours ago and not seen since.
    let (idle, session) = open(now - Duration::hours(13));
    store
        .create_console_session(session, old_bounds)
        .await
        .unwrap();
    assert!(
        store
            .find_console_session(&idle, bounds)
            .await
            .unwrap()
            .is_none()
    );

    // Absolute: active a minute ago, but signed in 8 days ago.
    let (old, session) = open(now - Duration::days(8));
    store
        .create_console_session(session, old_bounds)
        .await
        .unwrap();
    store
        .touch_console_session(&old, now - Duration::minutes(1))
        .await
        .unwrap();
    assert!(
        store
            .find_console_session(&old, bounds)
            .await
            .unwrap()
            .is_none()
    );

    // Live: signed in 11 hours ago; seen now.
    let (live, session) = open(now - Duration::hours(11));
    store
        .create_console_session(session, old_bounds)
        .await
        .unwrap();
    assert!(
        store
            .find_console_session(&live, bounds)
            .await
            .unwrap()
            .is_some()
    );
    store.touch_console_session(&live, now).await.unwrap();
    let later = SessionBounds {
        created_after: bounds.created_after + Duration::hours(2),
        seen_after: bounds.seen_after + Duration::hours(2),
    };
    assert!(
        store
            .find_console_session(&live, later)
            .await
            .unwrap()
            .is_some(),
        "activity keeps a session from idling out"
    );
}

async fn console_forms_change_what_the_api_serves(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let memory = create_memory(&server, &alice, "I like green tea").await;
    let item = create_action_item(&server, &alice, "Buy milk").await;
    let conversation = create_conversation(&server, &alice).await;
    let (mut browser, csrf) = Browser::signed_in(&server, &alice).await;

    // A key made in the console works in a real request, with exactly its scopes.
    let created = browser
        .post(
            "/console/keys",
            &[
                ("csrf", &csrf),
                ("name", "laptop"),
                ("scope", "memories:read"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let key = regex::Regex::new(r"omi_dev_[0-9a-f]{32}")
        .unwrap()
        .find(&created.html)
        .expect("the new key is shown once")
        .as_str()
        .to_string();
    assert_eq!(server.get("/v1/dev/user/memories", &key).await.status, 200);
    assert_eq!(server.get("/v1/dev/user/goals", &key).await.status, 403);
    let keys_page = browser.get("/console/keys").await;
    assert!(keys_page.html.contains("laptop"));
    assert!(
        !keys_page.html.contains(&key),
        "the secret is shown only once"
    );

    let edited = browser
        .post(
            &format!("/console/memories/{memory}"),
            &[
                ("csrf", &csrf),
                ("content", "I love jasmine tea"),
                ("category", "interests"),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{edited:?}");
    let reply = server
        .get(&format!("/v1/dev/user/memories/{memory}"), &alice.key)
        .await;
    assert_eq!(reply.body["content"], "I love jasmine tea");
    assert_eq!(reply.body["category"], "interests");
    let too_long = "x".repeat(501);
    let refused = browser
        .post(
            &format!("/console/memories/{memory}"),
            &[("csrf", &csrf), ("content", &too_long)],
        )
        .await;
    assert_eq!(refused.status, 422);

    let completed = browser
        .post(
            &format!("/console/action-items/{item}"),
            &[("csrf", &csrf), ("action", "complete")],
        )
        .await;
    assert_eq!(completed.status, 303);
    let due = browser
        .post(
            &format!("/console/action-items/{item}"),
            &[("csrf", &csrf), ("action", "due"), ("due", "2030-05-04")],
        )
        .await;
    assert_eq!(due.status, 303);
    let reply = server
        .get(&format!("/v1/dev/user/action-items/{item}"), &alice.key)
        .await;
    assert_eq!(reply.body["completed"], true);
    assert!(
        reply.body["due_at"]
            .as_str()
            .unwrap()
            .starts_with("2030-05-04T00:00:00"),
        "{reply:?}"
    );

    let page = browser
        .get(&format!("/console/conversations/{conversation}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("repaint the kitchen walls"),
        "{}",
        page.html
    );
    let starred = browser
        .post(
            &format!("/console/conversations/{conversation}/star"),
            &[("csrf", &csrf), ("starred", "true")],
        )
        .await;
    assert_eq!(starred.status, 303);
    let moved = browser
        .post(
            &format!("/console/conversations/{conversation}/folder"),
            &[("csrf", &csrf), ("folder", "work")],
        )
        .await;
    assert_eq!(moved.status, 303, "{moved:?}");
    let reply = server
        .get(
            &format!("/v1/dev/user/conversations/{conversation}"),
            &alice.key,
        )
        .await;
    assert_eq!(reply.body["starred"], true);
    assert_eq!(reply.body["folder_name"], "Work");
}

async fn the_overview_shows_this_minute_and_today_against_the_limits(backend: Backend) {
    let server = TestServer::start_on_with(backend, |settings| {
        settings.rate_limit_per_minute = 50;
        settings.rate_limit_per_day = 1000;
    })
    .await;
    let alice = server.user("alice").await;
    for _ in 0..3 {
        assert_eq!(
            server.get("/v1/dev/user/memories", &alice.key).await.status,
            200
        );
    }
    let (mut browser, _) = Browser::signed_in(&server, &alice).await;
    for _ in 0..2 {
        let overview = browser.get("/console").await;
        assert!(
            overview
                .html
                .contains(r#"<dd id="requests-today">3 of 1000</dd>"#),
            "{}",
            overview.html
        );
        assert!(overview.html.contains("3 of 50"), "{}", overview.html);
    }
}

/// The webhooks page: create (secret shown once), pause and resume, send a test, redeliver,
/// rotate, delete, all visible through the API; another user's ids answer 404.
async fn the_webhooks_page_manages_subscriptions(backend: Backend) {
    // No delivery worker: the log keeps what was queued.
    let server = TestServer::start_on_with(backend, |settings| settings.webhooks = false).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (mut browser, csrf) = Browser::signed_in(&server, &alice).await;

    let page = browser.get("/console/webhooks").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains(r#"value="memory.created""#),
        "{}",
        page.html
    );
    let none = browser
        .post(
            "/console/webhooks",
            &[("csrf", &csrf), ("url", "https://hooks.example/omi")],
        )
        .await;
    assert_eq!(none.status, 422, "no event ticked: {none:?}");
    let created = browser
        .post(
            "/console/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "https://hooks.example/omi"),
                ("event", "memory.created"),
                ("event", "conversation.created"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let secret = regex::Regex::new(r#"id="new-secret" data-copy>(whsec_[^<]+)<"#)
        .unwrap()
        .captures(&created.html)
        .expect("the secret is shown")[1]
        .to_string();
    let listed = server.get("/v1/dev/user/webhooks", &alice.key).await;
    let id = listed.body[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        listed.body[0]["events"],
        json!(["memory.created", "conversation.created"])
    );
    let list_page = browser.get("/console/webhooks").await;
    assert!(
        list_page.html.contains("hooks.example"),
        "{}",
        list_page.html
    );
    assert!(
        !list_page.html.contains(&secret),
        "the secret is shown once"
    );

    let webhook = |path: &str| format!("/console/webhooks/{id}{path}");
    let paused = browser
        .post(&webhook("/active"), &[("csrf", &csrf), ("active", "false")])
        .await;
    assert_eq!(paused.status, 303);
    let api = server
        .get(&format!("/v1/dev/user/webhooks/{id}"), &alice.key)
        .await;
    assert_eq!(api.body["active"], false);
    browser
        .post(&webhook("/active"), &[("csrf", &csrf), ("active", "true")])
        .await;
    let api = server
        .get(&format!("/v1/dev/user/webhooks/{id}"), &alice.key)
        .await;
    assert_eq!(api.body["active"], true);

    let tested = browser.post(&webhook("/test"), &[("csrf", &csrf)]).await;
    assert_eq!(tested.status, 303);
    let log = browser.get(&webhook("")).await;
    assert_eq!(log.status, 200);
    assert!(log.html.contains(">ping<"), "{}", log.html);
    let deliveries = server
        .get(
            &format!("/v1/dev/user/webhooks/{id}/deliveries"),
            &alice.key,
        )
        .await;
    let delivery = deliveries.body[0]["id"].as_str().unwrap().to_string();
    assert!(
        log.html
            .contains(&format!("/deliveries/{delivery}/redeliver"))
    );
    let again = browser
        .post(
            &webhook(&format!("/deliveries/{delivery}/redeliver")),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, 303, "{again:?}");

    let rotated = browser.post(&webhook("/rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status, 200);
    assert!(rotated.html.contains("whsec_"));
    assert!(!rotated.html.contains(&secret), "a new secret");

    // Bob sees none of it and can change none of it.
    let (mut intruder, bob_csrf) = Browser::signed_in(&server, &bob).await;
    assert_eq!(intruder.get(&webhook("")).await.status, 404);
    for path in [
        webhook("/active"),
        webhook("/test"),
        webhook("/rotate"),
        webhook("/delete"),
        webhook(&format!("/deliveries/{delivery}/redeliver")),
    ] {
        let answer = intruder
            .post(&path, &[("csrf", &bob_csrf), ("active", "false")])
            .await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
    let bobs_list = intruder.get("/console/webhooks").await;
    assert!(!bobs_list.html.contains("hooks.example"));
    let api = server
        .get(&format!("/v1/dev/user/webhooks/{id}"), &alice.key)
        .await;
    assert_eq!(api.body["active"], true, "bob paused nothing");

    let deleted = browser.post(&webhook("/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 303);
    server
        .get(&format!("/v1/dev/user/webhooks/{id}"), &alice.key)
        .await
        .assert_error(404, "Webhook not found");
    let _ = bob;
}

crate::backend_tests!(
    the_webhooks_page_manages_subscriptions,
    the_overview_shows_this_minute_and_today_against_the_limits,
    signing_in_sets_a_strict_http_only_session_cookie,
    behind_a_trusted_https_proxy_the_cookie_is_secure,
    a_wrong_token_is_refused_and_counted_as_a_failed_authentication,
    a_sign_in_without_its_form_token_is_refused,
    a_form_posted_without_its_csrf_token_changes_nothing,
    another_users_objects_answer_404,
    every_console_answer_carries_the_security_headers,
    replacing_the_account_token_ends_every_session,
    sessions_end_after_their_idle_and_absolute_lifetimes,
    console_forms_change_what_the_api_serves,
);
