//! The console in a real browser: headless Chromium driven through chromedriver (both from
//! Debian's `chromium` and `chromium-driver` packages, which `.ci/run` installs), once with
//! JavaScript on and once with it off. Screenshots are kept under
//! `target/console-screenshots/`. Without Chromium on the machine the test says so loudly and
//! passes; CI always has it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::common::{TestServer, TestUser};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);

/// chromedriver on a free 127.0.0.1 port, ended with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Option<Driver> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            eprintln!(
                "\n*** SKIPPED console browser test: {CHROMIUM} or {CHROMEDRIVER} is missing. \
                 Install them with `apt-get install -y chromium chromium-driver` \
                 (.ci/run does). ***\n"
            );
            return None;
        }
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest_client();
        // Bounded: chromedriver answers /status within a second or two when it works.
        for _ in 0..150 {
            if client
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
            {
                return Some(Driver { child, url });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {url}");
    }

    async fn browser(&self, javascript: bool) -> Client {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            "--no-first-run",
            "--no-default-browser-check",
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false");
        }
        let mut options = json!({ "binary": CHROMIUM, "args": args });
        if !javascript {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn reqwest_client() -> reqwest::Client {
    omi_server::outbound::Outbound::system()
        .http_client()
        .build()
        .unwrap()
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn css(browser: &Client, selector: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|error| panic!("{selector}: {error}"))
}

async fn path_of(browser: &Client) -> String {
    browser.current_url().await.unwrap().path().to_string()
}

async fn seed(server: &TestServer, user: &TestUser) -> (String, String, String) {
    let post = |path: &'static str, body: Value| {
        let key = user.key.clone();
        async move {
            let reply = server.post(path, &key, body).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.body["id"].as_str().unwrap().to_string()
        }
    };
    let memory = post(
        "/v1/dev/user/memories",
        json!({"content": "I like green tea in the morning"}),
    )
    .await;
    let item = post(
        "/v1/dev/user/action-items",
        json!({"description": "Buy oat milk"}),
    )
    .await;
    let conversation = post(
        "/v1/dev/user/conversations/from-segments",
        json!({"transcript_segments": [
            {"text": "We should repaint the kitchen walls this spring.", "speaker": "SPEAKER_00", "is_user": true, "start": 0.0, "end": 4.0},
            {"text": "Blue would look great in there, I will call the painter tomorrow.", "speaker": "SPEAKER_01", "start": 4.5, "end": 9.0}],
            "started_at": "2025-02-01T12:00:00Z"}),
    )
    .await;
    let goal = server
        .post(
            "/v1/dev/user/goals",
            &user.key,
            json!({"title": "Read 12 books", "target_value": 12, "current_value": 3}),
        )
        .await;
    assert_eq!(goal.status, 200, "{goal:?}");
    (memory, item, conversation)
}

/// Signs in, makes a key and uses it, completes an action item, edits a memory, reads a
/// conversation, looks at goals, signs out; screenshots along the way, named `<run>-NN-what`.
async fn walk_through(driver: &Driver, javascript: bool) {
    let run = if javascript { "js" } else { "nojs" };
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (memory, item, conversation) = seed(&server, &alice).await;
    let browser = driver.browser(javascript).await;

    browser.goto(&server.url("/console")).await.unwrap();
    assert_eq!(path_of(&browser).await, "/console/login", "signed out");
    css(&browser, "#token")
        .await
        .send_keys(&alice.account_token)
        .await
        .unwrap();
    screenshot(&browser, &format!("{run}-01-sign-in")).await;
    css(&browser, "main form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    css(&browser, "#usage").await;
    assert_eq!(path_of(&browser).await, "/console");
    screenshot(&browser, &format!("{run}-02-overview")).await;

    // A key with two scopes, shown once, that works in a real request.
    browser.goto(&server.url("/console/keys")).await.unwrap();
    css(&browser, "#key-name")
        .await
        .send_keys("browser key")
        .await
        .unwrap();
    for scope in ["action_items:read", "memories:read"] {
        let checkbox = css(&browser, &format!("input[name=scope][value='{scope}']")).await;
        if checkbox.prop("checked").await.unwrap().as_deref() != Some("true") {
            checkbox.click().await.unwrap();
        }
    }
    for scope in ["conversations:read", "goals:read"] {
        let checkbox = css(&browser, &format!("input[name=scope][value='{scope}']")).await;
        if checkbox.prop("checked").await.unwrap().as_deref() == Some("true") {
            checkbox.click().await.unwrap();
        }
    }
    css(&browser, "form[action='/console/keys'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let key = css(&browser, "#new-key").await.text().await.unwrap();
    assert!(key.starts_with("omi_dev_"), "{key}");
    let copy_buttons = browser
        .find_all(Locator::Css("[data-copy-button]"))
        .await
        .unwrap();
    assert_eq!(
        copy_buttons.len(),
        usize::from(javascript),
        "the copy button is the script's work, and only appears with JavaScript"
    );
    screenshot(&browser, &format!("{run}-03-key-created")).await;
    let http = reqwest_client();
    let used = http
        .get(server.url("/v1/dev/user/memories"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    let refused = http
        .get(server.url("/v1/dev/user/goals"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "goals:read was unticked");

    // Complete the action item.
    browser
        .goto(&server.url("/console/action-items"))
        .await
        .unwrap();
    css(
        &browser,
        &format!("#item-{item} button[name=action][value=complete]"),
    )
    .await
    .click()
    .await
    .unwrap();
    css(&browser, ".notice").await;
    screenshot(&browser, &format!("{run}-04-action-item-completed")).await;
    let reply = server
        .get(&format!("/v1/dev/user/action-items/{item}"), &alice.key)
        .await;
    assert_eq!(reply.body["completed"], true, "{reply:?}");

    // Edit the memory.
    browser
        .goto(&server.url("/console/memories"))
        .await
        .unwrap();
    let content = css(&browser, &format!("#memory-{memory} textarea")).await;
    content.clear().await.unwrap();
    content
        .send_keys("I like jasmine tea in the morning")
        .await
        .unwrap();
    css(
        &browser,
        &format!("form[action='/console/memories/{memory}'] button[type=submit]"),
    )
    .await
    .click()
    .await
    .unwrap();
    css(&browser, ".notice").await;
    screenshot(&browser, &format!("{run}-05-memory-edited")).await;
    let reply = server
        .get(&format!("/v1/dev/user/memories/{memory}"), &alice.key)
        .await;
    assert_eq!(reply.body["content"], "I like jasmine tea in the morning");

    // A conversation with its transcript.
    browser
        .goto(&server.url("/console/conversations"))
        .await
        .unwrap();
    css(
        &browser,
        &format!("a[href='/console/conversations/{conversation}']"),
    )
    .await
    .click()
    .await
    .unwrap();
    let transcript = css(&browser, ".transcript").await.text().await.unwrap();
    assert!(
        transcript.contains("repaint the kitchen walls"),
        "{transcript}"
    );
    screenshot(&browser, &format!("{run}-06-conversation")).await;

    browser.goto(&server.url("/console/goals")).await.unwrap();
    css(&browser, "h1").await;
    screenshot(&browser, &format!("{run}-07-goals")).await;

    // Webhooks: add one with two events; its secret is shown once.
    browser
        .goto(&server.url("/console/webhooks"))
        .await
        .unwrap();
    css(&browser, "#webhook-url")
        .await
        .send_keys("https://hooks.example/omi")
        .await
        .unwrap();
    for event in ["memory.created", "conversation.created"] {
        css(&browser, &format!("input[name=event][value='{event}']"))
            .await
            .click()
            .await
            .unwrap();
    }
    css(
        &browser,
        "form[action='/console/webhooks'] button[type=submit]",
    )
    .await
    .click()
    .await
    .unwrap();
    let secret = css(&browser, "#new-secret").await.text().await.unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    screenshot(&browser, &format!("{run}-09-webhook-created")).await;
    let hooks = server.get("/v1/dev/user/webhooks", &alice.key).await;
    assert_eq!(hooks.body[0]["url"], "https://hooks.example/omi");

    // An MCP client connects with OAuth: the consent screen, narrowed, then approved.
    approve_a_connector(&browser, &server, &alice, run).await;

    // Phone width.
    browser.set_window_size(390, 844).await.unwrap();
    browser.goto(&server.url("/console/keys")).await.unwrap();
    css(&browser, "h1").await;
    screenshot(&browser, &format!("{run}-08-keys-phone")).await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // Sign out: the console is closed again.
    css(&browser, ".signout button")
        .await
        .click()
        .await
        .unwrap();
    css(&browser, "#token").await;
    assert_eq!(path_of(&browser).await, "/console/login");
    browser.goto(&server.url("/console/keys")).await.unwrap();
    assert_eq!(path_of(&browser).await, "/console/login");

    browser.close().await.unwrap();
}

/// Registers an OAuth client whose redirect URI is a listener of the test, opens the
/// authorization URL the `oauth2` crate builds, unticks a scope on the consent screen, approves,
/// and exchanges the code the browser brought back; then looks at Connected apps.
async fn approve_a_connector(browser: &Client, server: &TestServer, user: &TestUser, run: &str) {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse, TokenUrl,
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(|| async { "Connected. You can close this window." }),
    );
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let registered: Value = reqwest_client()
        .post(server.url("/oauth/register"))
        .json(&json!({"client_name": "Browser Connector", "redirect_uris": [callback]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_string();
    let client = BasicClient::new(ClientId::new(client_id))
        .set_auth_uri(AuthUrl::new(server.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(callback.clone()).unwrap())
        .set_auth_type(oauth2::AuthType::RequestBody);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("memories:read".into()))
        .add_scope(Scope::new("goals:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    browser.goto(url.as_str()).await.unwrap();
    css(browser, "#approve").await;
    assert_eq!(path_of(browser).await, "/console/oauth/authorize");
    let heading = css(browser, "#consent-heading").await.text().await.unwrap();
    assert!(heading.contains("Browser Connector"), "{heading}");
    css(browser, "input[name=scope][value='goals:read']")
        .await
        .click()
        .await
        .unwrap();
    screenshot(browser, &format!("{run}-10-oauth-consent")).await;
    css(browser, "#approve").await.click().await.unwrap();
    let mut landed = None;
    for _ in 0..150 {
        let current = browser.current_url().await.unwrap();
        if current.path() == "/callback" {
            landed = Some(current);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let landed = landed.expect("the browser returns to the client's redirect URI");
    let param = |name: &str| {
        landed
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some(state.secret().as_str()));
    let http = |request: oauth2::HttpRequest| async move {
        let (parts, body) = request.into_parts();
        let response = reqwest_client()
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let mut answer = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        Ok::<_, reqwest::Error>(answer.body(response.bytes().await?.to_vec()).unwrap())
    };
    let token = client
        .exchange_code(AuthorizationCode::new(param("code").expect("a code")))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let granted: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(granted, ["memories:read"], "goals:read was unticked");
    let access = token.access_token().secret();
    assert_eq!(
        server.get("/v1/dev/user/memories", access).await.status,
        200
    );
    assert_eq!(server.get("/v1/dev/user/goals", access).await.status, 403);
    receiver.abort();

    browser.goto(&server.url("/console/apps")).await.unwrap();
    let apps = css(browser, "main table").await.text().await.unwrap();
    assert!(apps.contains("Browser Connector"), "{apps}");
    screenshot(browser, &format!("{run}-11-connected-apps")).await;
    let _ = user;
}

#[tokio::test]
async fn the_console_works_in_a_real_browser_with_and_without_javascript() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    walk_through(&driver, true).await;
    walk_through(&driver, false).await;
}
