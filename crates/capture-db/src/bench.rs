//! `worklane bench dbcp`: capture throughput from a PostgreSQL source. N rows with
//! status 'new'; measured: the time until every row is a task and marked submitted,
//! against a baseline loop in the same run with the same driver (select the rows, run
//! the same captured update for each row). Prints both rates and their ratio.

use crate::{CapturePoint, DatabaseCaptureConfig};
use anyhow::Context as _;
use sqlx::{Connection, Executor, Row as _};
use std::time::{Duration, Instant};
use worklane_engine::{Engine, EngineOptions};

/// Options of `bench dbcp`.
#[derive(Clone, clap::Args)]
pub struct BenchArgs {
    /// Rows with status 'new' in the source table.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u32,
    /// The capture point's batch_size (rows per poll and per source transaction).
    #[arg(long, default_value_t = 2_000)]
    pub batch_size: usize,
    /// The engine's group-commit size (the server's `store.max_batch`).
    #[arg(long, default_value_t = 256)]
    pub max_batch: usize,
    /// How many times to measure both; the medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// A PostgreSQL server where the bench may create (and drop) databases.
    #[arg(
        long,
        env = "WORKLANE_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres: String,
}

impl std::fmt::Debug for BenchArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchArgs")
            .field("rows", &self.rows)
            .field("batch_size", &self.batch_size)
            .field("max_batch", &self.max_batch)
            .field("runs", &self.runs)
            .field("postgres", &worklane_store::redact_url(&self.postgres))
            .finish()
    }
}

const CAPTURED_UPDATE: &str =
    "update cases set caseTrackingId=?'InteractionId', status='submitted' where caseId=?'ExternalId'";
const CAPTURE_QUERY: &str =
    "select caseId \"ExternalId\", createdTimestamp \"ReceivedAt\", casePriority \"Priority\", status \"Status\" from cases where status='new'";

/// A database of the bench's own, dropped when done.
struct BenchDb {
    admin: String,
    name: String,
    url: String,
}

impl BenchDb {
    async fn create(admin: &str, rows: u32) -> anyhow::Result<Self> {
        let name = format!(
            "wl_dbcp_bench_{:x}_{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos()
        );
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .context("connecting to the bench's PostgreSQL")?;
        // The name is generated here, never taken from outside.
        conn.execute(sqlx::raw_sql(&format!("CREATE DATABASE {name}")))
            .await?;
        let mut url = url::Url::parse(admin)?;
        url.set_path(&name);
        let db = Self {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        };
        let mut c = sqlx::PgConnection::connect(&db.url).await?;
        c.execute(sqlx::raw_sql(
            "create table cases (caseId varchar(64) primary key, createdTimestamp timestamp not null default now(), \
             casePriority int, status varchar(32) not null, caseTrackingId varchar(32)); \
             create index cases_status on cases (status);",
        ))
        .await?;
        sqlx::query(
            "insert into cases (caseId, casePriority, status) \
             select 'case-' || g, g % 10, 'new' from generate_series(1, $1) g",
        )
        .bind(i64::from(rows))
        .execute(&mut c)
        .await?;
        c.execute("vacuum analyze cases").await?;
        Ok(db)
    }

    async fn reset(&self) -> anyhow::Result<()> {
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        c.execute("update cases set status='new', caseTrackingId=null")
            .await?;
        c.execute("vacuum analyze cases").await?;
        Ok(())
    }

    async fn submitted(&self) -> anyhow::Result<i64> {
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        let row = sqlx::query(
            "select count(*) from cases where status='submitted' and caseTrackingId is not null",
        )
        .fetch_one(&mut c)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn drop_db(self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await?;
        conn.execute(sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .await?;
        Ok(())
    }
}

/// The baseline: one select, then the captured update row by row, each on its own.
async fn baseline(db: &BenchDb) -> anyhow::Result<Duration> {
    let mut c = sqlx::PgConnection::connect(&db.url).await?;
    let started = Instant::now();
    let rows = sqlx::query(CAPTURE_QUERY).fetch_all(&mut c).await?;
    let update = crate::params::parse(CAPTURED_UPDATE, crate::params::Dialect::Postgres)?;
    for (i, r) in rows.iter().enumerate() {
        let id: String = r.try_get("ExternalId")?;
        sqlx::query(&update.sql)
            .bind((i + 1).to_string())
            .bind(id)
            .execute(&mut c)
            .await?;
    }
    Ok(started.elapsed())
}

/// The capture point, polling until the table has no 'new' row left.
async fn capture(
    db: &BenchDb,
    batch_size: usize,
    max_batch: usize,
) -> anyhow::Result<(Duration, i64)> {
    let dir = std::env::temp_dir().join(format!("worklane-bench-dbcp-{}", db.name));
    std::fs::create_dir_all(&dir)?;
    let store =
        worklane_store::connect(&format!("sqlite://{}", dir.join("store.db").display())).await?;
    let options = EngineOptions {
        max_batch,
        ..EngineOptions::default()
    };
    let (engine, writer) = Engine::start(store, options).await?;
    let mut cfg = DatabaseCaptureConfig::new("BENCH", &db.url, CAPTURE_QUERY);
    cfg.batch_size = batch_size;
    cfg.captured_update_sql = Some(CAPTURED_UPDATE.to_owned());
    let point = CapturePoint::new(engine.clone(), cfg).await?;
    point.check().await?;
    let started = Instant::now();
    let mut pipeline = crate::CapturePipeline::new();
    while pipeline.step(&point).await? > 0 {}
    pipeline.flush(&point).await?;
    let took = started.elapsed();
    let tasks = engine.events().last_seq().await?;
    point.source().close().await;
    drop(point);
    drop(engine);
    writer.await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((took, tasks))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the bench and prints both rates and their ratio.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rows > 0 && args.runs > 0 && args.batch_size > 0,
        "rows, runs and batch size must be positive"
    );
    let db = BenchDb::create(&args.postgres, args.rows).await?;
    let result = measure(&db, &args).await;
    db.drop_db().await?;
    result
}

async fn measure(db: &BenchDb, args: &BenchArgs) -> anyhow::Result<()> {
    let n = f64::from(args.rows);
    let mut base_rates = Vec::new();
    let mut capture_rates = Vec::new();
    for run in 1..=args.runs {
        db.reset().await?;
        let b = baseline(db).await?;
        anyhow::ensure!(
            db.submitted().await? == i64::from(args.rows),
            "baseline did not mark every row"
        );
        db.reset().await?;
        let (c, tasks) = capture(db, args.batch_size, args.max_batch).await?;
        anyhow::ensure!(
            db.submitted().await? == i64::from(args.rows),
            "capture did not mark every row"
        );
        anyhow::ensure!(
            tasks == i64::from(args.rows),
            "capture made {tasks} tasks for {} rows",
            args.rows
        );
        let (br, cr) = (n / b.as_secs_f64(), n / c.as_secs_f64());
        println!(
            "run {run}: baseline {:.0} rows/s ({:.2} s), capture {:.0} rows/s ({:.2} s), ratio {:.2}",
            br,
            b.as_secs_f64(),
            cr,
            c.as_secs_f64(),
            cr / br
        );
        base_rates.push(br);
        capture_rates.push(cr);
    }
    let (br, cr) = (median(base_rates), median(capture_rates));
    println!(
        "dbcp bench: {} rows, batch_size {}, engine max_batch {}, {} runs (medians)",
        args.rows, args.batch_size, args.max_batch, args.runs
    );
    println!("baseline loop (select, then the captured update row by row): {br:.0} rows/s");
    println!("capture point (task created and row marked submitted):       {cr:.0} rows/s");
    println!("ratio capture/baseline: {:.2}", cr / br);
    Ok(())
}
