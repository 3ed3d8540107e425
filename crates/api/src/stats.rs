//! `GET /api/v1/stats`: the dashboard's figures (SPEC 11), from the counters the write
//! transactions keep (`worklane_store::Stats`), never from a scan of the tasks. The same
//! figures become Prometheus gauges each time `/metrics` is scraped.

use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use worklane_domain::Status;
use worklane_engine::Engine;
use worklane_store::{Period, PERIOD_MICROS};

/// Which day "today" is.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// An IANA time zone (e.g. `Europe/Paris`) whose midnight starts "today"; UTC when
    /// absent.
    pub time_zone: Option<String>,
}

/// Open tasks in one queue or process.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupCount {
    /// The queue or process; absent for tasks in none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub tasks: i64,
}

/// The tasks there are now.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backlog {
    /// Every status, with how many tasks are in it (0 included).
    pub by_status: BTreeMap<String, i64>,
    /// Open tasks (not Completed, Canceled or Rejected) by queue, most first.
    pub by_queue: Vec<GroupCount>,
    /// Open tasks by process, most first.
    pub by_process: Vec<GroupCount>,
    /// Open tasks whose due date has passed.
    pub overdue: i64,
}

/// Completions over a window.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub created: i64,
    pub completed: i64,
    /// Completed tasks that had a due date.
    pub completed_with_due: i64,
    /// Of those, completed at or before the due date.
    pub completed_on_time: i64,
    /// completedOnTime / completedWithDue; absent when nothing with a due date completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_attainment: Option<f64>,
    /// Average created → completed, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_finish_seconds: Option<f64>,
    /// Average assigned → completed, in seconds, of completions that were assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_handle_seconds: Option<f64>,
}

impl Window {
    fn of<'a>(periods: impl IntoIterator<Item = &'a Period>) -> Self {
        let mut sum = Period::default();
        for p in periods {
            sum.add(p);
        }
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        Window {
            created: sum.created,
            completed: sum.completed,
            completed_with_due: sum.completed_due,
            completed_on_time: sum.completed_on_time,
            sla_attainment: ratio(sum.completed_on_time, sum.completed_due),
            average_finish_seconds: ratio(sum.finish_us, sum.completed).map(|s| s / 1e6),
            average_handle_seconds: ratio(sum.handle_us, sum.handled).map(|s| s / 1e6),
        }
    }
}

/// One 15-minute period of the last 24 hours.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodCount {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    pub created: i64,
    pub completed: i64,
}

/// The dashboard's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    #[schema(value_type = String, format = DateTime)]
    pub generated_date_time: Timestamp,
    pub time_zone: String,
    pub backlog: Backlog,
    /// Since midnight in `timeZone`.
    pub today: Window,
    /// The last 7 days (168 hours).
    pub last7_days: Window,
    /// Created and completed per 15 minutes over the last 24 hours, oldest first (96).
    pub last24_hours: Vec<PeriodCount>,
}

/// The figures at the engine's clock, "today" starting at midnight in `tz`.
pub async fn compute(engine: &Engine, tz: &TimeZone) -> Result<StatsView, ApiError> {
    let stats = engine.stats();
    let now = engine.now();
    let counts = stats.backlog().await?;
    let overdue: i64 = stats.overdue(now).await?.iter().map(|(_, n)| n).sum();
    let mut by_status: BTreeMap<String, i64> = Status::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let mut by_queue: BTreeMap<Option<String>, i64> = BTreeMap::new();
    let mut by_process: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for c in counts {
        *by_status.entry(c.status.clone()).or_default() += c.tasks;
        let open = c.status.parse::<Status>().is_ok_and(|s| !s.is_final());
        if open {
            *by_queue.entry(c.queue).or_default() += c.tasks;
            *by_process.entry(c.process_id).or_default() += c.tasks;
        }
    }
    let most_first = |m: BTreeMap<Option<String>, i64>| {
        let mut v: Vec<GroupCount> = m
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(id, tasks)| GroupCount { id, tasks })
            .collect();
        v.sort_by(|a, b| b.tasks.cmp(&a.tasks).then_with(|| a.id.cmp(&b.id)));
        v
    };

    let period = |t: Timestamp| t.as_microsecond().div_euclid(PERIOD_MICROS) * PERIOD_MICROS;
    let week_ago = now - SignedDuration::from_hours(168);
    let midnight = now
        .to_zoned(tz.clone())
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let from = ts(period(week_ago.min(midnight)));
    let periods = stats
        .periods(from, now + SignedDuration::from_secs(1))
        .await?;
    let since = |t: Timestamp| {
        let start = period(t);
        periods.iter().filter(move |p| p.start_us >= start)
    };
    let day_start = period(now) - 95 * PERIOD_MICROS;
    let last24_hours = (0..96)
        .map(|i| {
            let start = day_start + i * PERIOD_MICROS;
            let p = periods.iter().find(|p| p.start_us == start);
            PeriodCount {
                start: ts(start),
                created: p.map_or(0, |p| p.created),
                completed: p.map_or(0, |p| p.completed),
            }
        })
        .collect();
    Ok(StatsView {
        generated_date_time: now,
        time_zone: tz.iana_name().unwrap_or("UTC").to_owned(),
        backlog: Backlog {
            by_status,
            by_queue: most_first(by_queue),
            by_process: most_first(by_process),
            overdue,
        },
        today: Window::of(since(midnight)),
        last7_days: Window::of(since(week_ago)),
        last24_hours,
    })
}

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The time zone named exactly as the bundled database names it, or a 400 naming it.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, ApiError> {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    let Some(n) = name else {
        return Ok(TimeZone::UTC);
    };
    let known = NAMES.get_or_init(|| {
        jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect()
    });
    let unknown = || ApiError::invalid("timeZone", format!("unknown time zone `{n}`"));
    if !known.contains(n) {
        return Err(unknown());
    }
    TimeZone::get(n).map_err(|_| unknown())
}

#[utoipa::path(get, path = "/api/v1/stats", tag = "stats", params(StatsParams),
    responses((status = 200, description = "backlog, overdue, SLA attainment, finish and handle times, throughput per 15 minutes", body = StatsView),
              (status = 400, description = "INVALID_FORMAT: an unknown time zone or parameter", body = ErrorBody),
              (status = 401, description = "UNAUTHENTICATED", body = ErrorBody),
              (status = 403, description = "FORBIDDEN: only admins and supervisors", body = ErrorBody),
              (status = 429, description = "TOO_MANY_REQUESTS", body = ErrorBody),
              (status = 503, description = "STORE_UNAVAILABLE", body = ErrorBody)))]
pub async fn get_stats(
    State(st): State<AppState>,
    Query(p): Query<StatsParams>,
) -> Result<Json<StatsView>, ApiError> {
    let tz = time_zone(p.time_zone.as_deref())?;
    Ok(Json(compute(&st.engine, &tz).await?))
}

/// Sets the figures' gauges (before `/metrics` renders): tasks by status, queue and
/// process, overdue, and today's SLA attainment and averages in UTC.
pub async fn update_gauges(engine: &Engine) -> Result<(), ApiError> {
    let stats = engine.stats();
    for c in stats.backlog().await? {
        metrics::gauge!("worklane_tasks",
            "status" => c.status,
            "queue" => c.queue.unwrap_or_default(),
            "process" => c.process_id.unwrap_or_default())
        .set(c.tasks as f64);
    }
    let view = compute(engine, &TimeZone::UTC).await?;
    metrics::gauge!("worklane_tasks_overdue").set(view.backlog.overdue as f64);
    for (window, w) in [("today", view.today), ("7d", view.last7_days)] {
        metrics::gauge!("worklane_tasks_completed", "window" => window).set(w.completed as f64);
        if let Some(a) = w.sla_attainment {
            metrics::gauge!("worklane_sla_attainment_ratio", "window" => window).set(a);
        }
        if let Some(s) = w.average_finish_seconds {
            metrics::gauge!("worklane_finish_seconds_average", "window" => window).set(s);
        }
        if let Some(s) = w.average_handle_seconds {
            metrics::gauge!("worklane_handle_seconds_average", "window" => window).set(s);
        }
    }
    Ok(())
}
