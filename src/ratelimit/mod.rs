//! Rate limiting of developer-key requests (API.md section 10).
//!
//! Two windows: a calendar minute (UTC) per developer key and a UTC day per user, both fixed
//! windows aligned on Unix time. A request is admitted only when both admit it, and only an
//! admitted request is counted. Separately, failed authentications are counted per client
//! address per calendar minute.
//!
//! [`InMemoryLimiter`] keeps the counters in this process (one replica). [`RedisLimiter`] keeps
//! them in Redis so replicas share exact counts.

mod clock;
mod connection;
mod headers;
mod memory;
mod redis;
mod window;

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::headers::{decision_headers, failed_auth_headers, rate_limited_detail};
pub use self::memory::InMemoryLimiter;
pub use self::redis::{DEFAULT_KEY_PREFIX, RedisLimiter, RedisSetupError};

/// Configured limits; 0 turns a window off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per developer key per calendar minute.
    pub per_minute: u64,
    /// Requests per user (all keys together) per UTC day.
    pub per_day: u64,
    /// Failed authentications per client address per calendar minute before it is blocked.
    pub failed_auth_per_minute: u64,
}

impl Default for Limits {
    /// The defaults of API.md section 8.
    fn default() -> Self {
        Self {
            per_minute: 100,
            per_day: 10_000,
            failed_auth_per_minute: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowName {
    Minute,
    Day,
}

impl WindowName {
    /// The policy name used in the `RateLimit-Policy` and `RateLimit` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowName::Minute => "minute",
            WindowName::Day => "day",
        }
    }

    /// Window length in seconds (the `w` parameter of `RateLimit-Policy`).
    pub fn seconds(self) -> u64 {
        match self {
            WindowName::Minute => 60,
            WindowName::Day => 86_400,
        }
    }
}

/// State of one enabled window after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowStatus {
    pub name: WindowName,
    pub limit: u64,
    /// Requests still admitted in this window, this request already counted if it was admitted.
    pub remaining: u64,
    /// Unix seconds at which the window resets.
    pub reset_at: i64,
    /// Seconds until the reset, rounded up, at least 1.
    pub reset_in: u64,
    /// This window was full and rejected the request.
    pub exceeded: bool,
}

/// Outcome of [`Limiter::check_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Enabled windows only, minute first.
    pub windows: Vec<WindowStatus>,
}

impl Decision {
    /// Seconds the client should wait, when rejected: the reset of the window that rejected, the
    /// later one if both did.
    pub fn retry_after(&self) -> Option<u64> {
        self.rejecting_window().map(|w| w.reset_in)
    }

    /// The window that rejected the request (the later reset if both did; minute on a tie).
    pub fn rejecting_window(&self) -> Option<&WindowStatus> {
        if self.allowed {
            return None;
        }
        self.windows
            .iter()
            .filter(|w| w.exceeded)
            .reduce(|best, w| if w.reset_at > best.reset_at { w } else { best })
    }

    /// The window reported in `X-RateLimit-*`: the rejecting one, else the one with fewer
    /// requests left (minute on a tie).
    pub fn reported_window(&self) -> Option<&WindowStatus> {
        self.rejecting_window().or_else(|| {
            self.windows.iter().reduce(|best, w| {
                if w.remaining < best.remaining {
                    w
                } else {
                    best
                }
            })
        })
    }
}

/// Requests counted in the current windows, as [`Limiter::usage`] reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageSnapshot {
    /// The user's requests today (UTC); `None` when the day window is off.
    pub day: Option<u64>,
    /// Each key's requests this minute, in the order asked; `None` when the minute window is off.
    pub minute: Option<Vec<u64>>,
}

/// Outcome of [`Limiter::register_failed_auth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAuthVerdict {
    /// The address is past its limit for this minute: answer 429 instead of 401.
    pub blocked: bool,
    /// Seconds until the address's minute ends, rounded up, at least 1.
    pub retry_after: u64,
}

/// The shared counter store cannot be reached; the request gets 503 `Rate limiter unavailable`.
/// The verdict on one request in an extra per-key hourly window (`ask`'s limit, API.md §13.B).
/// A rejected request is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyVerdict {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds when the hour ends.
    pub reset_at: i64,
    /// Whole seconds until then, at least 1.
    pub reset_in: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable")]
pub struct LimiterUnavailable(String);

impl LimiterUnavailable {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// Why, for the log (never for the client).
    pub fn reason(&self) -> &str {
        &self.0
    }
}

#[async_trait::async_trait]
pub trait Limiter: Send + Sync {
    /// Count one request of a valid developer key against the per-key minute window and the
    /// per-user day window. Rejected requests do not consume quota (both are checked, and both
    /// incremented only when both admit).
    async fn check_request(
        &self,
        key_id: &str,
        user_id: &str,
    ) -> Result<Decision, LimiterUnavailable>;

    /// Count one failed authentication ("Invalid API key") from a client address; blocked once
    /// the count passes the limit in this calendar minute.
    async fn register_failed_auth(
        &self,
        client: &str,
    ) -> Result<FailedAuthVerdict, LimiterUnavailable>;

    /// For `/readyz`.
    async fn ping(&self) -> Result<(), LimiterUnavailable>;

    /// What the user and each of `key_ids` have used of their current windows, read without
    /// counting anything (the web console's usage page).
    async fn usage(
        &self,
        user_id: &str,
        key_ids: &[String],
    ) -> Result<UsageSnapshot, LimiterUnavailable>;

    /// Checks and counts one request of `key_id` (owned by `user_id`) in the calendar hour of
    /// the window named `bucket`, which admits `limit` requests per key and hour (`limit` > 0).
    async fn check_hourly(
        &self,
        bucket: &str,
        key_id: &str,
        user_id: &str,
        limit: u64,
    ) -> Result<HourlyVerdict, LimiterUnavailable>;
}
