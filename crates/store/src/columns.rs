//! The indexed columns of a task's row, as a write transaction loaded them, so that
//! writing the task back sets only the columns that changed: SQLite rewrites every index
//! over a column an UPDATE sets, whether its value changed or not, and a reprioritization
//! changes two of the eleven.

use crate::{micros, reprioritize_at};
use std::collections::HashMap;
use worklane_domain::Task;

/// The indexed columns, in the order of [`Columns`]' bits.
pub(crate) const NAMES: [&str; 15] = [
    "capture_point_id",
    "capture_id",
    "status",
    "priority",
    "process_id",
    "queue",
    "assigned_to_user",
    "activation_at",
    "due_at",
    "expiration_at",
    "reprioritize_at",
    "offered_to",
    "offer_expires_at",
    "queue_target",
    "channel",
];

/// The bit of [`Columns::changed`] past the columns': set when the task moved between
/// live and finished (`Status::is_final`).
pub(crate) const FINISHED: u16 = 1 << NAMES.len();

/// The columns PostgreSQL keeps in `task_keys` too (migration 0021), in its order:
/// capture_point_id, capture_id, process_id, due_at.
pub(crate) const KEY_COLUMNS: [usize; 4] = [0, 1, 4, 8];

/// The changes PostgreSQL writes to a task's row of `task_keys`: its [`KEY_COLUMNS`], or
/// whether it has finished.
pub(crate) const KEYS: u16 = 1 << KEY_COLUMNS[0]
    | 1 << KEY_COLUMNS[1]
    | 1 << KEY_COLUMNS[2]
    | 1 << KEY_COLUMNS[3]
    | FINISHED;

/// A task's value for one indexed column, typed as the column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'t> {
    Text(Option<&'t str>),
    Status(&'static str),
    Int(i32),
    Time(Option<i64>),
}

/// The value of indexed column `i` (`NAMES[i]`) for `t`: the one mapping of a task to
/// its columns that both backends bind from.
pub(crate) fn value(i: usize, t: &Task) -> Value<'_> {
    use Value::{Text, Time};
    match i {
        0 => Text(Some(&t.capture_point_id)),
        1 => Text(Some(&t.capture_id)),
        2 => Value::Status(t.status.as_str()),
        3 => Value::Int(t.priority),
        4 => Text(t.process_id.as_deref()),
        5 => Text(t.queue.as_deref()),
        6 => Text(t.assigned_to_user.as_deref()),
        7 => Time(t.activation_date_time.map(micros)),
        8 => Time(t.due_date_time.map(micros)),
        9 => Time(t.expiration_date_time.map(micros)),
        10 => Time(reprioritize_at(t).map(micros)),
        11 => Text(t.offer.as_ref().map(|o| o.agent.as_str())),
        12 => Time(t.offer.as_ref().map(|o| micros(o.expires_date_time))),
        13 => Text(t.queue_target.as_deref()),
        _ => Text(t.channel.as_deref()),
    }
}

/// One row's indexed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Columns {
    capture_point_id: String,
    capture_id: String,
    status: &'static str,
    /// Whether `status` is final.
    finished: bool,
    priority: i32,
    process_id: Option<String>,
    queue: Option<String>,
    assigned_to_user: Option<String>,
    activation_at: Option<i64>,
    due_at: Option<i64>,
    expiration_at: Option<i64>,
    reprioritize_at: Option<i64>,
    offered_to: Option<String>,
    offer_expires_at: Option<i64>,
    queue_target: Option<String>,
    channel: Option<String>,
}

impl Columns {
    pub(crate) fn of(t: &Task) -> Self {
        Self {
            capture_point_id: t.capture_point_id.clone(),
            capture_id: t.capture_id.clone(),
            status: t.status.as_str(),
            finished: t.status.is_final(),
            priority: t.priority,
            process_id: t.process_id.clone(),
            queue: t.queue.clone(),
            assigned_to_user: t.assigned_to_user.clone(),
            activation_at: t.activation_date_time.map(micros),
            due_at: t.due_date_time.map(micros),
            expiration_at: t.expiration_date_time.map(micros),
            reprioritize_at: reprioritize_at(t).map(micros),
            offered_to: t.offer.as_ref().map(|o| o.agent.clone()),
            offer_expires_at: t.offer.as_ref().map(|o| micros(o.expires_date_time)),
            queue_target: t.queue_target.clone(),
            channel: t.channel.clone(),
        }
    }

    /// A bit for each column whose value in `t` differs from this row's (bit i is
    /// `NAMES[i]`), and [`FINISHED`]. Compares in place: this runs for every row a
    /// transaction writes back.
    pub(crate) fn changed(&self, t: &Task) -> u16 {
        let differs = [
            self.capture_point_id != t.capture_point_id,
            self.capture_id != t.capture_id,
            self.status != t.status.as_str(),
            self.priority != t.priority,
            self.process_id != t.process_id,
            self.queue != t.queue,
            self.assigned_to_user != t.assigned_to_user,
            self.activation_at != t.activation_date_time.map(micros),
            self.due_at != t.due_date_time.map(micros),
            self.expiration_at != t.expiration_date_time.map(micros),
            self.reprioritize_at != reprioritize_at(t).map(micros),
            self.offered_to.as_deref() != t.offer.as_ref().map(|o| o.agent.as_str()),
            self.offer_expires_at != t.offer.as_ref().map(|o| micros(o.expires_date_time)),
            self.queue_target != t.queue_target,
            self.channel != t.channel,
        ];
        let finished = self.finished != t.status.is_final();
        differs
            .iter()
            .enumerate()
            .filter(|(_, d)| **d)
            .fold(if finished { FINISHED } else { 0 }, |m, (i, _)| {
                m | (1 << i)
            })
    }
}

/// The JSON of tasks as their events carried them, by brokerId and version: an event's
/// body ends with its task's snapshot, which is what the task's row holds once the
/// transaction writes it, so the task need not be serialized a second time.
#[derive(Debug, Default)]
pub(crate) struct Bodies(HashMap<(i64, i64), String>);

/// How an event's body carries its task: the last field.
const TASK_FIELD: &str = ",\"task\":{\"brokerId\":";

impl Bodies {
    /// Keeps the task snapshot found at the end of `event_body`, the JSON of `task`.
    pub(crate) fn keep(&mut self, task: &Task, event_body: &str) {
        // No string value can hold the field's text (its quotes would be escaped), and
        // no attribute nests a task, so the one match is the event's own field.
        if let Some(at) = event_body.rfind(TASK_FIELD) {
            if let Some(json) = event_body[at + ",\"task\":".len()..].strip_suffix('}') {
                self.0
                    .insert((task.broker_id.0, task.version), json.to_owned());
            }
        }
    }

    /// The JSON of `t`: the snapshot its last event carried, or serialized now.
    pub(crate) fn take(&mut self, t: &Task) -> Result<String, serde_json::Error> {
        match self.0.remove(&(t.broker_id.0, t.version)) {
            Some(json) => Ok(json),
            None => worklane_domain::stored::stored(|| serde_json::to_string(t)),
        }
    }
}

/// The rows a transaction has read, by brokerId.
#[derive(Debug, Default)]
pub(crate) struct Seen(HashMap<i64, Columns>);

impl Seen {
    /// The status, queue and process ('' for none) task `id` had when this transaction
    /// read it (None: not read).
    pub(crate) fn group(&self, id: i64) -> Option<(&'static str, String, String)> {
        self.0.get(&id).map(|c| {
            (
                c.status,
                c.queue.clone().unwrap_or_default(),
                c.process_id.clone().unwrap_or_default(),
            )
        })
    }

    /// The due period task `id` is counted in among open tasks when this transaction read
    /// it (`Some(None)`: read, but finished or without a due date; None: not read).
    pub(crate) fn due_period(&self, id: i64) -> Option<Option<crate::stats::DueKey>> {
        self.0
            .get(&id)
            .map(|c| crate::stats::open_due_period(c.status, c.queue.as_deref(), c.due_at))
    }

    pub(crate) fn record(&mut self, tasks: &[Task]) {
        self.0.reserve(tasks.len());
        for t in tasks {
            self.0
                .entry(t.broker_id.0)
                .or_insert_with(|| Columns::of(t));
        }
    }

    /// Splits `tasks` into rows to insert (or replace whole) and rows this transaction
    /// read, grouped by the columns that changed.
    pub(crate) fn split<'t>(
        &self,
        tasks: &[&'t Task],
    ) -> (Vec<&'t Task>, Vec<(u16, Vec<&'t Task>)>) {
        let mut whole = Vec::new();
        let mut groups: Vec<(u16, Vec<&Task>)> = Vec::new();
        for t in tasks {
            match self.0.get(&t.broker_id.0) {
                None => whole.push(*t),
                Some(c) => {
                    let mask = c.changed(t);
                    match groups.iter_mut().find(|(m, _)| *m == mask) {
                        Some((_, g)) => g.push(*t),
                        None => groups.push((mask, vec![*t])),
                    }
                }
            }
        }
        (whole, groups)
    }

    /// Forgets rows the transaction deleted.
    pub(crate) fn forget(&mut self, ids: &[i64]) {
        for id in ids {
            self.0.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use worklane_domain::{Status, Timestamp};

    #[test]
    fn a_task_kept_from_its_event_is_the_task_serialized() {
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        let new = worklane_domain::NewTask {
            capture_point_id: "cp".into(),
            fields: serde_json::from_value(serde_json::json!({
                "captureId": "c,\"task\":{\"brokerId\":1}",
                "data": {"task": "{\"brokerId\":2}", "k": "\\\"}"},
            }))
            .unwrap(),
            hold: false,
            on_duplicate: Default::default(),
        };
        let tr = worklane_domain::action::create(
            &new,
            worklane_domain::BrokerId(7),
            &Default::default(),
            now,
        );
        let event = worklane_domain::Event::from_parts(3, tr.event, tr.task.clone());
        let body = worklane_domain::stored::stored(|| serde_json::to_string(&event)).unwrap();
        let mut bodies = Bodies::default();
        bodies.keep(&tr.task, &body);
        let expected = worklane_domain::stored::stored(|| serde_json::to_string(&tr.task)).unwrap();
        assert_eq!(bodies.take(&tr.task).unwrap(), expected);
        // Taken once; another version is serialized afresh.
        let mut later = tr.task.clone();
        later.version += 1;
        later.priority = 9;
        assert_eq!(
            bodies.take(&later).unwrap(),
            worklane_domain::stored::stored(|| serde_json::to_string(&later)).unwrap()
        );
    }

    #[test]
    fn only_the_changed_columns_are_marked() {
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        let new = worklane_domain::NewTask {
            capture_point_id: "cp".into(),
            fields: Default::default(),
            hold: false,
            on_duplicate: Default::default(),
        };
        let mut t = worklane_domain::action::create(
            &new,
            worklane_domain::BrokerId(7),
            &Default::default(),
            now,
        )
        .task;
        t.status = Status::Queued;
        let mut seen = Seen::default();
        seen.record(std::slice::from_ref(&t));
        let mut u = t.clone();
        assert_eq!(Columns::of(&t).changed(&u), 0);
        u.priority += 10;
        u.reprioritize_date_time = Some(now);
        u.data.insert("k".into(), "v".into());
        let bits = |names: &[&str]| {
            names
                .iter()
                .map(|n| 1u16 << NAMES.iter().position(|c| c == n).unwrap())
                .sum::<u16>()
        };
        assert_eq!(
            Columns::of(&t).changed(&u),
            bits(&["priority", "reprioritize_at"])
        );
        // A status change marks FINISHED when it crosses into a final status.
        let mut routed = t.clone();
        routed.status = Status::Distributed;
        assert_eq!(Columns::of(&t).changed(&routed), bits(&["status"]));
        let mut done = routed.clone();
        done.status = Status::Completed;
        assert_eq!(
            Columns::of(&routed).changed(&done),
            bits(&["status"]) | FINISHED
        );
        assert_ne!(Columns::of(&routed).changed(&done) & KEYS, 0);
        assert_eq!(Columns::of(&t).changed(&u) & KEYS, 0);
        let mut other = t.clone();
        other.broker_id = worklane_domain::BrokerId(8);
        let (whole, groups) = seen.split(&[&u, &other]);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].broker_id.0, 8);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0, bits(&["priority", "reprioritize_at"]));
    }
}
