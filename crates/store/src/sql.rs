//! SQL shared by both backends. SQLite and PostgreSQL accept the same statements here
//! (`$N` placeholders, `RETURNING`, `ON CONFLICT`), so one macro expands the operations
//! for each backend's types instead of fighting sqlx's generic bounds.

/// The order of one queue's unoffered tasks, as index tasks_queue_claim holds them
/// (highest priority, then earliest due date with none last, then oldest).
pub(crate) const QUEUE_CLAIM_ORDER: &str =
    "priority DESC, COALESCE(due_at, 9223372036854775807), broker_id";

/// From how many agents `holdings` counts from whole indexes rather than
/// from a list of ids.
pub(crate) const HOLDINGS_SCAN_FROM: usize = 64;

/// Expands, inside a backend module that defines `type Db`, `Keys` with `alloc_ids` and
/// `alloc_seqs`, `MAX_DEFERRED_BINDS`, `open_statement`,
/// `close_statements`, `KEEP_EVERY_WRITE`, `lock_captures`, `ROW_LOCK`, `CLAIM_LOCK`, `CLAIM_ORDER`,
/// `HELD`, `KEY_OPEN` with `KEY_CLOSE`, `OPEN_KEY_DUE`, `push_due_before`, `BY_CAPTURE`,
/// `push_captures` with `CAPTURES_KEPT`, `KEY_ROWS`, `settled_seq`, `read_events_after`,
/// `TASK_ROWS` with `push_task_rows` and `push_update`, and `EVENT_ROWS` with `push_event_rows`, the operations every backend
/// shares.
macro_rules! shared_ops {
    () => {
        use $crate::{micros, PageAfter, StoreError, TaskOrder, TaskQuery};
        use sqlx::{QueryBuilder, Row};
        use worklane_domain::{BrokerId, Event, NewEvent, Task, TaskRef, Timestamp};

        type Conn = <Db as sqlx::Database>::Connection;
        /// Pushes a statement that writes tasks' keys (see the backend's `KEY_ROWS`);
        /// returns the parameters bound.
        type PushKeyRows = fn(&mut QueryBuilder<'static, Db>, &[&Task]) -> usize;
        /// A write transaction whose writes may be in flight (see `in_flight`).
        type Link = $crate::in_flight::InFlight<WriteTx>;

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
                    let row: Option<(String,)> = sqlx::query_as(BY_CAPTURE)
                    .bind(capture_point_id)
                    .bind(capture_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    row.map(|(b,)| decode_task(&b)).transpose()
                }
            }
        }

        /// Results stored under any of `keys` by earlier commands: (key, result JSON).
        pub(crate) async fn stored_results(
            conn: &mut Conn,
            keys: &[String],
        ) -> Result<Vec<(String, String)>, StoreError> {
            let mut out = Vec::new();
            for chunk in keys.chunks(500) {
                let mut qb = QueryBuilder::<Db>::new("SELECT key, result FROM requests WHERE key IN (");
                let mut sep = qb.separated(", ");
                for k in chunk {
                    sep.push_bind(k.clone());
                }
                sep.push_unseparated(")");
                for row in qb.build().persistent(false).fetch_all(&mut *conn).await? {
                    out.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
                }
            }
            Ok(out)
        }

        /// The tasks with these brokerIds and every task with one of these (capture point,
        /// captureId) pairs, in brokerId order; PostgreSQL locks the captureIds first, then
        /// the rows, each in one order every writer shares.
        pub(crate) async fn load(
            conn: &mut Conn,
            ids: &[i64],
            caps: &[(String, String)],
        ) -> Result<Vec<Task>, StoreError> {
            lock_captures(conn, caps).await?;
            let mut out = Vec::with_capacity(ids.len() + caps.len());
            // Up to about 4,000 parameters a statement; beyond that (batches far larger than
            // the default) the rows are locked in brokerId order within each statement.
            let (mut ids, mut caps) = (ids, caps);
            while !ids.is_empty() || !caps.is_empty() {
                let (id_chunk, id_rest) = ids.split_at(ids.len().min(2000));
                let (cap_chunk, cap_rest) = caps.split_at(caps.len().min(1000));
                (ids, caps) = (id_rest, cap_rest);
                let mut qb = QueryBuilder::<Db>::new("SELECT body FROM tasks WHERE broker_id IN (");
                let mut sep = qb.separated(", ");
                // An empty IN list is not SQL: NULL matches nothing.
                if id_chunk.is_empty() {
                    sep.push("NULL");
                }
                for id in id_chunk {
                    sep.push_bind(*id);
                }
                sep.push_unseparated(")");
                push_captures(&mut qb, cap_chunk);
                qb.push(" ORDER BY broker_id");
                qb.push(ROW_LOCK);
                let keep = CAPTURES_KEPT || cap_chunk.is_empty();
                for row in qb.build().persistent(keep).fetch_all(&mut *conn).await? {
                    out.push(decode_task(row.try_get::<&str, _>(0)?)?);
                }
            }
            Ok(out)
        }

        /// The best `limit` tasks `sel` matches, leaving out `exclude`, in the selection's
        /// order (the `tasks_queue_claim` index for one queue's unoffered tasks, else
        /// `tasks_claim`). PostgreSQL locks them and skips rows another
        /// writer holds.
        pub(crate) async fn claim(
            conn: &mut Conn,
            sel: &worklane_domain::Selection,
            exclude: &[i64],
            limit: u32,
        ) -> Result<Vec<Task>, StoreError> {
            let mut qb = QueryBuilder::<Db>::new("SELECT body FROM tasks WHERE ");
            let waiting = sel.status == worklane_domain::Status::Distributed && sel.unoffered;
            if waiting {
                // Literal terms, so SQLite reads the partial index tasks_queue_claim.
                qb.push("status = 'Distributed' AND offered_to IS NULL");
            } else {
                // A literal (a name of the Status enum, never outside text), so PostgreSQL
                // sees that a claim implies the partial index tasks_claim's predicate.
                qb.push(format_args!("status = '{}'", sel.status.as_str()));
                if sel.unoffered {
                    qb.push(" AND offered_to IS NULL");
                }
            }
            if let Some(q) = &sel.queue {
                qb.push(" AND queue = ").push_bind(q.clone());
            }
            if !sel.queues.is_empty() {
                qb.push(" AND queue IN (");
                let mut sep = qb.separated(", ");
                for q in &sel.queues {
                    sep.push_bind(q.clone());
                }
                sep.push_unseparated(")");
            }
            if let Some(p) = &sel.process_id {
                qb.push(KEY_OPEN).push("process_id = ").push_bind(p.clone()).push(KEY_CLOSE);
            }
            if !exclude.is_empty() {
                qb.push(" AND broker_id NOT IN (");
                let mut sep = qb.separated(", ");
                for id in exclude {
                    sep.push_bind(*id);
                }
                sep.push_unseparated(")");
            }
            // One queue's unoffered tasks: the order of tasks_queue_claim; otherwise that
            // of tasks_claim (the backend's spelling).
            let order = if waiting && sel.queue.is_some() && sel.queues.is_empty() {
                $crate::sql::QUEUE_CLAIM_ORDER
            } else {
                CLAIM_ORDER
            };
            qb.push(format_args!(" ORDER BY {order} LIMIT "))
                .push_bind(i64::from(limit.max(1)));
            qb.push(CLAIM_LOCK);
            let rows = qb.build().persistent(exclude.is_empty()).fetch_all(&mut *conn).await?;
            rows.iter().map(|r| decode_task(r.try_get::<&str, _>(0)?)).collect()
        }

        /// Tasks whose time in `column` (an indexed epoch-microseconds column named by this
        /// crate, never by a caller) has come at `now`, the longest due first, claimed;
        /// with `share`, only those of the share. Each value the backend's query returns
        /// holds one or more bodies separated by newlines (compact JSON holds no raw
        /// newline).
        async fn claim_at(
            conn: &mut Conn,
            column: &'static str,
            now: Timestamp,
            limit: u32,
            share: Option<$crate::DueShare>,
        ) -> Result<Vec<Task>, StoreError> {
            let sql = claim_at_sql(column, $crate::DueShare::filter(share));
            let mut q = sqlx::query_as(&sql)
                .bind(micros(now))
                .bind(i64::from(limit.max(1)));
            if let Some(s) = share {
                q = q.bind(i64::from(s.index()));
            }
            let rows: Vec<(Option<String>,)> = q.fetch_all(&mut *conn).await?;
            rows.iter()
                .flat_map(|(b,)| b.as_deref().unwrap_or_default().split_terminator('\n'))
                .map(decode_task)
                .collect()
        }

        /// Due reprioritizations, claimed (see `WriteTx::claim_due`).
        pub(crate) async fn claim_due(
            conn: &mut Conn,
            now: Timestamp,
            limit: u32,
            share: Option<$crate::DueShare>,
        ) -> Result<Vec<Task>, StoreError> {
            claim_at(conn, "reprioritize_at", now, limit, share).await
        }

        /// Writes of a transaction not sent yet. They wait for the transaction's next read
        /// or its commit and go as one query (`open_statement` and `close_statements` join
        /// them: SQLite's multi-statement query, where each statement is a round trip to
        /// the connection's thread; PostgreSQL's one statement of data-modifying `WITH`
        /// parts, where each is a round trip to the server), or sooner once they hold
        /// `MAX_DEFERRED_BINDS` parameters. Only statements with anonymous placeholders
        /// (`QueryBuilder`'s) may wait: a
        /// numbered one (`$1`) would name a parameter of the whole query.
        pub(crate) struct Writes {
            sql: QueryBuilder<'static, Db>,
            statements: usize,
            /// Parameters bound by the statements waiting.
            binds: usize,
            /// The tasks and agents the statements waiting write. On PostgreSQL they are
            /// parts of one statement, which may change a row once only: a second write of
            /// a row sends the first before it waits.
            tasks: std::collections::HashSet<i64>,
            agents: std::collections::HashSet<String>,
            /// Whether every statement waiting is worth keeping prepared.
            persistent: bool,
        }

        impl Default for Writes {
            fn default() -> Self {
                Self {
                    sql: QueryBuilder::new(""),
                    statements: 0,
                    binds: 0,
                    tasks: Default::default(),
                    agents: Default::default(),
                    persistent: true,
                }
            }
        }

        impl Writes {
            /// Starts a statement: the builder to write it into. `persistent`: keep it
            /// prepared, for a shape that recurs (not one that varies with each batch's
            /// row count, which would push the recurring ones out of the cache). A backend
            /// whose joined text recurs by its parts' row counts keeps every one
            /// (`KEEP_EVERY_WRITE`).
            fn next(&mut self, persistent: bool) -> &mut QueryBuilder<'static, Db> {
                open_statement(&mut self.sql, self.statements);
                self.statements += 1;
                self.persistent &= persistent;
                &mut self.sql
            }

            /// Ends a statement that bound `binds` parameters: it waits, unless the
            /// statements waiting reach the backend's limit.
            async fn done(&mut self, conn: &mut Link, binds: usize) -> Result<(), StoreError> {
                self.binds += binds;
                if self.binds < MAX_DEFERRED_BINDS {
                    return Ok(());
                }
                self.land(conn).await.map(drop)
            }

            /// Sends every statement waiting once the write in flight has landed, and waits
            /// for them: the connection, for a read that must see them.
            pub(crate) async fn land<'c>(
                &mut self,
                link: &'c mut Link,
            ) -> Result<&'c mut Conn, StoreError> {
                let conn = link.get().await?;
                self.flush(conn).await?;
                Ok(&mut **conn)
            }

            /// Sends every statement waiting, as one query.
            pub(crate) async fn flush(&mut self, conn: &mut Conn) -> Result<(), StoreError> {
                if self.statements == 0 {
                    return Ok(());
                }
                self.statements = 0;
                self.binds = 0;
                self.tasks.clear();
                self.agents.clear();
                let keep = std::mem::replace(&mut self.persistent, true) || KEEP_EVERY_WRITE;
                let mut sql = std::mem::replace(&mut self.sql, QueryBuilder::new(""));
                close_statements(&mut sql);
                sql.build().persistent(keep).execute(&mut *conn).await?;
                Ok(())
            }
        }

        /// Gives the events their place in the log and writes them.
        pub(crate) async fn append_events(
            conn: &mut Link,
            w: &mut Writes,
            keys: &mut Keys,
            parts: Vec<(NewEvent, Task)>,
            bodies: &mut $crate::columns::Bodies,
        ) -> Result<Vec<Event>, StoreError> {
            if parts.is_empty() {
                return Ok(Vec::new());
            }
            let seqs = alloc_seqs(conn, w, keys, parts.len()).await?;
            let events: Vec<Event> = parts
                .into_iter()
                .zip(seqs)
                .map(|((e, t), seq)| Event::from_parts(seq, e, t))
                .collect();
            write_events(conn, w, &events, bodies).await?;
            Ok(events)
        }

        /// Keeps commands' results under their idempotency keys: (key, result JSON).
        pub(crate) async fn record_results(
            conn: &mut Link,
            w: &mut Writes,
            rows: &[(String, String)],
            now: Timestamp,
        ) -> Result<(), StoreError> {
            for chunk in rows.chunks(500) {
                let qb = w.next(false);
                qb.push("INSERT INTO requests (key, result, created_at) ");
                qb.push_values(chunk, |mut b, (key, json)| {
                    b.push_bind(key.clone()).push_bind(json.clone()).push_bind(micros(now));
                });
                w.done(conn, chunk.len() * 3).await?;
            }
            Ok(())
        }

        /// A write transaction of this backend: the engine's port for one batch. Its
        /// newest seq is announced to other processes once it has committed.
        pub(crate) struct Tx {
            pub(crate) tx: Link,
            pub(crate) announcer: Option<$crate::announce::Announcer>,
            pub(crate) last_seq: i64,
            /// The rows this transaction has read, to write back only what changed.
            pub(crate) seen: $crate::columns::Seen,
            /// Tasks' JSON as their events carried it, so a task is serialized once.
            pub(crate) bodies: $crate::columns::Bodies,
            /// What the transaction moves in the console's figures.
            pub(crate) tally: $crate::stats::Tally,
            /// Writes waiting for the next read or the commit (see [`Writes`]).
            pub(crate) writes: Writes,
            /// The brokerIds and seqs drawn so far (see the backend's `Keys`).
            pub(crate) keys: Keys,
        }

        impl Tx {
            /// Lands the writes waiting, before a read that must see them (see
            /// `Writes::land`). Unlike `WriteTx::flush`, which sends them and goes on.
            async fn settle(&mut self) -> Result<&mut Conn, StoreError> {
                self.writes.land(&mut self.tx).await
            }

            /// Sends the writes waiting if one of them writes one of these tasks (see
            /// `Writes::tasks`). The caller notes the tasks once its own statements wait:
            /// a write that sends what waits midway (`MAX_DEFERRED_BINDS`) clears them.
            async fn before_writing_tasks(&mut self, ids: &[i64]) -> Result<(), StoreError> {
                if ids.iter().any(|id| self.writes.tasks.contains(id)) {
                    self.settle().await?;
                }
                Ok(())
            }

        }

        #[async_trait::async_trait]
        impl $crate::WriteTx for Tx {
            async fn stored_results(
                &mut self,
                keys: &[String],
            ) -> Result<Vec<(String, String)>, StoreError> {
                let conn = self.settle().await?;
                stored_results(conn, keys).await
            }
            async fn load(
                &mut self,
                ids: &[BrokerId],
                caps: &[(String, String)],
            ) -> Result<Vec<Task>, StoreError> {
                let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
                let conn = self.settle().await?;
                let tasks = load(conn, &ids, caps).await?;
                self.seen.record(&tasks);
                Ok(tasks)
            }
            async fn claim(
                &mut self,
                sel: &worklane_domain::Selection,
                exclude: &[BrokerId],
                limit: u32,
            ) -> Result<Vec<Task>, StoreError> {
                let exclude: Vec<i64> = exclude.iter().map(|i| i.0).collect();
                let conn = self.settle().await?;
                let tasks = claim(conn, sel, &exclude, limit).await?;
                self.seen.record(&tasks);
                Ok(tasks)
            }
            async fn claim_due(
                &mut self,
                now: Timestamp,
                limit: u32,
                share: Option<$crate::DueShare>,
            ) -> Result<Vec<Task>, StoreError> {
                let conn = self.settle().await?;
                let tasks = claim_due(conn, now, limit, share).await?;
                self.seen.record(&tasks);
                Ok(tasks)
            }
            async fn claim_expired_offers(
                &mut self,
                now: Timestamp,
                limit: u32,
            ) -> Result<Vec<Task>, StoreError> {
                let conn = self.settle().await?;
                let tasks = claim_expired_offers(conn, now, limit).await?;
                self.seen.record(&tasks);
                Ok(tasks)
            }
            async fn lock_agents(
                &mut self,
                ids: &[String],
            ) -> Result<Vec<worklane_domain::Agent>, StoreError> {
                let mut ids = ids.to_vec();
                ids.sort();
                ids.dedup();
                let conn = self.settle().await?;
                load_agents(conn, &ids, ROW_LOCK).await
            }
            async fn ready_agent_ids(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
                let conn = self.settle().await?;
                ready_agent_ids(conn).await
            }
            async fn claim_agents(
                &mut self,
                ids: &[String],
            ) -> Result<Vec<worklane_domain::Agent>, StoreError> {
                let mut ids = ids.to_vec();
                ids.sort();
                ids.dedup();
                let conn = self.settle().await?;
                claim_agents(conn, &ids).await
            }
            async fn insert_agent(
                &mut self,
                agent: &worklane_domain::Agent,
            ) -> Result<bool, StoreError> {
                let conn = self.settle().await?;
                insert_agent(conn, agent).await
            }
            async fn update_agents(
                &mut self,
                agents: &[&worklane_domain::Agent],
            ) -> Result<(), StoreError> {
                if agents.iter().any(|a| self.writes.agents.contains(&a.id)) {
                    self.settle().await?;
                }
                update_agents(&mut self.tx, &mut self.writes, agents).await?;
                self.writes.agents.extend(agents.iter().map(|a| a.id.clone()));
                Ok(())
            }
            async fn work_of(
                &mut self,
                ids: &[String],
            ) -> Result<Vec<Task>, StoreError> {
                let conn = self.settle().await?;
                let tasks = work_of(conn, ids, ROW_LOCK).await?;
                self.seen.record(&tasks);
                Ok(tasks)
            }
            async fn holdings(
                &mut self,
                ids: &[String],
            ) -> Result<Vec<$crate::Holding>, StoreError> {
                let conn = self.settle().await?;
                holdings(conn, ids).await
            }
            async fn alloc_ids(&mut self, n: usize) -> Result<Vec<BrokerId>, StoreError> {
                let ids = alloc_ids(&mut self.tx, &mut self.writes, &mut self.keys, n).await?;
                Ok(ids.into_iter().map(BrokerId).collect())
            }
            async fn put_tasks(&mut self, tasks: &[&Task]) -> Result<(), StoreError> {
                let ids: Vec<i64> = tasks.iter().map(|t| t.broker_id.0).collect();
                self.before_writing_tasks(&ids).await?;
                for t in tasks {
                    self.tally.put(&self.seen, t);
                }
                let (whole, changed) = self.seen.split(tasks);
                let (conn, w, bodies) = (&mut self.tx, &mut self.writes, &mut self.bodies);
                if !whole.is_empty() {
                    put_tasks(conn, w, &whole, bodies).await?;
                }
                for (mask, group) in changed {
                    update_tasks(conn, w, mask, &group, bodies).await?;
                }
                self.writes.tasks.extend(ids);
                Ok(())
            }
            async fn delete_tasks(&mut self, ids: &[BrokerId]) -> Result<(), StoreError> {
                let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
                self.before_writing_tasks(&ids).await?;
                for id in &ids {
                    self.tally.delete(&self.seen, *id);
                }
                self.seen.forget(&ids);
                delete_tasks(&mut self.tx, &mut self.writes, &ids).await?;
                self.writes.tasks.extend(ids);
                Ok(())
            }
            async fn append_events(
                &mut self,
                events: Vec<(NewEvent, Task)>,
            ) -> Result<Vec<Event>, StoreError> {
                for (e, t) in &events {
                    self.tally.event(e, t);
                }
                let events = append_events(
                    &mut self.tx,
                    &mut self.writes,
                    &mut self.keys,
                    events,
                    &mut self.bodies,
                )
                .await?;
                if let Some(e) = events.last() {
                    self.last_seq = self.last_seq.max(e.seq);
                }
                Ok(events)
            }
            async fn record_results(
                &mut self,
                rows: &[(String, String)],
                now: Timestamp,
            ) -> Result<(), StoreError> {
                record_results(&mut self.tx, &mut self.writes, rows, now).await
            }
            async fn save_cursor(
                &mut self,
                consumer: &str,
                seq: i64,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                let conn = self.settle().await?;
                save_cursor(conn, consumer, seq, now).await
            }
            async fn flush(&mut self) -> Result<(), StoreError> {
                if self.writes.statements == 0 {
                    return Ok(());
                }
                let mut writes = std::mem::take(&mut self.writes);
                self.tx
                    .send(|mut tx| async move {
                        let landed = writes.flush(&mut tx).await;
                        (tx, landed)
                    })
                    .await
            }
            async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
                write_tally(&mut self.tx, &mut self.writes, &self.tally).await?;
                self.settle().await?;
                let this = *self;
                this.tx.into_inner().await?.commit().await?;
                if let (Some(a), true) = (&this.announcer, this.last_seq > 0) {
                    a.announce(this.last_seq);
                }
                Ok(())
            }
        }

        async fn put_tasks(
            conn: &mut Link,
            w: &mut Writes,
            live: &[&Task],
            bodies: &mut $crate::columns::Bodies,
        ) -> Result<(), StoreError> {
            for chunk in live.chunks(TASK_ROWS) {
                let qb = w.next(true);
                qb.push(
                    "INSERT INTO tasks (broker_id, capture_point_id, capture_id, status, priority, \
                     process_id, queue, assigned_to_user, activation_at, due_at, expiration_at, \
                     reprioritize_at, offered_to, offer_expires_at, queue_target, channel, version, body) ",
                );
                let mut rows = Vec::with_capacity(chunk.len());
                for t in chunk {
                    rows.push((*t, bodies.take(t)?));
                }
                let binds = push_task_rows(qb, rows);
                qb.push(
                    " ON CONFLICT (broker_id) DO UPDATE SET \
                     capture_point_id = excluded.capture_point_id, capture_id = excluded.capture_id, \
                     status = excluded.status, priority = excluded.priority, \
                     process_id = excluded.process_id, queue = excluded.queue, \
                     assigned_to_user = excluded.assigned_to_user, \
                     activation_at = excluded.activation_at, due_at = excluded.due_at, \
                     expiration_at = excluded.expiration_at, \
                     reprioritize_at = excluded.reprioritize_at, offered_to = excluded.offered_to, \
                     offer_expires_at = excluded.offer_expires_at, \
                     queue_target = excluded.queue_target, channel = excluded.channel, \
                     version = excluded.version, \
                     body = excluded.body",
                );
                w.done(conn, binds).await?;
            }
            write_keys(conn, w, live).await
        }

        /// Writes the keys of `tasks` where the backend keeps them apart (`KEY_ROWS`).
        async fn write_keys(conn: &mut Link, w: &mut Writes, tasks: &[&Task]) -> Result<(), StoreError> {
            let Some(push) = KEY_ROWS else {
                return Ok(());
            };
            for chunk in tasks.chunks(TASK_ROWS) {
                let binds = push(w.next(true), chunk);
                w.done(conn, binds).await?;
            }
            Ok(())
        }

        /// Writes back tasks this transaction read, setting the columns of `mask` (bits of
        /// `columns::NAMES`) besides the body and version, many rows a statement.
        async fn update_tasks(
            conn: &mut Link,
            w: &mut Writes,
            mask: u16,
            tasks: &[&Task],
            bodies: &mut $crate::columns::Bodies,
        ) -> Result<(), StoreError> {
            let cols: Vec<usize> = (0..$crate::columns::NAMES.len())
                .filter(|i| mask & (1 << i) != 0)
                .collect();
            for chunk in tasks.chunks(TASK_ROWS) {
                let mut rows = Vec::with_capacity(chunk.len());
                for t in chunk {
                    rows.push((*t, bodies.take(t)?));
                }
                let binds = push_update(w.next(true), &cols, rows);
                w.done(conn, binds).await?;
            }
            if mask & $crate::columns::KEYS != 0 {
                write_keys(conn, w, tasks).await?;
            }
            Ok(())
        }

        /// Appends what a transaction moved in the console's figures: a row per group and
        /// period that changed.
        async fn write_tally(
            conn: &mut Link,
            w: &mut Writes,
            tally: &$crate::stats::Tally,
        ) -> Result<(), StoreError> {
            let counts: Vec<_> = tally.count_deltas().collect();
            if !counts.is_empty() {
                let qb = w.next(false);
                qb.push("INSERT INTO task_count_deltas (status, queue, process_id, n) ");
                let binds = counts.len() * 4;
                qb.push_values(counts, |mut b, ((s, q, p), n)| {
                    b.push_bind(*s).push_bind(q.clone()).push_bind(p.clone()).push_bind(n);
                });
                w.done(conn, binds).await?;
            }
            let due: Vec<_> = tally.due_deltas().collect();
            if !due.is_empty() {
                let qb = w.next(false);
                qb.push("INSERT INTO due_count_deltas (queue, due_period, n) ");
                let binds = due.len() * 3;
                qb.push_values(due, |mut b, ((q, p), n)| {
                    b.push_bind(q.clone()).push_bind(*p).push_bind(n);
                });
                w.done(conn, binds).await?;
            }
            let periods: Vec<_> = tally.period_deltas().collect();
            if !periods.is_empty() {
                let qb = w.next(false);
                qb.push(format!(
                    "INSERT INTO period_deltas ({}) ",
                    $crate::stats::PERIOD_COLS
                ));
                let binds = periods.len() * 8;
                qb.push_values(periods, |mut b, p| {
                    b.push_bind(p.start_us)
                        .push_bind(p.created)
                        .push_bind(p.completed)
                        .push_bind(p.completed_due)
                        .push_bind(p.completed_on_time)
                        .push_bind(p.finish_us)
                        .push_bind(p.handle_us)
                        .push_bind(p.handled);
                });
                w.done(conn, binds).await?;
            }
            Ok(())
        }

        async fn delete_tasks(
            conn: &mut Link,
            w: &mut Writes,
            gone: &[i64],
        ) -> Result<(), StoreError> {
            let tables: &[&str] = if KEY_ROWS.is_some() {
                &["tasks", "task_keys"]
            } else {
                &["tasks"]
            };
            for chunk in gone.chunks(500) {
                for table in tables {
                    let qb = w.next(false);
                    qb.push(format_args!("DELETE FROM {table} WHERE broker_id IN ("));
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    sep.push_unseparated(")");
                    w.done(conn, chunk.len()).await?;
                }
            }
            Ok(())
        }

        async fn write_events(
            conn: &mut Link,
            w: &mut Writes,
            events: &[Event],
            bodies: &mut $crate::columns::Bodies,
        ) -> Result<(), StoreError> {
            for chunk in events.chunks(EVENT_ROWS) {
                let mut rows = Vec::with_capacity(chunk.len());
                for e in chunk {
                    let body = worklane_domain::stored::stored(|| serde_json::to_string(e))?;
                    bodies.keep(&e.task, &body);
                    rows.push((e, body));
                }
                let qb = w.next(true);
                qb.push(
                    "INSERT INTO events (seq, broker_id, capture_point_id, event_type, created_at, \
                     body) ",
                );
                let binds = push_event_rows(qb, rows);
                w.done(conn, binds).await?;
            }
            Ok(())
        }

        /// Starts a condition on a task's keys: the first opens their scope (`KEY_OPEN`,
        /// closed by `KEY_CLOSE`), the others join it.
        fn key_condition<'q, 'a>(
            qb: &'q mut QueryBuilder<'a, Db>,
            in_keys: &mut bool,
        ) -> &'q mut QueryBuilder<'a, Db> {
            qb.push(if std::mem::replace(in_keys, true) { " AND " } else { KEY_OPEN })
        }

        pub(crate) async fn list_tasks(
            conn: &mut Conn,
            q: &TaskQuery,
        ) -> Result<Vec<Task>, StoreError> {
            let hint = if q.status.is_some() && q.order == TaskOrder::Priority {
                BY_PRIORITY
            } else {
                ""
            };
            let mut qb = QueryBuilder::<Db>::new(format!("SELECT body FROM tasks{hint} WHERE 1 = 1"));
            if let Some(s) = q.status {
                // A literal, as in `claim`: the partial indexes by status then apply.
                qb.push(format_args!(" AND status = '{}'", s.as_str()));
            }
            if let Some(v) = &q.queue {
                qb.push(" AND queue = ").push_bind(v.clone());
            }
            if let Some(v) = &q.assigned_to_user {
                qb.push(" AND assigned_to_user = ").push_bind(v.clone());
            }
            if let Some(v) = &q.queue_target {
                qb.push(" AND queue_target = ").push_bind(v.clone());
            }
            // The conditions on a task's keys share one scope: one lookup of its row of
            // task_keys on PostgreSQL, however many of them a listing names.
            let mut in_keys = false;
            let keys = [
                ("capture_point_id", &q.capture_point_id),
                ("capture_id", &q.capture_id),
                ("process_id", &q.process_id),
            ];
            for (column, v) in keys {
                if let Some(v) = v {
                    key_condition(&mut qb, &mut in_keys)
                        .push(format_args!("{column} = "))
                        .push_bind(v.clone());
                }
            }
            if let Some(v) = q.due_before {
                push_due_before(key_condition(&mut qb, &mut in_keys), micros(v));
            }
            if let Some(v) = q.overdue_at {
                key_condition(&mut qb, &mut in_keys)
                    .push(format_args!("{OPEN_KEY_DUE} AND due_at < "))
                    .push_bind(micros(v));
            }
            if in_keys {
                qb.push(KEY_CLOSE);
            }
            if let Some(v) = q.capture_id_prefix.as_deref().filter(|v| !v.is_empty()) {
                qb.push(" AND substr(capture_id, 1, ")
                    .push_bind(i32::try_from(v.chars().count()).unwrap_or(i32::MAX))
                    .push(") = ")
                    .push_bind(v.to_owned());
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

        /// The newest event a reader may pass: the newest committed, but never past one
        /// that may still commit below it (another node's open transaction).
        pub(crate) async fn last_seq(conn: &mut Conn) -> Result<i64, StoreError> {
            let settled = settled_seq(conn).await?;
            let (seq,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(seq) FROM events").fetch_one(&mut *conn).await?;
            Ok(seq.unwrap_or(0).min(settled))
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
            let rows: Vec<(String,)> = sqlx::query_as(EXPIRED)
            .bind(micros(now))
            .bind(i64::from(limit.max(1)))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|(b,)| decode_task(b)).collect()
        }

        pub(crate) async fn tasks_to_reprioritize(
            conn: &mut Conn,
            now: Timestamp,
            limit: u32,
        ) -> Result<Vec<BrokerId>, StoreError> {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT broker_id FROM tasks WHERE reprioritize_at <= $1 \
                 ORDER BY reprioritize_at LIMIT $2",
            )
            .bind(micros(now))
            .bind(i64::from(limit.max(1)))
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.into_iter().map(|(id,)| BrokerId(id)).collect())
        }

        pub(crate) async fn next_reprioritization(
            conn: &mut Conn,
            now: Timestamp,
        ) -> Result<Option<Timestamp>, StoreError> {
            let (m,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(reprioritize_at) FROM tasks WHERE reprioritize_at > $1",
            )
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await?;
            Ok(m.and_then(|us| Timestamp::from_microsecond(us).ok()))
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

        fn decode_agent(body: &str) -> Result<worklane_domain::Agent, StoreError> {
            Ok(serde_json::from_str(body)?)
        }

        pub(crate) async fn get_agent(
            conn: &mut Conn,
            id: &str,
        ) -> Result<Option<worklane_domain::Agent>, StoreError> {
            let row: Option<(String,)> = sqlx::query_as("SELECT body FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|(b,)| decode_agent(&b)).transpose()
        }

        pub(crate) async fn list_agents(
            conn: &mut Conn,
            q: &$crate::AgentQuery,
        ) -> Result<Vec<worklane_domain::Agent>, StoreError> {
            let limit = match q.limit { 0 => 100, n => n.min(1000) };
            let mut qb = QueryBuilder::<Db>::new("SELECT body FROM agents WHERE 1 = 1");
            if let Some(st) = q.state {
                qb.push(" AND state = ").push_bind(st.as_str());
            }
            if let Some(after) = &q.after {
                qb.push(" AND id > ").push_bind(after.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(&mut *conn).await?;
            rows.iter().map(|r| decode_agent(r.try_get::<&str, _>(0)?)).collect()
        }

        /// Agents by id, in id order; PostgreSQL locks them (`lock`), or takes only those
        /// no other transaction holds (`skip`).
        pub(crate) async fn load_agents(
            conn: &mut Conn,
            ids: &[String],
            lock: &str,
        ) -> Result<Vec<worklane_domain::Agent>, StoreError> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb = in_list("SELECT body FROM agents WHERE id IN (", ids, " ORDER BY id");
            qb.push(lock);
            let rows = qb.build().fetch_all(&mut *conn).await?;
            rows.iter().map(|r| decode_agent(r.try_get::<&str, _>(0)?)).collect()
        }

        /// `head` (ending in `IN (`), `ids` bound one by one, `)` and `tail`: the lists
        /// of agent ids the agents' reads share.
        fn in_list(head: &str, ids: &[String], tail: &str) -> QueryBuilder<'static, Db> {
            let mut qb = QueryBuilder::<Db>::new("");
            push_in_list(&mut qb, head, ids, tail);
            qb
        }

        /// Pushes what [`in_list`] builds onto `qb`.
        fn push_in_list(qb: &mut QueryBuilder<'static, Db>, head: &str, ids: &[String], tail: &str) {
            qb.push(head);
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.clone());
            }
            sep.push_unseparated(")");
            qb.push(tail);
        }


        pub(crate) async fn claim_agents(
            conn: &mut Conn,
            ids: &[String],
        ) -> Result<Vec<worklane_domain::Agent>, StoreError> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let mut qb = in_list(
                    "SELECT body FROM agents WHERE id IN (",
                    chunk,
                    " AND state = 'Ready' ORDER BY id",
                );
                qb.push(CLAIM_LOCK);
                for row in qb.build().fetch_all(&mut *conn).await? {
                    out.push(decode_agent(row.try_get::<&str, _>(0)?)?);
                }
            }
            Ok(out)
        }

        /// Inserts a new agent; false when its id exists.
        pub(crate) async fn insert_agent(
            conn: &mut Conn,
            a: &worklane_domain::Agent,
        ) -> Result<bool, StoreError> {
            let r = sqlx::query(
                "INSERT INTO agents (id, state, waiting_since, version, body) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&a.id)
            .bind(a.state.as_str())
            .bind(micros(a.waiting_since))
            .bind(a.version)
            .bind(serde_json::to_string(a)?)
            .execute(&mut *conn)
            .await?;
            Ok(r.rows_affected() == 1)
        }

        /// Writes back agents, one statement for as many as 400.
        pub(crate) async fn update_agents(
            conn: &mut Link,
            w: &mut Writes,
            agents: &[&worklane_domain::Agent],
        ) -> Result<(), StoreError> {
            for chunk in agents.chunks(400) {
                let mut rows = Vec::with_capacity(chunk.len());
                for a in chunk {
                    rows.push((*a, serde_json::to_string(a)?));
                }
                let qb = w.next(true);
                qb.push("WITH v (id, state, waiting_since, version, body) AS (");
                qb.push_values(rows, |mut b, (a, body)| {
                    b.push_bind(a.id.clone())
                        .push_bind(a.state.as_str())
                        .push_bind(micros(a.waiting_since))
                        .push_bind(a.version)
                        .push_bind(body);
                });
                qb.push(
                    ") UPDATE agents SET state = v.state, waiting_since = v.waiting_since, \
                     version = v.version, body = v.body FROM v WHERE agents.id = v.id",
                );
                w.done(conn, chunk.len() * 5).await?;
            }
            Ok(())
        }

        /// The tasks these agents hold (offered to them, or Assigned to them).
        pub(crate) async fn work_of(
            conn: &mut Conn,
            ids: &[String],
            lock: &str,
        ) -> Result<Vec<Task>, StoreError> {
            let mut out = Vec::new();
            // Two statements, not one with OR: each reads its own index (PostgreSQL planned
            // the OR as a scan of the whole table). An offered task is never Assigned, so
            // the two never return the same row.
            for chunk in ids.chunks(500) {
                for head in [
                    "SELECT body FROM tasks WHERE offered_to IN (",
                    ASSIGNED,
                ] {
                    let mut qb = in_list(head, chunk, " ORDER BY broker_id");
                    qb.push(lock);
                    for row in qb.build().fetch_all(&mut *conn).await? {
                        out.push(decode_task(row.try_get::<&str, _>(0)?)?);
                    }
                }
            }
            Ok(out)
        }

        /// What these agents hold, as committed: how many tasks each holds on each
        /// channel, counted in the indexes (no task is read).
        pub(crate) async fn holdings(
            conn: &mut Conn,
            ids: &[String],
        ) -> Result<Vec<$crate::Holding>, StoreError> {
            let holding = |(agent, channel, n): (String, Option<String>, i64)| $crate::Holding {
                agent,
                channel,
                tasks: u32::try_from(n).unwrap_or(u32::MAX),
            };
            // Both counts in one statement: a round trip each would be most of a pull's
            // reads.
            let [(head0, holder0, tail0), (head1, holder1, tail1)] = HELD;
            if ids.len() >= $crate::sql::HOLDINGS_SCAN_FROM {
                // A dispatcher pass asks for every Ready agent: a fixed statement that
                // reads each partial index whole (the offers or Assigned tasks of the
                // moment, and on PostgreSQL the entries their old versions left) reads no
                // more than a descent per agent did, and is planned once, not per pass.
                let wanted: std::collections::HashSet<&str> =
                    ids.iter().map(String::as_str).collect();
                let rows: Vec<(String, Option<String>, i64)> =
                    sqlx::query_as(&format!("{head0}{tail0} UNION ALL {head1}{tail1}"))
                        .fetch_all(&mut *conn)
                        .await?;
                return Ok(rows
                    .into_iter()
                    .filter(|(agent, ..)| wanted.contains(agent.as_str()))
                    .map(holding)
                    .collect());
            }
            // Fewer than `HOLDINGS_SCAN_FROM` ids: one list each.
            let mut qb = in_list(&format!("{head0} AND {holder0} IN ("), ids, tail0);
            push_in_list(
                &mut qb,
                &format!(" UNION ALL {head1} AND {holder1} IN ("),
                ids,
                tail1,
            );
            let rows: Vec<(String, Option<String>, i64)> =
                qb.build_query_as().fetch_all(&mut *conn).await?;
            Ok(rows.into_iter().map(holding).collect())
        }

        /// Offers that expired at `now`, the longest expired first, claimed.
        pub(crate) async fn claim_expired_offers(
            conn: &mut Conn,
            now: Timestamp,
            limit: u32,
        ) -> Result<Vec<Task>, StoreError> {
            claim_at(conn, "offer_expires_at", now, limit, None).await
        }

        pub(crate) async fn next_offer_expiry(
            conn: &mut Conn,
        ) -> Result<Option<Timestamp>, StoreError> {
            let (m,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(offer_expires_at) FROM tasks WHERE offer_expires_at IS NOT NULL",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok(m.and_then(|us| Timestamp::from_microsecond(us).ok()))
        }
    };
}

/// Implements the store's traits for a backend type whose module used [`shared_ops`] and
/// which has `read()`/`write()` pools, `begin_write()` and `announcer()`.
macro_rules! impl_store {
    ($ty:ty, $ops:ident, $name:literal) => {
        #[async_trait::async_trait]
        impl $crate::Writer for $ty {
            async fn begin(&self) -> Result<Box<dyn $crate::WriteTx>, $crate::StoreError> {
                Ok(Box::new($ops::Tx {
                    tx: $crate::in_flight::InFlight::new(self.begin_write().await?),
                    announcer: self.announcer(),
                    last_seq: 0,
                    seen: Default::default(),
                    bodies: Default::default(),
                    tally: Default::default(),
                    writes: Default::default(),
                    keys: Default::default(),
                }))
            }
        }

        #[async_trait::async_trait]
        impl $crate::TaskReads for $ty {
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
            async fn tasks_to_reprioritize(
                &self,
                now: worklane_domain::Timestamp,
                limit: u32,
            ) -> Result<Vec<worklane_domain::BrokerId>, $crate::StoreError> {
                $ops::tasks_to_reprioritize(&mut *self.read().acquire().await?, now, limit).await
            }
            async fn next_reprioritization(
                &self,
                now: worklane_domain::Timestamp,
            ) -> Result<Option<worklane_domain::Timestamp>, $crate::StoreError> {
                $ops::next_reprioritization(&mut *self.read().acquire().await?, now).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::AgentReads for $ty {
            async fn get_agent(
                &self,
                id: &str,
            ) -> Result<Option<worklane_domain::Agent>, $crate::StoreError> {
                $ops::get_agent(&mut *self.read().acquire().await?, id).await
            }
            async fn list_agents(
                &self,
                q: &$crate::AgentQuery,
            ) -> Result<Vec<worklane_domain::Agent>, $crate::StoreError> {
                $ops::list_agents(&mut *self.read().acquire().await?, q).await
            }
            async fn work_of(
                &self,
                ids: &[String],
            ) -> Result<Vec<worklane_domain::Task>, $crate::StoreError> {
                $ops::work_of(&mut *self.read().acquire().await?, ids, "").await
            }
            async fn next_offer_expiry(
                &self,
            ) -> Result<Option<worklane_domain::Timestamp>, $crate::StoreError> {
                $ops::next_offer_expiry(&mut *self.read().acquire().await?).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::EventLog for $ty {
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
        }

        #[async_trait::async_trait]
        impl $crate::Store for $ty {
            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(self.read()).await?;
                Ok(())
            }
            fn backend(&self) -> &'static str {
                $name
            }
            async fn listen_commits(
                &self,
            ) -> Result<Option<$crate::CommitStream>, $crate::StoreError> {
                self.commit_stream().await
            }
        }
    };
}

pub(crate) use impl_store;
pub(crate) use shared_ops;
