//! Request extractors whose every rejection is an [`ApiError`] in the contract's words:
//! 413 for an oversize body, 415 for a non-JSON content type, 422 naming the offending field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, details};

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json_content = is_json_content_type(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_read_error)?;
        if bytes.is_empty() {
            return Err(ApiError::validation("body is required"));
        }
        if !json_content {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                details::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw body, for routes that read it themselves (the webhook receivers); one over the
/// limit is 413 like everywhere else.
pub struct ApiBody(pub Bytes);

impl<S> FromRequest<S> for ApiBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(ApiBody)
            .map_err(body_read_error)
    }
}

/// The media type of the body, lowercase, without parameters.
pub fn content_type_essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// `application/json` (parameters such as `charset` allowed) or any `+json` type.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_read_error(rejection: BytesRejection) -> ApiError {
    let too_large = std::error::Error::source(&rejection)
        .map(|source| source.to_string().contains("length limit"))
        .unwrap_or(false)
        || rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
    if too_large {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, details::BODY_TOO_LARGE)
    } else {
        ApiError::validation("body could not be read").with_cause(rejection)
    }
}

/// Parses a JSON object body and names the first offending field in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde also reads structs from arrays (by position); every body here is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation("body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| describe_json_error(error.path().to_string(), error.into_inner()))?;
    deserializer
        .end()
        .map_err(|error| ApiError::validation(format!("body is not valid JSON: {error}")))?;
    Ok(value)
}

/// Reads one element of a body first read as raw JSON, naming its fields under `at`
/// (`action_items[3].description is required`): for routes that must check a list's length
/// before its elements (API.md §11.5).
pub fn parse_json_element<T: DeserializeOwned>(
    value: serde_json::Value,
    at: &str,
) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation(format!("{at} must be a JSON object")));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error.path().to_string();
        let path = if inner == "." {
            at.to_string()
        } else {
            format!("{at}.{inner}")
        };
        ApiError::validation(describe_data_error(&path, &error.into_inner().to_string()))
    })
}

fn describe_json_error(path: String, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::validation(format!("body is not valid JSON: {error}"))
        }
        Category::Data => ApiError::validation(describe_data_error(&path, &error.to_string())),
    }
}

/// Turns serde's messages into `<field> <problem>` phrases.
fn describe_data_error(path: &str, message: &str) -> String {
    let message = strip_position(message);
    let at = |field: &str| -> String {
        match (path, field) {
            (".", "") => "body".to_string(),
            (".", field) => field.to_string(),
            (path, "") => path.to_string(),
            (path, field) => format!("{path}.{field}"),
        }
    };
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{} is required", at(field));
    }
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        && let Some((_, expected)) = rest.rsplit_once(", expected ")
    {
        let expected = match expected {
            _ if expected.starts_with("struct ") || expected.starts_with("a map") => {
                "a JSON object"
            }
            "f64" | "f32" => "a number",
            "i64" | "i32" | "u64" | "u32" | "usize" => "an integer",
            _ => expected,
        };
        return format!("{} must be {expected}", at(""));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("{} must be {}", at(""), expected.replace('`', "'"));
    }
    format!("{} {message}", at(""))
}

fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(index) if message[index..].contains(" column ") => &message[..index],
        _ => message,
    }
}

/// Query parameters; a value of the wrong type is a 422 naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded_parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                ApiError::validation(describe_data_error(&path, &message))
            })
    }
}

fn form_urlencoded_parse(input: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        description: String,
        completed: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        action_items: Vec<Item>,
    }

    fn detail_of<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        parse_json::<T>(json.as_bytes())
            .unwrap_err()
            .detail()
            .to_string()
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(
            detail_of::<Item>("{}"),
            "Validation error: description is required"
        );
    }

    #[test]
    fn a_nested_missing_field_names_its_path() {
        assert_eq!(
            detail_of::<Batch>(r#"{"action_items": [{"description": "a"}, {}]}"#),
            "Validation error: action_items[1].description is required"
        );
    }

    #[test]
    fn an_element_read_on_its_own_names_its_path() {
        let missing = parse_json_element::<Item>(serde_json::json!({}), "action_items[2]");
        assert_eq!(
            missing.unwrap_err().detail(),
            "Validation error: action_items[2].description is required"
        );
        let wrong = parse_json_element::<Item>(
            serde_json::json!({"description": "a", "completed": 1}),
            "action_items[0]",
        );
        assert_eq!(
            wrong.unwrap_err().detail(),
            "Validation error: action_items[0].completed must be a boolean"
        );
        let scalar = parse_json_element::<Item>(serde_json::json!("a"), "action_items[1]");
        assert_eq!(
            scalar.unwrap_err().detail(),
            "Validation error: action_items[1] must be a JSON object"
        );
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_expected_type() {
        assert_eq!(
            detail_of::<Item>(r#"{"description": "a", "completed": "yes"}"#),
            "Validation error: completed must be a boolean"
        );
    }

    #[test]
    fn a_non_object_body_is_described() {
        assert_eq!(
            detail_of::<Item>("[1]"),
            "Validation error: body must be a JSON object"
        );
    }

    #[test]
    fn malformed_json_is_a_validation_error() {
        assert!(
            detail_of::<Item>("{\"description\": ")
                .starts_with("Validation error: body is not valid JSON")
        );
        assert!(
            detail_of::<Item>("{\"description\": \"a\"} x")
                .starts_with("Validation error: body is not valid JSON")
        );
    }

    #[test]
    fn an_element_of_a_body_is_named_by_its_path() {
        let detail = |value: serde_json::Value| {
            parse_json_element::<Item>(value, "action_items[2]")
                .unwrap_err()
                .detail()
                .to_string()
        };
        assert_eq!(
            detail(serde_json::json!({})),
            "Validation error: action_items[2].description is required"
        );
        assert_eq!(
            detail(serde_json::json!({"description": 1})),
            "Validation error: action_items[2].description must be a string"
        );
        assert_eq!(
            detail(serde_json::json!(["a"])),
            "Validation error: action_items[2] must be a JSON object"
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json_content_type(&headers), ok, "{value}");
        }
    }
}
