//! Reading a server that speaks the Omi Developer API: one GET at a time, paced under the
//! source's advertised rate limit, with `Retry-After` honoured on 429 and bounded retries with
//! backoff and jitter on 5xx answers and broken connections.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::domain::credentials::Secret;

/// Why the source could not be read. None of them carries the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error(
        "the source refused the key ({status} \"{detail}\"): check that the key is whole and not revoked"
    )]
    KeyRejected { status: u16, detail: String },
    #[error(
        "the key lacks the scope {scope} (the source answered 403 \"{detail}\"): create a key with {scope}"
    )]
    MissingScope { scope: String, detail: String },
    #[error("{url} does not look like a server of the Omi Developer API: {why}")]
    NotOmi { url: String, why: String },
    #[error("GET {path} failed: {why}")]
    Failed { path: String, why: String },
}

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request for 5xx answers and connection failures (at least 1).
    pub attempts: u32,
    /// The first backoff; each next one doubles, with up to 50 % jitter added.
    pub first_backoff: Duration,
    /// How many 429 answers one request may get before the import gives up.
    pub rate_limited_attempts: u32,
    /// The longest single wait, whatever `Retry-After` says.
    pub longest_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            rate_limited_attempts: 10,
            longest_wait: Duration::from_secs(300),
        }
    }
}

/// Counters of one run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub requests: u64,
    pub rate_limited: u64,
    pub retried: u64,
}

/// What answered a GET: a JSON value, or 404 (a route the source does not have).
#[derive(Debug)]
pub enum Answer {
    Json(Value),
    NotFound,
}

pub struct Source {
    http: Client,
    base: String,
    key: Secret,
    policy: RetryPolicy,
    /// Not before this instant: the pace the source's rate-limit headers allow.
    next_request: Instant,
    pub stats: SourceStats,
}

/// The HTTP client the importer reads with, from the shared outgoing setup.
fn http_client(builder: reqwest::ClientBuilder) -> Result<Client, SourceError> {
    builder
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("omi-server/", env!("CARGO_PKG_VERSION"), " import"))
        .build()
        .map_err(|error| SourceError::Failed {
            path: String::new(),
            why: format!("building the HTTP client: {error}"),
        })
}

/// The number of seconds in a `Retry-After` (seconds or an HTTP date is rare; seconds only).
fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Seconds until the window of `X-RateLimit-Reset` ends: an epoch time or a delta.
fn reset_in(headers: &HeaderMap) -> Option<f64> {
    let reset = header_number(headers, "x-ratelimit-reset")?;
    if reset > 1_000_000_000.0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Some((reset - now).max(0.0))
    } else {
        Some(reset)
    }
}

fn jitter(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let fraction = match getrandom::fill(&mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0 * 0.5,
        Err(_) => 0.25,
    };
    base + base.mul_f64(fraction)
}

/// The `detail` of an error body, or its first characters.
fn detail_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            body.chars()
                .take(120)
                .collect::<String>()
                .trim()
                .to_string()
        })
}

impl Source {
    pub fn new(
        base: &str,
        key: Secret,
        policy: RetryPolicy,
        http: reqwest::ClientBuilder,
    ) -> Result<Source, SourceError> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SourceError::NotOmi {
                url: base,
                why: "the base URL must start with http:// or https://".into(),
            });
        }
        Ok(Source {
            http: http_client(http)?,
            base,
            key,
            policy,
            next_request: Instant::now(),
            stats: SourceStats::default(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Spreads the requests left in the window over the time left in it.
    fn pace(&mut self, headers: &HeaderMap) {
        let (Some(remaining), Some(reset)) = (
            header_number(headers, "x-ratelimit-remaining"),
            reset_in(headers),
        ) else {
            return;
        };
        let interval = reset / (remaining + 1.0);
        self.next_request = Instant::now() + Duration::from_secs_f64(interval.min(60.0));
    }

    /// GET `path` with `query`, as JSON. `scope` names what a 403 means.
    pub async fn get(
        &mut self,
        path: &str,
        query: &[(&str, String)],
        scope: &str,
    ) -> Result<Answer, SourceError> {
        let mut url = format!("{}{}", self.base, path);
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&super::urlencode(name));
            url.push('=');
            url.push_str(&super::urlencode(value));
        }
        let mut failures = 0u32;
        let mut rate_limited = 0u32;
        loop {
            tokio::time::sleep_until(self.next_request).await;
            self.stats.requests += 1;
            let sent = self
                .http
                .get(&url)
                .bearer_auth(self.key.expose())
                .header("accept", "application/json")
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    failures += 1;
                    if failures >= self.policy.attempts.max(1) {
                        return Err(SourceError::Unreachable {
                            url: self.base.clone(),
                            cause: cause_of(&error),
                        });
                    }
                    self.backoff(failures).await;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            self.pace(&headers);
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.stats.rate_limited += 1;
                rate_limited += 1;
                if rate_limited > self.policy.rate_limited_attempts {
                    return Err(SourceError::Failed {
                        path: path.to_string(),
                        why: format!("still rate limited after {rate_limited} waits"),
                    });
                }
                let wait = header_number(&headers, "retry-after")
                    .or_else(|| reset_in(&headers))
                    .unwrap_or(60.0);
                let wait = Duration::from_secs_f64(wait).min(self.policy.longest_wait);
                tracing::info!(
                    seconds = wait.as_secs_f64(),
                    "the source rate-limits; waiting as it asks"
                );
                self.next_request = Instant::now() + wait;
                continue;
            }
            let body = match response.text().await {
                Ok(body) => body,
                Err(error) => {
                    failures += 1;
                    if failures >= self.policy.attempts.max(1) {
                        return Err(SourceError::Failed {
                            path: path.to_string(),
                            why: format!("the answer broke off: {}", cause_of(&error)),
                        });
                    }
                    self.backoff(failures).await;
                    continue;
                }
            };
            if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
                failures += 1;
                if failures >= self.policy.attempts.max(1) {
                    return Err(SourceError::Failed {
                        path: path.to_string(),
                        why: format!(
                            "{} after {failures} attempts: {}",
                            status.as_u16(),
                            detail_of(&body)
                        ),
                    });
                }
                self.backoff(failures).await;
                continue;
            }
            return match status.as_u16() {
                200..=299 => {
                    serde_json::from_str(&body)
                        .map(Answer::Json)
                        .map_err(|_| SourceError::NotOmi {
                            url: self.base.clone(),
                            why: format!("GET {path} did not answer JSON"),
                        })
                }
                401 => Err(SourceError::KeyRejected {
                    status: 401,
                    detail: detail_of(&body),
                }),
                403 => Err(SourceError::MissingScope {
                    scope: scope.to_string(),
                    detail: detail_of(&body),
                }),
                404 => Ok(Answer::NotFound),
                other => Err(SourceError::Failed {
                    path: path.to_string(),
                    why: format!("{other}: {}", detail_of(&body)),
                }),
            };
        }
    }

    async fn backoff(&mut self, failures: u32) {
        self.stats.retried += 1;
        let base = self
            .policy
            .first_backoff
            .saturating_mul(1 << failures.saturating_sub(1).min(6));
        let wait = jitter(base.min(Duration::from_secs(30)));
        tracing::info!(
            seconds = wait.as_secs_f64(),
            "the source failed; trying again"
        );
        tokio::time::sleep(wait).await;
    }
}

/// The innermost cause of a transport error (`connection refused`, `dns error`, ...).
fn cause_of(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
