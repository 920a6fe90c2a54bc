//! The MCP server: lists the tools the caller's key may use and runs each tool call as one
//! in-process request through the REST router, carrying the caller's developer key. REST
//! authenticates, rate-limits, checks the scope and validates, exactly as for an HTTP client.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::credentials::Secret;
use crate::auth::middleware::bearer_token;
use crate::auth::scope::Scope;
use crate::mcp::tools::{self, RestCall};
use crate::telemetry::InProcess;

const INSTRUCTIONS: &str = "Tools for the user's Omi data: memories (facts about the user), \
conversations, action items and goals. Only the tools the API key's scopes allow are listed.";

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
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        RestReply { status, body }
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
    }
}

/// A successful REST answer as a tool result: the JSON as text and as structured content.
fn success_result(list_name: Option<&str>, body: Value) -> CallToolResult {
    let structured = match (list_name, body) {
        (Some(name), Value::Array(items)) => json!({ name: items }),
        (_, body) => body,
    };
    CallToolResult::structured(structured)
}

/// A REST error as a tool error: the `detail` as text, with the status beside it.
fn error_result(status: StatusCode, detail: String) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(detail.clone())]);
    result.structured_content = Some(json!({"status": status.as_u16(), "detail": detail}));
    result
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
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        };
        let caller = self.caller(&context)?;
        let query = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("query"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let call = match spec.rest_call(request.arguments) {
            Ok(call) => call,
            Err(detail) => return Ok(error_result(StatusCode::UNPROCESSABLE_ENTITY, detail).into()),
        };
        let reply = self.send(spec.name, call, &caller).await;
        let result = if reply.status.is_success() && spec.reshape != tools::Reshape::AsIs {
            CallToolResult::structured(tools::reshape(spec.reshape, reply.body, &query))
        } else if reply.status.is_success() {
            success_result(spec.list_name, reply.body)
        } else {
            error_result(reply.status, reply.detail())
        };
        Ok(result.into())
    }
}
