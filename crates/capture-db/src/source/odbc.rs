//! Any other database through ODBC (unixODBC and the vendor's driver): SQL Server,
//! Oracle, DB2... One connection, used from a blocking thread; a dead connection is
//! dropped and opened again (running startupQuerySql) on the next call.

use super::{Exec, Row, SourceError};
use crate::params::Dialect;
use crate::value::{self, Value};
use async_trait::async_trait;
use jiff::tz::TimeZone;
use odbc_api::parameter::InputParameter;
use odbc_api::{Connection, ConnectionOptions, Cursor, DataType, IntoParameter, ResultSetMetadata};
use std::fmt;
use std::sync::{Arc, Mutex};

/// An ODBC source, named by a connection string or `DSN=...`.
pub struct OdbcSource {
    inner: Arc<Inner>,
}

struct Inner {
    conn_str: String,
    startup: Option<String>,
    tz: TimeZone,
    conn: Mutex<Option<Connection<'static>>>,
}

impl fmt::Debug for OdbcSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OdbcSource")
            .field(
                "connection",
                &worklane_store::redact_url(&format!("odbc:{}", self.inner.conn_str)),
            )
            .finish()
    }
}

impl OdbcSource {
    /// Sets the source up without connecting yet.
    pub fn new(conn_str: String, startup: Option<String>, tz: TimeZone) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn_str,
                startup,
                tz,
                conn: Mutex::new(None),
            }),
        }
    }

    /// Runs `f` with a live connection on a blocking thread.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, SourceError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection<'static>, &TimeZone) -> Result<T, odbc_api::Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_none() {
                *guard = Some(inner.open().map_err(|e| unavailable(&e))?);
            }
            let conn = guard.as_ref().expect("connection just opened");
            match f(conn, &inner.tz) {
                Ok(v) => Ok(v),
                Err(e) => {
                    let dead = conn.is_dead().unwrap_or(true);
                    let err = classify(&e, dead);
                    if err.is_unavailable() {
                        // Open a fresh connection next time.
                        *guard = None;
                    }
                    Err(err)
                }
            }
        })
        .await
        .map_err(|e| SourceError::Unavailable(format!("ODBC worker failed: {e}")))?
    }
}

impl Inner {
    fn open(&self) -> Result<Connection<'static>, odbc_api::Error> {
        let env = odbc_api::environment()?;
        let conn =
            env.connect_with_connection_string(&self.conn_str, ConnectionOptions::default())?;
        if let Some(sql) = &self.startup {
            conn.execute(sql, (), None)?;
        }
        Ok(conn)
    }
}

fn message(e: &odbc_api::Error) -> String {
    match e {
        odbc_api::Error::Diagnostics { record, .. } => {
            let m = String::from_utf8_lossy(&record.message).trim().to_owned();
            m.strip_prefix("ERROR: ").unwrap_or(&m).to_owned()
        }
        other => other.to_string(),
    }
}

fn unavailable(e: &odbc_api::Error) -> SourceError {
    SourceError::Unavailable(message(e))
}

/// Connection-class SQLSTATEs (08xxx), rollbacks (40xxx) and timeouts (HYT00/HYT01),
/// or a connection the driver reports dead, mean "try again later".
fn classify(e: &odbc_api::Error, dead: bool) -> SourceError {
    let state = match e {
        odbc_api::Error::Diagnostics { record, .. } => record.state.as_str().to_owned(),
        _ => String::new(),
    };
    if dead || state.starts_with("08") || state.starts_with("40") || state.starts_with("HYT") {
        SourceError::Unavailable(message(e))
    } else {
        SourceError::Statement(message(e))
    }
}

/// How a value is bound: as the parameter's described type where the driver tells it
/// (a number into a character column goes as text), else as what the value is.
fn parameter(v: &Value, described: Option<DataType>, tz: &TimeZone) -> Box<dyn InputParameter> {
    let text_wanted = matches!(
        described,
        Some(
            DataType::Char { .. }
                | DataType::WChar { .. }
                | DataType::Varchar { .. }
                | DataType::WVarchar { .. }
                | DataType::LongVarchar { .. }
                | DataType::WLongVarchar { .. }
        )
    );
    match v {
        Value::Null => Box::new(None::<String>.into_parameter()),
        Value::Int(n) if !text_wanted => Box::new(n.into_parameter()),
        Value::Float(f) if !text_wanted => Box::new(f.into_parameter()),
        // Zone-less text in the configured zone: what date-time columns accept as text,
        // also from drivers that describe every parameter as a character one (MariaDB).
        Value::Timestamp(t) => Box::new(value::civil_text(*t, tz).into_parameter()),
        other => Box::new(
            other
                .to_attribute_text()
                .unwrap_or_default()
                .into_parameter(),
        ),
    }
}

fn run(
    conn: &Connection<'static>,
    sql: &str,
    params: &[Value],
    tz: &TimeZone,
) -> Result<(), odbc_api::Error> {
    let mut prepared = conn.prepare(sql)?;
    let bound = bind(&mut prepared, params, tz);
    prepared.execute(&bound[..])?;
    Ok(())
}

fn bind<S: odbc_api::handles::AsStatementRef>(
    prepared: &mut odbc_api::Prepared<S>,
    params: &[Value],
    tz: &TimeZone,
) -> Vec<Box<dyn InputParameter>> {
    params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // Drivers that cannot describe a parameter get the value as it is.
            let described = u16::try_from(i + 1)
                .ok()
                .and_then(|n| prepared.describe_param(n).ok())
                .map(|c| c.data_type);
            parameter(v, described, tz)
        })
        .collect()
}

fn read_rows(
    cursor: &mut impl Cursor,
    limit: usize,
    tz: &TimeZone,
) -> Result<Vec<Row>, odbc_api::Error> {
    let n = cursor.num_result_cols()?;
    let mut columns = Vec::new();
    for c in 1..=n as u16 {
        columns.push((cursor.col_name(c)?, cursor.col_data_type(c)?));
    }
    let mut rows = Vec::new();
    let mut buf = Vec::new();
    while limit == 0 || rows.len() < limit {
        let Some(mut row) = cursor.next_row()? else {
            break;
        };
        let mut out = Vec::with_capacity(columns.len());
        for (i, (name, ty)) in columns.iter().enumerate() {
            buf.clear();
            let present = row.get_text(i as u16 + 1, &mut buf)?;
            let text = String::from_utf8_lossy(&buf).into_owned();
            let v = if !present {
                Value::Null
            } else {
                match ty {
                    DataType::Integer
                    | DataType::SmallInt
                    | DataType::BigInt
                    | DataType::TinyInt => {
                        text.trim().parse().map_or(Value::Text(text), Value::Int)
                    }
                    DataType::Real | DataType::Double | DataType::Float { .. } => {
                        text.trim().parse().map_or(Value::Text(text), Value::Float)
                    }
                    DataType::Timestamp { .. } | DataType::Date => {
                        value::parse_timestamp(&text, tz)
                            .map_or(Value::Text(text), Value::Timestamp)
                    }
                    _ => Value::Text(text),
                }
            };
            out.push((name.clone(), v));
        }
        rows.push(Row { columns: out });
    }
    Ok(rows)
}

#[async_trait]
impl super::Source for OdbcSource {
    fn dialect(&self) -> Dialect {
        Dialect::Odbc
    }

    async fn prepare(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let sql = sql.to_owned();
        self.with_conn(move |conn, _| {
            let mut p = conn.prepare(&sql)?;
            let n = p.num_result_cols()?;
            let mut names = Vec::new();
            for c in 1..=n as u16 {
                names.push(p.col_name(c)?);
            }
            Ok(names)
        })
        .await
    }

    async fn query(
        &self,
        sql: &str,
        params: &[Value],
        limit: usize,
    ) -> Result<Vec<Row>, SourceError> {
        let sql = sql.to_owned();
        let params = params.to_vec();
        self.with_conn(move |conn, tz| {
            let mut prepared = conn.prepare(&sql)?;
            let bound = bind(&mut prepared, &params, tz);
            let rows = match prepared.execute(&bound[..])? {
                // Closing the cursor early discards the rows past `limit`.
                Some(mut cursor) => read_rows(&mut cursor, limit, tz)?,
                None => Vec::new(),
            };
            Ok(rows)
        })
        .await
    }

    async fn execute_all(&self, statements: &[Exec]) -> Result<(), SourceError> {
        if statements.is_empty() {
            return Ok(());
        }
        let statements = statements.to_vec();
        self.with_conn(move |conn, tz| {
            conn.set_autocommit(false)?;
            let result = statements
                .iter()
                .try_for_each(|s| run(conn, &s.sql, &s.params, tz))
                .and_then(|()| conn.commit());
            if result.is_err() {
                let _ = conn.rollback();
            }
            let _ = conn.set_autocommit(true);
            result
        })
        .await
    }

    async fn close(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            inner.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        })
        .await;
    }
}
