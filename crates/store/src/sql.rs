//! SQL shared by both backends. SQLite and PostgreSQL accept the same statements here
//! (`$N` placeholders, `RETURNING`, `ON CONFLICT`), so one macro expands the operations
//! for each backend's types instead of fighting sqlx's generic bounds.

/// Expands, inside a backend module that defines `type Db` and `IdSource`, the operations
/// every backend shares.
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

        async fn insert_task(conn: &mut Conn, t: &Task) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO tasks (broker_id, capture_point_id, capture_id, status, priority, \
                 process_id, queue, assigned_to_user, activation_at, due_at, expiration_at, \
                 version, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(t.broker_id.0)
            .bind(&t.capture_point_id)
            .bind(&t.capture_id)
            .bind(t.status.as_str())
            .bind(t.priority)
            .bind(&t.process_id)
            .bind(&t.queue)
            .bind(&t.assigned_to_user)
            .bind(t.activation_date_time.map(micros))
            .bind(t.due_date_time.map(micros))
            .bind(t.expiration_date_time.map(micros))
            .bind(t.version)
            .bind(serde_json::to_string(t)?)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn update_task(conn: &mut Conn, t: &Task) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE tasks SET capture_id = $1, status = $2, priority = $3, process_id = $4, \
                 queue = $5, assigned_to_user = $6, activation_at = $7, due_at = $8, \
                 expiration_at = $9, version = $10, body = $11 WHERE broker_id = $12",
            )
            .bind(&t.capture_id)
            .bind(t.status.as_str())
            .bind(t.priority)
            .bind(&t.process_id)
            .bind(&t.queue)
            .bind(&t.assigned_to_user)
            .bind(t.activation_date_time.map(micros))
            .bind(t.due_date_time.map(micros))
            .bind(t.expiration_date_time.map(micros))
            .bind(t.version)
            .bind(serde_json::to_string(t)?)
            .bind(t.broker_id.0)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn insert_event(
            conn: &mut Conn,
            e: NewEvent,
            task: &Task,
        ) -> Result<Event, StoreError> {
            let mut event = Event::from_parts(0, e, task.clone());
            let (seq,): (i64,) = sqlx::query_as(
                "INSERT INTO events (broker_id, capture_point_id, event_type, body) \
                 VALUES ($1, $2, $3, $4) RETURNING seq",
            )
            .bind(task.broker_id.0)
            .bind(&task.capture_point_id)
            .bind(event.event_type.as_str())
            .bind(serde_json::to_string(&event)?)
            .fetch_one(&mut *conn)
            .await?;
            event.seq = seq;
            Ok(event)
        }

        /// Runs one command inside the batch's transaction.
        pub(crate) async fn run_command(
            conn: &mut Conn,
            cmd: Command,
            now: Timestamp,
            ids: &mut IdSource,
        ) -> Result<CommandResult, StoreError> {
            if let Some(key) = &cmd.idempotency_key {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT result FROM requests WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some((stored,)) = row {
                    let mut result: CommandResult = serde_json::from_str(&stored)?;
                    if let Ok(o) = &mut result {
                        o.replayed = true;
                    }
                    return Ok(result);
                }
            }
            let result = apply(conn, &cmd, now, ids).await?;
            if let Some(key) = &cmd.idempotency_key {
                sqlx::query("INSERT INTO requests (key, result, created_at) VALUES ($1, $2, $3)")
                    .bind(key)
                    .bind(serde_json::to_string(&result)?)
                    .bind(micros(now))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(result)
        }

        async fn apply(
            conn: &mut Conn,
            cmd: &Command,
            now: Timestamp,
            ids: &mut IdSource,
        ) -> Result<CommandResult, StoreError> {
            if let Err(e) = cmd.meta.validate() {
                return Ok(Err(e));
            }
            match &cmd.op {
                Op::Create(new) => {
                    if let Err(e) = new.validate() {
                        return Ok(Err(e));
                    }
                    if let (Some(cid), true) =
                        (&new.fields.capture_id, new.on_duplicate != OnDuplicate::Allow)
                    {
                        let r = TaskRef::Capture {
                            capture_point_id: new.capture_point_id.clone(),
                            capture_id: cid.clone(),
                        };
                        if let Some(existing) = find_task(conn, &r).await? {
                            return Ok(match new.on_duplicate {
                                OnDuplicate::ReturnExisting => {
                                    Ok(Outcome { task: existing, event: None, replayed: false })
                                }
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
                            });
                        }
                    }
                    let id = ids.next(conn).await?;
                    let tr = action::create(new, BrokerId(id), &cmd.meta, now);
                    insert_task(conn, &tr.task).await?;
                    let event = insert_event(conn, tr.event, &tr.task).await?;
                    Ok(Ok(Outcome { task: tr.task, event: Some(event), replayed: false }))
                }
                Op::Act { task, action } => {
                    let Some(current) = find_task(conn, task).await? else {
                        return Ok(Err(DomainError::new(
                            ErrorCode::TaskNotFound,
                            format!("no task with {}", task.as_param().replace('=', " ")),
                        )
                        .with_param(task.as_param())));
                    };
                    let tr = match decide(&current, action, &cmd.meta, now) {
                        Ok(tr) => tr,
                        Err(e) => return Ok(Err(e)),
                    };
                    if tr.deleted {
                        sqlx::query("DELETE FROM tasks WHERE broker_id = $1")
                            .bind(current.broker_id.0)
                            .execute(&mut *conn)
                            .await?;
                    } else {
                        update_task(conn, &tr.task).await?;
                    }
                    let event = insert_event(conn, tr.event, &tr.task).await?;
                    Ok(Ok(Outcome { task: tr.task, event: Some(event), replayed: false }))
                }
            }
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
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&mut *conn)
                    .await?;
            rows.iter().map(|(s, b)| decode_event(*s, b)).collect()
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

        /// Counts the creates of a batch, so ids can be drawn once per batch.
        pub(crate) fn creates(batch: &[Command]) -> usize {
            batch.iter().filter(|c| matches!(c.op, Op::Create(_))).count()
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
                let mut ids = $ops::IdSource::new($ops::creates(&batch));
                let mut out = Vec::with_capacity(batch.len());
                for cmd in batch {
                    out.push($ops::run_command(&mut tx, cmd, now, &mut ids).await?);
                }
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
