//! Daily summaries (API.md §13.C): generation of one user-local day, and the scheduler that
//! generates the previous day for every user once it has ended in their timezone.
//!
//! The scheduler holds a lease in the database while it runs, so that among several replicas
//! only one generates at a time; the unique (user, date) key makes a summary exist at most once
//! even if two runs overlapped. It keeps no state of its own: every tick looks for the due day
//! of each user that has no summary yet, so a restart (or a run cut short) simply resumes.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::domain::conversations::Conversation;
use crate::domain::daily_summaries::DailySummary;
use crate::domain::ids::new_id;
use crate::domain::paging::Page;
use crate::domain::time::{self, Timestamp};
use crate::processing::Processor;
use crate::processing::insights::{day_bounds, due_day, parse_timezone, summarize_day};
use crate::store::conversations::ConversationFilter;
use crate::store::insights::SummaryOrigin;
use crate::store::{Store, StoreResult};

pub const LEASE_NAME: &str = "daily_summaries";
/// How long a lease lasts without renewal: a replica that stops renewing (it crashed) hands
/// over to another after this.
pub const LEASE_DURATION: Duration = Duration::minutes(2);
/// The scheduler's tick.
pub const TICK: StdDuration = StdDuration::from_secs(60);
/// Days before the due one that a run still fills in when they have no summary (the server was
/// down at their turn).
pub const CATCH_UP_DAYS: i64 = 6;
/// Conversations are read a page at a time.
const PAGE: i64 = 100;

/// What asking for a day's summary did.
#[derive(Debug, Clone, PartialEq)]
pub enum Generated {
    Created(Box<DailySummary>),
    /// The day already has a summary: none is made twice.
    Exists,
    /// The day has no kept conversation: no summary is made.
    NoConversations,
}

/// The user's timezone; an unreadable stored name counts as UTC.
pub async fn user_timezone(store: &dyn Store, user_id: &str) -> StoreResult<Tz> {
    Ok(store
        .user_timezone(user_id)
        .await?
        .as_deref()
        .and_then(parse_timezone)
        .unwrap_or(Tz::UTC))
}

/// The kept conversations created within `[from, before)`.
async fn conversations_between(
    store: &dyn Store,
    user_id: &str,
    from: Timestamp,
    before: Timestamp,
) -> StoreResult<Vec<Conversation>> {
    let filter = ConversationFilter {
        created_from: Some(from),
        created_before: Some(before),
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let page = Page {
            limit: PAGE,
            offset: all.len() as i64,
        };
        let batch = store
            .list_conversations(user_id, &filter, page, false)
            .await?;
        let done = (batch.len() as i64) < PAGE;
        all.extend(batch);
        if done {
            return Ok(all);
        }
    }
}

/// Makes and stores the summary of the user-local `date`, unless the day already has one or
/// has no kept conversation. The offline summary is made first; `processor` then rewrites its
/// written parts (with an LLM configured) and keeps them when it cannot.
pub async fn generate_day(
    store: &dyn Store,
    processor: &dyn Processor,
    user_id: &str,
    tz: Tz,
    date: NaiveDate,
    now: Timestamp,
) -> StoreResult<Generated> {
    if store.has_daily_summary(user_id, date).await? {
        return Ok(Generated::Exists);
    }
    let (from, before) = day_bounds(tz, date);
    let conversations = conversations_between(store, user_id, from, before).await?;
    let Some(summary) = summarize_day(new_id(), date, now, tz, &conversations) else {
        return Ok(Generated::NoConversations);
    };
    let summary = processor.write_day(summary, &conversations).await;
    if store
        .save_daily_summary(user_id, &summary, SummaryOrigin::Generated)
        .await?
    {
        Ok(Generated::Created(Box::new(summary)))
    } else {
        Ok(Generated::Exists)
    }
}

/// What one scheduler run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunReport {
    /// Whether this replica held the lease (and so ran).
    pub ran: bool,
    pub created: usize,
}

/// One scheduler run as of `now`: with the lease, the due day of every user (the previous
/// local day once it is 00:10 in their timezone) and the [`CATCH_UP_DAYS`] before it get their
/// summary if they have none, so days missed while no server ran are made up.
pub async fn run_due(
    store: &dyn Store,
    processor: &dyn Processor,
    holder: &str,
    now: Timestamp,
) -> StoreResult<RunReport> {
    if !store
        .acquire_lease(LEASE_NAME, holder, now, now + LEASE_DURATION)
        .await?
    {
        return Ok(RunReport::default());
    }
    let mut report = RunReport {
        ran: true,
        created: 0,
    };
    let mut renewed_at = time::now();
    for (user_id, timezone) in store.user_timezones().await? {
        // A long run renews its lease, and stops if another replica took it over.
        let clock = time::now();
        if clock - renewed_at > LEASE_DURATION / 2 {
            if !store
                .acquire_lease(LEASE_NAME, holder, clock, clock + LEASE_DURATION)
                .await?
            {
                break;
            }
            renewed_at = clock;
        }
        let tz = parse_timezone(&timezone).unwrap_or(Tz::UTC);
        let due = due_day(tz, now);
        for back in (0..=CATCH_UP_DAYS).rev() {
            let date = due - Duration::days(back);
            match generate_day(store, processor, &user_id, tz, date, now).await {
                Ok(Generated::Created(_)) => report.created += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%user_id, %date, error = %error, "daily summary not generated");
                }
            }
        }
    }
    Ok(report)
}

/// Runs the scheduler every minute until `stop` is cancelled.
pub fn spawn_scheduler(
    store: Arc<dyn Store>,
    processor: Arc<dyn Processor>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let holder = new_id();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match run_due(&*store, &*processor, &holder, time::now()).await {
                Ok(report) if report.created > 0 => {
                    tracing::info!(created = report.created, "daily summaries generated");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "daily summary run failed"),
            }
        }
    })
}
