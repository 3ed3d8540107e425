//! The Database Capture Point against real sources: PostgreSQL, MariaDB, SQLite, and
//! PostgreSQL through its Debian ODBC driver. Each test makes its own source database
//! and its own Worklane store.

mod common;

use common::*;
use std::time::Duration;
use worklane_capture_db::value::Value;
use worklane_capture_db::CheckError;
use worklane_domain::{Action, Status, TaskFields, Timestamp};
use worklane_engine::Processor;

const INJECTION: &str = "x'; drop table cases; --";

/// Seed 000's flow: rows become tasks and are marked submitted with their
/// InteractionId; the task is assigned and completed; the status is written back.
async fn seed_cycle(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    src.insert_case("C1", 5).await;
    src.insert_case("C2", 3).await;
    src.insert_case(INJECTION, 1).await;
    let point = point(&engine, seed_config("DB1", &src.url)).await;
    point.check().await.expect("start-up checks pass");

    assert_eq!(point.capture_step().await.expect("capture"), 3);
    for id in ["C1", "C2", INJECTION] {
        let t = task(&engine, "DB1", id)
            .await
            .unwrap_or_else(|| panic!("task for {id:?}"));
        let case = src.case(id).await;
        assert_eq!(text(&case, "status").as_deref(), Some("submitted"), "{id}");
        assert_eq!(
            text(&case, "caseTrackingId"),
            Some(t.broker_id.to_string()),
            "{id}"
        );
        // `Status` is an attribute the server owns: the column becomes custom data.
        assert_eq!(t.data.get("Status").map(String::as_str), Some("new"));
        assert!(t.data.contains_key("ReceivedAt"), "{:?}", t.data);
        assert_eq!(t.capture_point_id, "DB1");
    }
    assert_eq!(task(&engine, "DB1", "C1").await.expect("C1").priority, 5);
    // The injection attempt was a value like any other: the table is still there.
    assert_eq!(src.count("select count(*) from cases").await, 3);
    assert_eq!(
        point.capture_step().await.expect("capture"),
        0,
        "nothing is captured twice"
    );

    Processor::new(engine.clone())
        .step(Timestamp::now())
        .await
        .expect("processing");
    let c1 = task(&engine, "DB1", "C1").await.expect("C1");
    assert_eq!(c1.status, Status::Queued);
    let c1 = act(
        &engine,
        &c1,
        Action::Assign {
            user: "agent7".into(),
        },
    )
    .await;
    notify_all(&engine, &point).await.expect("notifications");
    let case = src.case("C1").await;
    assert_eq!(text(&case, "status").as_deref(), Some("assigned"));
    assert_eq!(text(&case, "substatus").as_deref(), Some("agent7"));
    act(&engine, &c1, Action::Complete).await;
    notify_all(&engine, &point).await.expect("notifications");
    assert_eq!(
        text(&src.case("C1").await, "status").as_deref(),
        Some("completed")
    );
    assert_eq!(src.log("C1").await, ["queued:Queued"]);
    assert_eq!(src.log(INJECTION).await, ["queued:Queued"]);
    assert_eq!(
        text(&src.case("C2").await, "status").as_deref(),
        Some("submitted")
    );
    assert!(
        src.count("select count(*) from startup_log").await >= 1,
        "startupQuerySql ran"
    );
}

/// Rows that cannot become tasks get errorUpdateSql with ErrorCode and
/// ErrorDescription: a bad value, and a duplicate under check_if_captured.
async fn error_path(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    let long = "L".repeat(70);
    src.insert_case("C1", 5).await;
    src.insert_case(&long, 5).await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.check_if_captured = true;
    let point = point(&engine, cfg).await;
    assert_eq!(point.capture_step().await.expect("capture"), 2);
    let bad = src.case(&long).await;
    assert_eq!(text(&bad, "status").as_deref(), Some("error"));
    assert_eq!(text(&bad, "errorCode").as_deref(), Some("1"));
    let descr = text(&bad, "errorDescr").expect("description");
    assert!(descr.starts_with("INVALID_FORMAT: captureId"), "{descr}");
    assert!(descr.chars().count() <= 256);
    assert!(task(&engine, "DB1", &long).await.is_none());

    // The same ExternalId offered again with different values: a genuine duplicate.
    src.exec("update cases set status='new', casePriority=9 where caseId='C1'")
        .await;
    assert_eq!(point.capture_step().await.expect("capture"), 1);
    let dup = src.case("C1").await;
    assert_eq!(text(&dup, "status").as_deref(), Some("error"));
    assert_eq!(text(&dup, "errorCode").as_deref(), Some("3"));
    assert!(text(&dup, "errorDescr")
        .expect("description")
        .starts_with("TASK_ALREADY_CAPTURED"));
    assert_eq!(tasks_of(&engine, "DB1").await.len(), 1);
}

/// The crash case: tasks created, then the process dies before capturedUpdateSql. The
/// rows come again after the restart: no second task, the rows are marked with the
/// first tasks' InteractionIds, even with check_if_captured on.
async fn crash_between_create_and_mark(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    src.insert_case("C1", 5).await;
    src.insert_case("C2", 4).await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.check_if_captured = true;
    let first = point(&engine, cfg.clone()).await;
    let batch = first.read_and_create().await.expect("create");
    assert_eq!(batch.len(), 2);
    assert!(batch.results().all(|r| r.is_ok()));
    // The crash: the batch is never marked, the capture point is gone.
    drop(batch);
    first.source().close().await;
    drop(first);
    let before: Vec<_> = tasks_of(&engine, "DB1")
        .await
        .into_iter()
        .map(|t| (t.capture_id, t.broker_id))
        .collect();
    assert_eq!(before.len(), 2);
    assert_eq!(
        text(&src.case("C1").await, "status").as_deref(),
        Some("new")
    );

    let again = point(&engine, cfg).await;
    assert_eq!(again.capture_step().await.expect("capture"), 2);
    let after: Vec<_> = tasks_of(&engine, "DB1")
        .await
        .into_iter()
        .map(|t| (t.capture_id, t.broker_id))
        .collect();
    assert_eq!(after, before, "no second task");
    for (id, broker) in before {
        let case = src.case(&id).await;
        assert_eq!(text(&case, "status").as_deref(), Some("submitted"));
        assert_eq!(text(&case, "caseTrackingId"), Some(broker.to_string()));
    }
}

/// Source updates by ExternalId, by InteractionId, and with both (then ExternalId is a
/// captureId change); an unknown task gets sourceErrorUpdateSql. updatedUpdateSql runs
/// for changes made by others only.
async fn source_updates(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    for id in ["C1", "C2", "C3"] {
        src.insert_case(id, 1).await;
    }
    let point = point(&engine, seed_config("DB1", &src.url)).await;
    point.check().await.expect("checks");
    assert_eq!(point.capture_step().await.expect("capture"), 3);
    let b2 = task(&engine, "DB1", "C2").await.expect("C2").broker_id;
    let b3 = task(&engine, "DB1", "C3").await.expect("C3").broker_id;
    src.exec("insert into case_updates (caseId, casePriority) values ('C1', 9)")
        .await;
    src.exec_with(
        "insert into case_updates (caseId, interactionId, casePriority) values ('C2-new', ?'b', 7)",
        vec![Value::Int(b2.0)],
    )
    .await;
    src.exec_with(
        "insert into case_updates (interactionId, casePriority) values (?'b', 4)",
        vec![Value::Int(b3.0)],
    )
    .await;
    src.exec("insert into case_updates (caseId, casePriority) values ('NOPE', 1)")
        .await;

    assert_eq!(point.source_update_step().await.expect("updates"), 4);
    let c1 = task(&engine, "DB1", "C1").await.expect("C1");
    assert_eq!(c1.priority, 9);
    assert!(
        c1.data.contains_key("SomeTime"),
        "other columns are custom data"
    );
    let c2 = engine
        .tasks()
        .get_task(b2)
        .await
        .expect("store")
        .expect("task");
    assert_eq!((c2.capture_id.as_str(), c2.priority), ("C2-new", 7));
    assert_eq!(
        engine
            .tasks()
            .get_task(b3)
            .await
            .expect("store")
            .expect("task")
            .priority,
        4
    );
    assert_eq!(
        src.count("select count(*) from case_updates where status='applied'")
            .await,
        3
    );
    let nope = src
        .query("select status, errorcode, errordescr from case_updates where caseId='NOPE'")
        .await;
    assert_eq!(text(&nope[0], "status").as_deref(), Some("error"));
    assert_eq!(text(&nope[0], "errorcode").as_deref(), Some("2"));
    assert!(text(&nope[0], "errordescr")
        .expect("descr")
        .starts_with("TASK_NOT_FOUND"));

    notify_all(&engine, &point).await.expect("notifications");
    assert!(
        src.log("C1").await.is_empty(),
        "our own updates are not reported back"
    );
    let fields = TaskFields {
        priority: Some(2),
        ..TaskFields::default()
    };
    act(&engine, &c1, Action::Update(fields)).await;
    notify_all(&engine, &point).await.expect("notifications");
    assert_eq!(src.log("C1").await, ["updated:2"]);
}

/// Every notification statement the engine can trigger runs, with the task's values.
async fn every_notification_statement(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    for id in ["C1", "C2"] {
        src.insert_case(id, 1).await;
    }
    let point = point(&engine, seed_config("DB1", &src.url)).await;
    assert_eq!(point.capture_step().await.expect("capture"), 2);
    Processor::new(engine.clone())
        .step(Timestamp::now())
        .await
        .expect("processing");
    let c1 = task(&engine, "DB1", "C1").await.expect("C1");
    let c1 = act(&engine, &c1, Action::Hold).await;
    let c1 = act(&engine, &c1, Action::Resume).await;
    let c1 = act(&engine, &c1, Action::Restart).await;
    let c1 = act(
        &engine,
        &c1,
        Action::ErrorHold {
            error: "no rule".into(),
        },
    )
    .await;
    let c1 = act(&engine, &c1, Action::Cancel).await;
    act(&engine, &c1, Action::Stop).await;
    let c2 = task(&engine, "DB1", "C2").await.expect("C2");
    let c2 = act(&engine, &c2, Action::Restart).await;
    act(&engine, &c2, Action::Reject).await;
    notify_all(&engine, &point).await.expect("notifications");
    assert_eq!(
        src.log("C1").await,
        [
            "queued:Queued",
            "held",
            "resumed:Queued",
            "restarted",
            "errorHeld:no rule",
            "canceled",
            "stopped"
        ]
    );
    assert_eq!(
        src.log("C2").await,
        ["queued:Queued", "restarted", "rejected"]
    );
}

/// Start-up checks prepare each statement and name the option that is wrong.
async fn startup_checks_name_the_option(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.completed_update_sql =
        Some("update cases set statu='completed' where caseId=?'ExternalId'".into());
    let p = point(&engine, cfg).await;
    match p.check().await {
        Err(CheckError::Statement(m)) => {
            assert!(m.starts_with("DB1.completedUpdateSql: "), "{m}");
            assert!(m.contains("statu"), "{m}");
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    let mut cfg = seed_config("DB1", &src.url);
    cfg.captured_update_sql =
        Some("update cases set status='submitted' where caseId=?'CaseNumber'".into());
    match point(&engine, cfg).await.check().await {
        Err(CheckError::Statement(m)) => {
            assert!(
                m.starts_with("DB1.capturedUpdateSql: unknown parameter ?'CaseNumber'"),
                "{m}"
            )
        }
        other => panic!("expected an unknown parameter, got {other:?}"),
    }
}

/// `on_backends!(scenario: Postgres, Sqlite; odbc: OdbcPostgres)` makes one test per
/// backend; the ones after `odbc:` exist only in builds with the `odbc` feature.
macro_rules! on_backends {
    ($scenario:ident: $($backend:ident),* $(; odbc: $($odbc:ident),*)?) => {
        mod $scenario {
            $(
                #[allow(non_snake_case)]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $backend() {
                    super::$scenario(super::Backend::$backend).await;
                }
            )*
            $($(
                #[cfg(feature = "odbc")]
                #[allow(non_snake_case)]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $odbc() {
                    super::$scenario(super::Backend::$odbc).await;
                }
            )*)?
        }
    };
}

on_backends!(seed_cycle: Postgres, MariaDb, Sqlite; odbc: OdbcPostgres, OdbcMariaDb);
on_backends!(error_path: Postgres, MariaDb, Sqlite; odbc: OdbcPostgres, OdbcMariaDb);
on_backends!(crash_between_create_and_mark: Postgres, MariaDb, Sqlite);
on_backends!(source_updates: Postgres, MariaDb, Sqlite; odbc: OdbcPostgres, OdbcMariaDb);
on_backends!(every_notification_statement: Postgres, MariaDb, Sqlite);
on_backends!(startup_checks_name_the_option: Postgres, MariaDb, Sqlite; odbc: OdbcPostgres, OdbcMariaDb);

/// An outage of a PostgreSQL source (native, and through ODBC) mid-run: its connections are killed and the database
/// renamed away. Capture and notifications fail without losing anything (the
/// notification position does not move); once it is back, startupQuerySql runs on the
/// new connections and everything catches up.
async fn outage_mid_run(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    src.insert_case("C1", 1).await;
    let point = point(&engine, seed_config("DB1", &src.url)).await;
    assert_eq!(point.capture_step().await.expect("capture"), 1);
    Processor::new(engine.clone())
        .step(Timestamp::now())
        .await
        .expect("processing");
    notify_all(&engine, &point).await.expect("notifications");
    let startups = src.count("select count(*) from startup_log").await;
    src.admin.close().await;

    let away = format!("{}_away", src.name);
    let rename = |from: String, to: String| async move {
        use sqlx::{Connection, Executor};
        // Kill the connections, then rename; a pool reconnecting in between makes the
        // rename fail, so try again until it holds.
        let renamed = worklane_store::testing::poll_until(Duration::from_secs(10), || {
            let (from, to) = (from.clone(), to.clone());
            async move {
                let mut admin = sqlx::PgConnection::connect(&postgres_admin())
                    .await
                    .expect("admin");
                let kill = format!(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{from}' and pid <> pg_backend_pid()"
                );
                admin
                    .execute(sqlx::raw_sql(&kill))
                    .await
                    .expect("terminate");
                admin
                    .execute(sqlx::raw_sql(&format!("alter database {from} rename to {to}")))
                    .await
                    .is_ok()
            }
        })
        .await;
        assert!(renamed, "could not rename {from}");
    };
    rename(src.name.clone(), away.clone()).await;

    // Down: work keeps arriving in Worklane and at the source's door.
    let c1 = task(&engine, "DB1", "C1").await.expect("C1");
    act(
        &engine,
        &c1,
        Action::Assign {
            user: "agent1".into(),
        },
    )
    .await;
    let err = notify_all(&engine, &point)
        .await
        .expect_err("source is down");
    assert!(format!("{err:#}").contains("unavailable"), "{err:#}");
    let position = engine
        .events()
        .cursor(&worklane_capture_db::consumer_name("DB1"))
        .await
        .expect("cursor");
    assert!(
        position < engine.events().last_seq().await.expect("seq"),
        "the position did not pass the event"
    );
    let e = point.capture_step().await.expect_err("source is down");
    assert!(e.is_transient(), "{e}");

    rename(away, src.name.clone()).await;
    let mut back = src;
    back.admin = worklane_capture_db::source::connect(&back.url, None, jiff::tz::TimeZone::UTC)
        .await
        .expect("admin");
    back.insert_case("C2", 1).await;
    let caught_up = wait_until(Duration::from_secs(20), || async {
        point.capture_step().await.is_ok() && notify_all(&engine, &point).await.is_ok()
    })
    .await;
    assert!(caught_up, "capture and notifications resume");
    assert_eq!(
        text(&back.case("C1").await, "status").as_deref(),
        Some("assigned")
    );
    assert_eq!(
        text(&back.case("C2").await, "status").as_deref(),
        Some("submitted")
    );
    assert_eq!(back.log("C1").await, ["queued:Queued"], "nothing ran twice");
    assert!(
        back.count("select count(*) from startup_log").await > startups,
        "startupQuerySql ran on reconnection"
    );
}

/// `run` drives everything by itself until cancelled: rows become tasks, statuses flow
/// back, and it returns once cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_cancelled_on_sqlite() {
    let src = TestSource::new(Backend::Sqlite).await;
    let engine = engine().await;
    src.insert_case("C1", 1).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worklane_capture_db::run(
        engine.clone(),
        seed_config("DB1", &src.url),
        cancel.clone(),
    ));
    let processor = tokio::spawn(
        Processor::new(engine.clone())
            .poll_interval(Duration::from_millis(50))
            .run(cancel.clone()),
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            src.log("C1").await == ["queued:Queued"]
        })
        .await,
        "captured and queued"
    );
    let c1 = task(&engine, "DB1", "C1").await.expect("C1");
    let c1 = act(&engine, &c1, Action::Assign { user: "a".into() }).await;
    act(&engine, &c1, Action::Complete).await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            text(&src.case("C1").await, "status").as_deref() == Some("completed")
        })
        .await,
        "completion written back"
    );
    cancel.cancel();
    running.await.expect("join").expect("run ends cleanly");
    processor.await.expect("join");
}

/// A wrong statement stops `run` at start-up with the option's name.
#[tokio::test]
async fn run_fails_fast_on_a_wrong_statement() {
    let src = TestSource::new(Backend::Sqlite).await;
    let engine = engine().await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.held_update_sql =
        Some("update nowhere set status='held' where caseId=?'ExternalId'".into());
    let e = worklane_capture_db::run(engine, cfg, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("fails");
    assert!(e.to_string().starts_with("DB1.heldUpdateSql: "), "{e}");
}

/// `examples/database/` works as shipped: its configuration validates and passes the
/// start-up checks against its schema, and its sample data is captured and updated.
#[tokio::test]
async fn the_shipped_example_works() {
    use sqlx::{Connection, Executor};
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/database");
    let dir = std::env::temp_dir().join(unique("wl-dbcp-example"));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}", dir.join("source.db").display());
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
    let mut c = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true))
        .await
        .expect("sqlite");
    for file in ["schema.sql", "sample-data.sql"] {
        let sql = std::fs::read_to_string(examples.join(file)).expect(file);
        c.execute(sqlx::raw_sql(&sql)).await.expect(file);
    }
    let text = std::fs::read_to_string(examples.join("worklane.toml")).expect("worklane.toml");
    let mut cfg = worklane_capture_db::cli::database_entries(&text)
        .expect("parses")
        .remove(0);
    cfg.validate().expect("valid as shipped");
    cfg.url = url;
    let engine = engine().await;
    let point = point(&engine, cfg).await;
    point.check().await.expect("start-up checks pass");
    assert_eq!(point.capture_step().await.expect("capture"), 3);
    assert_eq!(point.source_update_step().await.expect("updates"), 1);
    assert_eq!(
        task(&engine, "DB1", "CASE-1002")
            .await
            .expect("task")
            .priority,
        9
    );
    assert_eq!(
        task(&engine, "DB1", "CASE-1001")
            .await
            .expect("task")
            .channel
            .as_deref(),
        Some("Database")
    );
}

/// The pipelined capture (marking one batch while creating the next) captures every row
/// once, in small batches, and marks each with its own task's InteractionId.
async fn pipelined_capture(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    for i in 0..7 {
        src.insert_case(&format!("P{i}"), i).await;
    }
    let mut cfg = seed_config("DB1", &src.url);
    cfg.batch_size = 2;
    cfg.check_if_captured = true;
    let point = point(&engine, cfg).await;
    let mut pipeline = worklane_capture_db::CapturePipeline::new();
    let mut read = 0;
    loop {
        let n = pipeline.step(&point).await.expect("round");
        read += n;
        if n == 0 {
            break;
        }
    }
    pipeline.flush(&point).await.expect("flush");
    assert_eq!(read, 7, "every row read once");
    let tasks = tasks_of(&engine, "DB1").await;
    assert_eq!(tasks.len(), 7);
    for t in tasks {
        let case = src.case(&t.capture_id).await;
        assert_eq!(text(&case, "status").as_deref(), Some("submitted"));
        assert_eq!(text(&case, "caseTrackingId"), Some(t.broker_id.to_string()));
    }
}

on_backends!(pipelined_capture: Postgres, MariaDb, Sqlite);

/// Zone-less timestamps are read and written in the capture point's time zone: a
/// TIMESTAMP / DATETIME / text column becomes dueDateTime, and the task's dueDateTime is
/// bound back into that column by a notification statement.
async fn timestamps_in_the_configured_zone(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    src.exec("insert into cases (caseId, casePriority, status, createdTimestamp) values ('T1', 1, 'new', '2026-07-01 12:00:00')")
        .await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.timezone = Some("Europe/Berlin".into());
    cfg.capture_query_sql = "select caseId \"ExternalId\", createdTimestamp \"DueDateTime\" from cases where status='new'".into();
    cfg.updated_update_sql =
        Some("update cases set createdTimestamp=?'DueDateTime' where caseId=?'ExternalId'".into());
    let point = point(&engine, cfg).await;
    point.check().await.expect("checks");
    assert_eq!(point.capture_step().await.expect("capture"), 1);
    let t1 = task(&engine, "DB1", "T1").await.expect("T1");
    assert_eq!(
        t1.due_date_time.map(|t| t.to_string()).as_deref(),
        Some("2026-07-01T10:00:00Z")
    );

    let due: Timestamp = "2026-08-01T00:00:00Z".parse().expect("timestamp");
    let fields = TaskFields {
        due_date_time: Some(due),
        ..TaskFields::default()
    };
    act(&engine, &t1, Action::Update(fields)).await;
    notify_all(&engine, &point).await.expect("notifications");
    let rows = src
        .query("select createdTimestamp from cases where caseId='T1'")
        .await;
    let written = rows[0].columns[0]
        .1
        .to_timestamp("createdTimestamp", &jiff::tz::TimeZone::UTC)
        .expect("timestamp");
    // Berlin civil time 02:00, read back here as if it were UTC.
    assert_eq!(
        written.map(|t| t.to_string()).as_deref(),
        Some("2026-08-01T02:00:00Z")
    );
}

on_backends!(timestamps_in_the_configured_zone: Postgres, MariaDb, Sqlite; odbc: OdbcPostgres, OdbcMariaDb);

on_backends!(outage_mid_run: Postgres; odbc: OdbcPostgres);

/// `dbcp check` prepares the statements of a configuration file's database capture
/// points and fails, naming the option, when one is wrong.
#[tokio::test]
async fn dbcp_check_reports_per_capture_point() {
    let src = TestSource::new(Backend::Sqlite).await;
    let dir = std::env::temp_dir().join(unique("wl-dbcp-check"));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("worklane.toml");
    let write = |completed: &str| {
        let text = format!(
            "[[capture_point]]\nid = \"DB1\"\nkind = \"database\"\nurl = \"{}\"\n\
             captureQuerySql = \"select caseId \\\"ExternalId\\\" from cases where status='new'\"\n\
             completedUpdateSql = \"{completed}\"\n\
             [[capture_point]]\nid = \"MQ1\"\nkind = \"mq\"\n",
            src.url
        );
        std::fs::write(&file, text).expect("write config");
    };
    let args = |id: Option<&str>| worklane_capture_db::cli::CheckArgs {
        config: file.clone(),
        id: id.map(str::to_owned),
    };
    write("update cases set status='completed' where caseId=?'ExternalId'");
    worklane_capture_db::cli::check(args(None))
        .await
        .expect("passes");
    write("update cases set statu='completed' where caseId=?'ExternalId'");
    let e = worklane_capture_db::cli::check(args(Some("DB1")))
        .await
        .expect_err("fails");
    assert!(e.to_string().contains("failed the checks"), "{e}");
    let e = worklane_capture_db::cli::check(args(Some("NOPE")))
        .await
        .expect_err("no such point");
    assert!(e.to_string().contains("no database capture point"), "{e}");
}

/// A statement the source refuses (here a primary-key violation) is logged and skipped;
/// the statements around it in the same batch still run and the position moves on.
async fn a_refused_statement_does_not_block_the_others(backend: Backend) {
    let src = TestSource::new(backend).await;
    src.exec("create table held_once (caseId varchar(100) primary key)")
        .await;
    let engine = engine().await;
    src.insert_case("C1", 1).await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.held_update_sql = Some("insert into held_once (caseId) values (?'ExternalId')".into());
    let point = point(&engine, cfg).await;
    assert_eq!(point.capture_step().await.expect("capture"), 1);
    Processor::new(engine.clone())
        .step(Timestamp::now())
        .await
        .expect("processing");
    let c1 = task(&engine, "DB1", "C1").await.expect("C1");
    let c1 = act(&engine, &c1, Action::Hold).await;
    let c1 = act(&engine, &c1, Action::Resume).await;
    let c1 = act(&engine, &c1, Action::Hold).await;
    act(&engine, &c1, Action::Resume).await;
    notify_all(&engine, &point)
        .await
        .expect("notifications go on");
    assert_eq!(src.count("select count(*) from held_once").await, 1);
    assert_eq!(
        src.log("C1").await,
        ["queued:Queued", "resumed:Queued", "resumed:Queued"]
    );
    let position = engine
        .events()
        .cursor(&worklane_capture_db::consumer_name("DB1"))
        .await
        .expect("cursor");
    assert_eq!(position, engine.events().last_seq().await.expect("seq"));
}

on_backends!(a_refused_statement_does_not_block_the_others: Postgres, MariaDb, Sqlite);

/// With everything running at once (capture pipeline, processing, notifications), a
/// task's notification statements never run before its row's capturedUpdateSql: every
/// row ends `queued` (the seed's queuedUpdateSql), none is left `submitted`.
async fn run_marks_rows_before_their_notifications(backend: Backend) {
    let src = TestSource::new(backend).await;
    let engine = engine().await;
    for i in 0..40 {
        src.insert_case(&format!("R{i:02}"), i).await;
    }
    let mut cfg = seed_config("DB1", &src.url);
    cfg.batch_size = 7;
    cfg.queued_update_sql = Some(
        "update cases set status = 'queued', substatus=?'Queue' where caseId=?'ExternalId'".into(),
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let processor = tokio::spawn(
        Processor::new(engine.clone())
            .poll_interval(Duration::from_millis(10))
            .run(cancel.clone()),
    );
    let running = tokio::spawn(worklane_capture_db::run(
        engine.clone(),
        cfg,
        cancel.clone(),
    ));
    let settled = wait_until(Duration::from_secs(30), || async {
        src.count(
            "select count(*) from cases where status = 'queued' and caseTrackingId is not null",
        )
        .await
            == 40
    })
    .await;
    cancel.cancel();
    running.await.expect("join").expect("run ends cleanly");
    processor.await.expect("join");
    let left = src
        .query(
            "select caseId, status from cases where status <> 'queued' or caseTrackingId is null",
        )
        .await;
    assert!(settled, "rows not queued: {left:?}");
}

on_backends!(run_marks_rows_before_their_notifications: Postgres, Sqlite);

/// After a crash between creating tasks and marking their rows, the tasks went on
/// (queued) while the capture point was down. On restart their rows are marked before
/// the queued notifications run, so capturedUpdateSql is not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_marks_rows_before_notifying() {
    let src = TestSource::new(Backend::Sqlite).await;
    let engine = engine().await;
    src.insert_case("C1", 1).await;
    let mut cfg = seed_config("DB1", &src.url);
    cfg.queued_update_sql = Some(
        "update cases set status = 'queued', substatus=?'Queue' where caseId=?'ExternalId'".into(),
    );
    let crashed = point(&engine, cfg.clone()).await;
    drop(crashed.read_and_create().await.expect("created"));
    crashed.source().close().await;
    drop(crashed);
    Processor::new(engine.clone())
        .step(Timestamp::now())
        .await
        .expect("processing");
    assert_eq!(
        task(&engine, "DB1", "C1").await.expect("C1").status,
        Status::Queued
    );

    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worklane_capture_db::run(
        engine.clone(),
        cfg,
        cancel.clone(),
    ));
    let done = wait_until(Duration::from_secs(20), || async {
        text(&src.case("C1").await, "status").as_deref() == Some("queued")
    })
    .await;
    cancel.cancel();
    running.await.expect("join").expect("run ends cleanly");
    assert!(done, "queued notification ran");
    let b = task(&engine, "DB1", "C1").await.expect("C1").broker_id;
    assert_eq!(
        text(&src.case("C1").await, "caseTrackingId"),
        Some(b.to_string())
    );
    assert_eq!(tasks_of(&engine, "DB1").await.len(), 1);
}
