//! In-process limiter: exact for one replica, nothing shared.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::window::{self, Usage, Window};
use super::{
    Clock, Decision, FailedAuthVerdict, HourlyVerdict, Limiter, LimiterUnavailable, Limits,
    SystemClock, UsageSnapshot,
};

/// Counters of one fixed window. Every entry belongs to `window_start`, so when the window
/// moves the whole map is dropped at once: memory holds only the current window's keys.
#[derive(Debug, Default)]
struct WindowCounts {
    window_start: i64,
    counts: HashMap<String, u64>,
}

impl WindowCounts {
    /// Move to `window`, forgetting the previous one. Any change counts (not only forward), so
    /// a wall clock stepped back cannot pin counters in a window that has not come yet.
    fn enter(&mut self, window: Window) {
        if self.window_start != window.start_ms {
            self.window_start = window.start_ms;
            // Replace rather than clear, so the capacity of a busy window is returned too.
            self.counts = HashMap::new();
        }
    }

    fn get(&self, id: &str) -> u64 {
        self.counts.get(id).copied().unwrap_or(0)
    }

    fn increment(&mut self, id: &str) -> u64 {
        // Look up before inserting so the common case allocates nothing.
        if let Some(count) = self.counts.get_mut(id) {
            *count = count.saturating_add(1);
            return *count;
        }
        self.counts.insert(id.to_owned(), 1);
        1
    }
}

/// Minute and day counters live under one lock so a request is checked and counted in both
/// windows atomically.
#[derive(Debug, Default)]
struct RequestCounts {
    per_key_minute: WindowCounts,
    per_user_day: WindowCounts,
}

pub struct InMemoryLimiter {
    limits: Limits,
    clock: Arc<dyn Clock>,
    requests: Mutex<RequestCounts>,
    failed_auth: Mutex<WindowCounts>,
    /// Extra hourly windows, keyed by `bucket:key_id`.
    hourly: Mutex<WindowCounts>,
}

impl InMemoryLimiter {
    pub fn new(limits: Limits) -> Self {
        Self::with_clock(limits, Arc::new(SystemClock))
    }

    pub fn with_clock(limits: Limits, clock: Arc<dyn Clock>) -> Self {
        Self {
            limits,
            clock,
            requests: Mutex::new(RequestCounts::default()),
            failed_auth: Mutex::new(WindowCounts::default()),
            hourly: Mutex::new(WindowCounts::default()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Counters currently held (keys, users and client addresses), to check memory stays bounded.
    pub fn tracked_entries(&self) -> usize {
        let requests = self.requests.lock();
        requests.per_key_minute.counts.len()
            + requests.per_user_day.counts.len()
            + self.failed_auth.lock().counts.len()
    }

    fn check(&self, key_id: &str, user_id: &str) -> Decision {
        let limits = &self.limits;
        let mut counts = self.requests.lock();
        // Read the clock under the lock: callers are then ordered the same way as their
        // timestamps, and one that read an older time cannot roll a window back.
        let now_ms = self.clock.now_unix_millis();
        let mut before = Usage::default();
        if limits.per_minute > 0 {
            counts.per_key_minute.enter(Window::minute(now_ms));
            before.minute = counts.per_key_minute.get(key_id);
        }
        if limits.per_day > 0 {
            counts.per_user_day.enter(Window::day(now_ms));
            before.day = counts.per_user_day.get(user_id);
        }
        let decision = window::evaluate(limits, now_ms, before);
        if decision.allowed {
            if limits.per_minute > 0 {
                counts.per_key_minute.increment(key_id);
            }
            if limits.per_day > 0 {
                counts.per_user_day.increment(user_id);
            }
        }
        decision
    }

    fn fail_auth(&self, client: &str) -> FailedAuthVerdict {
        let limit = self.limits.failed_auth_per_minute;
        if limit == 0 {
            return FailedAuthVerdict {
                blocked: false,
                retry_after: 1,
            };
        }
        let mut counts = self.failed_auth.lock();
        let now_ms = self.clock.now_unix_millis();
        counts.enter(Window::minute(now_ms));
        let count = counts.increment(client);
        window::failed_auth_verdict(limit, count, now_ms)
    }
}

#[async_trait::async_trait]
impl Limiter for InMemoryLimiter {
    async fn check_request(
        &self,
        key_id: &str,
        user_id: &str,
    ) -> Result<Decision, LimiterUnavailable> {
        Ok(self.check(key_id, user_id))
    }

    async fn register_failed_auth(
        &self,
        client: &str,
    ) -> Result<FailedAuthVerdict, LimiterUnavailable> {
        Ok(self.fail_auth(client))
    }

    async fn ping(&self) -> Result<(), LimiterUnavailable> {
        Ok(())
    }

    async fn usage(
        &self,
        user_id: &str,
        key_ids: &[String],
    ) -> Result<UsageSnapshot, LimiterUnavailable> {
        let limits = &self.limits;
        let mut counts = self.requests.lock();
        let now_ms = self.clock.now_unix_millis();
        let mut snapshot = UsageSnapshot::default();
        if limits.per_minute > 0 {
            // Entering the current window only drops counters that no longer count.
            counts.per_key_minute.enter(Window::minute(now_ms));
            snapshot.minute = Some(
                key_ids
                    .iter()
                    .map(|key| counts.per_key_minute.get(key))
                    .collect(),
            );
        }
        if limits.per_day > 0 {
            counts.per_user_day.enter(Window::day(now_ms));
            snapshot.day = Some(counts.per_user_day.get(user_id));
        }
        Ok(snapshot)
    }

    async fn check_hourly(
        &self,
        bucket: &str,
        key_id: &str,
        _user_id: &str,
        limit: u64,
    ) -> Result<HourlyVerdict, LimiterUnavailable> {
        let mut counts = self.hourly.lock();
        let now_ms = self.clock.now_unix_millis();
        counts.enter(Window::containing(now_ms, window::HOUR_MS));
        let id = format!("{bucket}:{key_id}");
        let verdict = window::hourly_verdict(limit, counts.get(&id), now_ms);
        if verdict.allowed {
            counts.increment(&id);
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{ManualClock, WindowName};

    // 2025-12-10T23:59:00Z: one minute before a UTC day rolls over.
    const LAST_MINUTE: i64 = 1_765_411_140_000;

    fn limiter(per_minute: u64, per_day: u64, failed: u64) -> (InMemoryLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(LAST_MINUTE));
        let limits = Limits {
            per_minute,
            per_day,
            failed_auth_per_minute: failed,
        };
        (InMemoryLimiter::with_clock(limits, clock.clone()), clock)
    }

    fn admitted(l: &InMemoryLimiter, key: &str, user: &str, n: usize) -> usize {
        (0..n).filter(|_| l.check(key, user).allowed).count()
    }

    #[test]
    fn minute_window_admits_exactly_the_limit_and_resets_on_the_boundary() {
        let (l, clock) = limiter(3, 0, 0);
        clock.set(LAST_MINUTE - 60_000 + 59_000);
        assert_eq!(admitted(&l, "k", "u", 3), 3);
        clock.set(LAST_MINUTE - 1); // 59.999 of the same minute
        let d = l.check("k", "u");
        assert!(!d.allowed);
        assert_eq!(d.retry_after(), Some(1));
        assert_eq!(d.windows[0].reset_at, LAST_MINUTE / 1000);
        clock.set(LAST_MINUTE); // 60.000: the next minute
        let d = l.check("k", "u");
        assert!(d.allowed);
        assert_eq!(d.windows[0].remaining, 2);
        assert_eq!(d.windows[0].reset_in, 60);
        assert_eq!(d.windows[0].reset_at, LAST_MINUTE / 1000 + 60);
    }

    #[tokio::test]
    async fn an_hourly_window_admits_its_limit_per_key_until_the_hour_ends() {
        let (l, clock) = limiter(0, 0, 0);
        // LAST_MINUTE is 23:59:00, one minute before a new hour.
        for _ in 0..2 {
            assert!(l.check_hourly("ask", "k", "u", 2).await.unwrap().allowed);
        }
        let refused = l.check_hourly("ask", "k", "u", 2).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.reset_in), (0, 60));
        assert!(
            l.check_hourly("ask", "other", "u", 2)
                .await
                .unwrap()
                .allowed
        );
        clock.set(LAST_MINUTE + 60_000);
        let next = l.check_hourly("ask", "k", "u", 2).await.unwrap();
        assert!(next.allowed);
        assert_eq!(next.remaining, 1);
    }

    #[test]
    fn minute_window_is_per_key_and_day_window_per_user() {
        let (l, _clock) = limiter(2, 5, 0);
        assert_eq!(admitted(&l, "k1", "u", 5), 2);
        assert_eq!(admitted(&l, "k2", "u", 5), 2);
        // The day window of "u" has 1 left, shared by all its keys.
        assert_eq!(admitted(&l, "k3", "u", 5), 1);
        assert_eq!(admitted(&l, "k4", "u", 5), 0);
        assert_eq!(admitted(&l, "k5", "other", 5), 2);
    }

    #[test]
    fn rejected_requests_do_not_consume_quota() {
        let (l, clock) = limiter(2, 3, 0);
        clock.set(LAST_MINUTE - 60_000);
        assert_eq!(admitted(&l, "k", "u", 2), 2);
        // Ten rejections by the minute window must not eat the day window.
        assert_eq!(admitted(&l, "k", "u", 10), 0);
        clock.advance_millis(60_000);
        let d = l.check("k", "u");
        assert!(d.allowed);
        let day = d
            .windows
            .iter()
            .find(|w| w.name == WindowName::Day)
            .unwrap();
        assert_eq!(day.remaining, 0);
    }

    #[test]
    fn day_window_rolls_over_at_utc_midnight() {
        let (l, clock) = limiter(0, 2, 0);
        assert_eq!(admitted(&l, "k", "u", 3), 2);
        clock.set(LAST_MINUTE + 59_999);
        let d = l.check("k", "u");
        assert!(!d.allowed);
        assert_eq!(d.retry_after(), Some(1));
        assert_eq!(d.windows.len(), 1);
        clock.set(LAST_MINUTE + 60_000);
        let d = l.check("k", "u");
        assert!(d.allowed);
        assert_eq!(d.windows[0].remaining, 1);
        assert_eq!(d.windows[0].reset_in, 86_400);
    }

    #[test]
    fn both_windows_off_admits_everything_and_tracks_nothing() {
        let (l, _clock) = limiter(0, 0, 0);
        assert_eq!(admitted(&l, "k", "u", 1000), 1000);
        assert!(l.check("k", "u").windows.is_empty());
        assert_eq!(l.tracked_entries(), 0);
    }

    #[test]
    fn memory_is_bounded_by_the_current_window() {
        let (l, clock) = limiter(100, 0, 5);
        for i in 0..100_000 {
            assert!(l.check(&format!("key-{i}"), "u").allowed);
            l.fail_auth(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        assert_eq!(l.tracked_entries(), 200_000);
        clock.advance_millis(60_000);
        assert!(l.check("key-new", "u").allowed);
        l.fail_auth("10.9.9.9");
        assert_eq!(l.tracked_entries(), 2);
    }

    #[test]
    fn failed_auth_blocks_past_the_limit_until_the_minute_ends() {
        let (l, clock) = limiter(0, 0, 3);
        for _ in 0..3 {
            assert!(!l.fail_auth("1.2.3.4").blocked);
        }
        clock.advance_millis(45_500);
        let v = l.fail_auth("1.2.3.4");
        assert!(v.blocked);
        assert_eq!(v.retry_after, 15);
        assert!(!l.fail_auth("5.6.7.8").blocked);
        clock.advance_millis(14_500);
        assert!(!l.fail_auth("1.2.3.4").blocked);
    }

    #[test]
    fn failed_auth_off_never_blocks() {
        let (l, _clock) = limiter(1, 1, 0);
        for _ in 0..100 {
            assert!(!l.fail_auth("1.2.3.4").blocked);
        }
        assert_eq!(l.tracked_entries(), 0);
    }

    #[tokio::test]
    async fn concurrent_requests_admit_exactly_the_limit() {
        let (l, _clock) = limiter(50, 0, 0);
        let l = Arc::new(l);
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.check_request("k", "u").await.unwrap().allowed })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 50);
    }

    #[tokio::test]
    async fn usage_reads_the_current_windows_without_counting() {
        let (counting, clock) = limiter(10, 100, 0);
        let keys = ["key-a".to_string(), "key-b".to_string()];
        for _ in 0..3 {
            assert!(counting.check("key-a", "user-1").allowed);
        }
        assert!(counting.check("key-b", "user-1").allowed);
        let usage = counting.usage("user-1", &keys).await.unwrap();
        assert_eq!(usage.minute, Some(vec![3, 1]));
        assert_eq!(usage.day, Some(4));
        assert_eq!(
            counting.usage("user-1", &keys).await.unwrap(),
            usage,
            "reading counts nothing"
        );
        clock.advance_millis(60_000);
        let usage = counting.usage("user-1", &keys).await.unwrap();
        assert_eq!(usage.minute, Some(vec![0, 0]), "a new minute");
        assert_eq!(usage.day, Some(0), "and a new UTC day");

        let (off, _) = limiter(0, 0, 0);
        assert_eq!(
            off.usage("user-1", &keys).await.unwrap(),
            UsageSnapshot::default()
        );
    }
}
