//! The change-feed parameters every list accepts (`updated_since`, `cursor`) and the headers that
//! announce the next page (`X-Next-Cursor`, `Link: <...>; rel="next"`). The body stays the bare
//! array the official clients expect.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::domain::feed::{FeedPosition, FeedWindow};
use crate::domain::time::parse_datetime;
use crate::error::ApiError;

pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

pub const INVALID_CURSOR: &str = "Invalid cursor";

/// The feed window the query asks for, or `None` for the list as it always was. `updated_since`
/// is an RFC 3339 date-time (inclusive); `cursor` is one a previous page announced.
pub fn requested_window(
    updated_since: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Option<FeedWindow>, ApiError> {
    if updated_since.is_none() && cursor.is_none() {
        return Ok(None);
    }
    let since = updated_since
        .map(|text| {
            parse_datetime(text)
                .ok_or_else(|| ApiError::validation("updated_since must be an RFC 3339 date-time"))
        })
        .transpose()?;
    let after = cursor
        .map(|text| FeedPosition::from_cursor(text.trim()).ok_or_else(invalid_cursor))
        .transpose()?;
    Ok(Some(FeedWindow::probing(since, after, limit)))
}

pub fn invalid_cursor() -> ApiError {
    ApiError::bad_request(INVALID_CURSOR)
}

/// Cuts the one-longer page read by [`FeedWindow::probing`] down to `limit` and says where the
/// next page starts, if there is one.
pub fn next_page<T>(
    mut items: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> FeedPosition,
) -> (Vec<T>, Option<FeedPosition>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(position);
    (items, next)
}

/// A feed page as a list answers it: the bare array, the next page in the headers.
pub fn feed_response<T>(
    uri: &Uri,
    changed: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> FeedPosition,
) -> (HeaderMap, axum::Json<Vec<T>>) {
    let (items, next) = next_page(changed, limit, position);
    (next_page_headers(uri, next.as_ref()), axum::Json(items))
}

/// `X-Next-Cursor` and `Link: <same path and query, cursor replaced>; rel="next"`; empty on the
/// last page.
pub fn next_page_headers(uri: &Uri, next: Option<&FeedPosition>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(next) = next else {
        return headers;
    };
    let cursor = next.to_cursor();
    let mut query: Vec<(String, String)> = uri
        .query()
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .filter(|(name, _)| name != "cursor")
                .collect()
        })
        .unwrap_or_default();
    query.push(("cursor".to_string(), cursor.clone()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let link = format!("<{}?{query}>; rel=\"next\"", uri.path());
    if let Ok(value) = HeaderValue::from_str(&cursor) {
        headers.insert(HeaderName::from_static(NEXT_CURSOR_HEADER), value);
    }
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(axum::http::header::LINK, value);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_micros;

    #[test]
    fn without_the_parameters_the_list_is_unchanged() {
        assert_eq!(requested_window(None, None, 25).unwrap(), None);
    }

    #[test]
    fn bad_values_are_refused_with_a_clear_detail() {
        let error = requested_window(Some("yesterday"), None, 25).unwrap_err();
        assert_eq!(error.status(), 422);
        assert_eq!(
            error.detail(),
            "Validation error: updated_since must be an RFC 3339 date-time"
        );
        let error = requested_window(None, Some("nope"), 25).unwrap_err();
        assert_eq!(error.status(), 400);
        assert_eq!(error.detail(), INVALID_CURSOR);
    }

    #[test]
    fn the_next_link_keeps_the_filters_and_replaces_the_cursor() {
        let uri: Uri = "/v1/dev/user/memories?categories=system&cursor=old&limit=2"
            .parse()
            .unwrap();
        let next = FeedPosition {
            at: from_micros(5),
            id: "m".into(),
        };
        let headers = next_page_headers(&uri, Some(&next));
        let cursor = next.to_cursor();
        assert_eq!(headers[NEXT_CURSOR_HEADER], cursor.as_str());
        assert_eq!(
            headers[axum::http::header::LINK],
            format!(
                "</v1/dev/user/memories?categories=system&limit=2&cursor={cursor}>; rel=\"next\""
            )
            .as_str()
        );
        assert!(next_page_headers(&uri, None).is_empty());
    }

    #[test]
    fn a_page_one_longer_than_asked_has_a_next_page() {
        let at = |id: &i32| FeedPosition {
            at: from_micros(i64::from(*id)),
            id: id.to_string(),
        };
        let (items, next) = next_page(vec![1, 2, 3], 2, at);
        assert_eq!(items, vec![1, 2]);
        assert_eq!(next.unwrap().id, "2");
        let (items, next) = next_page(vec![1, 2], 2, at);
        assert_eq!(items, vec![1, 2]);
        assert!(next.is_none());
    }
}
