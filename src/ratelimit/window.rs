//! Window arithmetic: calendar minutes and UTC days on Unix time, and turning counts into a
//! [`Decision`]. Pure functions, shared by every limiter so they cannot disagree.

use super::{Decision, FailedAuthVerdict, HourlyVerdict, Limits, WindowName, WindowStatus};

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// One fixed window `[start_ms, end_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// The window of length `len_ms` that contains `now_ms`. Unix time has no leap seconds, so
    /// calendar minutes and UTC days are plain multiples of their length.
    pub fn containing(now_ms: i64, len_ms: i64) -> Self {
        let start_ms = now_ms - now_ms.rem_euclid(len_ms);
        Self {
            start_ms,
            end_ms: start_ms + len_ms,
        }
    }

    pub fn minute(now_ms: i64) -> Self {
        Self::containing(now_ms, MINUTE_MS)
    }

    pub fn day(now_ms: i64) -> Self {
        Self::containing(now_ms, DAY_MS)
    }

    /// Unix seconds at which the window resets (window ends fall on whole seconds).
    pub fn reset_at(&self) -> i64 {
        self.end_ms.div_euclid(1000)
    }

    /// Whole seconds until the reset, rounded up so a client that waits this long is never
    /// early; at least 1.
    pub fn reset_in(&self, now_ms: i64) -> u64 {
        let left_ms = (self.end_ms - now_ms).max(0);
        let secs = (left_ms + 999) / 1000;
        u64::try_from(secs).unwrap_or(u64::MAX).max(1)
    }
}

/// Whether a window with `limit` (0 = off) admits one more request after `used` ones.
pub(crate) fn admits(limit: u64, used: u64) -> bool {
    limit == 0 || used < limit
}

/// Requests already admitted in the current windows, before the one being decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub minute: u64,
    pub day: u64,
}

/// Decide one request. A request is admitted only if every enabled window admits it, and only
/// an admitted request is counted, so the remaining figures reflect that.
pub(crate) fn evaluate(limits: &Limits, now_ms: i64, before: Usage) -> Decision {
    let allowed = admits(limits.per_minute, before.minute) && admits(limits.per_day, before.day);
    let counted = u64::from(allowed);
    let mut windows = Vec::with_capacity(2);
    let mut push = |name, limit: u64, used: u64, window: Window| {
        if limit == 0 {
            return;
        }
        windows.push(WindowStatus {
            name,
            limit,
            remaining: limit.saturating_sub(used.saturating_add(counted)),
            reset_at: window.reset_at(),
            reset_in: window.reset_in(now_ms),
            exceeded: !admits(limit, used),
        });
    };
    push(
        WindowName::Minute,
        limits.per_minute,
        before.minute,
        Window::minute(now_ms),
    );
    push(
        WindowName::Day,
        limits.per_day,
        before.day,
        Window::day(now_ms),
    );
    Decision { allowed, windows }
}

/// Verdict on a client address that has now failed `count` authentications in the current
/// minute (this one included).
pub(crate) fn failed_auth_verdict(limit: u64, count: u64, now_ms: i64) -> FailedAuthVerdict {
    FailedAuthVerdict {
        blocked: limit > 0 && count > limit,
        retry_after: Window::minute(now_ms).reset_in(now_ms),
    }
}

/// The verdict on a request after `used` admitted ones in the current hour.
pub(crate) fn hourly_verdict(limit: u64, used: u64, now_ms: i64) -> HourlyVerdict {
    let window = Window::containing(now_ms, HOUR_MS);
    let allowed = admits(limit, used);
    HourlyVerdict {
        allowed,
        limit,
        remaining: limit.saturating_sub(used.saturating_add(u64::from(allowed))),
        reset_at: window.reset_at(),
        reset_in: window.reset_in(now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-12-10T17:00:00Z, a whole minute.
    const T0: i64 = 1_765_386_000_000;
    // 2025-12-10T00:00:00Z, start of that UTC day.
    const DAY0: i64 = 1_765_324_800_000;

    fn limits(per_minute: u64, per_day: u64) -> Limits {
        Limits {
            per_minute,
            per_day,
            failed_auth_per_minute: 0,
        }
    }

    #[test]
    fn minute_boundary_is_exact() {
        let last = Window::minute(T0 + 59_999);
        assert_eq!(last.start_ms, T0);
        assert_eq!(last.reset_at(), T0 / 1000 + 60);
        assert_eq!(last.reset_in(T0 + 59_999), 1);

        let next = Window::minute(T0 + 60_000);
        assert_eq!(next.start_ms, T0 + 60_000);
        assert_eq!(next.reset_at(), T0 / 1000 + 120);
        assert_eq!(next.reset_in(T0 + 60_000), 60);
    }

    #[test]
    fn reset_in_rounds_up() {
        let w = Window::minute(T0);
        assert_eq!(w.reset_in(T0), 60);
        assert_eq!(w.reset_in(T0 + 1), 60);
        assert_eq!(w.reset_in(T0 + 42_000), 18);
        assert_eq!(w.reset_in(T0 + 42_001), 18);
        assert_eq!(w.reset_in(T0 + 41_999), 19);
    }

    #[test]
    fn utc_day_rolls_over_at_midnight() {
        assert_eq!(DAY0 % DAY_MS, 0);
        let before = Window::day(DAY0 + DAY_MS - 1);
        assert_eq!(before.start_ms, DAY0);
        assert_eq!(before.reset_at(), (DAY0 + DAY_MS) / 1000);
        assert_eq!(before.reset_in(DAY0 + DAY_MS - 1), 1);
        let after = Window::day(DAY0 + DAY_MS);
        assert_eq!(after.start_ms, DAY0 + DAY_MS);
        assert_eq!(after.reset_in(DAY0 + DAY_MS), 86_400);
        // 17:00 UTC is 7 hours before midnight.
        assert_eq!(Window::day(T0).reset_in(T0), 7 * 3600);
    }

    #[test]
    fn windows_before_1970_stay_aligned() {
        let w = Window::minute(-1);
        assert_eq!(w.start_ms, -60_000);
        assert_eq!(w.end_ms, 0);
    }

    #[test]
    fn admitted_request_counts_in_remaining() {
        let d = evaluate(
            &limits(100, 10_000),
            T0 + 42_000,
            Usage {
                minute: 57,
                day: 49,
            },
        );
        assert!(d.allowed);
        assert_eq!(d.windows.len(), 2);
        let m = &d.windows[0];
        assert_eq!(
            (m.name, m.limit, m.remaining, m.reset_in),
            (WindowName::Minute, 100, 42, 18)
        );
        assert_eq!(m.reset_at, T0 / 1000 + 60);
        assert!(!m.exceeded);
        let day = &d.windows[1];
        assert_eq!(
            (day.name, day.limit, day.remaining),
            (WindowName::Day, 10_000, 9_950)
        );
        assert_eq!(day.reset_in, 7 * 3600 - 42);
        assert_eq!(d.retry_after(), None);
    }

    #[test]
    fn last_request_of_window_is_admitted_next_is_not() {
        let last = evaluate(&limits(3, 0), T0, Usage { minute: 2, day: 0 });
        assert!(last.allowed);
        assert_eq!(last.windows[0].remaining, 0);
        let over = evaluate(&limits(3, 0), T0, Usage { minute: 3, day: 0 });
        assert!(!over.allowed);
        assert!(over.windows[0].exceeded);
        assert_eq!(over.windows[0].remaining, 0);
        assert_eq!(over.retry_after(), Some(60));
    }

    #[test]
    fn rejected_by_one_window_does_not_count_in_the_other() {
        let d = evaluate(&limits(5, 100), T0, Usage { minute: 5, day: 10 });
        assert!(!d.allowed);
        assert!(d.windows[0].exceeded);
        assert!(!d.windows[1].exceeded);
        assert_eq!(d.windows[1].remaining, 90);
    }

    #[test]
    fn retry_after_uses_the_later_reset_when_both_reject() {
        let d = evaluate(&limits(5, 5), T0 + 30_000, Usage { minute: 5, day: 5 });
        assert!(!d.allowed);
        assert!(d.windows.iter().all(|w| w.exceeded));
        assert_eq!(d.retry_after(), Some(7 * 3600 - 30));
        // Only the minute window rejects: its reset decides.
        let d = evaluate(&limits(5, 50), T0 + 30_000, Usage { minute: 5, day: 5 });
        assert_eq!(d.retry_after(), Some(30));
        // Only the day window rejects.
        let d = evaluate(&limits(50, 5), T0 + 30_000, Usage { minute: 5, day: 5 });
        assert_eq!(d.retry_after(), Some(7 * 3600 - 30));
    }

    #[test]
    fn zero_windows_are_off_and_not_reported() {
        let d = evaluate(
            &limits(0, 10),
            T0,
            Usage {
                minute: 1_000_000,
                day: 0,
            },
        );
        assert!(d.allowed);
        assert_eq!(d.windows.len(), 1);
        assert_eq!(d.windows[0].name, WindowName::Day);
        let d = evaluate(
            &limits(10, 0),
            T0,
            Usage {
                minute: 0,
                day: 1_000_000,
            },
        );
        assert_eq!(d.windows.len(), 1);
        assert_eq!(d.windows[0].name, WindowName::Minute);
        let d = evaluate(&limits(0, 0), T0, Usage { minute: 9, day: 9 });
        assert!(d.allowed);
        assert!(d.windows.is_empty());
    }

    #[test]
    fn failed_auth_blocks_only_past_the_limit() {
        assert!(!failed_auth_verdict(3, 3, T0).blocked);
        let v = failed_auth_verdict(3, 4, T0 + 50_500);
        assert!(v.blocked);
        assert_eq!(v.retry_after, 10);
        assert!(!failed_auth_verdict(0, u64::MAX, T0).blocked);
    }
}
