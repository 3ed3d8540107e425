//! Test harness: a fresh source database per test (PostgreSQL, MariaDB, SQLite, or
//! PostgreSQL through ODBC) with the seed's `cases` / `case_updates` tables, a fresh
//! Worklane store and engine, and the seed's statements as a configuration.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;
use worklane_capture_db::params::{self, Dialect};
use worklane_capture_db::source::{self, Exec, Row, Source};
use worklane_capture_db::value::Value;
use worklane_capture_db::{CapturePoint, DatabaseCaptureConfig, Notifier};
use worklane_domain::{Action, ActionMeta, Task, TaskRef};
use worklane_engine::{Command, Engine, EngineOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    MariaDb,
    Sqlite,
    OdbcPostgres,
    OdbcMariaDb,
}

pub fn postgres_admin() -> String {
    std::env::var("WORKLANE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mariadb_admin() -> String {
    std::env::var("WORKLANE_TEST_MARIADB")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{:x}{:x}{:x}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh source database with the example schema.
pub struct TestSource {
    pub backend: Backend,
    /// What the capture point connects with.
    pub url: String,
    /// The database's name (PostgreSQL/MariaDB) or file (SQLite).
    pub name: String,
    /// A separate connection for setting up and looking at the data.
    pub admin: Arc<dyn Source>,
}

/// Runs one statement outside any transaction (CREATE DATABASE cannot run inside one).
pub async fn admin_exec(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url)
            .await
            .expect("postgres admin");
        c.execute(sqlx::raw_sql(sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    } else {
        let mut c = sqlx::MySqlConnection::connect(url)
            .await
            .expect("mariadb admin");
        c.execute(sqlx::raw_sql(sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl TestSource {
    pub async fn new(backend: Backend) -> Self {
        let (url, name) = match backend {
            Backend::Postgres | Backend::OdbcPostgres => {
                let name = unique("wl_dbcp");
                admin_exec(&postgres_admin(), &format!("CREATE DATABASE {name}")).await;
                let mut u = url::Url::parse(&postgres_admin()).expect("url");
                u.set_path(&name);
                (u.to_string(), name)
            }
            Backend::MariaDb | Backend::OdbcMariaDb => {
                let name = unique("wl_dbcp");
                admin_exec(&mariadb_admin(), &format!("CREATE DATABASE {name}")).await;
                let mut u = url::Url::parse(&mariadb_admin()).expect("url");
                u.set_path(&name);
                (u.to_string(), name)
            }
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("wl-dbcp"));
                std::fs::create_dir_all(&dir).expect("dir");
                let file = dir.join("source.db");
                std::fs::File::create(&file).expect("sqlite file");
                (
                    format!("sqlite://{}", file.display()),
                    file.display().to_string(),
                )
            }
        };
        let admin = source::connect(&url, None, jiff::tz::TimeZone::UTC)
            .await
            .expect("source");
        let me = Self {
            backend,
            url: match backend {
                Backend::OdbcPostgres => format!(
                    "odbc:Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database={name};Uid=postgres;"
                ),
                Backend::OdbcMariaDb => format!(
                    "odbc:Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;Database={name};User=root;Password=;"
                ),
                _ => url,
            },
            name,
            admin,
        };
        for sql in me.schema() {
            me.exec(sql).await;
        }
        me
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Postgres | Backend::OdbcPostgres => Dialect::Postgres,
            Backend::MariaDb | Backend::OdbcMariaDb => Dialect::MySql,
            Backend::Sqlite => Dialect::Sqlite,
        }
    }

    fn schema(&self) -> Vec<&'static str> {
        match self.backend {
            Backend::Postgres | Backend::OdbcPostgres => vec![
                "create table cases (caseId varchar(100) primary key, createdTimestamp timestamp not null default now(), \
                 casePriority int, status varchar(32) not null, caseTrackingId varchar(32), errorCode int, \
                 errorDescr varchar(300), substatus varchar(255))",
                "create table case_updates (id serial primary key, caseId varchar(100), interactionId bigint, \
                 updatedTimestamp timestamp not null default now(), casePriority int, status varchar(32) not null default 'new', \
                 errorcode int, errordescr varchar(300))",
                "create table case_log (id serial primary key, caseId varchar(100), what varchar(32), detail varchar(255))",
                "create table startup_log (id serial primary key, at timestamp not null default now())",
            ],
            Backend::MariaDb | Backend::OdbcMariaDb => vec![
                "create table cases (caseId varchar(100) primary key, createdTimestamp datetime(6) not null default current_timestamp(6), \
                 casePriority int, status varchar(32) not null, caseTrackingId varchar(32), errorCode int, \
                 errorDescr varchar(300), substatus varchar(255))",
                "create table case_updates (id int auto_increment primary key, caseId varchar(100), interactionId bigint, \
                 updatedTimestamp datetime(6) not null default current_timestamp(6), casePriority int, status varchar(32) not null default 'new', \
                 errorcode int, errordescr varchar(300))",
                "create table case_log (id int auto_increment primary key, caseId varchar(100), what varchar(32), detail varchar(255))",
                "create table startup_log (id int auto_increment primary key, at datetime(6) not null default current_timestamp(6))",
            ],
            Backend::Sqlite => vec![
                "create table cases (caseId varchar(100) primary key, createdTimestamp text not null default current_timestamp, \
                 casePriority int, status varchar(32) not null, caseTrackingId varchar(32), errorCode int, \
                 errorDescr varchar(300), substatus varchar(255))",
                "create table case_updates (id integer primary key autoincrement, caseId varchar(100), interactionId bigint, \
                 updatedTimestamp text not null default current_timestamp, casePriority int, status varchar(32) not null default 'new', \
                 errorcode int, errordescr varchar(300))",
                "create table case_log (id integer primary key autoincrement, caseId varchar(100), what varchar(32), detail varchar(255))",
                "create table startup_log (id integer primary key autoincrement, at text not null default current_timestamp)",
            ],
        }
    }

    /// Runs `sql` (with `?'Name'` parameters bound from `values` in order).
    pub async fn exec_with(&self, sql: &str, values: Vec<Value>) {
        let p = params::parse(sql, self.admin.dialect()).expect("test sql parses");
        self.admin
            .execute_all(&[Exec {
                sql: p.sql.into(),
                params: values,
            }])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn exec(&self, sql: &str) {
        self.exec_with(sql, vec![]).await;
    }

    pub async fn query(&self, sql: &str) -> Vec<Row> {
        let p = params::parse(sql, self.admin.dialect()).expect("test sql parses");
        self.admin
            .query(&p.sql, &[], 0)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A new case with status 'new'.
    pub async fn insert_case(&self, id: &str, priority: i64) {
        self.exec_with(
            "insert into cases (caseId, casePriority, status) values (?'id', ?'p', 'new')",
            vec![Value::Text(id.into()), Value::Int(priority)],
        )
        .await;
    }

    /// One case's columns.
    pub async fn case(&self, id: &str) -> Row {
        let p = params::parse(
            "select caseId, status, caseTrackingId, errorCode, errorDescr, substatus, casePriority from cases where caseId = ?'id'",
            self.admin.dialect(),
        )
        .expect("parses");
        let rows = self
            .admin
            .query(&p.sql, &[Value::Text(id.into())], 0)
            .await
            .expect("case query");
        rows.into_iter()
            .next()
            .unwrap_or_else(|| panic!("no case {id:?}"))
    }

    /// The case_log entries of a case, oldest first, as `what` or `what:detail`.
    pub async fn log(&self, id: &str) -> Vec<String> {
        let p = params::parse(
            "select what, detail from case_log where caseId = ?'id' order by id",
            self.admin.dialect(),
        )
        .expect("parses");
        let rows = self
            .admin
            .query(&p.sql, &[Value::Text(id.into())], 0)
            .await
            .expect("log query");
        rows.iter()
            .map(|r| match (text(r, "what"), text(r, "detail")) {
                (Some(w), Some(d)) => format!("{w}:{d}"),
                (Some(w), None) => w,
                _ => String::new(),
            })
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let rows = self.query(sql).await;
        match rows[0].columns[0].1 {
            Value::Int(n) => n,
            ref other => panic!("count is {other:?}"),
        }
    }
}

/// Drops the test's database (also when the test failed), so runs leave nothing behind.
impl Drop for TestSource {
    fn drop(&mut self) {
        let (admin, sql) = match self.backend {
            Backend::Postgres | Backend::OdbcPostgres => (
                postgres_admin(),
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ),
            Backend::MariaDb | Backend::OdbcMariaDb => (
                mariadb_admin(),
                format!("DROP DATABASE IF EXISTS {}", self.name),
            ),
            Backend::Sqlite => {
                if let Some(dir) = std::path::Path::new(&self.name).parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return;
            }
        };
        // Drop cannot await; a thread with its own runtime can.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::{Connection, Executor};
                if admin.starts_with("postgres") {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = c.execute(sqlx::raw_sql(&sql)).await;
                    }
                } else if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                    let _ = c.execute(sqlx::raw_sql(&sql)).await;
                }
            });
        })
        .join();
    }
}

/// A column's value as text, looked up in any case (PostgreSQL folds unquoted names).
pub fn text(r: &Row, column: &str) -> Option<String> {
    r.get_ci(column).and_then(Value::to_attribute_text)
}

/// The seed's example statements (seed 000), plus a notification statement for every
/// other event that logs it in `case_log`.
pub fn seed_config(id: &str, url: &str) -> DatabaseCaptureConfig {
    let log = |what: &str, detail: &str| {
        Some(format!("insert into case_log (caseId, what, detail) values (?'ExternalId', '{what}', {detail})"))
    };
    let mut c = DatabaseCaptureConfig::new(
        id,
        url,
        "select caseId \"ExternalId\", createdTimestamp \"ReceivedAt\", casePriority \"Priority\", status \"Status\" from cases where status='new'",
    );
    c.poll_interval = Duration::from_millis(50);
    c.notify_poll_interval = Duration::from_millis(50);
    c.captured_update_sql =
        Some("update cases set caseTrackingId=?'InteractionId', status='submitted' where caseId=?'ExternalId'".into());
    c.error_update_sql = Some(
        "update cases set status='error', errorCode=?'ErrorCode', errorDescr=?'ErrorDescription' where caseId=?'ExternalId'"
            .into(),
    );
    c.assigned_update_sql = Some("update cases set status = 'assigned', substatus=?'AssignedToUser' where caseId=?'ExternalId'".into());
    c.completed_update_sql =
        Some("update cases set status = 'completed' where caseId=?'ExternalId'".into());
    c.queued_update_sql = log("queued", "?'Queue'");
    c.canceled_update_sql = log("canceled", "null");
    c.held_update_sql = log("held", "null");
    c.error_held_update_sql = log("errorHeld", "?'Error'");
    c.rejected_update_sql = log("rejected", "null");
    c.restarted_update_sql = log("restarted", "null");
    c.stopped_update_sql = log("stopped", "null");
    c.route_requested_update_sql = log("routing", "null");
    c.updated_update_sql = log("updated", "?'Priority'");
    c.resumed_update_sql = log("resumed", "?'Status'");
    c.source_update_query_sql = Some(
        "select caseId \"ExternalId\", interactionId \"InteractionId\", updatedTimestamp \"SomeTime\", casePriority \"Priority\" \
         from case_updates where status='new'"
            .into(),
    );
    c.source_updated_update_sql = Some(
        "update case_updates set status='applied' where status='new' and (caseId=? 'ExternalId' or interactionId=?'InteractionId')"
            .into(),
    );
    c.source_error_update_sql = Some(
        "update case_updates set status='error', errorcode=? 'ErrorCode', errordescr=? 'ErrorDescription' \
         where status='new' and (caseId=? 'ExternalId' or interactionId=?'InteractionId')"
            .into(),
    );
    c.startup_query_sql = Some("insert into startup_log (at) values (current_timestamp)".into());
    c
}

/// A fresh store and engine.
pub async fn engine() -> Engine {
    let store = worklane_store::connect(&worklane_store::testing::fresh_sqlite_url())
        .await
        .expect("store");
    let (engine, _writer) = Engine::start(store, EngineOptions::default())
        .await
        .expect("engine");
    engine
}

pub async fn point(engine: &Engine, cfg: DatabaseCaptureConfig) -> Arc<CapturePoint> {
    Arc::new(
        CapturePoint::new(engine.clone(), cfg)
            .await
            .expect("capture point"),
    )
}

/// Runs the notification consumer until it has seen every event.
pub async fn notify_all(engine: &Engine, point: &Arc<CapturePoint>) -> anyhow::Result<()> {
    let mut notifier = Notifier::new(point.clone());
    let mut consumer = notifier.consumer(engine.clone());
    while consumer.step(&mut notifier).await? > 0 {}
    Ok(())
}

pub fn meta(origin: &str) -> ActionMeta {
    ActionMeta::default().defaulted(origin)
}

/// Applies `action` to a task as a supervisor (origin `REST`) would.
pub async fn act(engine: &Engine, task: &Task, action: Action) -> Task {
    engine
        .execute(Command::act(
            TaskRef::Broker(task.broker_id),
            action,
            meta("REST"),
        ))
        .await
        .unwrap_or_else(|e| panic!("action on {}: {e}", task.broker_id))
        .task
}

pub async fn task(engine: &Engine, cp: &str, capture_id: &str) -> Option<Task> {
    engine
        .tasks()
        .find_task(&TaskRef::Capture {
            capture_point_id: cp.into(),
            capture_id: capture_id.into(),
        })
        .await
        .expect("store")
}

pub async fn tasks_of(engine: &Engine, cp: &str) -> Vec<Task> {
    engine
        .tasks()
        .list_tasks(&worklane_store::TaskQuery {
            capture_point_id: Some(cp.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("store")
}

/// Polls a condition until it holds or the deadline passes.
pub use worklane_store::testing::poll_until as wait_until;
