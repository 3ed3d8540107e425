//! The source database, behind one trait: run a query returning rows, run statements
//! with typed parameters in one transaction, prepare a statement to check it. Native
//! drivers (sqlx) serve `postgres://`, `mysql://` (MariaDB too) and `sqlite:`; ODBC
//! serves `odbc:<connection string or DSN=...>`.

mod native;
mod odbc;

use crate::params::Dialect;
use crate::value::Value;
use async_trait::async_trait;
use jiff::tz::TimeZone;
use std::sync::Arc;

pub use native::NativeSource;
pub use odbc::OdbcSource;

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
        Ok(Arc::new(OdbcSource::new(conn.to_owned(), startup, tz)))
    } else {
        Ok(Arc::new(NativeSource::connect(url, startup, tz)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
