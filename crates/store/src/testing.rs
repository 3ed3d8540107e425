//! Fresh, isolated stores for tests (this crate's and every adapter's): a new SQLite file
//! in a temporary directory, or a new PostgreSQL database per call.

use crate::StoreError;
use std::future::Future;
use std::time::Duration;

/// The PostgreSQL server tests use: `WORKLANE_TEST_POSTGRES`, else the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("WORKLANE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a database named `wl_test_<random>` and returns its URL. `.ci/run` drops
/// leftovers of earlier runs.
pub async fn fresh_postgres_url() -> Result<String, StoreError> {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = format!("wl_test_{}", random_suffix());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    // The name is generated here, never taken from outside.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(&admin).expect("admin url parses");
    url.set_path(&name);
    Ok(url.to_string())
}

/// A SQLite URL in a new temporary directory (kept for the life of the process).
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("worklane-test-{}", random_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}", dir.join("worklane.db").display())
}

fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        nanos & 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Checks `cond` every 20 ms until it holds (true) or `limit` passes (false).
/// Tests wait on a condition with a deadline this way, never on a bare sleep.
pub async fn poll_until<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`poll_until`], but panics naming `what` when `limit` passes.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        poll_until(limit, cond).await,
        "timed out after {limit:?} waiting for {what}"
    );
}

/// Gathers planner statistics for every table of the PostgreSQL database at `url`.
pub async fn analyze_postgres(url: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    Ok(())
}

/// Runs each named `async fn(Arc<dyn Store>)` of the calling test file against a fresh
/// SQLite store and a fresh PostgreSQL store: `store_suite!(test_a, test_b);` makes
/// `sqlite::test_a`, `postgres::test_a`, ... (the one conformance-suite harness).
#[macro_export]
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let url = $crate::testing::fresh_sqlite_url();
                    super::$name($crate::connect(&url).await.unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let url = $crate::testing::fresh_postgres_url().await.unwrap();
                    super::$name($crate::connect(&url).await.unwrap()).await;
                }
            )*
        }
    };
}
