//! The MCP endpoint through a real MCP client (rmcp): over Streamable HTTP against a server on
//! 127.0.0.1:0, and over stdio against `omi-server mcp --stdio` as a child process.

#[path = "api/common.rs"]
mod common;

use std::process::Stdio;

use common::{TestServer, TestUser};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ()>;

const READ_SCOPES: [&str; 4] = [
    "conversations:read",
    "memories:read",
    "action_items:read",
    "goals:read",
];

const READ_TOOLS: [&str; 13] = [
    "ask",
    "get_action_items",
    "get_conversation_by_id",
    "get_conversations",
    "get_conversations_by_ids",
    "get_daily_summaries",
    "get_goals",
    "get_memories",
    "get_people",
    "get_user_profile",
    "search_action_items",
    "search_conversations",
    "search_memories",
];

const ALL_TOOLS: [&str; 23] = [
    "ask",
    "complete_action_item",
    "create_action_item",
    "create_conversation",
    "create_memories",
    "create_memory",
    "delete_action_item",
    "delete_memory",
    "edit_memory",
    "get_action_items",
    "get_conversation_by_id",
    "get_conversations",
    "get_conversations_by_ids",
    "get_daily_summaries",
    "get_goals",
    "get_memories",
    "get_people",
    "get_user_profile",
    "search_action_items",
    "search_conversations",
    "search_memories",
    "update_action_item",
    "update_goal_progress",
];

async fn connect(server: &TestServer, key: &str) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url("/v1/mcp")).auth_header(key);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP session")
}

/// `omi-server mcp --stdio` on the test server's database.
async fn connect_stdio(server: &TestServer, key: &str) -> Client {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_omi-server"));
    command
        .args(["mcp", "--stdio"])
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}", server.db_path().display()),
        )
        .env("OMI_API_KEY", key)
        .env("OMI_LOG", "warn");
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn omi-server mcp --stdio");
    ().serve(transport).await.expect("MCP session over stdio")
}

async fn tool_names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    names.sort();
    names
}

async fn call(client: &Client, name: &str, arguments: Value) -> CallToolResult {
    let arguments = arguments.as_object().cloned().expect("arguments object");
    client
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(arguments))
        .await
        .expect("tools/call answers")
}

/// The structured content of a successful call, after checking that the text says the same.
fn success(result: &CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let structured = result
        .structured_content
        .clone()
        .expect("structured content");
    let text = result.content[0]
        .as_text()
        .expect("text content")
        .text
        .clone();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), structured);
    structured
}

/// Checks an error result (upstream's shape): `{"error": {"code", "message"}}` as structured
/// content and as its compact JSON text, the message being the REST `detail`.
fn assert_tool_error(result: &CallToolResult, code: &str, message: &str) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let expected = json!({"error": {"code": code, "message": message}});
    assert_eq!(result.structured_content, Some(expected.clone()));
    let text = &result.content[0].as_text().expect("text").text;
    assert_eq!(text, &expected.to_string(), "compact JSON");
}

async fn read_only_key(server: &TestServer, user: &TestUser) -> String {
    server.key_with(user, &READ_SCOPES).await
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// A raw `initialize` POST, to see the HTTP answers an MCP client would get.
fn raw_initialize(server: &TestServer) -> reqwest::RequestBuilder {
    server
        .client
        .post(server.url("/v1/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
}

#[tokio::test]
async fn a_session_introduces_the_server_and_its_tools() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "omi-server");
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.unwrap();
    let create_memory = tools.iter().find(|t| t.name == "create_memory").unwrap();
    assert_eq!(create_memory.input_schema["required"], json!(["content"]));
    assert!(
        create_memory
            .description
            .as_deref()
            .unwrap()
            .contains("memory")
    );
    let get_memories = tools.iter().find(|t| t.name == "get_memories").unwrap();
    assert_eq!(
        get_memories.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_list_shows_only_what_the_key_may_call() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;

    let full = connect(&server, &alice.key).await;
    assert_eq!(tool_names(&full).await, ALL_TOOLS);

    let read_only = connect(&server, &read_only_key(&server, &alice).await).await;
    assert_eq!(tool_names(&read_only).await, READ_TOOLS);

    let memories_write =
        connect(&server, &server.key_with(&alice, &["memories:write"]).await).await;
    assert_eq!(
        tool_names(&memories_write).await,
        [
            "create_memories",
            "create_memory",
            "delete_memory",
            "edit_memory"
        ]
    );

    let nothing = connect(&server, &server.key_with(&alice, &[]).await).await;
    assert!(tool_names(&nothing).await.is_empty());
}

#[tokio::test]
async fn a_missing_or_invalid_key_is_refused_before_a_session_starts() {
    let server = TestServer::start().await;
    let missing = common::Reply::from(raw_initialize(&server).send().await.unwrap()).await;
    missing.assert_error(
        401,
        "Missing or invalid Authorization header. Must be 'Bearer API_KEY'",
    );
    // The challenge names the OAuth metadata, so that a client can sign the user in.
    assert_eq!(
        missing.header("www-authenticate"),
        Some(
            format!(
                "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/v1/mcp\"",
                server.base_url
            )
            .as_str()
        )
    );
    assert_eq!(missing.header("mcp-session-id"), None);

    let invalid = raw_initialize(&server)
        .bearer_auth("omi_dev_00000000000000000000000000000000")
        .send()
        .await
        .unwrap();
    let invalid = common::Reply::from(invalid).await;
    invalid.assert_error(401, "Invalid API key");
    assert!(invalid.header("x-request-id").is_some());
    assert!(
        invalid
            .header("www-authenticate")
            .is_some_and(|challenge| challenge.contains("error=\"invalid_token\"")),
        "{invalid:?}"
    );
}

#[tokio::test]
async fn an_account_token_is_not_an_mcp_key() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = raw_initialize(&server)
        .bearer_auth(&alice.account_token)
        .send()
        .await
        .unwrap();
    common::Reply::from(reply)
        .await
        .assert_error(401, "Invalid API key");
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let evil_host = raw_initialize(&server)
        .bearer_auth(&alice.key)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    common::Reply::from(evil_host)
        .await
        .assert_error(403, "Host not allowed");

    let evil_origin = raw_initialize(&server)
        .bearer_auth(&alice.key)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    common::Reply::from(evil_origin)
        .await
        .assert_error(403, "Origin not allowed");

    let local_origin = raw_initialize(&server)
        .bearer_auth(&alice.key)
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(local_origin.status(), 200);
}

#[tokio::test]
async fn the_allowed_hosts_come_from_the_settings() {
    let server = TestServer::start_with(|settings| {
        settings.mcp_allowed_hosts = vec!["omi.example.com".to_string()];
    })
    .await;
    let alice = server.user("alice").await;
    let loopback = raw_initialize(&server)
        .bearer_auth(&alice.key)
        .send()
        .await
        .unwrap();
    common::Reply::from(loopback)
        .await
        .assert_error(403, "Host not allowed");
    let named = raw_initialize(&server)
        .bearer_auth(&alice.key)
        .header("host", "omi.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 200);
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let error = client
        .call_tool(CallToolRequestParams::new("drop_database"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Unknown tool: drop_database"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_path_id_is_an_error_result() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let result = call(&client, "delete_memory", json!({})).await;
    assert_tool_error(
        &result,
        "invalid_arguments",
        "Validation error: memory_id is required",
    );
    let result = call(
        &client,
        "edit_memory",
        json!({"memory_id": 12, "content": "x"}),
    )
    .await;
    assert_tool_error(
        &result,
        "invalid_arguments",
        "Validation error: memory_id must be a string",
    );
}

/// `X-RateLimit-Remaining` of the day window, as REST reports it.
async fn remaining_today(server: &TestServer, key: &str) -> u64 {
    let reply = server.get("/v1/dev/key", key).await;
    reply
        .header("x-ratelimit-remaining")
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn listing_tools_counts_once_and_the_session_itself_not_at_all() {
    let server = TestServer::start_with(|settings| settings.rate_limit_per_day = 1000).await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    // initialize and its notification are not REST requests; tools/list is one (GET /v1/dev/key).
    tool_names(&client).await;
    assert_eq!(remaining_today(&server, &alice.key).await, 1000 - 2);
}

#[tokio::test]
async fn a_key_over_its_limit_gets_the_rest_429_message() {
    let server = TestServer::start_with(|settings| settings.rate_limit_per_day = 1).await;
    let alice = server.user("alice").await;
    let first = connect(&server, &alice.key).await;
    assert_eq!(tool_names(&first).await, ALL_TOOLS);
    let second = connect(&server, &alice.key).await;
    let error = second.list_all_tools().await.unwrap_err().to_string();
    assert!(
        error.contains("Rate limit exceeded. Try again in "),
        "{error}"
    );
}

#[tokio::test]
async fn a_revoked_key_loses_its_session() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let revoked = server
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/dev/keys/{}", alice.key_id),
            Some(&alice.account_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert!(client.list_all_tools().await.is_err());
}

#[tokio::test]
async fn stdio_serves_the_tools_of_the_key_in_the_environment() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let read_only = connect_stdio(&server, &read_only_key(&server, &alice).await).await;
    assert_eq!(tool_names(&read_only).await, READ_TOOLS);
    read_only.cancel().await.unwrap();

    let full = connect_stdio(&server, &alice.key).await;
    assert_eq!(tool_names(&full).await, ALL_TOOLS);
    let result = call(&full, "complete_action_item", json!({})).await;
    assert_tool_error(
        &result,
        "invalid_arguments",
        "Validation error: action_item_id is required",
    );
    full.cancel().await.unwrap();
}

async fn run_stdio(server: &TestServer, key: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_omi-server"));
    command
        .args(["mcp", "--stdio"])
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}", server.db_path().display()),
        )
        .env_remove("OMI_API_KEY")
        .stdin(Stdio::null());
    if let Some(key) = key {
        command.env("OMI_API_KEY", key);
    }
    command.output().await.expect("run omi-server")
}

#[tokio::test]
async fn stdio_refuses_to_start_without_a_valid_key() {
    let server = TestServer::start().await;
    let missing = run_stdio(&server, None).await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("OMI_API_KEY must hold a developer key"),
        "{stderr}"
    );
    assert!(missing.stdout.is_empty());

    let invalid = run_stdio(&server, Some("omi_dev_00000000000000000000000000000000")).await;
    assert!(!invalid.status.success());
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("OMI_API_KEY: Invalid API key"), "{stderr}");
    assert!(invalid.stdout.is_empty());
}

#[tokio::test]
async fn stopping_the_server_ends_open_sessions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    tool_names(&client).await;
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(20), server.stop()).await;
    assert!(
        stopped.is_ok(),
        "graceful shutdown waited on an open MCP session"
    );
}

/// The failed-authentication window is a calendar minute: keep a test inside one.
async fn wait_for_room_in_this_minute() {
    let second = chrono::Utc::now().timestamp() % 60;
    if second >= 50 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - second) as u64)).await;
    }
}

#[tokio::test]
async fn failed_authentications_on_mcp_count_like_rest_ones() {
    wait_for_room_in_this_minute().await;
    let server = TestServer::start_with(|settings| settings.failed_auth_per_minute = 2).await;
    let unknown = "omi_dev_00000000000000000000000000000000";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = raw_initialize(&server)
            .bearer_auth(unknown)
            .send()
            .await
            .unwrap();
        statuses.push(reply.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429]);
    // The REST routes see the same count for this address.
    let rest = server.get("/v1/dev/key", unknown).await;
    assert_eq!(rest.status, 429);
}

// The tools against the REST resources: what one side writes, the other reads.

#[tokio::test]
async fn memories_written_through_mcp_are_the_rest_memories_and_back() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;

    let created = success(
        &call(
            &client,
            "create_memory",
            json!({"content": "Alex is allergic to peanuts", "tags": ["health"]}),
        )
        .await,
    );
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/dev/user/memories/{id}");
    assert_eq!(server.get(&path, &alice.key).await.body, created);

    let from_rest = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alex works at Acme", "category": "system"}),
        )
        .await;
    assert_eq!(from_rest.status, 200);
    let listed = success(&call(&client, "get_memories", json!({"limit": 10})).await);
    let rest_list = server
        .get("/v1/dev/user/memories?limit=10", &alice.key)
        .await;
    assert_eq!(listed, json!({"memories": rest_list.body}));
    assert_eq!(listed["memories"].as_array().unwrap().len(), 2);

    let edited = success(
        &call(
            &client,
            "edit_memory",
            json!({"memory_id": id, "content": "Alex is allergic to peanuts and shellfish"}),
        )
        .await,
    );
    assert_eq!(edited["edited"], true);
    assert_eq!(server.get(&path, &alice.key).await.body, edited);

    let deleted = call(&client, "delete_memory", json!({"memory_id": id})).await;
    assert_eq!(success(&deleted), json!({"success": true}));
    server
        .get(&path, &alice.key)
        .await
        .assert_error(404, "Memory not found");
}

#[tokio::test]
async fn search_tools_answer_in_upstreams_shapes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alex is allergic to peanuts"}),
        )
        .await;
    let found = success(
        &call(
            &client,
            "search_memories",
            json!({"query": "peanuts", "limit": 5}),
        )
        .await,
    );
    assert_eq!(
        found["memories"][0]["content"],
        "Alex is allergic to peanuts"
    );
    assert_eq!(found["memories"][0]["relevance_score"], 1.0);
    let result = call(
        &client,
        "search_memories",
        json!({"query": "x", "limit": 50}),
    )
    .await;
    assert_tool_error(
        &result,
        "invalid_arguments",
        "Validation error: limit must be between 1 and 20",
    );

    let created = server
        .post(
            "/v1/dev/user/conversations/from-segments",
            &alice.key,
            json!({"transcript_segments": [
                {"text": "Good morning", "speaker": "SPEAKER_00", "is_user": true, "start": 0.0, "end": 1.0},
                {"text": "The kangaroo enclosure needs a new fence", "speaker": "SPEAKER_01", "start": 1.0, "end": 4.0},
                {"text": "I will call the builder", "speaker": "SPEAKER_00", "is_user": true, "start": 4.0, "end": 6.0},
                {"text": "Thanks", "speaker": "SPEAKER_01", "start": 6.0, "end": 7.0}
            ]}),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let found = success(
        &call(
            &client,
            "search_conversations",
            json!({"query": "kangaroo fence"}),
        )
        .await,
    );
    let card = &found["conversations"][0];
    assert_eq!(card["id"], created.body["id"]);
    assert!(card["structured"]["title"].is_string());
    assert!(card.get("transcript_segments").is_none() && card.get("score").is_none());
    assert_eq!(
        card["match_snippets"][0]["text"],
        "User: Good morning\nSpeaker 1: The kangaroo enclosure needs a new fence\nUser: I will call the builder"
    );
    assert_eq!(card["match_snippets"][0]["start_ms"], 1000);

    server
        .post(
            "/v1/dev/user/action-items",
            &alice.key,
            json!({"description": "Call the fence builder"}),
        )
        .await;
    let found = success(
        &call(
            &client,
            "search_action_items",
            json!({"query": "builder", "limit": 1000}),
        )
        .await,
    );
    assert_eq!(
        found["action_items"][0]["description"],
        "Call the fence builder"
    );
    assert!(found["action_items"][0].get("updated_at").is_some());
    let result = call(&client, "search_action_items", json!({"query": " "})).await;
    assert_tool_error(&result, "invalid_arguments", "query is required");
}

#[tokio::test]
async fn memory_tool_failures_carry_the_rest_detail() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let result = call(
        &client,
        "edit_memory",
        json!({"memory_id": missing, "content": "x"}),
    )
    .await;
    assert_tool_error(&result, "not_found", "Memory not found");
    let result = call(&client, "delete_memory", json!({"memory_id": "../../keys"})).await;
    assert_tool_error(&result, "not_found", "Memory not found");
    let result = call(&client, "create_memory", json!({"content": "   "})).await;
    assert_tool_error(&result, "invalid_arguments", "content cannot be empty");
    let result = call(&client, "create_memory", json!({})).await;
    assert_tool_error(
        &result,
        "invalid_arguments",
        "Validation error: content is required",
    );
    let result = call(&client, "get_memories", json!({"categories": "bogus"})).await;
    assert_tool_error(&result, "invalid_arguments", "Invalid category: bogus");

    // Another user's memory is as missing as one that never existed.
    let bob = server.user("bob").await;
    let bobs = server
        .post(
            "/v1/dev/user/memories",
            &bob.key,
            json!({"content": "Bob likes tea"}),
        )
        .await;
    let bobs_id = bobs.body["id"].as_str().unwrap();
    let result = call(&client, "delete_memory", json!({"memory_id": bobs_id})).await;
    assert_tool_error(&result, "not_found", "Memory not found");
}

#[tokio::test]
async fn a_tool_outside_the_key_scopes_is_the_insufficient_scope_error() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &read_only_key(&server, &alice).await).await;
    for (tool, arguments, scope) in [
        (
            "create_memory",
            json!({"content": "Alex likes tea"}),
            "memories:write",
        ),
        (
            "create_memories",
            json!({"items": [{"content": "Alex likes tea"}]}),
            "memories:write",
        ),
        ("delete_memory", json!({"memory_id": "x"}), "memories:write"),
        (
            "complete_action_item",
            json!({"action_item_id": "x"}),
            "action_items:write",
        ),
        (
            "update_goal_progress",
            json!({"goal_id": "goal_000000000000", "current_value": 1}),
            "goals:write",
        ),
    ] {
        let error = client
            .call_tool(
                CallToolRequestParams::new(tool.to_string())
                    .with_arguments(arguments.as_object().cloned().unwrap()),
            )
            .await
            .unwrap_err();
        let rmcp::ServiceError::McpError(error) = error else {
            panic!("{tool}: {error}")
        };
        assert_eq!(error.code.0, -32003, "{tool}");
        assert_eq!(error.message, format!("Insufficient scope: {scope}"));
        assert_eq!(
            error.data.unwrap()["_meta"]["mcp/www_authenticate"],
            format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"")
        );
    }
    let listed = server.get("/v1/dev/user/memories", &alice.key).await;
    assert_eq!(listed.body, json!([]));
}

#[tokio::test]
async fn each_tool_call_counts_once_against_the_rate_limits() {
    let server = TestServer::start_with(|settings| settings.rate_limit_per_day = 1000).await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    success(&call(&client, "get_memories", json!({})).await);
    success(
        &call(
            &client,
            "create_memory",
            json!({"content": "Alex likes tea"}),
        )
        .await,
    );
    assert_eq!(remaining_today(&server, &alice.key).await, 1000 - 3);
}

#[tokio::test]
async fn a_tool_call_over_the_limit_is_an_error_result() {
    let server = TestServer::start_with(|settings| settings.rate_limit_per_day = 1).await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    success(&call(&client, "get_memories", json!({})).await);
    let limited = call(&client, "get_memories", json!({})).await;
    assert_eq!(limited.is_error, Some(true));
    let structured = limited.structured_content.unwrap();
    assert_eq!(structured["error"]["code"], "rate_limited");
    let detail = structured["error"]["message"].as_str().unwrap();
    assert!(
        detail.starts_with("Rate limit exceeded. Try again in "),
        "{detail}"
    );
    // The session survives: the next call answers too.
    let again = call(&client, "get_memories", json!({})).await;
    assert_eq!(
        again.structured_content.unwrap()["error"]["code"],
        "rate_limited"
    );
}

#[tokio::test]
async fn stdio_tools_read_and_write_the_server_database() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect_stdio(&server, &alice.key).await;
    let created = success(
        &call(
            &client,
            "create_memory",
            json!({"content": "Alex runs on Sundays"}),
        )
        .await,
    );
    let id = created["id"].as_str().unwrap();
    let rest = server
        .get(&format!("/v1/dev/user/memories/{id}"), &alice.key)
        .await;
    assert_eq!(rest.body, created);

    let from_rest = server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alex lives in Lisbon"}),
        )
        .await;
    let listed = success(&call(&client, "get_memories", json!({})).await);
    let rest_list = server.get("/v1/dev/user/memories", &alice.key).await;
    assert_eq!(listed, json!({"memories": rest_list.body}));
    assert!(
        listed["memories"]
            .as_array()
            .unwrap()
            .contains(&from_rest.body)
    );
    let result = call(&client, "delete_memory", json!({"memory_id": "nope"})).await;
    assert_tool_error(&result, "not_found", "Memory not found");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn action_items_round_trip_between_mcp_and_rest() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;

    let created = success(
        &call(
            &client,
            "create_action_item",
            json!({"description": "Review Q1 report", "due_at": "2025-12-10"}),
        )
        .await,
    );
    assert_eq!(created["due_at"], "2025-12-10T23:59:00Z");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/dev/user/action-items/{id}");
    assert_eq!(server.get(&path, &alice.key).await.body, created);

    let updated = success(
        &call(
            &client,
            "update_action_item",
            json!({"action_item_id": id, "description": "Review the Q1 report", "due_at": null}),
        )
        .await,
    );
    assert_eq!(updated["description"], "Review the Q1 report");
    assert_eq!(updated["due_at"], Value::Null);

    let completed = success(
        &call(
            &client,
            "complete_action_item",
            json!({"action_item_id": id}),
        )
        .await,
    );
    assert_eq!(completed["completed"], true);
    assert!(completed["completed_at"].is_string());
    assert_eq!(server.get(&path, &alice.key).await.body, completed);

    let rest_open = server
        .post(
            "/v1/dev/user/action-items",
            &alice.key,
            json!({"description": "Call the dentist"}),
        )
        .await;
    assert_eq!(rest_open.status, 200);
    let open = success(&call(&client, "get_action_items", json!({"completed": false})).await);
    let rest = server
        .get("/v1/dev/user/action-items?completed=false", &alice.key)
        .await;
    assert_eq!(open, json!({"action_items": rest.body}));
    assert_eq!(open["action_items"][0]["description"], "Call the dentist");

    let deleted = call(&client, "delete_action_item", json!({"action_item_id": id})).await;
    assert_eq!(success(&deleted), json!({"success": true}));
    server
        .get(&path, &alice.key)
        .await
        .assert_error(404, "Action item not found");
    let again = call(
        &client,
        "complete_action_item",
        json!({"action_item_id": id}),
    )
    .await;
    assert_tool_error(&again, "not_found", "Action item not found");
    let blank = call(&client, "create_action_item", json!({"description": " "})).await;
    assert_tool_error(&blank, "invalid_arguments", "description cannot be empty");
}

#[tokio::test]
async fn goal_progress_through_mcp_is_the_rest_goal() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let goal = server
        .post(
            "/v1/dev/user/goals",
            &alice.key,
            json!({"title": "Ship v1", "goal_type": "numeric", "target_value": 10, "unit": "features"}),
        )
        .await;
    assert_eq!(goal.status, 200, "{goal:?}");
    let id = goal.body["id"].as_str().unwrap().to_string();

    let listed = success(&call(&client, "get_goals", json!({})).await);
    let rest_list = server.get("/v1/dev/user/goals", &alice.key).await;
    assert_eq!(listed, json!({"goals": rest_list.body}));

    let progressed = success(
        &call(
            &client,
            "update_goal_progress",
            json!({"goal_id": id, "current_value": 7}),
        )
        .await,
    );
    assert_eq!(progressed["current_value"].as_f64(), Some(7.0));
    let rest_goal = server
        .get(&format!("/v1/dev/user/goals/{id}"), &alice.key)
        .await;
    assert_eq!(rest_goal.body, progressed);

    let missing = call(
        &client,
        "update_goal_progress",
        json!({"goal_id": "goal_000000000000", "current_value": 1}),
    )
    .await;
    assert_tool_error(&missing, "not_found", "Goal not found");
    let no_value = call(&client, "update_goal_progress", json!({"goal_id": id})).await;
    assert_eq!(no_value.is_error, Some(true));
    assert_eq!(
        no_value.structured_content.unwrap()["error"]["code"],
        "invalid_arguments"
    );
}

#[tokio::test]
async fn conversations_created_through_mcp_read_the_same_over_rest() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;

    let created = success(
        &call(
            &client,
            "create_conversation",
            json!({
                "text": "We moved the dentist appointment to Friday at 3pm. I need to call the office to confirm.",
                "started_at": "2025-12-01T10:00:00Z"
            }),
        )
        .await,
    );
    assert_eq!(created["status"], "completed");
    let id = created["id"].as_str().unwrap().to_string();

    let one = success(
        &call(
            &client,
            "get_conversation_by_id",
            json!({"conversation_id": id, "include_transcript": true}),
        )
        .await,
    );
    let rest_one = server
        .get(
            &format!("/v1/dev/user/conversations/{id}?include_transcript=true"),
            &alice.key,
        )
        .await;
    assert_eq!(one, rest_one.body);
    assert_eq!(one["source"], "external_integration");

    let listed = success(&call(&client, "get_conversations", json!({"limit": 5})).await);
    let rest_list = server
        .get("/v1/dev/user/conversations?limit=5", &alice.key)
        .await;
    assert_eq!(listed, json!({"conversations": rest_list.body}));

    let missing = call(
        &client,
        "get_conversation_by_id",
        json!({"conversation_id": "00000000-0000-7000-8000-000000000000"}),
    )
    .await;
    assert_tool_error(&missing, "not_found", "Conversation not found");
    let blank = call(&client, "create_conversation", json!({"text": ""})).await;
    assert_tool_error(&blank, "invalid_arguments", "text cannot be empty");
}

#[tokio::test]
async fn every_tool_has_a_title_annotations_and_an_output_schema() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), ALL_TOOLS.len());
    for tool in &tools {
        let title = tool
            .title
            .as_deref()
            .unwrap_or_else(|| panic!("{} has no title", tool.name));
        let annotations = tool.annotations.as_ref().unwrap();
        assert_eq!(annotations.title.as_deref(), Some(title), "{}", tool.name);
        assert!(annotations.read_only_hint.is_some() && annotations.destructive_hint.is_some());
        assert!(annotations.idempotent_hint.is_some() && annotations.open_world_hint.is_some());
        let output = tool.output_schema.as_ref().unwrap();
        assert_eq!(output["type"], "object");
        let any_of = output["anyOf"].as_array().unwrap();
        assert_eq!(any_of.len(), 2, "{}", tool.name);
        assert_eq!(any_of[1]["required"], json!(["error"]));
        assert_eq!(
            any_of[1]["properties"]["error"]["required"],
            json!(["code", "message"])
        );
    }
    let create_memories = tools.iter().find(|t| t.name == "create_memories").unwrap();
    let hints = create_memories.annotations.as_ref().unwrap();
    assert_eq!(
        (hints.read_only_hint, hints.idempotent_hint),
        (Some(false), Some(false))
    );
}

/// The MCP endpoint under its upstream alias: same tools, same host check.
#[tokio::test]
async fn the_sse_path_is_an_alias_of_the_endpoint() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/v1/mcp/sse"))
        .auth_header(alice.key.clone());
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
    assert_eq!(tool_names(&client).await, ALL_TOOLS);
    success(&call(&client, "get_memories", json!({})).await);
    client.cancel().await.unwrap();
    let evil_host = server
        .client
        .post(server.url("/v1/mcp/sse"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("host", "evil.example")
        .bearer_auth(&alice.key)
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    common::Reply::from(evil_host)
        .await
        .assert_error(403, "Host not allowed");
    let unauthenticated = server
        .client
        .post(server.url("/v1/mcp/sse"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn integer_arguments_out_of_range_are_invalid_arguments() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    for (tool, arguments, message) in [
        (
            "get_memories",
            json!({"limit": 0}),
            "limit must be an integer between 1 and 1000",
        ),
        (
            "get_memories",
            json!({"limit": 1001}),
            "limit must be an integer between 1 and 1000",
        ),
        (
            "get_conversations",
            json!({"offset": -1}),
            "offset must be an integer between 0 and 100000",
        ),
        (
            "get_daily_summaries",
            json!({"limit": 101}),
            "limit must be an integer between 1 and 100",
        ),
        (
            "get_daily_summaries",
            json!({"limit": 2.5}),
            "limit must be an integer between 1 and 100",
        ),
        (
            "get_conversations_by_ids",
            json!({"conversation_ids": ["a"], "max_segments": 501}),
            "max_segments must be an integer between 1 and 500",
        ),
    ] {
        assert_tool_error(
            &call(&client, tool, arguments).await,
            "invalid_arguments",
            message,
        );
    }
}

#[tokio::test]
async fn people_profile_and_daily_summaries_match_rest() {
    let server = TestServer::start_with(|s| s.daily_summaries = false).await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;

    assert_eq!(
        success(&call(&client, "get_people", json!({})).await),
        json!({"people": []})
    );
    assert_eq!(
        success(&call(&client, "get_user_profile", json!({})).await),
        json!({"profile": null, "message": "No profile has been generated for this user yet."})
    );
    let reply = server
        .post(
            "/v1/dev/user/conversations/from-segments",
            &alice.key,
            json!({"started_at": "2026-03-02T10:00:00Z", "transcript_segments": [
                {"text": "Let's ship search first.", "speaker": "Sam", "person_id": "sam-1", "start": 0.0, "end": 2.0},
                {"text": "Agreed, export can wait until February.", "speaker": "SPEAKER_00", "is_user": true, "start": 2.0, "end": 5.0}
            ]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server
        .post(
            "/v1/dev/user/memories",
            &alice.key,
            json!({"content": "Alice runs on Sundays"}),
        )
        .await;
    let people = success(&call(&client, "get_people", json!({})).await);
    assert_eq!(
        people["people"],
        server.get("/v1/dev/user/people", &alice.key).await.body
    );
    assert_eq!(people["people"][0]["name"], "Sam");
    let profile = success(&call(&client, "get_user_profile", json!({})).await);
    assert_eq!(
        profile,
        server.get("/v1/dev/user/profile", &alice.key).await.body
    );
    assert_eq!(profile["data_sources_used"], 1);

    for date in ["2026-03-01", "2026-03-02", "2026-03-03"] {
        server
            .post(
                "/v1/dev/user/conversations",
                &alice.key,
                json!({"text": "We reviewed the roadmap for the search feature and the export work in detail.",
                       "started_at": format!("{date}T12:00:00Z")}),
            )
            .await;
        let store = &*server.state.store;
        let generated = omi_server::service::daily_summaries::generate_day(
            store,
            &omi_server::processing::OfflineProcessor,
            &alice.id,
            chrono_tz::Tz::UTC,
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
            omi_server::domain::time::now(),
        )
        .await
        .unwrap();
        assert!(matches!(
            generated,
            omi_server::service::daily_summaries::Generated::Created(_)
        ));
    }
    let rest = server
        .get("/v1/dev/user/daily-summaries", &alice.key)
        .await
        .body;
    let first = success(&call(&client, "get_daily_summaries", json!({"limit": 2})).await);
    assert_eq!(
        first["daily_summaries"],
        json!(rest["summaries"].as_array().unwrap()[..2])
    );
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more exist")
        .to_string();
    let second = success(
        &call(
            &client,
            "get_daily_summaries",
            json!({"limit": 2, "cursor": cursor}),
        )
        .await,
    );
    assert_eq!(
        second["daily_summaries"],
        json!(rest["summaries"].as_array().unwrap()[2..])
    );
    assert!(second.get("next_cursor").is_none(), "{second}");
    assert_tool_error(
        &call(
            &client,
            "get_daily_summaries",
            json!({"limit": 2, "cursor": cursor, "start_date": "2026-03-02"}),
        )
        .await,
        "invalid_arguments",
        "cursor was made for other arguments",
    );
    assert_tool_error(
        &call(
            &client,
            "get_daily_summaries",
            json!({"cursor": cursor, "offset": 1, "limit": 2}),
        )
        .await,
        "invalid_arguments",
        "cursor cannot be combined with a non-zero offset",
    );
    assert_tool_error(
        &call(
            &client,
            "get_daily_summaries",
            json!({"start_date": "March"}),
        )
        .await,
        "invalid_arguments",
        "Validation error: start_date must be a date (YYYY-MM-DD)",
    );
    // The other list tools page the same way.
    let memories = success(&call(&client, "get_memories", json!({"limit": 1})).await);
    assert_eq!(memories["memories"].as_array().unwrap().len(), 1);
    let conversations = success(&call(&client, "get_conversations", json!({"limit": 2})).await);
    let next = conversations["next_cursor"].as_str().unwrap();
    let rest_page = server
        .get("/v1/dev/user/conversations?limit=2&offset=2", &alice.key)
        .await
        .body;
    let page = success(
        &call(
            &client,
            "get_conversations",
            json!({"limit": 2, "cursor": next}),
        )
        .await,
    );
    assert_eq!(page["conversations"], rest_page);
}

#[tokio::test]
async fn create_memories_reports_each_item_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    let result = success(
        &call(
            &client,
            "create_memories",
            json!({"items": [
                {"content": "Alice prefers green tea"},
                {"content": "  "},
                {"content": "Alice prefers green tea"},
                {"content": "Alice lives in Porto", "category": "system"},
                {"content": "Alice likes jazz", "category": "bogus"},
            ]}),
        )
        .await,
    );
    let results = result["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["status"], "created");
    let tea = results[0]["memory_id"].as_str().unwrap();
    assert_eq!(
        results[1],
        json!({"index": 1, "status": "error", "error": {"code": "invalid_arguments",
               "message": "Each item requires a non-empty content string."}})
    );
    assert_eq!(
        results[2],
        json!({"index": 2, "status": "duplicate", "memory_id": tea})
    );
    assert_eq!(results[3]["status"], "created");
    assert_eq!(results[4]["status"], "error");
    assert_eq!(results[4]["error"]["code"], "invalid_arguments");
    let stored = server
        .get(&format!("/v1/dev/user/memories/{tea}"), &alice.key)
        .await;
    assert_eq!(stored.body["content"], "Alice prefers green tea");
    assert_eq!(
        server
            .get("/v1/dev/user/memories", &alice.key)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for items in [
        json!([]),
        json!(
            (0..26)
                .map(|i| json!({"content": format!("m{i}")}))
                .collect::<Vec<_>>()
        ),
        json!("x"),
    ] {
        assert_tool_error(
            &call(&client, "create_memories", json!({"items": items})).await,
            "invalid_arguments",
            "items must contain between 1 and 25 memories",
        );
    }
}

#[tokio::test]
async fn conversations_by_ids_bounds_transcripts_and_reports_missing_ids() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let client = connect(&server, &alice.key).await;
    let segments: Vec<Value> = (0..5)
        .map(|i| json!({"text": format!("Segment number {i} of the planning call."), "speaker": "SPEAKER_01",
                        "start": i as f64 * 3.0, "end": i as f64 * 3.0 + 2.0}))
        .collect();
    let reply = server
        .post(
            "/v1/dev/user/conversations/from-segments",
            &alice.key,
            json!({"transcript_segments": segments}),
        )
        .await;
    let id = reply.body["id"].as_str().unwrap().to_string();
    let bobs = server
        .post(
            "/v1/dev/user/conversations",
            &bob.key,
            json!({"text": "Bob's private planning notes for the week."}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let result = success(
        &call(
            &client,
            "get_conversations_by_ids",
            json!({"conversation_ids": [id, "missing-id", id, bobs], "max_segments": 3, "max_chars": 50}),
        )
        .await,
    );
    assert_eq!(result["not_found"], json!(["missing-id", bobs]));
    assert_eq!(result["truncated"], false);
    let items = result["conversations"].as_array().unwrap();
    assert_eq!(items.len(), 1, "repeats are read once");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["truncated"], true);
    let conversation = &items[0]["conversation"];
    let rest = server
        .get(&format!("/v1/dev/user/conversations/{id}"), &alice.key)
        .await
        .body;
    assert_eq!(conversation["created_at"], rest["created_at"]);
    assert_eq!(
        conversation["structured"]["title"],
        rest["structured"]["title"]
    );
    assert!(conversation["structured"].get("action_items").is_none());
    let kept = conversation["transcript_segments"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0]["text"], "Segment number 0 of the planning call.");
    // 38 characters, then 12 of the 50 left.
    assert_eq!(kept[1]["text"], "Segment numb...");
    let keys: Vec<&String> = kept[0].as_object().unwrap().keys().collect();
    for key in [
        "id",
        "text",
        "speaker_id",
        "is_user",
        "person_id",
        "start",
        "end",
    ] {
        assert!(keys.iter().any(|k| k.as_str() == key), "{key}");
    }
    assert_tool_error(
        &call(
            &client,
            "get_conversations_by_ids",
            json!({"conversation_ids": []}),
        )
        .await,
        "invalid_arguments",
        "conversation_ids must contain between 1 and 20 ids",
    );
    assert_tool_error(
        &call(
            &client,
            "get_conversations_by_ids",
            json!({"conversation_ids": ["a/b"]}),
        )
        .await,
        "invalid_arguments",
        "conversation_ids must be non-empty strings of at most 1500 bytes without '/'",
    );
}

/// One raw JSON-RPC POST in a session; the answer to `id`, from a JSON or an event-stream body.
async fn raw_rpc(server: &TestServer, key: &str, session: &str, body: Value) -> Option<Value> {
    let reply = server
        .client
        .post(server.url("/v1/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
    let text = reply.text().await.unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
}

#[tokio::test]
async fn arguments_that_are_not_an_object_are_a_tool_error() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let init = raw_initialize(&server)
        .bearer_auth(&alice.key)
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    init.text().await.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        raw_rpc(&server, &alice.key, &session, initialized).await,
        None
    );

    for (id, arguments) in [
        (2, json!("limit=5")),
        (3, json!([1, 2])),
        (4, json!(7)),
        (5, json!(true)),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": "get_memories", "arguments": arguments}});
        let answer = raw_rpc(&server, &alice.key, &session, call).await.unwrap();
        assert_eq!(answer["id"], id);
        let expected = json!({"error": {"code": "invalid_arguments",
                                        "message": "tools/call arguments must be an object."}});
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert_eq!(answer["result"]["structuredContent"], expected, "{answer}");
    }
    // Absent or null arguments are no arguments; an object goes through as always.
    for (id, params) in [
        (6, json!({"name": "get_memories"})),
        (7, json!({"name": "get_memories", "arguments": null})),
        (
            8,
            json!({"name": "get_memories", "arguments": {"limit": 5}}),
        ),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let answer = raw_rpc(&server, &alice.key, &session, call).await.unwrap();
        assert_ne!(answer["result"]["isError"], true, "{answer}");
    }
}

#[tokio::test]
async fn a_newer_protocol_version_is_answered_with_one_the_server_speaks() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = server
        .client
        .post(server.url("/v1/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&alice.key)
        .body(INITIALIZE.replace("2025-06-18", "2026-07-28"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let text = reply.text().await.unwrap();
    let answer: Value = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .find_map(|data| serde_json::from_str(data.trim()).ok())
        .expect("an initialize answer");
    let version = answer["result"]["protocolVersion"].as_str().unwrap();
    assert!(
        ["2025-06-18", "2025-11-25", "2025-03-26"].contains(&version),
        "{answer}"
    );
}

#[tokio::test]
async fn list_tools_follow_the_change_feed_with_updated_since_and_cursor() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &alice.key).await;
    for content in ["Fact one", "Fact two", "Fact three"] {
        let reply = server
            .post(
                "/v1/dev/user/memories",
                &alice.key,
                json!({"content": content}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
    server
        .post(
            "/v1/dev/user/action-items",
            &alice.key,
            json!({"description": "Call Sam"}),
        )
        .await;
    server
        .post(
            "/v1/dev/user/conversations",
            &alice.key,
            json!({"text": "We must send the report by Friday."}),
        )
        .await;

    let epoch = "1970-01-01T00:00:00Z";
    let first = success(
        &call(
            &client,
            "get_memories",
            json!({"updated_since": epoch, "limit": 2}),
        )
        .await,
    );
    let rest_first = server
        .get(
            &format!("/v1/dev/user/memories?updated_since={epoch}&limit=2"),
            &alice.key,
        )
        .await;
    assert_eq!(first["memories"], rest_first.body);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    assert_eq!(Some(cursor.as_str()), rest_first.header("x-next-cursor"));
    let second = success(
        &call(
            &client,
            "get_memories",
            json!({"cursor": cursor, "limit": 2}),
        )
        .await,
    );
    assert_eq!(second["memories"].as_array().unwrap().len(), 1);
    assert!(second.get("next_cursor").is_none(), "{second}");
    let all: Vec<Value> = first["memories"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["memories"].as_array().unwrap())
        .cloned()
        .collect();
    let times: Vec<&str> = all
        .iter()
        .map(|m| m["updated_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest change first: {times:?}"
    );

    for (tool, key) in [
        ("get_action_items", "action_items"),
        ("get_conversations", "conversations"),
    ] {
        let page = success(&call(&client, tool, json!({"updated_since": epoch})).await);
        assert!(!page[key].as_array().unwrap().is_empty(), "{tool}: {page}");
        assert!(page.get("next_cursor").is_none(), "{tool}: {page}");
    }
    assert_tool_error(
        &call(&client, "get_memories", json!({"updated_since": "soon"})).await,
        "invalid_arguments",
        "Validation error: updated_since must be an RFC 3339 date-time",
    );
}

#[tokio::test]
async fn the_ask_tool_answers_like_the_rest_route_and_needs_conversations_read() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let created = server
        .post(
            "/v1/dev/user/conversations",
            &alice.key,
            json!({"text": "We agreed to raise prices by ten percent in January.", "started_at": "2026-07-20T10:00:00Z"}),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let client = connect(&server, &alice.key).await;
    let answer = success(
        &call(
            &client,
            "ask",
            json!({"question": "What did we decide about prices?", "limit": 3, "timezone": "Europe/Paris"}),
        )
        .await,
    );
    let rest = server
        .post(
            "/v1/dev/user/ask",
            &alice.key,
            json!({"question": "What did we decide about prices?", "limit": 3, "timezone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(rest.status, 200, "{rest:?}");
    assert_eq!(answer, rest.body);
    assert_eq!(answer["sources"][0]["id"], created.body["id"]);
    assert!(answer["answer"].as_str().unwrap().contains("[1]"));

    let result = call(&client, "ask", json!({"question": "x", "limit": 11})).await;
    assert_tool_error(
        &result,
        "invalid_arguments",
        "limit must be an integer between 1 and 10",
    );
    let result = call(&client, "ask", json!({"question": "  "})).await;
    assert_tool_error(&result, "invalid_arguments", "question cannot be empty");

    // Listed only for keys that may read conversations.
    let memories_only = server.key_with(&alice, &["memories:read"]).await;
    let client = connect(&server, &memories_only).await;
    assert!(!tool_names(&client).await.contains(&"ask".to_string()));
    let error = client
        .call_tool(
            CallToolRequestParams::new("ask".to_string())
                .with_arguments(json!({"question": "prices?"}).as_object().cloned().unwrap()),
        )
        .await
        .unwrap_err();
    let rmcp::ServiceError::McpError(error) = error else {
        panic!("{error}")
    };
    assert_eq!(error.code.0, -32003);
    assert_eq!(error.message, "Insufficient scope: conversations:read");
}
