//! Rate limiting interface (API.md §10).

use async_trait::async_trait;
use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_minute: u64,
    pub per_day: u64,
    pub failed_auth_per_minute: u64,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
}

impl Decision {
    pub fn retry_after(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FailedAuthVerdict {
    pub blocked: bool,
    pub retry_after: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable")]
pub struct LimiterUnavailable;

#[async_trait]
pub trait Limiter: Send + Sync {
    async fn check_request(
        &self,
        key_id: &str,
        user_id: &str,
    ) -> Result<Decision, LimiterUnavailable>;
    async fn register_failed_auth(
        &self,
        client: &str,
    ) -> Result<FailedAuthVerdict, LimiterUnavailable>;
    async fn ping(&self) -> Result<(), LimiterUnavailable>;
}

pub struct InMemoryLimiter;

impl InMemoryLimiter {
    pub fn new(_limits: Limits) -> Self {
        InMemoryLimiter
    }
}

#[async_trait]
impl Limiter for InMemoryLimiter {
    async fn check_request(
        &self,
        _key_id: &str,
        _user_id: &str,
    ) -> Result<Decision, LimiterUnavailable> {
        Ok(Decision { allowed: true })
    }
    async fn register_failed_auth(
        &self,
        _client: &str,
    ) -> Result<FailedAuthVerdict, LimiterUnavailable> {
        Ok(FailedAuthVerdict {
            blocked: false,
            retry_after: 1,
        })
    }
    async fn ping(&self) -> Result<(), LimiterUnavailable> {
        Ok(())
    }
}

pub fn decision_headers(_decision: &Decision) -> HeaderMap {
    HeaderMap::new()
}

pub fn rate_limited_detail(retry_after: u64) -> String {
    format!("Rate limit exceeded. Try again in {}s.", retry_after.max(1))
}
