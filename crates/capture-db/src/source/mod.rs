//! The source database, behind one trait: run a query returning rows, run statements
//! with typed parameters in one transaction, prepare a statement to check it. Native
//! drivers (sqlx) serve `postgres://`, `mysql://` (MariaDB too) and `sqlite:`; ODBC
//! serves `odbc:<connection string or DSN=...>` when built with the `odbc` feature.

mod native;
#[cfg(feature = "odbc")]
mod odbc;

use crate::params::Dialect;
use crate::value::Value;
use async_trait::async_trait;
use jiff::tz::TimeZone;
use std::sync::Arc;

pub use native::NativeSource;
#[cfg(feature = "odbc")]
pub use odbc::OdbcSource;

/// True when this build serves `odbc:` sources (the `odbc` feature, which links unixODBC).
pub const ODBC_AVAILABLE: bool = cfg!(feature = "odbc");

/// Why an `odbc:` source cannot be used by a build without the `odbc` feature, and how to
/// get one that can.
pub const ODBC_NOT_BUILT: &str = "ODBC sources need Worklane built with the `odbc` feature: \
     install unixODBC (Debian/Ubuntu: `apt-get install unixodbc-dev`) and the database's \
     ODBC driver, then build with `cargo build --release --features odbc`";

/// One row of a result set: column name → value, in the query's column order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub columns: Vec<(String, Value)>,
}

impl Row {
    /// The value of the column named exactly `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.columns.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value of the column named `name` in any case.
    pub fn get_ci(&self, name: &str) -> Option<&Value> {
        self.get(name).or_else(|| {
            self.columns
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }
}

/// Why the source did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The source cannot be reached (down, connection lost, too busy): try again later.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// The source refused this statement (SQL error, a value it cannot take): trying
    /// again will not help.
    #[error("{0}")]
    Statement(String),
    /// The URL names no supported driver.
    #[error("{0}")]
    Url(String),
}

impl SourceError {
    /// True for failures worth retrying with backoff.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// One statement to run: SQL in the source's dialect and the value of each placeholder.
#[derive(Debug, Clone)]
pub struct Exec {
    pub sql: Arc<str>,
    pub params: Vec<Value>,
}

/// A source database.
#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// The placeholder style and lexical rules statements must be rewritten for.
    fn dialect(&self) -> Dialect;

    /// Prepares `sql` against the source without running it; returns the names of the
    /// columns it would yield (none for an update).
    async fn prepare(&self, sql: &str) -> Result<Vec<String>, SourceError>;

    /// Runs a query and returns at most `limit` rows (all when `limit` is 0).
    async fn query(
        &self,
        sql: &str,
        params: &[Value],
        limit: usize,
    ) -> Result<Vec<Row>, SourceError>;

    /// Runs statements in order in one transaction: all take effect or none does.
    async fn execute_all(&self, statements: &[Exec]) -> Result<(), SourceError>;

    /// Closes the connections.
    async fn close(&self);
}

/// Opens the source a URL names, running `startup` (startupQuerySql) on every new
/// connection. Zone-less timestamps are read and written in `tz`.
pub async fn connect(
    url: &str,
    startup: Option<String>,
    tz: TimeZone,
) -> Result<Arc<dyn Source>, SourceError> {
    if let Some(conn) = url.strip_prefix("odbc:") {
        #[cfg(feature = "odbc")]
        return Ok(Arc::new(odbc::OdbcSource::new(
            conn.to_owned(),
            startup,
            tz,
        )));
        #[cfg(not(feature = "odbc"))]
        {
            // Configuration validation refuses this first; callers that skip it get the
            // same explanation.
            let _ = (conn, startup, tz);
            Err(SourceError::Url(ODBC_NOT_BUILT.to_owned()))
        }
    } else {
        Ok(Arc::new(NativeSource::connect(url, startup, tz)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `odbc:` URL opens an ODBC source (which connects on first use) when this build
    /// has ODBC, and is refused with the explanation when it does not.
    #[tokio::test]
    async fn odbc_urls_connect_as_this_build_allows() {
        let result = connect("odbc:DSN=nowhere;PWD=secret", None, TimeZone::UTC).await;
        if ODBC_AVAILABLE {
            assert_eq!(result.expect("an ODBC source").dialect(), Dialect::Odbc);
        } else {
            match result.expect_err("ODBC left out of this build") {
                SourceError::Url(m) => assert_eq!(m, ODBC_NOT_BUILT),
                other => panic!("expected the ODBC explanation, got {other:?}"),
            }
        }
    }

    #[test]
    fn rows_find_columns_exactly_then_in_any_case() {
        let r = Row {
            columns: vec![
                ("externalid".into(), Value::Int(1)),
                ("ExternalId".into(), Value::Int(2)),
            ],
        };
        assert_eq!(r.get_ci("ExternalId"), Some(&Value::Int(2)));
        assert_eq!(r.get_ci("EXTERNALID"), Some(&Value::Int(1)));
    }
}
