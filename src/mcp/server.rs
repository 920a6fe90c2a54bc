//! The MCP server: lists the tools the caller's key may use and runs each tool call as one
//! in-process request through the REST router, carrying the caller's developer key. REST
//! authenticates, rate-limits, checks the scope and validates, exactly as for an HTTP client.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ErrorCode, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::auth::middleware::bearer_token;
use crate::domain::credentials::Secret;
use crate::domain::scope::Scope;
use crate::mcp::calls::{
    self, INVALID_ARGUMENTS, encode_cursor, invalid_arguments, prepare_page, rest_failure,
};
use crate::mcp::tools::{self, Handler, RestCall, ToolSpec};
use crate::telemetry::InProcess;

const INSTRUCTIONS: &str = "Tools for the user's Omi data: memories (facts about the user), \
conversations, the people in them, daily summaries, the user's profile, action items and goals. \
Only the tools the API key's scopes allow are listed.";

/// `get_conversations_by_ids` bounds (upstream's).
const MAX_IDS: usize = 20;
const MAX_ID_BYTES: usize = 1500;
const DEFAULT_MAX_SEGMENTS: i64 = 120;
const DEFAULT_MAX_CHARS: i64 = 24_000;
/// Conversations are added to the answer until it would exceed this many characters.
const MAX_RESPONSE_CHARS: usize = 120_000;
/// `create_memories` takes 1..25 items.
const MAX_MEMORY_ITEMS: usize = 25;
/// Pages of conversations with transcripts hold at most 25.
const MAX_CONVERSATIONS_WITH_TRANSCRIPT: i64 = 25;

/// Where the developer key of a call comes from.
#[derive(Clone)]
enum KeySource {
    /// The `Authorization` header of the MCP HTTP request carrying the call.
    HttpRequest,
    /// The key the process was started with (stdio).
    Fixed(Secret),
}

#[derive(Clone)]
pub struct OmiMcp {
    /// The REST application, with its standard layers.
    api: Router,
    key: KeySource,
}

/// The REST answer to an in-process request.
#[derive(Debug)]
pub struct RestReply {
    pub status: StatusCode,
    pub body: Value,
    /// A change-feed page's `X-Next-Cursor`.
    pub next_cursor: Option<String>,
}

impl RestReply {
    /// The `detail` of an error answer.
    pub fn detail(&self) -> String {
        self.body["detail"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| {
                self.status
                    .canonical_reason()
                    .unwrap_or("Request failed")
                    .to_string()
            })
    }
}

/// Who is calling, as the in-process request presents it.
struct CallerIdentity {
    key: String,
    /// The MCP client's address, so failed authentications count against it as for REST.
    peer: Option<ConnectInfo<SocketAddr>>,
}

impl OmiMcp {
    /// For the HTTP endpoint: each request's own bearer key.
    pub fn over_http(api: Router) -> Self {
        OmiMcp {
            api,
            key: KeySource::HttpRequest,
        }
    }

    /// For stdio: the key the process was given.
    pub fn with_key(api: Router, key: Secret) -> Self {
        OmiMcp {
            api,
            key: KeySource::Fixed(key),
        }
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<CallerIdentity, ErrorData> {
        let parts = context.extensions.get::<Parts>();
        let key = match &self.key {
            KeySource::Fixed(key) => Some(key.expose().to_string()),
            KeySource::HttpRequest => parts
                .and_then(|parts| bearer_token(&parts.headers))
                .map(String::from),
        };
        let key = key.ok_or_else(|| {
            // The HTTP endpoint refuses requests without a key before they reach a session.
            ErrorData::internal_error("the request carries no API key", None)
        })?;
        let peer =
            parts.and_then(|parts| parts.extensions.get::<ConnectInfo<SocketAddr>>().copied());
        Ok(CallerIdentity { key, peer })
    }

    /// Sends one request through the REST router, as the caller.
    async fn send(&self, tool: &'static str, call: RestCall, caller: &CallerIdentity) -> RestReply {
        let mut request = Request::builder()
            .method(call.method)
            .uri(call.path_and_query)
            .header(header::AUTHORIZATION, format!("Bearer {}", caller.key));
        let body = match call.body {
            Some(body) => {
                request = request.header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let mut request = match request.body(body) {
            Ok(request) => request,
            // Only a key that is not a valid header value gets here; REST would refuse it too.
            Err(_) => return unauthorized_reply(),
        };
        request.extensions_mut().insert(InProcess { tool });
        if let Some(peer) = caller.peer {
            request.extensions_mut().insert(peer);
        }
        let response = match self.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let next_cursor = response
            .headers()
            // `routes::feed::NEXT_CURSOR_HEADER` (routes sit beside, not below, this module).
            .get("x-next-cursor")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        RestReply {
            status,
            body,
            next_cursor,
        }
    }

    /// The scopes of the caller's key, from `GET /v1/dev/key`.
    async fn scopes(&self, caller: &CallerIdentity) -> Result<Vec<Scope>, RestReply> {
        let call = RestCall {
            method: Method::GET,
            path_and_query: "/v1/dev/key".to_string(),
            body: None,
        };
        let reply = self.send("tools/list", call, caller).await;
        if !reply.status.is_success() {
            return Err(reply);
        }
        Ok(reply.body["scopes"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|name| name.as_str().and_then(Scope::parse))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Checks the key the process was started with, so a bad one fails at start.
    pub async fn check_key(&self) -> Result<(), String> {
        let KeySource::Fixed(key) = &self.key else {
            return Ok(());
        };
        let caller = CallerIdentity {
            key: key.expose().to_string(),
            peer: None,
        };
        self.scopes(&caller)
            .await
            .map(|_| ())
            .map_err(|reply| reply.detail())
    }
}

fn unauthorized_reply() -> RestReply {
    RestReply {
        status: StatusCode::UNAUTHORIZED,
        body: json!({"detail": crate::error::details::INVALID_API_KEY}),
        next_cursor: None,
    }
}

/// The list in a REST answer: the answer itself, or the array under `key`.
fn list_in(body: Value, key: Option<&str>) -> Vec<Value> {
    let list = match key {
        Some(key) => body.get(key).cloned().unwrap_or(Value::Null),
        None => body,
    };
    match list {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

fn text_of(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(String::from)
}

/// The summary card of a conversation (upstream's MCP shape): only the keys it has.
fn conversation_card(conversation: &Value) -> Map<String, Value> {
    let mut card = Map::new();
    for key in ["id", "created_at", "started_at", "finished_at", "language"] {
        if let Some(value) = conversation.get(key) {
            card.insert(key.into(), value.clone());
        }
    }
    let mut structured = Map::new();
    for key in ["title", "overview", "category", "emoji"] {
        if let Some(value) = conversation["structured"].get(key) {
            structured.insert(key.into(), value.clone());
        }
    }
    card.insert("structured".into(), Value::Object(structured));
    card
}

/// The card with at most `max_segments` segments and `max_chars` characters of transcript
/// (the last text clipped with `...`), and whether anything was left out.
fn conversation_with_transcript(
    conversation: &Value,
    max_segments: usize,
    max_chars: usize,
) -> (Map<String, Value>, bool) {
    let mut card = conversation_card(conversation);
    let segments = conversation["transcript_segments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut truncated = segments.len() > max_segments;
    let mut used = 0usize;
    let mut kept = Vec::new();
    for segment in segments.iter().take(max_segments) {
        let text = segment["text"].as_str().unwrap_or_default();
        let length = text.chars().count();
        let text = if used + length > max_chars {
            truncated = true;
            let room = max_chars - used;
            if room == 0 {
                break;
            }
            let clipped: String = text.chars().take(room).collect();
            format!("{clipped}...")
        } else {
            text.to_string()
        };
        used += length.min(max_chars - used);
        let mut kept_segment = Map::new();
        kept_segment.insert("id".into(), segment["id"].clone());
        kept_segment.insert("text".into(), Value::String(text));
        for key in ["speaker_id", "is_user", "person_id", "start", "end"] {
            kept_segment.insert(key.into(), segment[key].clone());
        }
        kept.push(Value::Object(kept_segment));
        if used >= max_chars {
            if kept.len() < segments.len().min(max_segments) {
                truncated = true;
            }
            break;
        }
    }
    card.insert("transcript_segments".into(), Value::Array(kept));
    (card, truncated)
}

impl ServerHandler for OmiMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("omi-server", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.caller(&context)?;
        let scopes = self.scopes(&caller).await.map_err(|reply| {
            let detail = reply.detail();
            if reply.status.is_server_error() {
                ErrorData::internal_error(detail, None)
            } else {
                ErrorData::invalid_request(detail, None)
            }
        })?;
        let tools: Vec<Tool> = tools::all()
            .iter()
            .filter(|spec| scopes.contains(&spec.scope))
            .map(|spec| spec.tool())
            .collect();
        // The list depends on the key: no shared cache may hand it to another caller.
        Ok(ListToolsResult::with_all_items(tools).with_cache_scope(CacheScope::Private))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::find(name).map(|spec| spec.tool())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(spec) = tools::find(&request.name) else {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("Unknown tool: {}", request.name),
                None,
            ));
        };
        let caller = self.caller(&context)?;
        let arguments = request.arguments.unwrap_or_default();
        if calls::marks_non_object_arguments(&arguments) {
            return Ok(invalid_arguments(calls::ARGUMENTS_NOT_AN_OBJECT).into());
        }
        if let Err(message) = spec.check_integers(&arguments) {
            return Ok(invalid_arguments(&message).into());
        }
        let result = match spec.handler {
            Handler::Rest => self.call_rest(spec, arguments, &caller).await?,
            Handler::CreateMemories => self.create_memories(spec, arguments, &caller).await?,
            Handler::ConversationsByIds => {
                self.conversations_by_ids(spec, arguments, &caller).await?
            }
        };
        Ok(result.into())
    }
}

/// A list call reads the change feed when it names `updated_since` or continues a feed cursor
/// (offset cursors are base64url JSON, feed cursors are not).
fn is_feed_call(arguments: &Map<String, Value>) -> bool {
    let since = arguments
        .get("updated_since")
        .is_some_and(|value| !value.is_null());
    let feed_cursor = arguments
        .get("cursor")
        .and_then(Value::as_str)
        .is_some_and(|cursor| crate::domain::feed::FeedPosition::from_cursor(cursor).is_some());
    since || feed_cursor
}

impl OmiMcp {
    /// A tool that is one REST request; a list tool asks for one more item's worth beyond a
    /// full page to say whether a `next_cursor` exists.
    async fn call_rest(
        &self,
        spec: &'static ToolSpec,
        mut arguments: Map<String, Value>,
        caller: &CallerIdentity,
    ) -> Result<CallToolResult, ErrorData> {
        let pages = spec.int_args.iter().any(|arg| arg.name == "offset");
        // A change-feed call pages with the REST feed's own cursor.
        let feed = spec.list.is_some() && is_feed_call(&arguments);
        if feed {
            arguments.remove("offset");
        }
        let page = match spec.list {
            Some(list) if pages && !feed => {
                let with_transcripts = spec.name == "get_conversations"
                    && arguments.get("include_transcript") == Some(&Value::Bool(true));
                let cap = with_transcripts.then_some(MAX_CONVERSATIONS_WITH_TRANSCRIPT);
                match prepare_page(&mut arguments, list.default_limit, cap) {
                    Ok(page) => Some(page),
                    Err(message) => return Ok(invalid_arguments(&message)),
                }
            }
            _ => None,
        };
        let call = match spec.rest_call(Some(arguments.clone())) {
            Ok(call) => call,
            Err(detail) => return Ok(invalid_arguments(&detail)),
        };
        let reply = self.send(spec.name, call, caller).await;
        if !reply.status.is_success() {
            return rest_failure(reply.status, &reply.detail());
        }
        if spec.reshape != tools::Reshape::AsIs {
            let query = arguments
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Ok(CallToolResult::structured(tools::reshape(
                spec.reshape,
                reply.body,
                query,
            )));
        }
        let Some(list) = spec.list else {
            return Ok(CallToolResult::structured(reply.body));
        };
        let next_feed_cursor = reply.next_cursor.clone();
        let items = list_in(reply.body, list.rest_key);
        let mut result = Map::new();
        if let Some(cursor) = next_feed_cursor.filter(|_| feed) {
            result.insert("next_cursor".into(), Value::String(cursor));
        }
        if let Some(page) = page
            && !items.is_empty()
            && items.len() as i64 >= page.limit
        {
            let next = page.offset + items.len() as i64;
            let mut probe = arguments.clone();
            probe.insert("offset".into(), json!(next));
            probe.insert("limit".into(), json!(1));
            if let Ok(call) = spec.rest_call(Some(probe)) {
                let more = self.send(spec.name, call, caller).await;
                if more.status.is_success() && !list_in(more.body, list.rest_key).is_empty() {
                    result.insert(
                        "next_cursor".into(),
                        Value::String(encode_cursor(next, &page.filter)),
                    );
                }
            }
        }
        result.insert(list.name.into(), Value::Array(items));
        // The list first, as upstream writes it.
        let mut ordered = Map::new();
        if let Some(items) = result.remove(list.name) {
            ordered.insert(list.name.into(), items);
        }
        ordered.extend(result);
        Ok(CallToolResult::structured(Value::Object(ordered)))
    }

    /// `create_memories`: each item is created through the REST route in order; a bad item or
    /// a failed creation is reported in its place without stopping the batch.
    async fn create_memories(
        &self,
        spec: &'static ToolSpec,
        arguments: Map<String, Value>,
        caller: &CallerIdentity,
    ) -> Result<CallToolResult, ErrorData> {
        let items = match arguments.get("items") {
            Some(Value::Array(items)) if (1..=MAX_MEMORY_ITEMS).contains(&items.len()) => items,
            _ => {
                return Ok(invalid_arguments(
                    "items must contain between 1 and 25 memories",
                ));
            }
        };
        let mut created: Vec<((String, Option<String>), String)> = Vec::new();
        let mut results = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let content = item
                .get("content")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|content| !content.is_empty());
            let Some(content) = content else {
                results.push(json!({"index": index, "status": "error", "error": {
                    "code": INVALID_ARGUMENTS,
                    "message": "Each item requires a non-empty content string."}}));
                continue;
            };
            let category = item.get("category").cloned().filter(|c| !c.is_null());
            let key = (content.to_string(), category.as_ref().map(Value::to_string));
            if let Some((_, id)) = created.iter().find(|(seen, _)| *seen == key) {
                results.push(json!({"index": index, "status": "duplicate", "memory_id": id}));
                continue;
            }
            let mut body = json!({"content": content});
            if let Some(category) = category {
                body["category"] = category;
            }
            let call = RestCall {
                method: Method::POST,
                path_and_query: tools::MEMORIES_PATH.to_string(),
                body: Some(body),
            };
            let reply = self.send(spec.name, call, caller).await;
            if reply.status.is_success() {
                let id = text_of(&reply.body, "id").unwrap_or_default();
                results.push(json!({"index": index, "status": "created", "memory_id": id}));
                created.push((key, id));
            } else {
                let detail = reply.detail();
                // A missing scope ends the call as a JSON-RPC error.
                rest_failure(reply.status, &detail)?;
                results.push(json!({"index": index, "status": "error", "error": {
                    "code": calls::code_for(reply.status), "message": detail}}));
            }
        }
        Ok(CallToolResult::structured(json!({"results": results})))
    }

    /// `get_conversations_by_ids`: each distinct id read through the REST route with its
    /// transcript, in request order, until the answer would grow past 120,000 characters.
    async fn conversations_by_ids(
        &self,
        spec: &'static ToolSpec,
        arguments: Map<String, Value>,
        caller: &CallerIdentity,
    ) -> Result<CallToolResult, ErrorData> {
        let ids = match arguments.get("conversation_ids") {
            Some(Value::Array(ids)) if (1..=MAX_IDS).contains(&ids.len()) => ids,
            _ => {
                return Ok(invalid_arguments(
                    "conversation_ids must contain between 1 and 20 ids",
                ));
            }
        };
        let mut distinct: Vec<&str> = Vec::new();
        for id in ids {
            let id = id
                .as_str()
                .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES && !id.contains('/'));
            let Some(id) = id else {
                return Ok(invalid_arguments(
                    "conversation_ids must be non-empty strings of at most 1500 bytes without '/'",
                ));
            };
            if !distinct.contains(&id) {
                distinct.push(id);
            }
        }
        let bound = |name: &str, default: i64| {
            arguments
                .get(name)
                .and_then(Value::as_i64)
                .unwrap_or(default) as usize
        };
        let max_segments = bound("max_segments", DEFAULT_MAX_SEGMENTS);
        let max_chars = bound("max_chars", DEFAULT_MAX_CHARS);
        let mut conversations: Vec<Value> = Vec::new();
        let mut not_found: Vec<Value> = Vec::new();
        let mut truncated = false;
        for id in distinct {
            let mut read = Map::new();
            read.insert("conversation_id".into(), json!(id));
            read.insert("include_transcript".into(), json!(true));
            let call = match tools::find("get_conversation_by_id")
                .expect("the tool exists")
                .rest_call(Some(read))
            {
                Ok(call) => call,
                Err(detail) => return Ok(invalid_arguments(&detail)),
            };
            let reply = self.send(spec.name, call, caller).await;
            if reply.status == StatusCode::NOT_FOUND {
                not_found.push(json!(id));
                continue;
            }
            if !reply.status.is_success() {
                return rest_failure(reply.status, &reply.detail());
            }
            let (card, cut) = conversation_with_transcript(&reply.body, max_segments, max_chars);
            let item = json!({"id": id, "conversation": card, "truncated": cut});
            let size = |conversations: &Vec<Value>| {
                json!({"conversations": conversations, "not_found": not_found, "truncated": false})
                    .to_string()
                    .len()
            };
            conversations.push(item);
            if size(&conversations) > MAX_RESPONSE_CHARS {
                conversations.pop();
                truncated = true;
                break;
            }
        }
        Ok(CallToolResult::structured(json!({
            "conversations": conversations,
            "not_found": not_found,
            "truncated": truncated,
        })))
    }
}
