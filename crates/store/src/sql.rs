//! SQL shared by both backends. SQLite and PostgreSQL accept the same statements here
//! (`$N` placeholders, `RETURNING`, `ON CONFLICT`), so one macro expands the operations
//! for each backend's types instead of fighting sqlx's generic bounds.

/// Expands, inside a backend module that defines `type Db`, `alloc_ids`, `alloc_seqs` and
/// `read_events_after`, the operations every backend shares.
macro_rules! shared_ops {
    () => {
        use $crate::command::{Command, CommandResult, Op, Outcome};
        use $crate::{micros, PageAfter, StoreError, TaskOrder, TaskQuery};
        use sqlx::{QueryBuilder, Row};
        use worklane_domain::{
            action, decide, BrokerId, DomainError, ErrorCode, Event, NewEvent, OnDuplicate,
            Task, TaskRef, Timestamp,
        };

        type Conn = <Db as sqlx::Database>::Connection;

        fn decode_task(body: &str) -> Result<Task, StoreError> {
            Ok(serde_json::from_str(body)?)
        }

        fn decode_event(seq: i64, body: &str) -> Result<Event, StoreError> {
            let mut e: Event = serde_json::from_str(body)?;
            e.seq = seq;
            Ok(e)
        }

        pub(crate) async fn get_task(
            conn: &mut Conn,
            id: BrokerId,
        ) -> Result<Option<Task>, StoreError> {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT body FROM tasks WHERE broker_id = $1")
                    .bind(id.0)
                    .fetch_optional(&mut *conn)
                    .await?;
            row.map(|(b,)| decode_task(&b)).transpose()
        }

        pub(crate) async fn find_task(
            conn: &mut Conn,
            task: &TaskRef,
        ) -> Result<Option<Task>, StoreError> {
            match task {
                TaskRef::Broker(id) => get_task(conn, *id).await,
                TaskRef::Capture { capture_point_id, capture_id } => {
                    let row: Option<(String,)> = sqlx::query_as(
                        "SELECT body FROM tasks WHERE capture_point_id = $1 AND capture_id = $2 \
                         ORDER BY broker_id LIMIT 1",
                    )
                    .bind(capture_point_id)
                    .bind(capture_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    row.map(|(b,)| decode_task(&b)).transpose()
                }
            }
        }

        /// A batch's view of the tasks it touches: what the database held before the
        /// batch (prefetched in a few queries), changed in memory as its commands are
        /// decided, and written once at the end.
        #[derive(Default)]
        struct Working {
            /// None: deleted in this batch.
            tasks: std::collections::HashMap<i64, Option<Task>>,
            /// Touched tasks, in first-touch order.
            dirty: Vec<i64>,
            /// Created in this batch (not in the database yet).
            created: std::collections::HashSet<i64>,
        }

        impl Working {
            fn find(&self, r: &TaskRef) -> Option<&Task> {
                match r {
                    TaskRef::Broker(id) => self.tasks.get(&id.0).and_then(Option::as_ref),
                    // The oldest live task with that captureId, as `find_task` answers.
                    TaskRef::Capture { capture_point_id, capture_id } => self
                        .tasks
                        .values()
                        .flatten()
                        .filter(|t| &t.capture_point_id == capture_point_id && &t.capture_id == capture_id)
                        .min_by_key(|t| t.broker_id),
                }
            }

            fn put(&mut self, id: i64, t: Option<Task>) {
                if !self.dirty.contains(&id) {
                    self.dirty.push(id);
                }
                self.tasks.insert(id, t);
            }
        }

        /// Loads every task the batch names (by brokerId, by captureId, or as a
        /// duplicate check), all rows for each captureId named.
        async fn prefetch(conn: &mut Conn, batch: &[Command]) -> Result<Working, StoreError> {
            let mut ids = std::collections::BTreeSet::new();
            let mut caps = std::collections::BTreeSet::new();
            for c in batch {
                match &c.op {
                    Op::Create(n) if n.on_duplicate != OnDuplicate::Allow => {
                        if let Some(cid) = &n.fields.capture_id {
                            caps.insert((n.capture_point_id.clone(), cid.clone()));
                        }
                    }
                    Op::Create(_) => {}
                    Op::Act { task: TaskRef::Broker(id), .. } => {
                        ids.insert(id.0);
                    }
                    Op::Act { task: TaskRef::Capture { capture_point_id, capture_id }, .. } => {
                        caps.insert((capture_point_id.clone(), capture_id.clone()));
                    }
                }
            }
            let mut w = Working::default();
            let ids: Vec<i64> = ids.into_iter().collect();
            for chunk in ids.chunks(500) {
                let mut qb = QueryBuilder::<Db>::new("SELECT body FROM tasks WHERE broker_id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                sep.push_unseparated(")");
                for row in qb.build().fetch_all(&mut *conn).await? {
                    let t = decode_task(row.try_get::<&str, _>(0)?)?;
                    w.tasks.insert(t.broker_id.0, Some(t));
                }
            }
            let caps: Vec<(String, String)> = caps.into_iter().collect();
            for chunk in caps.chunks(250) {
                let mut qb = QueryBuilder::<Db>::new("SELECT body FROM tasks WHERE ");
                for (i, (cp, cid)) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(capture_point_id = ").push_bind(cp.clone());
                    qb.push(" AND capture_id = ").push_bind(cid.clone()).push(")");
                }
                for row in qb.build().fetch_all(&mut *conn).await? {
                    let t = decode_task(row.try_get::<&str, _>(0)?)?;
                    w.tasks.insert(t.broker_id.0, Some(t));
                }
            }
            Ok(w)
        }

        /// Decides one command against the batch's working set. Returns its result and,
        /// when it changed something, the event to record (its seq comes later).
        fn decide_one(
            w: &mut Working,
            cmd: &Command,
            now: Timestamp,
            ids: &mut std::collections::VecDeque<i64>,
        ) -> (CommandResult, Option<(NewEvent, Task)>) {
            if let Err(e) = cmd.meta.validate() {
                return (Err(e), None);
            }
            match &cmd.op {
                Op::Create(new) => {
                    if let Err(e) = new.validate() {
                        return (Err(e), None);
                    }
                    if let (Some(cid), true) =
                        (&new.fields.capture_id, new.on_duplicate != OnDuplicate::Allow)
                    {
                        let r = TaskRef::Capture {
                            capture_point_id: new.capture_point_id.clone(),
                            capture_id: cid.clone(),
                        };
                        if let Some(existing) = w.find(&r) {
                            let result = match new.on_duplicate {
                                OnDuplicate::ReturnExisting => Ok(Outcome {
                                    task: existing.clone(),
                                    event: None,
                                    replayed: false,
                                }),
                                _ => Err(DomainError::new(
                                    ErrorCode::TaskAlreadyCaptured,
                                    format!(
                                        "task with CaptureId {cid:?} already captured by {} \
                                         as BrokerId {}",
                                        new.capture_point_id, existing.broker_id
                                    ),
                                )
                                .with_param(format!("CaptureId={cid}"))
                                .with_param(format!("BrokerId={}", existing.broker_id))),
                            };
                            return (result, None);
                        }
                    }
                    let id = ids.pop_front().expect("an id was drawn for every create");
                    let tr = action::create(new, BrokerId(id), &cmd.meta, now);
                    w.created.insert(id);
                    w.put(id, Some(tr.task.clone()));
                    let out = Outcome { task: tr.task.clone(), event: None, replayed: false };
                    (Ok(out), Some((tr.event, tr.task)))
                }
                Op::Act { task, action } => {
                    let Some(current) = w.find(task) else {
                        return (
                            Err(DomainError::new(
                                ErrorCode::TaskNotFound,
                                format!("no task with {}", task.as_param().replace('=', " ")),
                            )
                            .with_param(task.as_param())),
                            None,
                        );
                    };
                    let tr = match decide(current, action, &cmd.meta, now) {
                        Ok(tr) => tr,
                        Err(e) => return (Err(e), None),
                    };
                    let id = tr.task.broker_id.0;
                    w.put(id, (!tr.deleted).then(|| tr.task.clone()));
                    let out = Outcome { task: tr.task.clone(), event: None, replayed: false };
                    (Ok(out), Some((tr.event, tr.task)))
                }
            }
        }

        /// Runs a batch inside the caller's transaction with a fixed number of statements
        /// whatever its size: prefetch, decide every command in memory, then write the
        /// tasks, events and idempotency records with multi-row statements.
        pub(crate) async fn execute_batch(
            conn: &mut Conn,
            batch: Vec<Command>,
            now: Timestamp,
        ) -> Result<Vec<CommandResult>, StoreError> {
            // Results stored under idempotency keys: by earlier batches, then this one.
            let keys: Vec<&str> = batch.iter().filter_map(|c| c.idempotency_key.as_deref()).collect();
            let mut stored: std::collections::HashMap<String, String> = Default::default();
            for chunk in keys.chunks(500) {
                let mut qb = QueryBuilder::<Db>::new("SELECT key, result FROM requests WHERE key IN (");
                let mut sep = qb.separated(", ");
                for k in chunk {
                    sep.push_bind(k.to_string());
                }
                sep.push_unseparated(")");
                for row in qb.build().fetch_all(&mut *conn).await? {
                    stored.insert(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
                }
            }
            let mut w = prefetch(conn, &batch).await?;
            let creates = batch.iter().filter(|c| matches!(c.op, Op::Create(_))).count();
            let mut ids: std::collections::VecDeque<i64> =
                if creates > 0 { alloc_ids(conn, creates).await?.into() } else { Default::default() };

            let mut results: Vec<Option<CommandResult>> = Vec::with_capacity(batch.len());
            let mut pending: Vec<(usize, NewEvent, Task)> = Vec::new();
            // Commands whose result is kept, and commands answered from an earlier result.
            let mut keep: Vec<(usize, String)> = Vec::new();
            let mut replay_of: Vec<(usize, usize)> = Vec::new();
            let mut first_with_key: std::collections::HashMap<&str, usize> = Default::default();
            for (i, cmd) in batch.iter().enumerate() {
                if let Some(key) = cmd.idempotency_key.as_deref() {
                    if let Some(json) = stored.get(key) {
                        let mut r: CommandResult = serde_json::from_str(json)?;
                        if let Ok(o) = &mut r {
                            o.replayed = true;
                        }
                        results.push(Some(r));
                        continue;
                    }
                    if let Some(&first) = first_with_key.get(key) {
                        replay_of.push((i, first));
                        results.push(None);
                        continue;
                    }
                    first_with_key.insert(key, i);
                    keep.push((i, key.to_owned()));
                }
                let (r, ev) = decide_one(&mut w, cmd, now, &mut ids);
                if let Some((e, t)) = ev {
                    pending.push((i, e, t));
                }
                results.push(Some(r));
            }

            // Give the events their place in the log and put them in the results.
            let mut events = Vec::with_capacity(pending.len());
            if !pending.is_empty() {
                let seqs = alloc_seqs(conn, pending.len()).await?;
                for ((i, e, t), seq) in pending.into_iter().zip(seqs) {
                    let event = Event::from_parts(seq, e, t);
                    if let Some(Ok(o)) = &mut results[i] {
                        o.event = Some(event.clone());
                    }
                    events.push(event);
                }
            }
            for (i, first) in replay_of {
                let mut r = results[first].clone().expect("decided before its repeat");
                if let Ok(o) = &mut r {
                    o.replayed = true;
                }
                results[i] = Some(r);
            }

            write_tasks(conn, &w).await?;
            write_events(conn, &events).await?;
            for chunk in keep.chunks(500) {
                let mut qb = QueryBuilder::<Db>::new("INSERT INTO requests (key, result, created_at) ");
                let mut rows = Vec::with_capacity(chunk.len());
                for (i, key) in chunk {
                    rows.push((key, serde_json::to_string(results[*i].as_ref().expect("decided"))?));
                }
                qb.push_values(rows, |mut b, (key, json)| {
                    b.push_bind(key.clone()).push_bind(json).push_bind(micros(now));
                });
                qb.build().execute(&mut *conn).await?;
            }
            Ok(results.into_iter().map(|r| r.expect("every command has a result")).collect())
        }

        async fn write_tasks(conn: &mut Conn, w: &Working) -> Result<(), StoreError> {
            let live: Vec<&Task> = w.dirty.iter().filter_map(|id| w.tasks[id].as_ref()).collect();
            for chunk in live.chunks(400) {
                let mut qb = QueryBuilder::<Db>::new(
                    "INSERT INTO tasks (broker_id, capture_point_id, capture_id, status, priority, \
                     process_id, queue, assigned_to_user, activation_at, due_at, expiration_at, \
                     version, body) ",
                );
                let mut rows = Vec::with_capacity(chunk.len());
                for t in chunk {
                    rows.push((*t, serde_json::to_string(t)?));
                }
                qb.push_values(rows, |mut b, (t, body)| {
                    b.push_bind(t.broker_id.0)
                        .push_bind(t.capture_point_id.clone())
                        .push_bind(t.capture_id.clone())
                        .push_bind(t.status.as_str())
                        .push_bind(t.priority)
                        .push_bind(t.process_id.clone())
                        .push_bind(t.queue.clone())
                        .push_bind(t.assigned_to_user.clone())
                        .push_bind(t.activation_date_time.map(micros))
                        .push_bind(t.due_date_time.map(micros))
                        .push_bind(t.expiration_date_time.map(micros))
                        .push_bind(t.version)
                        .push_bind(body);
                });
                qb.push(
                    " ON CONFLICT (broker_id) DO UPDATE SET \
                     capture_point_id = excluded.capture_point_id, capture_id = excluded.capture_id, \
                     status = excluded.status, priority = excluded.priority, \
                     process_id = excluded.process_id, queue = excluded.queue, \
                     assigned_to_user = excluded.assigned_to_user, \
                     activation_at = excluded.activation_at, due_at = excluded.due_at, \
                     expiration_at = excluded.expiration_at, version = excluded.version, \
                     body = excluded.body",
                );
                qb.build().execute(&mut *conn).await?;
            }
            let gone: Vec<i64> = w
                .dirty
                .iter()
                .filter(|id| w.tasks[*id].is_none() && !w.created.contains(*id))
                .copied()
                .collect();
            for chunk in gone.chunks(500) {
                let mut qb = QueryBuilder::<Db>::new("DELETE FROM tasks WHERE broker_id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                sep.push_unseparated(")");
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        async fn write_events(conn: &mut Conn, events: &[Event]) -> Result<(), StoreError> {
            for chunk in events.chunks(1000) {
                let mut qb = QueryBuilder::<Db>::new(
                    "INSERT INTO events (seq, broker_id, capture_point_id, event_type, body) ",
                );
                let mut rows = Vec::with_capacity(chunk.len());
                for e in chunk {
                    rows.push((e, serde_json::to_string(e)?));
                }
                qb.push_values(rows, |mut b, (e, body)| {
                    b.push_bind(e.seq)
                        .push_bind(e.broker_id.0)
                        .push_bind(e.capture_point_id.clone())
                        .push_bind(e.event_type.as_str())
                        .push_bind(body);
                });
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        pub(crate) async fn list_tasks(
            conn: &mut Conn,
            q: &TaskQuery,
        ) -> Result<Vec<Task>, StoreError> {
            let mut qb = QueryBuilder::<Db>::new("SELECT body FROM tasks WHERE 1 = 1");
            if let Some(s) = q.status {
                qb.push(" AND status = ").push_bind(s.as_str());
            }
            if let Some(v) = &q.capture_point_id {
                qb.push(" AND capture_point_id = ").push_bind(v.clone());
            }
            if let Some(v) = &q.capture_id {
                qb.push(" AND capture_id = ").push_bind(v.clone());
            }
            if let Some(v) = &q.process_id {
                qb.push(" AND process_id = ").push_bind(v.clone());
            }
            if let Some(v) = &q.queue {
                qb.push(" AND queue = ").push_bind(v.clone());
            }
            if let Some(v) = &q.assigned_to_user {
                qb.push(" AND assigned_to_user = ").push_bind(v.clone());
            }
            if let Some(v) = q.due_before {
                qb.push(" AND due_at < ").push_bind(micros(v));
            }
            match (q.order, q.after) {
                (TaskOrder::BrokerId, after) => {
                    if let Some(PageAfter { broker_id, .. }) = after {
                        qb.push(" AND broker_id > ").push_bind(broker_id.0);
                    }
                    qb.push(" ORDER BY broker_id");
                }
                (TaskOrder::Priority, after) => {
                    if let Some(PageAfter { broker_id, priority }) = after {
                        qb.push(" AND (priority < ")
                            .push_bind(priority)
                            .push(" OR (priority = ")
                            .push_bind(priority)
                            .push(" AND broker_id > ")
                            .push_bind(broker_id.0)
                            .push("))");
                    }
                    qb.push(" ORDER BY priority DESC, broker_id");
                }
            }
            let limit = match q.limit {
                0 => 100,
                n => n.min(1000),
            };
            qb.push(" LIMIT ").push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(&mut *conn).await?;
            rows.iter().map(|r| decode_task(r.try_get::<&str, _>(0)?)).collect()
        }

        pub(crate) async fn events_after(
            conn: &mut Conn,
            after: i64,
            limit: u32,
        ) -> Result<Vec<Event>, StoreError> {
            read_events_after(conn, after, i64::from(limit.max(1))).await
        }

        pub(crate) async fn task_events(
            conn: &mut Conn,
            id: BrokerId,
        ) -> Result<Vec<Event>, StoreError> {
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT seq, body FROM events WHERE broker_id = $1 ORDER BY seq")
                    .bind(id.0)
                    .fetch_all(&mut *conn)
                    .await?;
            rows.iter().map(|(s, b)| decode_event(*s, b)).collect()
        }

        pub(crate) async fn last_seq(conn: &mut Conn) -> Result<i64, StoreError> {
            let (seq,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(seq) FROM events").fetch_one(&mut *conn).await?;
            Ok(seq.unwrap_or(0))
        }

        pub(crate) async fn cursor(conn: &mut Conn, consumer: &str) -> Result<i64, StoreError> {
            let row: Option<(i64,)> = sqlx::query_as("SELECT seq FROM cursors WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.map_or(0, |r| r.0))
        }

        pub(crate) async fn save_cursor(
            conn: &mut Conn,
            consumer: &str,
            seq: i64,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO cursors (consumer, seq, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, \
                 updated_at = excluded.updated_at",
            )
            .bind(consumer)
            .bind(seq)
            .bind(micros(now))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(crate) async fn tasks_to_process(
            conn: &mut Conn,
            now: Timestamp,
            limit: u32,
        ) -> Result<Vec<Task>, StoreError> {
            let limit = i64::from(limit.max(1));
            let mut rows: Vec<(String,)> = sqlx::query_as(
                "SELECT body FROM tasks WHERE status = 'Captured' ORDER BY broker_id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            let left = limit - rows.len() as i64;
            if left > 0 {
                let fresh: Vec<(String,)> = sqlx::query_as(
                    "SELECT body FROM tasks WHERE status = 'New' \
                     AND (activation_at IS NULL OR activation_at <= $1) LIMIT $2",
                )
                .bind(micros(now))
                .bind(left)
                .fetch_all(&mut *conn)
                .await?;
                rows.extend(fresh);
            }
            rows.iter().map(|(b,)| decode_task(b)).collect()
        }

        pub(crate) async fn tasks_expired(
            conn: &mut Conn,
            now: Timestamp,
            limit: u32,
        ) -> Result<Vec<Task>, StoreError> {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT body FROM tasks WHERE expiration_at <= $1 \
                 AND status IN ('Completed', 'Canceled', 'Rejected') LIMIT $2",
            )
            .bind(micros(now))
            .bind(i64::from(limit.max(1)))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|(b,)| decode_task(b)).collect()
        }

        pub(crate) async fn next_activation(
            conn: &mut Conn,
            now: Timestamp,
        ) -> Result<Option<Timestamp>, StoreError> {
            let (m,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(activation_at) FROM tasks WHERE status = 'New' AND activation_at > $1",
            )
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await?;
            Ok(m.and_then(|us| Timestamp::from_microsecond(us).ok()))
        }
    };
}

/// Implements [`crate::Store`] for a backend type whose module used [`shared_ops`] and
/// which has `read()`/`write()` pools and `begin_write()`.
macro_rules! impl_store {
    ($ty:ty, $ops:ident, $name:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $ty {
            async fn execute(
                &self,
                batch: Vec<$crate::Command>,
                now: worklane_domain::Timestamp,
            ) -> Result<Vec<$crate::CommandResult>, $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let out = $ops::execute_batch(&mut tx, batch, now).await?;
                tx.commit().await?;
                Ok(out)
            }
            async fn get_task(
                &self,
                id: worklane_domain::BrokerId,
            ) -> Result<Option<worklane_domain::Task>, $crate::StoreError> {
                $ops::get_task(&mut *self.read().acquire().await?, id).await
            }
            async fn find_task(
                &self,
                task: &worklane_domain::TaskRef,
            ) -> Result<Option<worklane_domain::Task>, $crate::StoreError> {
                $ops::find_task(&mut *self.read().acquire().await?, task).await
            }
            async fn list_tasks(
                &self,
                q: &$crate::TaskQuery,
            ) -> Result<Vec<worklane_domain::Task>, $crate::StoreError> {
                $ops::list_tasks(&mut *self.read().acquire().await?, q).await
            }
            async fn events_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<worklane_domain::Event>, $crate::StoreError> {
                $ops::events_after(&mut *self.read().acquire().await?, after, limit).await
            }
            async fn task_events(
                &self,
                id: worklane_domain::BrokerId,
            ) -> Result<Vec<worklane_domain::Event>, $crate::StoreError> {
                $ops::task_events(&mut *self.read().acquire().await?, id).await
            }
            async fn last_seq(&self) -> Result<i64, $crate::StoreError> {
                $ops::last_seq(&mut *self.read().acquire().await?).await
            }
            async fn cursor(&self, consumer: &str) -> Result<i64, $crate::StoreError> {
                $ops::cursor(&mut *self.read().acquire().await?, consumer).await
            }
            async fn save_cursor(
                &self,
                consumer: &str,
                seq: i64,
                now: worklane_domain::Timestamp,
            ) -> Result<(), $crate::StoreError> {
                $ops::save_cursor(&mut *self.write().acquire().await?, consumer, seq, now).await
            }
            async fn tasks_to_process(
                &self,
                now: worklane_domain::Timestamp,
                limit: u32,
            ) -> Result<Vec<worklane_domain::Task>, $crate::StoreError> {
                $ops::tasks_to_process(&mut *self.read().acquire().await?, now, limit).await
            }
            async fn tasks_expired(
                &self,
                now: worklane_domain::Timestamp,
                limit: u32,
            ) -> Result<Vec<worklane_domain::Task>, $crate::StoreError> {
                $ops::tasks_expired(&mut *self.read().acquire().await?, now, limit).await
            }
            async fn next_activation(
                &self,
                now: worklane_domain::Timestamp,
            ) -> Result<Option<worklane_domain::Timestamp>, $crate::StoreError> {
                $ops::next_activation(&mut *self.read().acquire().await?, now).await
            }
            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(self.read()).await?;
                Ok(())
            }
            fn backend(&self) -> &'static str {
                $name
            }
        }
    };
}

pub(crate) use impl_store;
pub(crate) use shared_ops;
