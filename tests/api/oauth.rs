//! OAuth 2.1 for MCP clients, end to end: a real OAuth client library (`oauth2`) registers,
//! is sent through the console's consent page (driven over HTTP with the session cookie and
//! its CSRF token), exchanges the code with PKCE, then opens an MCP session with the access
//! token. The RFC error codes of every refusal, the metadata documents and the 401 challenge.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, TestServer, TestUser};
use crate::console::{Browser, Page};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The `oauth2` crate's HTTP hook, over the test's own HTTP client (no redirects followed).
async fn send(request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let client = omi_server::outbound::Outbound::system()
        .http_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut answer = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    Ok(answer
        .body(response.bytes().await?.to_vec())
        .expect("response"))
}

/// What an MCP client that knows only the URL does: call it, follow the challenge to the
/// protected-resource metadata, then to the authorization server's metadata. Answers the
/// registration, authorization and token endpoints.
async fn discover(server: &TestServer) -> [String; 3] {
    let refused = server
        .client
        .post(server.url("/v1/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    let metadata_url = regex::Regex::new(r#"resource_metadata="([^"]+)""#)
        .unwrap()
        .captures(challenge)
        .unwrap()[1]
        .to_string();
    let resource: Value = server
        .client
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["resource"], server.url("/v1/mcp"));
    let issuer = resource["authorization_servers"][0].as_str().unwrap();
    let metadata: Value = server
        .client
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], issuer);
    [
        "registration_endpoint",
        "authorization_endpoint",
        "token_endpoint",
    ]
    .map(|name| metadata[name].as_str().unwrap().to_string())
}

/// Registers a client over plain HTTP (RFC 7591) and answers its id.
async fn register(server: &TestServer, name: &str) -> String {
    let reply = server
        .client
        .post(server.url("/oauth/register"))
        .json(&json!({
            "client_name": name,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["redirect_uris"], json!([REDIRECT_URI]));
    body["client_id"].as_str().unwrap().to_string()
}

fn oauth_client(server: &TestServer, client_id: &str) -> Client {
    BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::new(server.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_string()).unwrap())
        .set_auth_type(oauth2::AuthType::RequestBody)
}

/// HTML attribute text back to the value (minijinja escapes `&<>"'/`).
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden fields of the consent form, and the scope checkboxes it offers.
fn consent_fields(page: &Page) -> (Vec<(String, String)>, Vec<String>) {
    let hidden = regex::Regex::new(r#"type="hidden" name="(\w+)" value="([^"]*)""#).unwrap();
    let fields = hidden
        .captures_iter(&page.html)
        .map(|c| (c[1].to_string(), unescape(&c[2])))
        .collect();
    let boxes = regex::Regex::new(r#"name="scope" value="([^"]+)""#).unwrap();
    let scopes = boxes
        .captures_iter(&page.html)
        .map(|c| unescape(&c[1]))
        .collect();
    (fields, scopes)
}

/// Follows the authorization endpoint's hand-over page to the consent page.
async fn open_consent(browser: &mut Browser, authorize_url: &url::Url) -> Page {
    let path = format!(
        "{}?{}",
        authorize_url.path(),
        authorize_url.query().unwrap()
    );
    let bounce = browser.get(&path).await;
    assert_eq!(bounce.status, 200, "{bounce:?}");
    let target = regex::Regex::new(r#"url=([^"]+)""#)
        .unwrap()
        .captures(&bounce.html)
        .unwrap()[1]
        .replace("&amp;", "&");
    assert!(target.starts_with("/console/oauth/authorize?"), "{target}");
    browser.get(&target).await
}

/// Submits the consent form with `scopes` ticked; answers the redirect's query parameters.
async fn decide(
    browser: &mut Browser,
    consent: &Page,
    scopes: &[&str],
    decision: &str,
) -> url::Url {
    let (fields, _) = consent_fields(consent);
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    for scope in scopes {
        form.push(("scope", scope));
    }
    form.push(("decision", decision));
    let answer = browser.post("/console/oauth/authorize", &form).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    url::Url::parse(answer.location.as_deref().unwrap()).unwrap()
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

struct Authorized {
    code: String,
    verifier: PkceCodeVerifier,
}

/// Register-free part of the flow: authorize as `user` with `asked` scopes, tick `granted`.
async fn authorize(
    server: &TestServer,
    user: &TestUser,
    client: &Client,
    asked: &[&str],
    granted: &[&str],
) -> Authorized {
    let (mut browser, _) = Browser::signed_in(server, user).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(asked.iter().map(|scope| Scope::new(scope.to_string())))
        .set_pkce_challenge(challenge)
        .url();
    let consent = open_consent(&mut browser, &url).await;
    assert_eq!(consent.status, 200, "{consent:?}");
    let redirect = decide(&mut browser, &consent, granted, "approve").await;
    assert!(redirect.as_str().starts_with(REDIRECT_URI), "{redirect}");
    assert_eq!(
        query_param(&redirect, "state").as_deref(),
        Some(csrf_state.secret().as_str())
    );
    assert_eq!(
        query_param(&redirect, "iss").as_deref(),
        Some(server.base_url.as_str())
    );
    Authorized {
        code: query_param(&redirect, "code").expect("a code"),
        verifier,
    }
}

async fn mcp(server: &TestServer, token: &str) -> RunningService<RoleClient, ()> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url("/v1/mcp")).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP session")
}

fn rfc_error<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<reqwest::Error, oauth2::basic::BasicErrorResponse>>,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(error)) => error.error().clone(),
        other => panic!("expected an RFC error answer, got {other:?}"),
    }
}

/// The whole flow: register, consent (narrowed), PKCE exchange, MCP with only the granted
/// tools, refresh rotation, reuse detection, revocation, and the console's connected apps.
async fn authorization_code_flow_then_mcp(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let client_id = register(&server, "Test MCP client").await;
    let client = oauth_client(&server, &client_id);
    let http = send;
    // A client that knows only the MCP URL finds these same endpoints.
    assert_eq!(
        discover(&server).await,
        [
            server.url("/oauth/register"),
            server.url("/oauth/authorize"),
            server.url("/oauth/token"),
        ]
    );

    let authorized = authorize(
        &server,
        &user,
        &client,
        &["memories:read", "memories:write", "goals:read"],
        // The user unticks memories:write.
        &["memories:read", "goals:read"],
    )
    .await;
    let token = client
        .exchange_code(AuthorizationCode::new(authorized.code))
        .set_pkce_verifier(authorized.verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let granted: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|scope| scope.to_string())
        .collect();
    assert_eq!(granted, ["memories:read", "goals:read"]);
    assert_eq!(token.expires_in(), Some(Duration::from_secs(3600)));
    let access = token.access_token().secret().clone();
    let refresh = token.refresh_token().unwrap().secret().clone();

    // The REST API takes the token like a key with the granted scopes.
    server
        .post(
            "/v1/dev/user/memories",
            &user.key,
            json!({"content": "Likes tea"}),
        )
        .await;
    let memories = server.get("/v1/dev/user/memories", &access).await;
    assert_eq!(memories.status, 200, "{memories:?}");
    let write = server
        .post("/v1/dev/user/memories", &access, json!({"content": "x"}))
        .await;
    assert_eq!(write.status, 403, "{write:?}");

    // MCP: only the granted tools, and a call that works.
    let session = mcp(&server, &access).await;
    let mut tools: Vec<String> = session
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    tools.sort();
    assert_eq!(
        tools,
        [
            "get_goals",
            "get_memories",
            "get_user_profile",
            "search_memories"
        ]
    );
    let result = session
        .call_tool(CallToolRequestParams::new("get_memories".to_string()))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(
        result.structured_content.unwrap()["memories"][0]["content"],
        "Likes tea"
    );
    let refused = session
        .call_tool(
            CallToolRequestParams::new("create_memory".to_string())
                .with_arguments(json!({"content": "x"}).as_object().unwrap().clone()),
        )
        .await;
    assert!(
        format!("{refused:?}").contains("Insufficient scope: memories:write"),
        "{refused:?}"
    );
    session.cancel().await.unwrap();

    // Connected apps lists the grant with its scopes and use.
    let (mut browser, _) = Browser::signed_in(&server, &user).await;
    let apps = browser.get("/console/apps").await;
    assert!(apps.html.contains("Test MCP client"), "{}", apps.html);
    assert!(apps.html.contains("memories:read, goals:read"));
    assert!(!apps.html.contains("never"), "the grant was used");

    // Refresh rotates: the new pair works, the old refresh token does not...
    let rotated = client
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request_async(&http)
        .await
        .expect("refresh");
    let new_access = rotated.access_token().secret().clone();
    assert_ne!(new_access, access);
    assert_eq!(
        server.get("/v1/dev/user/goals", &new_access).await.status,
        200
    );
    // ...and using it again revokes the whole grant (someone else holds a copy).
    let reused = client
        .exchange_refresh_token(&RefreshToken::new(refresh))
        .request_async(&http)
        .await;
    assert_eq!(rfc_error(reused), BasicErrorResponseType::InvalidGrant);
    let after = server.get("/v1/dev/user/goals", &new_access).await;
    assert_eq!(after.status, 401, "{after:?}");
    let next_refresh = rotated.refresh_token().unwrap().clone();
    let dead = client
        .exchange_refresh_token(&next_refresh)
        .request_async(&http)
        .await;
    assert_eq!(rfc_error(dead), BasicErrorResponseType::InvalidGrant);

    // Revocation (RFC 7009) of a refresh token ends its grant at once.
    let authorized = authorize(&server, &user, &client, &["goals:read"], &["goals:read"]).await;
    let token = client
        .exchange_code(AuthorizationCode::new(authorized.code))
        .set_pkce_verifier(authorized.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 200);
    // The `oauth2` crate refuses a revocation URL that is not https, so the RFC 7009 request
    // is sent by hand.
    let revoked = server
        .client
        .post(server.url("/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("token", token.refresh_token().unwrap().secret().as_str()),
                ("token_type_hint", "refresh_token"),
                ("client_id", client_id.as_str()),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 401);
    let revoked = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&http)
        .await;
    assert_eq!(rfc_error(revoked), BasicErrorResponseType::InvalidGrant);
}

/// Disconnecting an app in the console stops its token at once; another user's grant is 404.
async fn disconnecting_an_app_stops_its_tokens(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let user = server.user("alice").await;
    let other = server.user("bob").await;
    let client = oauth_client(&server, &register(&server, "Connector").await);
    let authorized = authorize(&server, &user, &client, &[], &["goals:read"]).await;
    let token = client
        .exchange_code(AuthorizationCode::new(authorized.code))
        .set_pkce_verifier(authorized.verifier)
        .request_async(&send)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 200);

    let (mut browser, _) = Browser::signed_in(&server, &user).await;
    let apps = browser.get("/console/apps").await;
    let id = regex::Regex::new(r#"/console/apps/([^/]+)/disconnect"#)
        .unwrap()
        .captures(&apps.html)
        .unwrap()[1]
        .to_string();

    let (mut intruder, csrf) = Browser::signed_in(&server, &other).await;
    let foreign = intruder
        .post(
            &format!("/console/apps/{id}/disconnect"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 200);

    let csrf = apps.csrf();
    let gone = browser
        .post(
            &format!("/console/apps/{id}/disconnect"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(gone.status, 303, "{gone:?}");
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 401);
    let refresh = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&send)
        .await;
    assert_eq!(rfc_error(refresh), BasicErrorResponseType::InvalidGrant);
}

backend_tests!(
    authorization_code_flow_then_mcp,
    disconnecting_an_app_stops_its_tokens
);

#[tokio::test]
async fn a_wrong_verifier_and_a_reused_code_are_invalid_grants() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let client = oauth_client(&server, &register(&server, "c").await);

    let authorized = authorize(&server, &user, &client, &["goals:read"], &["goals:read"]).await;
    let wrong = client
        .exchange_code(AuthorizationCode::new(authorized.code.clone()))
        .set_pkce_verifier(PkceCodeVerifier::new("a".repeat(43)))
        .request_async(&send)
        .await;
    assert_eq!(rfc_error(wrong), BasicErrorResponseType::InvalidGrant);
    // The failed attempt spent the code.
    let spent = client
        .exchange_code(AuthorizationCode::new(authorized.code))
        .set_pkce_verifier(authorized.verifier)
        .request_async(&send)
        .await;
    assert_eq!(rfc_error(spent), BasicErrorResponseType::InvalidGrant);

    // A code used twice: the second is refused and revokes what the first obtained.
    let authorized = authorize(&server, &user, &client, &["goals:read"], &["goals:read"]).await;
    let verifier = authorized.verifier.secret().clone();
    let first = client
        .exchange_code(AuthorizationCode::new(authorized.code.clone()))
        .set_pkce_verifier(authorized.verifier)
        .request_async(&send)
        .await
        .unwrap();
    let access = first.access_token().secret().clone();
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 200);
    let again = client
        .exchange_code(AuthorizationCode::new(authorized.code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&send)
        .await;
    assert_eq!(rfc_error(again), BasicErrorResponseType::InvalidGrant);
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 401);

    // Another grant type, an unknown client.
    let token_form = |body: &'static str| {
        server
            .client
            .post(server.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let password = token_form("grant_type=password&username=a&password=b&client_id=x")
        .await
        .unwrap();
    assert_eq!(password.status(), 400);
    assert_eq!(
        password.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let unknown = token_form("grant_type=authorization_code&code=x&code_verifier=y&client_id=nope")
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.headers()["cache-control"], "no-store");
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let missing = token_form("client_id=x").await.unwrap();
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn guessing_codes_counts_as_failed_authentication() {
    let server = TestServer::start_with(|settings| settings.failed_auth_per_minute = 2).await;
    let client_id = register(&server, "c").await;
    let body = format!(
        "grant_type=authorization_code&code=guess&code_verifier={}&client_id={client_id}",
        "v".repeat(43)
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = server
            .client
            .post(server.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(reply.status().as_u16());
        if reply.status() == 429 {
            assert!(reply.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, [400, 400, 429]);
}

#[tokio::test]
async fn expired_access_tokens_are_refused_with_the_challenge() {
    let server = TestServer::start_with(|settings| settings.oauth_access_token_seconds = 1).await;
    let user = server.user("alice").await;
    let client = oauth_client(&server, &register(&server, "c").await);
    let authorized = authorize(&server, &user, &client, &["goals:read"], &["goals:read"]).await;
    let token = client
        .exchange_code(AuthorizationCode::new(authorized.code))
        .set_pkce_verifier(authorized.verifier)
        .request_async(&send)
        .await
        .unwrap();
    assert_eq!(token.expires_in(), Some(Duration::from_secs(1)));
    let access = token.access_token().secret().clone();
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(server.get("/v1/dev/user/goals", &access).await.status, 401);
    let mcp = server
        .client
        .post(server.url("/v1/mcp"))
        .bearer_auth(&access)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 401);
    let challenge = mcp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // The refresh token still gets a fresh access token.
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&send)
        .await
        .unwrap();
    let fresh = refreshed.access_token().secret();
    assert_eq!(server.get("/v1/dev/user/goals", fresh).await.status, 200);
}

#[tokio::test]
async fn authorization_requests_are_checked_before_consent() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let client_id = register(&server, "c").await;
    let (mut browser, _) = Browser::signed_in(&server, &user).await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let consent = |query: String| format!("/console/oauth/authorize?{query}");

    // An unregistered redirect URI: an error page, never a redirect to it.
    let page = browser
        .get(&consent(format!(
            "response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_challenge={challenge}&code_challenge_method=S256"
        )))
        .await;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.location.is_none());
    assert!(page.html.contains("did not register"), "{}", page.html);
    // An unknown client: the same.
    let page = browser
        .get(&consent(format!(
            "response_type=code&client_id=nope&redirect_uri={REDIRECT_URI}&code_challenge={challenge}&code_challenge_method=S256"
        )))
        .await;
    assert_eq!(page.status, 400);

    // Once the redirect URI is known, errors go back to the client with the state.
    let refused = |query: &str| {
        consent(format!(
            "client_id={client_id}&redirect_uri={}&state=xyz&{query}",
            urlencode(REDIRECT_URI)
        ))
    };
    for (query, error) in [
        (
            format!("response_type=code&code_challenge={challenge}&code_challenge_method=plain"),
            "invalid_request",
        ),
        ("response_type=code".to_string(), "invalid_request"),
        (
            format!("response_type=token&code_challenge={challenge}&code_challenge_method=S256"),
            "unsupported_response_type",
        ),
        (
            format!(
                "response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=admin"
            ),
            "invalid_scope",
        ),
    ] {
        let answer = browser.get(&refused(&query)).await;
        assert_eq!(answer.status, 303, "{query}: {answer:?}");
        let location = url::Url::parse(answer.location.as_deref().unwrap()).unwrap();
        assert!(location.as_str().starts_with(REDIRECT_URI));
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some(error),
            "{query}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("xyz"));
    }

    // No session: sign in first, then back to the same consent page.
    let path = refused(&format!(
        "response_type=code&code_challenge={challenge}&code_challenge_method=S256"
    ));
    let mut stranger = Browser::new(&server);
    let away = stranger.get(&path).await;
    assert_eq!(away.status, 303);
    let login = away.location.unwrap();
    assert!(login.starts_with("/console/login?next="), "{login}");
    let form = stranger.get(&login).await;
    let (fields, _) = consent_fields(&form);
    let next = fields
        .iter()
        .find(|(name, _)| name == "next")
        .unwrap()
        .1
        .clone();
    assert_eq!(next, path);
    let csrf = form.csrf();
    let signed_in = stranger
        .post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("token", &user.account_token),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(signed_in.location.as_deref(), Some(path.as_str()));
    let consent_page = stranger.get(&path).await;
    assert_eq!(consent_page.status, 200);
    // No scope asked: the MCP tools' read and write scopes are offered.
    let (_, offered) = consent_fields(&consent_page);
    assert_eq!(offered.len(), 8, "{offered:?}");
    assert!(offered.contains(&"memories:write".to_string()));
    assert!(!offered.contains(&"ingest:write".to_string()));
    let policy = consent_page.headers["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("form-action 'self' http://127.0.0.1:9;"),
        "{policy}"
    );

    // Denying goes back with access_denied; a post without the CSRF token is refused.
    let denied = decide(&mut stranger, &consent_page, &[], "deny").await;
    assert_eq!(
        query_param(&denied, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&denied, "state").as_deref(), Some("xyz"));
    let forged = stranger
        .post(
            "/console/oauth/authorize",
            &[("client_id", client_id.as_str()), ("decision", "approve")],
        )
        .await;
    assert_eq!(forged.status, 403);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn registration_is_bounded() {
    let server = TestServer::start().await;
    let post = |body: Value| {
        server
            .client
            .post(server.url("/oauth/register"))
            .json(&body)
            .send()
    };
    for (body, error) in [
        (
            json!({"redirect_uris": ["http://example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": (0..11).map(|i| format!("https://a.example/{i}")).collect::<Vec<_>>()}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x".repeat(101)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let reply = post(body.clone()).await.unwrap();
        assert_eq!(reply.status(), 400, "{body}");
        assert_eq!(
            reply.json::<Value>().await.unwrap()["error"],
            error,
            "{body}"
        );
    }
    let ok = post(json!({"redirect_uris": ["http://localhost:5173/cb", "https://a.example/cb"]}))
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn metadata_documents_and_the_mcp_challenge() {
    let server = TestServer::start().await;
    let base = server.base_url.clone();
    let get = |path: &str| server.client.get(server.url(path)).send();

    let metadata: Value = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], base);
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(metadata["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(
        metadata["registration_endpoint"],
        format!("{base}/oauth/register")
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        format!("{base}/oauth/revoke")
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(metadata["response_types_supported"], json!(["code"]));
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("memories:read"))
    );

    let resource: Value = get("/.well-known/oauth-protected-resource/v1/mcp")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["resource"], format!("{base}/v1/mcp"));
    assert_eq!(resource["authorization_servers"], json!([base]));
    assert_eq!(resource["bearer_methods_supported"], json!(["header"]));
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/oauth/token"))
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let root: Value = get("/.well-known/oauth-protected-resource")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["resource"], base);

    for path in ["/v1/mcp", "/v1/mcp/sse"] {
        let reply = server
            .client
            .post(server.url(path))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401);
        let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
        assert_eq!(
            challenge,
            format!(
                "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource{path}\""
            )
        );
    }

    // Behind OMI_PUBLIC_URL every absolute URL uses it, whatever the Host header says.
    let public = TestServer::start_with(|settings| {
        settings.public_url = Some("https://omi.example.com/".into())
    })
    .await;
    let metadata: Value = public
        .client
        .get(public.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], "https://omi.example.com");
    assert_eq!(
        metadata["token_endpoint"],
        "https://omi.example.com/oauth/token"
    );
    let reply = public
        .client
        .get(public.url("/v1/mcp"))
        .bearer_auth("omi_oat_00000000000000000000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(
            "Bearer resource_metadata=\"https://omi.example.com/.well-known/oauth-protected-resource/v1/mcp\", error=\"invalid_token\""
        ),
        "{challenge}"
    );
}
