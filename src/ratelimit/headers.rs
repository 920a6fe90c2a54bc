//! Response headers and 429/503 wording for rate limiting (API.md sections 1.1 and 10).

use std::fmt::Write as _;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::{Decision, FailedAuthVerdict};

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// `detail` of a 429: `Rate limit exceeded. Try again in <n>s.` (at least 1 second).
pub fn rate_limited_detail(retry_after: u64) -> String {
    format!("Rate limit exceeded. Try again in {}s.", retry_after.max(1))
}

/// Headers for any response to a request with a valid developer key (2xx, 4xx and 429 alike).
///
/// `X-RateLimit-*` describe one window: the one that rejected (the later reset if both did),
/// else the one with fewer requests left (minute on a tie). `RateLimit-Policy` and `RateLimit`
/// (draft-ietf-httpapi-ratelimit-headers-09) list every enabled window, and a rejection adds
/// `Retry-After`. With no window enabled there is nothing to report and the map is empty.
pub fn decision_headers(decision: &Decision) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(reported) = decision.reported_window() else {
        return headers;
    };
    headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(reported.limit));
    headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(reported.remaining));
    headers.insert(X_RATELIMIT_RESET, HeaderValue::from(reported.reset_at));

    let mut policy = String::new();
    let mut state = String::new();
    for (i, w) in decision.windows.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let name = w.name.as_str();
        // Writing to a String cannot fail.
        let _ = write!(
            policy,
            "{sep}\"{name}\";q={};w={}",
            w.limit,
            w.name.seconds()
        );
        let _ = write!(state, "{sep}\"{name}\";r={};t={}", w.remaining, w.reset_in);
    }
    headers.insert(RATELIMIT_POLICY, ascii_value(policy));
    headers.insert(RATELIMIT, ascii_value(state));

    if let Some(retry_after) = decision.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    }
    headers
}

/// Headers of the 429 given to a client address blocked for failed authentications. It has no
/// developer key, so no quota to report: only `Retry-After`.
pub fn failed_auth_headers(verdict: &FailedAuthVerdict) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if verdict.blocked {
        headers.insert(RETRY_AFTER, HeaderValue::from(verdict.retry_after.max(1)));
    }
    headers
}

fn ascii_value(text: String) -> HeaderValue {
    // Built only from fixed names and integers, so always a valid header value.
    HeaderValue::try_from(text).expect("rate-limit header is visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{WindowName, WindowStatus};

    fn window(
        name: WindowName,
        limit: u64,
        remaining: u64,
        reset_at: i64,
        reset_in: u64,
    ) -> WindowStatus {
        WindowStatus {
            name,
            limit,
            remaining,
            reset_at,
            reset_in,
            exceeded: false,
        }
    }

    fn minute(limit: u64, remaining: u64) -> WindowStatus {
        window(WindowName::Minute, limit, remaining, 1_765_386_060, 18)
    }

    fn day(limit: u64, remaining: u64) -> WindowStatus {
        window(WindowName::Day, limit, remaining, 1_765_411_200, 3600)
    }

    fn exceeded(mut w: WindowStatus) -> WindowStatus {
        w.exceeded = true;
        w.remaining = 0;
        w
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn admitted_request_reports_the_tighter_window_and_both_policies() {
        let d = Decision {
            allowed: true,
            windows: vec![minute(100, 42), day(10_000, 9_950)],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("100"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("42"));
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1765386060"));
        assert_eq!(
            get(&h, "ratelimit-policy"),
            Some(r#""minute";q=100;w=60, "day";q=10000;w=86400"#)
        );
        assert_eq!(
            get(&h, "ratelimit"),
            Some(r#""minute";r=42;t=18, "day";r=9950;t=3600"#)
        );
        assert_eq!(get(&h, "retry-after"), None);
        assert_eq!(h.len(), 5);
    }

    #[test]
    fn day_window_is_reported_when_it_has_fewer_left() {
        let d = Decision {
            allowed: true,
            windows: vec![minute(100, 99), day(10_000, 7)],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("10000"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("7"));
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1765411200"));
    }

    #[test]
    fn minute_window_is_reported_on_a_tie() {
        let d = Decision {
            allowed: true,
            windows: vec![minute(100, 5), day(10_000, 5)],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("100"));
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1765386060"));
    }

    #[test]
    fn rejection_reports_the_rejecting_window_even_with_more_left_elsewhere() {
        // The minute window rejected; the day window has 0 left too but did not reject.
        let d = Decision {
            allowed: false,
            windows: vec![exceeded(minute(100, 0)), day(10, 0)],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("100"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1765386060"));
        assert_eq!(get(&h, "retry-after"), Some("18"));

        let d = Decision {
            allowed: false,
            windows: vec![minute(100, 3), exceeded(day(10_000, 0))],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("10000"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(get(&h, "retry-after"), Some("3600"));
        assert_eq!(
            get(&h, "ratelimit"),
            Some(r#""minute";r=3;t=18, "day";r=0;t=3600"#)
        );
    }

    #[test]
    fn rejection_by_both_reports_the_later_reset() {
        let d = Decision {
            allowed: false,
            windows: vec![exceeded(minute(100, 0)), exceeded(day(10_000, 0))],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("10000"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1765411200"));
        assert_eq!(get(&h, "retry-after"), Some("3600"));
    }

    #[test]
    fn a_window_turned_off_is_not_reported() {
        let d = Decision {
            allowed: true,
            windows: vec![day(10_000, 9_999)],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("10000"));
        assert_eq!(
            get(&h, "ratelimit-policy"),
            Some(r#""day";q=10000;w=86400"#)
        );
        assert_eq!(get(&h, "ratelimit"), Some(r#""day";r=9999;t=3600"#));

        let d = Decision {
            allowed: true,
            windows: vec![minute(100, 1)],
        };
        let h = decision_headers(&d);
        assert_eq!(get(&h, "ratelimit-policy"), Some(r#""minute";q=100;w=60"#));
    }

    #[test]
    fn no_window_no_headers() {
        let d = Decision {
            allowed: true,
            windows: vec![],
        };
        assert!(decision_headers(&d).is_empty());
    }

    #[test]
    fn detail_text() {
        assert_eq!(
            rate_limited_detail(18),
            "Rate limit exceeded. Try again in 18s."
        );
        assert_eq!(
            rate_limited_detail(0),
            "Rate limit exceeded. Try again in 1s."
        );
    }

    #[test]
    fn failed_auth_block_carries_only_retry_after() {
        let blocked = FailedAuthVerdict {
            blocked: true,
            retry_after: 12,
        };
        let h = failed_auth_headers(&blocked);
        assert_eq!(get(&h, "retry-after"), Some("12"));
        assert_eq!(h.len(), 1);
        let open = FailedAuthVerdict {
            blocked: false,
            retry_after: 12,
        };
        assert!(failed_auth_headers(&open).is_empty());
    }
}
