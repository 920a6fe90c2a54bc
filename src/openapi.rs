//! The OpenAPI 3.1 document: the base (info, tags, shared schemas) the route list starts from,
//! and the completion of what the route list generates (`crate::app` splits the served router
//! into routes and document). Error answers that every route of a kind can give (401, 403, 413,
//! 415, 422, 429, 500, 503) are added here from what each operation declares (its security,
//! body and parameters), so a route lists only what is particular to it.

mod rules;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::{InfoBuilder, OpenApi as Document};

use crate::error::ErrorResponse;

#[derive(OpenApi)]
#[openapi(
    components(schemas(ErrorResponse)),
    tags(
        (name = "Memories", description = "Read and write user memories: timeless facts, preferences, and insights."),
        (name = "Conversations", description = "Create and retrieve conversations with generated summaries."),
        (name = "Folders", description = "The folders conversations are filed in."),
        (name = "Action Items", description = "Tasks and to-dos, extracted from conversations or created directly."),
        (name = "Goals", description = "Goals and their daily progress."),
        (name = "Daily Summaries", description = "A summary of each day's conversations."),
        (name = "People", description = "The people heard in the user's conversations."),
        (name = "Profile", description = "A profile of the user, built from their memories."),
        (name = "Ingest", description = "Receivers of the Omi app's developer webhooks: paste these URLs, with an ingest-only key, into Settings -> Developer -> Webhooks."),
        (name = "Webhooks", description = "Signed, retried, logged deliveries of changes to URLs you choose."),
        (name = "Export", description = "Everything the key may read, as NDJSON, restorable with `omi-server import ndjson`."),
        (name = "API Keys", description = "Create, list, rotate and revoke developer API keys."),
        (name = "Sync", description = "Keeping a copy exact: the deletions feed that goes with each list's change feed (`updated_since`, `cursor`)."),
        (name = "Service", description = "Health and readiness."),
    )
)]
struct BaseDoc;

pub fn base() -> Document {
    let mut document = BaseDoc::openapi();
    document.info = InfoBuilder::new()
        .title("Omi Developer API (omi-server)")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Programmatic access to your Omi data: memories, conversations, action items, goals \
             and developer API keys. Wire-compatible with api.omi.me; self-hosted by omi-server.",
        ))
        .build();
    document
}

/// The document as the server serves it and the command line prints it.
pub fn render(document: Value) -> String {
    serde_json::to_string_pretty(&document).expect("the document serializes")
}

/// The generated document with the security schemes and shared error answers added.
pub fn complete(generated: Document) -> Value {
    let mut document = serde_json::to_value(generated).expect("the document serializes");
    add_security_schemes(&mut document);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    if method == "post" && path.starts_with("/v1/dev/user/") {
                        add_idempotency_key(operation);
                    }
                    add_error_responses(path, operation);
                }
            }
        }
    }
    rules::apply(&mut document);
    rules::require_response_fields(&mut document);
    document
}

fn add_security_schemes(document: &mut Value) {
    let components = document
        .as_object_mut()
        .expect("the document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    components["securitySchemes"] = json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "Developer API key (`omi_dev_...`). Keys hold scopes; each route names the one it requires."
        },
        "accountToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "Account token (`omi_acct_...`) printed when the user was created. Only key management accepts it."
        }
    });
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    })
}

/// The optional `Idempotency-Key` header every developer POST takes, and its two refusals.
fn add_idempotency_key(operation: &mut Map<String, Value>) {
    let parameters = operation
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("parameters is an array");
    parameters.push(json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: the first successful answer is kept 24 hours per \
            developer key, method, path and key, and replayed (with `Idempotent-Replayed: true`) \
            to a retry with the same body. Refused requests are not kept.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
    }));
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    responses.entry("409").or_insert_with(|| {
        error_response("A request with this Idempotency-Key is still in progress")
    });
    responses.entry("422").or_insert_with(|| {
        error_response("Idempotency-Key reused with a different request, or malformed")
    });
}

fn add_error_responses(path: &str, operation: &mut Map<String, Value>) {
    let security: Vec<(String, Vec<String>)> = operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| {
            requirement.iter().map(|(scheme, scopes)| {
                let scopes = scopes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                (scheme.clone(), scopes)
            })
        })
        .collect();
    let has_body = operation.contains_key("requestBody");
    let has_query = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|params| params.iter().any(|p| p["in"] == "query"));
    let authenticated = !security.is_empty();
    let scoped = security.iter().any(|(_, scopes)| !scopes.is_empty());

    let mut additions: Vec<(&str, String)> = Vec::new();
    if authenticated {
        additions.push((
            "401",
            "Missing, malformed, unknown, revoked or rotated credential".into(),
        ));
        additions.push(("429", "Rate limit exceeded (per key per minute, per user per day, or failed authentications per address)".into()));
    }
    if let Some(scope) = security.iter().flat_map(|(_, scopes)| scopes).next()
        && scoped
    {
        additions.push((
            "403",
            format!("Insufficient permissions. Required scope: {scope}"),
        ));
    }
    if has_body {
        additions.push(("413", "Request body too large".into()));
        additions.push(("415", "Content-Type must be application/json".into()));
    }
    if has_body || has_query {
        additions.push((
            "422",
            "Validation error: a malformed, missing or out-of-range value".into(),
        ));
    }
    additions.push(("500", "Internal server error".into()));
    if authenticated || path == "/readyz" {
        additions.push((
            "503",
            "Service unavailable: the database or the rate limiter does not answer".into(),
        ));
    }

    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, description) in additions {
        responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(&description));
    }
    // Keep statuses in numeric order for readers and stable snapshots.
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(sorted);
}
