//! Values as pages show them: instants in the viewer's time zone (the script rewrites
//! them in the browser's own format), durations, and a task as a row of the task list.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use worklane_domain::Task;

/// An instant: machine-readable for `<time datetime>`, and as text in the viewer's zone.
#[derive(Debug, Clone)]
pub struct Time {
    pub iso: String,
    pub text: String,
}

pub fn time(t: Timestamp, tz: &TimeZone) -> Time {
    Time {
        iso: t.to_string(),
        text: t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
    }
}

/// A duration as people read it: `45 s`, `12 min`, `3.5 h`, `2.1 d`.
pub fn duration(secs: f64) -> String {
    match secs {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

/// A ratio as a percentage, or a dash when there is none.
pub fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

/// A task as a row of the task list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub capture_id: String,
    pub capture_point_id: String,
    pub status: &'static str,
    pub priority: i32,
    pub process: String,
    pub queue: String,
    pub agent: String,
    pub due: Option<Time>,
    pub overdue: bool,
    pub created: Time,
}

impl Row {
    pub fn of(t: &Task, now: Timestamp, tz: &TimeZone) -> Self {
        Row {
            id: t.broker_id.0,
            capture_id: t.capture_id.clone(),
            capture_point_id: t.capture_point_id.clone(),
            status: t.status.as_str(),
            priority: t.priority,
            process: t.process_id.clone().unwrap_or_default(),
            queue: t
                .queue
                .clone()
                .or_else(|| {
                    t.queue_type
                        .zip(t.queue_target.as_ref())
                        .map(|(k, target)| format!("{}:{target}", k.as_str()))
                })
                .unwrap_or_default(),
            agent: t
                .assigned_to_user
                .clone()
                .or_else(|| t.offer.as_ref().map(|o| format!("{} (offered)", o.agent)))
                .unwrap_or_default(),
            due: t.due_date_time.map(|d| time(d, tz)),
            overdue: is_overdue(t, now),
            created: time(t.created_date_time, tz),
        }
    }
}

/// Open and past its due date.
pub fn is_overdue(t: &Task, now: Timestamp) -> bool {
    !t.status.is_final() && t.due_date_time.is_some_and(|d| d < now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_show_in_the_viewers_zone() {
        let t: Timestamp = "2026-07-01T10:00:00Z".parse().unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let shown = time(t, &paris);
        assert_eq!(shown.iso, "2026-07-01T10:00:00Z");
        assert_eq!(shown.text, "2026-07-01 12:00:00 CEST");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(600.0), "10 min");
        assert_eq!(duration(9000.0), "2.5 h");
        assert_eq!(duration(3.0 * 86_400.0), "3.0 d");
        assert_eq!(percent(Some(0.5)), "50.0 %");
        assert_eq!(percent(None), "–");
    }
}
