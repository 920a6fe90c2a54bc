//! Goals, each with its recorded values drawn as a small inline SVG line chart.

use axum::extract::State;
use chrono::Duration;
use minijinja::context;

use crate::console::pages::PageResult;
use crate::console::session::Session;
use crate::console::view::page;
use crate::domain::goals::GoalProgress;
use crate::domain::paging::Page;
use crate::domain::time;
use crate::state::AppState;

/// How far back the chart looks.
const HISTORY_DAYS: i64 = 90;
const CHART_WIDTH: f64 = 300.0;
const CHART_HEIGHT: f64 = 80.0;
const MAX_GOALS: i64 = 100;

pub async fn list(State(state): State<AppState>, session: Session) -> PageResult {
    let goals = state
        .store
        .list_goals(
            &session.user.id,
            true,
            Page {
                limit: MAX_GOALS,
                offset: 0,
            },
        )
        .await?;
    let since = (time::now() - Duration::days(HISTORY_DAYS)).date_naive();
    let mut shown = Vec::with_capacity(goals.len());
    for goal in goals {
        let history = state
            .store
            .goal_history(&session.user.id, &goal.id, since)
            .await?
            .unwrap_or_default();
        let chart = chart_points(
            &history,
            goal.min_value,
            goal.target_value.max(goal.max_value),
        );
        let first = history.last().map(|p| p.date.to_string());
        let last = history.first().map(|p| p.date.to_string());
        shown.push(context! { goal, chart, points => history.len(), first, last });
    }
    page(
        &session,
        "goals",
        "goals.html",
        context! { goals => shown, width => CHART_WIDTH, height => CHART_HEIGHT, days => HISTORY_DAYS },
    )
}

/// The `points` of an SVG polyline: oldest value on the left, the value range bottom to top.
/// `history` is newest first, as the store gives it.
fn chart_points(history: &[GoalProgress], low: f64, high: f64) -> String {
    let values: Vec<f64> = history.iter().rev().map(|p| p.value).collect();
    let low = values.iter().copied().fold(low, f64::min);
    let high = values.iter().copied().fold(high, f64::max);
    let span = if high > low { high - low } else { 1.0 };
    let step = if values.len() > 1 {
        CHART_WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let x = index as f64 * step;
            let y = CHART_HEIGHT - (value - low) / span * CHART_HEIGHT;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn progress(day: u32, value: f64) -> GoalProgress {
        GoalProgress {
            date: NaiveDate::from_ymd_opt(2026, 1, day).unwrap(),
            value,
            recorded_at: time::now(),
        }
    }

    #[test]
    fn the_chart_runs_oldest_to_newest_within_the_box() {
        // Newest first, as stored.
        let history = [progress(3, 10.0), progress(2, 5.0), progress(1, 0.0)];
        assert_eq!(
            chart_points(&history, 0.0, 10.0),
            "0.0,80.0 150.0,40.0 300.0,0.0"
        );
        assert_eq!(chart_points(&[], 0.0, 10.0), "");
    }
}
