//! Tool results in upstream's shapes (API.md §13.H.3): successes as structured content, failures
//! as `isError` results carrying `{"error": {"code", "message"}}`, the REST status mapped to a
//! code; and the opaque cursors of the list tools.

use axum::http::StatusCode;
use rmcp::model::{CallToolResult, ErrorCode, ErrorData};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// JSON-RPC error of a call whose key lacks the tool's scope (upstream's code).
pub const INSUFFICIENT_SCOPE: ErrorCode = ErrorCode(-32003);
const SCOPE_DETAIL_PREFIX: &str = "Insufficient permissions. Required scope: ";

pub const INVALID_ARGUMENTS: &str = "invalid_arguments";
pub const NOT_FOUND: &str = "not_found";

/// The tool error code for a REST status.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => NOT_FOUND,
        401 | 403 => "authorization_denied",
        409 | 503 => "unavailable",
        429 => "rate_limited",
        500..=599 => "internal",
        _ => INVALID_ARGUMENTS,
    }
}

/// A tool failure: `isError`, the error object as structured content and as compact JSON text.
pub fn tool_error(code: &str, message: &str) -> CallToolResult {
    CallToolResult::structured_error(json!({"error": {"code": code, "message": message}}))
}

pub fn invalid_arguments(message: &str) -> CallToolResult {
    tool_error(INVALID_ARGUMENTS, message)
}

/// What a call whose `arguments` were not a JSON object is told (upstream's wording).
pub const ARGUMENTS_NOT_AN_OBJECT: &str = "tools/call arguments must be an object.";
/// The key that stands in for `arguments` that were not an object. The MCP library refuses such
/// a call as a JSON-RPC error before any tool sees it; upstream answers an `isError` result, so
/// the HTTP gate swaps them for `{MARKER: true}` and the call answers [`ARGUMENTS_NOT_AN_OBJECT`].
pub const NOT_AN_OBJECT_MARKER: &str = "__omi_arguments_not_an_object";

/// Whether these arguments stand for ones that were not an object.
pub fn marks_non_object_arguments(arguments: &Map<String, Value>) -> bool {
    arguments.get(NOT_AN_OBJECT_MARKER) == Some(&Value::Bool(true))
}

/// The JSON-RPC body with every `tools/call` whose `arguments` are present but neither an
/// object nor null given the marker object instead; `None` when there is nothing to change
/// (including a body that is not JSON, which the MCP library answers itself).
pub fn mark_non_object_arguments(body: &[u8]) -> Option<Vec<u8>> {
    let mut message: Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    let mut mark = |request: &mut Value| {
        if request.get("method").and_then(Value::as_str) != Some("tools/call") {
            return;
        }
        if let Some(arguments) = request
            .get_mut("params")
            .and_then(|params| params.get_mut("arguments"))
            && !(arguments.is_object() || arguments.is_null())
        {
            *arguments = json!({ NOT_AN_OBJECT_MARKER: true });
            changed = true;
        }
    };
    match &mut message {
        Value::Array(batch) => batch.iter_mut().for_each(&mut mark),
        single => mark(single),
    }
    changed.then(|| message.to_string().into_bytes())
}

/// A REST failure as the tool's answer: a missing scope is a JSON-RPC error, anything else an
/// `isError` result with the REST `detail` as its message.
pub fn rest_failure(status: StatusCode, detail: &str) -> Result<CallToolResult, ErrorData> {
    if status == StatusCode::FORBIDDEN
        && let Some(scope) = detail.strip_prefix(SCOPE_DETAIL_PREFIX)
    {
        return Err(insufficient_scope(scope));
    }
    Ok(tool_error(code_for(status), detail))
}

pub fn insufficient_scope(scope: &str) -> ErrorData {
    let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
    ErrorData::new(
        INSUFFICIENT_SCOPE,
        format!("Insufficient scope: {scope}"),
        Some(json!({"_meta": {"mcp/www_authenticate": challenge}})),
    )
}

/// Where a list call starts, how much it asks for, and the filter its cursor must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageState {
    pub offset: i64,
    pub limit: i64,
    pub filter: String,
}

/// A digest of the arguments that select what a list holds (all but the paging ones).
fn filter_digest(arguments: &Map<String, Value>) -> String {
    let mut selecting: Vec<(&String, &Value)> = arguments
        .iter()
        .filter(|(name, value)| {
            !matches!(name.as_str(), "limit" | "offset" | "cursor") && !value.is_null()
        })
        .collect();
    selecting.sort_by(|a, b| a.0.cmp(b.0));
    let text = serde_json::to_string(&selecting).expect("arguments serialize");
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Takes `cursor` out of the arguments and turns it into an `offset`. A cursor is refused next
/// to a non-zero offset, and when it was made for other filters.
pub fn prepare_page(
    arguments: &mut Map<String, Value>,
    default_limit: i64,
    max_effective_limit: Option<i64>,
) -> Result<PageState, String> {
    let cursor = arguments.remove("cursor");
    let filter = filter_digest(arguments);
    let given_offset = arguments.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let offset = match cursor {
        None | Some(Value::Null) => given_offset,
        Some(Value::String(text)) => {
            if given_offset != 0 {
                return Err("cursor cannot be combined with a non-zero offset".into());
            }
            let (offset, made_for) =
                decode_cursor(&text).ok_or_else(|| "cursor is not a valid cursor".to_string())?;
            if made_for != filter {
                return Err("cursor was made for other arguments".into());
            }
            arguments.insert("offset".into(), json!(offset));
            offset
        }
        Some(_) => return Err("cursor must be a string".into()),
    };
    let mut limit = arguments
        .get("limit")
        .and_then(Value::as_i64)
        .unwrap_or(default_limit);
    if let Some(max) = max_effective_limit {
        limit = limit.min(max);
    }
    Ok(PageState {
        offset,
        limit,
        filter,
    })
}

/// base64url (no padding) of `{"o": offset, "f": filter}`.
pub fn encode_cursor(offset: i64, filter: &str) -> String {
    base64url_encode(json!({"o": offset, "f": filter}).to_string().as_bytes())
}

fn decode_cursor(text: &str) -> Option<(i64, String)> {
    let bytes = base64url_decode(text)?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let offset = value.get("o")?.as_i64().filter(|o| *o >= 0)?;
    let filter = value.get("f")?.as_str()?.to_string();
    Some((offset, filter))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() < 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let value = ALPHABET.iter().position(|a| a == c)? as u32;
            n |= value << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for text in ["", "a", "ab", "abc", "abcd", "{\"o\":30,\"f\":\"x\"}"] {
            let encoded = base64url_encode(text.as_bytes());
            assert!(!encoded.contains(['+', '/', '=']));
            assert_eq!(
                base64url_decode(&encoded).unwrap(),
                text.as_bytes(),
                "{text}"
            );
        }
        assert_eq!(base64url_encode(b"hello"), "aGVsbG8");
        assert!(base64url_decode("a").is_none());
        assert!(base64url_decode("a*b=").is_none());
    }

    #[test]
    fn a_cursor_carries_its_offset_and_filters() {
        let mut first: Map<String, Value> = json!({"start_date": "2026-01-01", "limit": 2})
            .as_object()
            .cloned()
            .unwrap();
        let page = prepare_page(&mut first, 30, None).unwrap();
        assert_eq!((page.offset, page.limit), (0, 2));
        let cursor = encode_cursor(2, &page.filter);
        let mut next: Map<String, Value> =
            json!({"start_date": "2026-01-01", "limit": 2, "cursor": cursor})
                .as_object()
                .cloned()
                .unwrap();
        let page = prepare_page(&mut next, 30, None).unwrap();
        assert_eq!(page.offset, 2);
        assert_eq!(next["offset"], 2);
        let mut other: Map<String, Value> = json!({"start_date": "2026-02-01", "cursor": cursor})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            prepare_page(&mut other, 30, None).unwrap_err(),
            "cursor was made for other arguments"
        );
        let mut both: Map<String, Value> =
            json!({"start_date": "2026-01-01", "offset": 3, "cursor": cursor})
                .as_object()
                .cloned()
                .unwrap();
        assert!(prepare_page(&mut both, 30, None).is_err());
    }

    #[test]
    fn statuses_map_to_upstream_codes() {
        for (status, code) in [
            (400, "invalid_arguments"),
            (413, "invalid_arguments"),
            (415, "invalid_arguments"),
            (422, "invalid_arguments"),
            (404, "not_found"),
            (403, "authorization_denied"),
            (409, "unavailable"),
            (503, "unavailable"),
            (429, "rate_limited"),
            (500, "internal"),
        ] {
            assert_eq!(code_for(StatusCode::from_u16(status).unwrap()), code);
        }
    }
}
