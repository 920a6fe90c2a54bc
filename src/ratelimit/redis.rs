//! Redis limiter: counters shared by every replica, exact under concurrency.
//!
//! Each call is one Lua script run atomically by Redis (`EVALSHA`, loading the script once if
//! the server does not know it yet), so a check and its increments are a single round trip and
//! no two replicas can both take the last slot of a window. Windows follow Redis's clock.

use std::sync::Arc;
use std::time::Duration;

use redis::{Client, ConnectionAddr, ErrorKind, Script};

use super::connection::Reconnecting;
use super::window::{self, Usage};
use super::{
    Decision, FailedAuthVerdict, HourlyVerdict, Limiter, LimiterUnavailable, Limits, UsageSnapshot,
};
use crate::outbound::Outbound;

/// Key prefix used when none is configured.
pub const DEFAULT_KEY_PREFIX: &str = "omi:";

/// A down or unreachable Redis must fail a request quickly rather than hold it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on one whole call (connecting, and loading the script after a Redis restart).
const CALL_DEADLINE: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    #[error("Redis is unreachable: {0}")]
    Unreachable(String),
}

pub struct RedisLimiter {
    limits: Limits,
    prefix: String,
    connection: Reconnecting,
    check_request: Script,
    failed_auth: Script,
    count_window: Script,
    read_usage: Script,
}

impl RedisLimiter {
    /// Connect and load the scripts; fails if Redis cannot be reached now.
    pub async fn connect(
        url: &str,
        key_prefix: &str,
        limits: Limits,
    ) -> Result<Self, RedisSetupError> {
        Self::connect_with(url, key_prefix, limits, &Outbound::system()).await
    }

    /// [`Self::connect`], securing `rediss://` with the shared outbound TLS setup.
    pub async fn connect_with(
        url: &str,
        key_prefix: &str,
        limits: Limits,
        outbound: &Outbound,
    ) -> Result<Self, RedisSetupError> {
        let limiter = Self::new_lazy_with(url, key_prefix, limits, outbound)?;
        limiter
            .load_scripts()
            .await
            .map_err(|e| RedisSetupError::Unreachable(e.reason().to_owned()))?;
        Ok(limiter)
    }

    /// Build without connecting: the first call connects. For starting while Redis is down.
    pub fn new_lazy(url: &str, key_prefix: &str, limits: Limits) -> Result<Self, RedisSetupError> {
        Self::new_lazy_with(url, key_prefix, limits, &Outbound::system())
    }

    /// [`Self::new_lazy`], securing `rediss://` with the shared outbound TLS setup (its trusted
    /// roots, `OMI_EXTRA_CA_FILE` included). A `rediss://...#insecure` URL skips certificate
    /// checks for this connection alone, with a warning.
    pub fn new_lazy_with(
        url: &str,
        key_prefix: &str,
        limits: Limits,
        outbound: &Outbound,
    ) -> Result<Self, RedisSetupError> {
        let client = Client::open(url).map_err(|e| RedisSetupError::InvalidUrl(e.to_string()))?;
        // Only a rediss:// URL reads the trusted roots.
        let tls = match client.get_connection_info().addr() {
            ConnectionAddr::TcpTls { insecure: true, .. } => {
                tracing::warn!(
                    "OMI_REDIS_URL ends in #insecure: the Redis server's certificate is not checked"
                );
                Some(Arc::new(outbound.unverified_config()))
            }
            ConnectionAddr::TcpTls { .. } => Some(outbound.client_config()),
            _ => None,
        };
        Ok(Self {
            limits,
            prefix: key_prefix.to_owned(),
            connection: Reconnecting::new(client, tls, CONNECT_TIMEOUT, RESPONSE_TIMEOUT),
            check_request: Script::new(include_str!("lua/check_request.lua")),
            failed_auth: Script::new(include_str!("lua/failed_auth.lua")),
            count_window: Script::new(include_str!("lua/count_window.lua")),
            read_usage: Script::new(include_str!("lua/read_usage.lua")),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Keys of one user share a hash tag (`{user}`), so on a Redis Cluster the two counters a
    /// script touches live on the same node.
    fn minute_key(&self, key_id: &str, user_id: &str) -> String {
        format!("{}rl:{{{user_id}}}:key:{key_id}", self.prefix)
    }

    fn day_key(&self, user_id: &str) -> String {
        format!("{}rl:{{{user_id}}}:day", self.prefix)
    }

    fn failed_auth_key(&self, client: &str) -> String {
        format!("{}rl:auth:{client}", self.prefix)
    }

    async fn load_scripts(&self) -> Result<(), LimiterUnavailable> {
        self.call(async |mut conn| {
            self.check_request
                .prepare_invoke()
                .load_async(&mut conn)
                .await?;
            self.failed_auth
                .prepare_invoke()
                .load_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Run `op` on the shared connection within the call deadline. A failure other than an
    /// error answered by Redis itself drops the connection so the next call reconnects.
    async fn call<T>(
        &self,
        op: impl AsyncFnOnce(redis::aio::MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, LimiterUnavailable> {
        let attempt = async {
            let (generation, conn) = self
                .connection
                .get()
                .await
                .map_err(LimiterUnavailable::new)?;
            op(conn).await.map_err(|e| {
                if !matches!(e.kind(), ErrorKind::Server(_)) {
                    self.connection.discard(generation);
                }
                LimiterUnavailable::new(e.to_string())
            })
        };
        tokio::time::timeout(CALL_DEADLINE, attempt)
            .await
            .unwrap_or_else(|_| Err(LimiterUnavailable::new("Redis call timed out")))
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn check_request(
        &self,
        key_id: &str,
        user_id: &str,
    ) -> Result<Decision, LimiterUnavailable> {
        let limits = &self.limits;
        if limits.per_minute == 0 && limits.per_day == 0 {
            return Ok(Decision {
                allowed: true,
                windows: Vec::new(),
            });
        }
        let mut invocation = self.check_request.prepare_invoke();
        invocation
            .key(self.minute_key(key_id, user_id))
            .key(self.day_key(user_id))
            .arg(limits.per_minute)
            .arg(limits.per_day);
        let (admitted, now_ms, minute, day): (u8, i64, u64, u64) = self
            .call(async |mut conn| invocation.invoke_async(&mut conn).await)
            .await?;
        let decision = window::evaluate(limits, now_ms, Usage { minute, day });
        // The script and `evaluate` apply the same rule to the same counts.
        debug_assert_eq!(decision.allowed, admitted == 1);
        Ok(decision)
    }

    async fn register_failed_auth(
        &self,
        client: &str,
    ) -> Result<FailedAuthVerdict, LimiterUnavailable> {
        let limit = self.limits.failed_auth_per_minute;
        if limit == 0 {
            return Ok(FailedAuthVerdict {
                blocked: false,
                retry_after: 1,
            });
        }
        let mut invocation = self.failed_auth.prepare_invoke();
        invocation.key(self.failed_auth_key(client));
        let (count, now_ms): (u64, i64) = self
            .call(async |mut conn| invocation.invoke_async(&mut conn).await)
            .await?;
        Ok(window::failed_auth_verdict(limit, count, now_ms))
    }

    async fn usage(
        &self,
        user_id: &str,
        key_ids: &[String],
    ) -> Result<UsageSnapshot, LimiterUnavailable> {
        let limits = &self.limits;
        if limits.per_minute == 0 && limits.per_day == 0 {
            return Ok(UsageSnapshot::default());
        }
        let mut invocation = self.read_usage.prepare_invoke();
        invocation.key(self.day_key(user_id));
        if limits.per_minute > 0 {
            for key_id in key_ids {
                invocation.key(self.minute_key(key_id, user_id));
            }
        }
        let counts: Vec<u64> = self
            .call(async |mut conn| invocation.invoke_async(&mut conn).await)
            .await?;
        let (day, minutes) = counts.split_first().map_or((0, &[][..]), |(d, m)| (*d, m));
        Ok(UsageSnapshot {
            day: (limits.per_day > 0).then_some(day),
            minute: (limits.per_minute > 0).then(|| minutes.to_vec()),
        })
    }

    async fn check_hourly(
        &self,
        bucket: &str,
        key_id: &str,
        user_id: &str,
        limit: u64,
    ) -> Result<HourlyVerdict, LimiterUnavailable> {
        let mut invocation = self.count_window.prepare_invoke();
        invocation
            .key(format!("{}rl:{{{user_id}}}:{bucket}:{key_id}", self.prefix))
            .arg(window::HOUR_MS)
            .arg(limit);
        let (used, now_ms): (u64, i64) = self
            .call(async |mut conn| invocation.invoke_async(&mut conn).await)
            .await?;
        Ok(window::hourly_verdict(limit, used, now_ms))
    }

    async fn ping(&self) -> Result<(), LimiterUnavailable> {
        self.call(async |mut conn| {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
        })
        .await
    }
}
