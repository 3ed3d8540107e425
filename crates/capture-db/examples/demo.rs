//! Watch rows become tasks and statuses flow back, with no server and no database
//! server: `cargo run -p worklane-capture-db --example demo`.
//!
//! Creates a SQLite source from `examples/database/schema.sql` and `sample-data.sql`,
//! runs the capture point of `examples/database/worklane.toml` against it with an
//! in-process engine, acts on the tasks as a supervisor would, and prints the source's
//! tables after each step.

use anyhow::Context as _;
use sqlx::{Connection, Executor, Row as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_capture_db::cli::database_entries;
use worklane_domain::{Action, ActionMeta, Status, TaskRef};
use worklane_engine::{Command, Engine, EngineOptions, Processor};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/database")
}

async fn print_tables(source: &str, title: &str) -> anyhow::Result<()> {
    let mut c = sqlx::SqliteConnection::connect(source).await?;
    println!("\n== {title}");
    println!(
        "{:<10} {:<10} {:<12} {:<8} {:<9} error",
        "caseId", "status", "substatus", "priority", "tracking"
    );
    for r in sqlx::query("select caseId, status, substatus, casePriority, caseTrackingId, errorDescr from cases order by caseId")
        .fetch_all(&mut c)
        .await?
    {
        println!(
            "{:<10} {:<10} {:<12} {:<8} {:<9} {}",
            r.try_get::<String, _>(0)?,
            r.try_get::<String, _>(1)?,
            r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
            r.try_get::<i64, _>(3)?,
            r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
            r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
        );
    }
    for r in sqlx::query("select caseId, casePriority, status from case_updates order by id")
        .fetch_all(&mut c)
        .await?
    {
        println!(
            "update request for {} (priority {}): {}",
            r.try_get::<String, _>(0)?,
            r.try_get::<i64, _>(1)?,
            r.try_get::<String, _>(2)?
        );
    }
    Ok(())
}

/// Waits until the source's `cases` row `id` has `status` (the capture point polls).
async fn wait_for(source: &str, id: &str, status: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut c = sqlx::SqliteConnection::connect(source).await?;
    loop {
        let now: Option<String> = sqlx::query_scalar("select status from cases where caseId = ?")
            .bind(id)
            .fetch_optional(&mut c)
            .await?;
        if now.as_deref() == Some(status) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{id} never became {status} (is {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn supervisor(engine: &Engine, capture_id: &str, action: Action) -> anyhow::Result<()> {
    let task = TaskRef::Capture {
        capture_point_id: "DB1".into(),
        capture_id: capture_id.into(),
    };
    let meta = ActionMeta {
        reason: Some("demo".into()),
        ..ActionMeta::default()
    }
    .defaulted("REST");
    let done = engine
        .execute(Command::act(task, action.clone(), meta))
        .await?;
    println!(
        "\n-> {} {capture_id}: task {} is now {}",
        action.name(),
        done.task.broker_id,
        done.task.status
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("worklane-dbcp-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let source = format!("sqlite://{}", dir.join("source.db").display());
    let examples = example_dir();
    {
        let opts: sqlx::sqlite::SqliteConnectOptions = source.parse()?;
        let mut c = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true)).await?;
        for file in ["schema.sql", "sample-data.sql"] {
            let sql =
                std::fs::read_to_string(examples.join(file)).with_context(|| file.to_owned())?;
            c.execute(sqlx::raw_sql(&sql)).await?;
        }
    }
    print_tables(&source, "the source system, before").await?;

    let text = std::fs::read_to_string(examples.join("worklane.toml"))?;
    let mut cfg = database_entries(&text)?
        .into_iter()
        .next()
        .context("no database capture point")?;
    cfg.url = source.clone();
    cfg.poll_interval = Duration::from_millis(200);
    cfg.notify_poll_interval = Duration::from_millis(100);

    let store =
        worklane_store::connect(&format!("sqlite://{}", dir.join("worklane.db").display())).await?;
    let (engine, writer) = Engine::start(store, EngineOptions::default()).await?;
    let cancel = CancellationToken::new();
    let capture = tokio::spawn(worklane_capture_db::run(
        engine.clone(),
        cfg,
        cancel.clone(),
    ));
    let processing = tokio::spawn(
        Processor::new(engine.clone())
            .poll_interval(Duration::from_millis(100))
            .run(cancel.clone()),
    );

    for id in ["CASE-1001", "CASE-1002", "CASE-1003"] {
        wait_for(&source, id, "queued").await?;
    }
    print_tables(
        &source,
        "captured (capturedUpdateSql), then queued (queuedUpdateSql); the update request applied",
    )
    .await?;

    supervisor(
        &engine,
        "CASE-1001",
        Action::Assign {
            user: "agent1".into(),
        },
    )
    .await?;
    wait_for(&source, "CASE-1001", "assigned").await?;
    supervisor(&engine, "CASE-1001", Action::Complete).await?;
    supervisor(&engine, "CASE-1003", Action::Cancel).await?;
    wait_for(&source, "CASE-1001", "completed").await?;
    wait_for(&source, "CASE-1003", "canceled").await?;
    print_tables(
        &source,
        "after a supervisor assigned and completed CASE-1001 and canceled CASE-1003",
    )
    .await?;

    let tasks = engine
        .tasks()
        .list_tasks(&worklane_store::TaskQuery {
            limit: 10,
            ..Default::default()
        })
        .await?;
    println!("\n== the tasks in Worklane");
    for t in tasks {
        let done = if t.status == Status::Completed {
            " (done)"
        } else {
            ""
        };
        println!(
            "task {} captureId {} status {}{done} priority {} data {:?}",
            t.broker_id, t.capture_id, t.status, t.priority, t.data
        );
    }

    cancel.cancel();
    capture.await??;
    processing.await?;
    drop(engine);
    writer.await?;
    println!("\nThe source and the store are in {}", dir.display());
    Ok(())
}
