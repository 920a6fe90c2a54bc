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

const READ_TOOLS: [&str; 8] = [
    "get_action_items",
    "get_conversation_by_id",
    "get_conversations",
    "get_goals",
    "get_memories",
    "search_action_items",
    "search_conversations",
    "search_memories",
];

const ALL_TOOLS: [&str; 17] = [
    "complete_action_item",
    "create_action_item",
    "create_conversation",
    "create_memory",
    "delete_action_item",
    "delete_memory",
    "edit_memory",
    "get_action_items",
    "get_conversation_by_id",
    "get_conversations",
    "get_goals",
    "get_memories",
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

/// Checks an error result: the REST `detail` as the text, and the status beside it.
fn assert_tool_error(result: &CallToolResult, status: u16, detail: &str) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert_eq!(result.content[0].as_text().expect("text").text, detail);
    assert_eq!(
        result.structured_content,
        Some(json!({"status": status, "detail": detail}))
    );
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
        ["create_memory", "delete_memory", "edit_memory"]
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
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(missing.header("mcp-session-id"), None);

    let invalid = raw_initialize(&server)
        .bearer_auth("omi_dev_00000000000000000000000000000000")
        .send()
        .await
        .unwrap();
    let invalid = common::Reply::from(invalid).await;
    invalid.assert_error(401, "Invalid API key");
    assert!(invalid.header("x-request-id").is_some());
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
    assert_tool_error(&result, 422, "Validation error: memory_id is required");
    let result = call(
        &client,
        "edit_memory",
        json!({"memory_id": 12, "content": "x"}),
    )
    .await;
    assert_tool_error(&result, 422, "Validation error: memory_id must be a string");
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
    assert_tool_error(&result, 422, "Validation error: action_item_id is required");
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
        422,
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
    assert_tool_error(&result, 422, "query is required");
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
    assert_tool_error(&result, 404, "Memory not found");
    let result = call(&client, "delete_memory", json!({"memory_id": "../../keys"})).await;
    assert_tool_error(&result, 404, "Memory not found");
    let result = call(&client, "create_memory", json!({"content": "   "})).await;
    assert_tool_error(&result, 422, "content cannot be empty");
    let result = call(&client, "create_memory", json!({})).await;
    assert_tool_error(&result, 422, "Validation error: content is required");
    let result = call(&client, "get_memories", json!({"categories": "bogus"})).await;
    assert_tool_error(&result, 400, "Invalid category: bogus");

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
    assert_tool_error(&result, 404, "Memory not found");
}

#[tokio::test]
async fn a_tool_outside_the_key_scopes_answers_the_rest_403() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let client = connect(&server, &read_only_key(&server, &alice).await).await;
    let result = call(
        &client,
        "create_memory",
        json!({"content": "Alex likes tea"}),
    )
    .await;
    assert_tool_error(
        &result,
        403,
        "Insufficient permissions. Required scope: memories:write",
    );
    let result = call(&client, "delete_memory", json!({"memory_id": "x"})).await;
    assert_tool_error(
        &result,
        403,
        "Insufficient permissions. Required scope: memories:write",
    );
    let result = call(
        &client,
        "complete_action_item",
        json!({"action_item_id": "x"}),
    )
    .await;
    assert_tool_error(
        &result,
        403,
        "Insufficient permissions. Required scope: action_items:write",
    );
    let result = call(
        &client,
        "update_goal_progress",
        json!({"goal_id": "goal_000000000000", "current_value": 1}),
    )
    .await;
    assert_tool_error(
        &result,
        403,
        "Insufficient permissions. Required scope: goals:write",
    );
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
    assert_eq!(structured["status"], 429);
    let detail = structured["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Rate limit exceeded. Try again in "),
        "{detail}"
    );
    // The session survives: the next call answers too.
    let again = call(&client, "get_memories", json!({})).await;
    assert_eq!(again.structured_content.unwrap()["status"], 429);
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
    assert_tool_error(&result, 404, "Memory not found");
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
    assert_tool_error(&again, 404, "Action item not found");
    let blank = call(&client, "create_action_item", json!({"description": " "})).await;
    assert_tool_error(&blank, 422, "description cannot be empty");
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
    assert_tool_error(&missing, 404, "Goal not found");
    let no_value = call(&client, "update_goal_progress", json!({"goal_id": id})).await;
    assert_eq!(no_value.is_error, Some(true));
    assert_eq!(no_value.structured_content.unwrap()["status"], 422);
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
    assert_tool_error(&missing, 404, "Conversation not found");
    let blank = call(&client, "create_conversation", json!({"text": ""})).await;
    assert_tool_error(&blank, 422, "text cannot be empty");
}
