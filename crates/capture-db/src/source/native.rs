//! Native sources through sqlx: PostgreSQL, MySQL/MariaDB and SQLite. Pools connect
//! lazily and reconnect by themselves; startupQuerySql runs on each new connection.

use super::{Exec, Row, SourceError};
use crate::params::Dialect;
use crate::value::{self, Value};
use async_trait::async_trait;
use futures::TryStreamExt;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Column, Executor, MySqlPool, PgPool, Row as _, SqlitePool, TypeInfo, ValueRef};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The connection pool of a native source.
#[derive(Debug, Clone)]
enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// A PostgreSQL, MySQL/MariaDB or SQLite source.
#[derive(Debug)]
pub struct NativeSource {
    pool: Pool,
    tz: TimeZone,
    /// PostgreSQL parameter types per statement, so each value is bound as the type
    /// the server expects (a brokerId into a varchar column is sent as text).
    pg_params: Mutex<HashMap<String, Arc<Vec<PgKind>>>>,
}

const MAX_CONNECTIONS: u32 = 4;

fn pool_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A pool that connects lazily, with the size and acquire timeout every driver shares,
/// running startupQuerySql on each new connection.
macro_rules! lazy_pool {
    ($options:ty, $opts:expr, $startup:expr) => {{
        let startup: Option<String> = $startup;
        <$options>::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(pool_timeout())
            .after_connect(move |conn, _| {
                let startup = startup.clone();
                Box::pin(async move {
                    if let Some(sql) = startup {
                        conn.execute(sqlx::raw_sql(&sql)).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with($opts)
    }};
}

impl NativeSource {
    /// Sets up the pool for `url` without connecting yet.
    pub fn connect(url: &str, startup: Option<String>, tz: TimeZone) -> Result<Self, SourceError> {
        let bad = |e: sqlx::Error| SourceError::Url(format!("bad source url: {e}"));
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(bad)?;
            Pool::Postgres(lazy_pool!(PgPoolOptions, opts, startup.clone()))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let opts = MySqlConnectOptions::from_str(&url).map_err(bad)?;
            Pool::MySql(lazy_pool!(MySqlPoolOptions, opts, startup.clone()))
        } else if url.starts_with("sqlite:") {
            // A source is someone else's database: never create it.
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(bad)?
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(5));
            Pool::Sqlite(lazy_pool!(SqlitePoolOptions, opts, startup.clone()))
        } else {
            return Err(SourceError::Url(format!(
                "unsupported source url {:?}: use postgres://, mysql://, sqlite: or odbc:",
                worklane_store::redact_url(url)
            )));
        };
        Ok(Self {
            pool,
            tz,
            pg_params: Mutex::new(HashMap::new()),
        })
    }

    /// The PostgreSQL parameter types of `sql`, described once and remembered.
    async fn pg_kinds(&self, pool: &PgPool, sql: &str) -> Result<Arc<Vec<PgKind>>, SourceError> {
        if let Some(k) = self
            .pg_params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
        {
            return Ok(k.clone());
        }
        let kinds = match pool.describe(sql).await {
            Ok(d) => match d.parameters() {
                Some(either) => match either {
                    sqlx::Either::Left(types) => {
                        types.iter().map(|t| PgKind::of(t.name())).collect()
                    }
                    sqlx::Either::Right(n) => vec![PgKind::Natural; n],
                },
                None => Vec::new(),
            },
            // 42P18: the server cannot infer a parameter's type; bind values as they are.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P18") => Vec::new(),
            Err(e) => return Err(classify(e)),
        };
        let kinds = Arc::new(kinds);
        self.pg_params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sql.to_owned(), kinds.clone());
        Ok(kinds)
    }
}

#[async_trait]
impl super::Source for NativeSource {
    fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::MySql(_) => Dialect::MySql,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    async fn prepare(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        fn names<C: Column>(cols: &[C]) -> Vec<String> {
            cols.iter().map(|c| c.name().to_owned()).collect()
        }
        match &self.pool {
            Pool::Postgres(p) => {
                let d = p.describe(sql).await;
                match d {
                    Ok(d) => {
                        self.pg_kinds(p, sql).await?;
                        Ok(names(d.columns()))
                    }
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P18") => {
                        Ok(Vec::new())
                    }
                    Err(e) => Err(classify(e)),
                }
            }
            Pool::MySql(p) => Ok(names(p.describe(sql).await.map_err(classify)?.columns())),
            Pool::Sqlite(p) => Ok(names(p.describe(sql).await.map_err(classify)?.columns())),
        }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[Value],
        limit: usize,
    ) -> Result<Vec<Row>, SourceError> {
        // Reading only `limit` rows of a larger result would still make the server send
        // them all; a LIMIT around the operator's query keeps each poll small.
        let limited;
        let sql = if limit > 0 {
            limited = format!(
                "SELECT * FROM ({}) AS worklane_batch LIMIT {limit}",
                sql.trim().trim_end_matches(';')
            );
            limited.as_str()
        } else {
            sql
        };
        let tz = &self.tz;
        match &self.pool {
            Pool::Postgres(p) => {
                let kinds = self.pg_kinds(p, sql).await?;
                let q = bind_pg(sqlx::query(sql), params, &kinds, tz)?;
                let rows: Vec<_> = q.fetch(p).try_collect().await.map_err(classify)?;
                rows.iter().map(|r| decode_row(r, tz, decode_pg)).collect()
            }
            Pool::MySql(p) => {
                let q = bind_mysql(sqlx::query(sql), params, tz);
                let rows: Vec<_> = q.fetch(p).try_collect().await.map_err(classify)?;
                rows.iter()
                    .map(|r| decode_row(r, tz, decode_mysql))
                    .collect()
            }
            Pool::Sqlite(p) => {
                let q = bind_sqlite(sqlx::query(sql), params, tz);
                let rows: Vec<_> = q.fetch(p).try_collect().await.map_err(classify)?;
                rows.iter()
                    .map(|r| decode_row(r, tz, decode_sqlite))
                    .collect()
            }
        }
    }

    async fn execute_all(&self, statements: &[Exec]) -> Result<(), SourceError> {
        if statements.is_empty() {
            return Ok(());
        }
        let tz = &self.tz;
        match &self.pool {
            Pool::Postgres(p) => {
                let mut kinds = Vec::with_capacity(statements.len());
                for s in statements {
                    kinds.push(self.pg_kinds(p, &s.sql).await?);
                }
                let mut tx = p.begin().await.map_err(classify)?;
                for (s, k) in statements.iter().zip(&kinds) {
                    bind_pg(sqlx::query(&s.sql), &s.params, k, tz)?
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                }
                tx.commit().await.map_err(classify)?;
            }
            Pool::MySql(p) => {
                let mut tx = p.begin().await.map_err(classify)?;
                for s in statements {
                    bind_mysql(sqlx::query(&s.sql), &s.params, tz)
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                }
                tx.commit().await.map_err(classify)?;
            }
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await.map_err(classify)?;
                for s in statements {
                    bind_sqlite(sqlx::query(&s.sql), &s.params, tz)
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                }
                tx.commit().await.map_err(classify)?;
            }
        }
        Ok(())
    }

    async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// Sorts a driver error into "try again later" and "this statement is wrong".
fn classify(e: sqlx::Error) -> SourceError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_owned();
            if transient_code(&code) {
                SourceError::Unavailable(message)
            } else {
                SourceError::Statement(message)
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => SourceError::Unavailable(e.to_string()),
        other => SourceError::Statement(other.to_string()),
    }
}

/// Error codes that mean the source is (for now) unusable rather than the statement wrong:
/// SQLSTATE classes 08 (connection), 40 (rollback: deadlock, serialization), 53
/// (resources), 57 (operator intervention, e.g. a terminated backend), 58 (system), 3D
/// (database does not exist, e.g. renamed away), HY000-ish MySQL timeouts; SQLite's
/// BUSY, LOCKED, IOERR, CANTOPEN, NOTADB, READONLY.
fn transient_code(code: &str) -> bool {
    if let Ok(n) = code.parse::<i64>() {
        // SQLite reports its (extended) result code; the primary code is the low byte.
        return matches!(n & 0xff, 5 | 6 | 8 | 10 | 14 | 26);
    }
    ["08", "40", "53", "57", "58", "3D"]
        .iter()
        .any(|c| code.starts_with(c))
}

fn param_err(i: usize, e: impl std::fmt::Display) -> SourceError {
    SourceError::Statement(format!("parameter {}: {e}", i + 1))
}

/// PostgreSQL parameter types a value is converted to before binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgKind {
    I2,
    I4,
    I8,
    F4,
    F8,
    Numeric,
    Bool,
    Text,
    TimestampTz,
    Timestamp,
    Date,
    /// Unknown to us: bind the value as what it is.
    Natural,
}

impl PgKind {
    fn of(type_name: &str) -> Self {
        match type_name {
            "INT2" => Self::I2,
            "INT4" => Self::I4,
            "INT8" => Self::I8,
            "FLOAT4" => Self::F4,
            "FLOAT8" => Self::F8,
            "NUMERIC" => Self::Numeric,
            "BOOL" => Self::Bool,
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "\"CHAR\"" | "UNKNOWN" => Self::Text,
            "TIMESTAMPTZ" => Self::TimestampTz,
            "TIMESTAMP" => Self::Timestamp,
            "DATE" => Self::Date,
            _ => Self::Natural,
        }
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_pg<'q>(
    mut q: PgQuery<'q>,
    params: &[Value],
    kinds: &[PgKind],
    tz: &TimeZone,
) -> Result<PgQuery<'q>, SourceError> {
    for (i, v) in params.iter().enumerate() {
        let kind = kinds.get(i).copied().unwrap_or(PgKind::Natural);
        let int = || v.to_int("value").map_err(|e| param_err(i, e.message));
        let float = || -> Result<Option<f64>, SourceError> {
            match v {
                Value::Null => Ok(None),
                Value::Float(f) => Ok(Some(*f)),
                Value::Int(n) => Ok(Some(*n as f64)),
                Value::Text(s) => s.trim().parse().map(Some).map_err(|e| param_err(i, e)),
                Value::Timestamp(_) => Err(param_err(i, "a timestamp is not a number")),
            }
        };
        let ts = || {
            v.to_timestamp("value", tz)
                .map_err(|e| param_err(i, e.message))
        };
        q = match kind {
            PgKind::I2 => q.bind(
                int()?
                    .map(|n| i16::try_from(n).map_err(|e| param_err(i, e)))
                    .transpose()?,
            ),
            PgKind::I4 => q.bind(
                int()?
                    .map(|n| i32::try_from(n).map_err(|e| param_err(i, e)))
                    .transpose()?,
            ),
            PgKind::I8 => q.bind(int()?),
            PgKind::F4 => q.bind(float()?.map(|f| f as f32)),
            PgKind::F8 => q.bind(float()?),
            PgKind::Numeric => q.bind(match v {
                Value::Null => None,
                Value::Int(n) => Some(Decimal::from(*n)),
                Value::Float(f) => Some(Decimal::try_from(*f).map_err(|e| param_err(i, e))?),
                Value::Text(s) => Some(Decimal::from_str(s.trim()).map_err(|e| param_err(i, e))?),
                Value::Timestamp(_) => return Err(param_err(i, "a timestamp is not a number")),
            }),
            PgKind::Bool => q.bind(match v {
                Value::Null => None,
                Value::Int(n) => Some(*n != 0),
                Value::Text(s) => Some(matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "t" | "true" | "1" | "y" | "yes"
                )),
                other => return Err(param_err(i, format!("{other:?} is not a boolean"))),
            }),
            PgKind::Text => q.bind(v.to_attribute_text()),
            PgKind::TimestampTz => q.bind(ts()?.map(value::to_utc)),
            PgKind::Timestamp => q.bind(ts()?.map(|t| value::to_naive(t, tz))),
            PgKind::Date => q.bind(ts()?.map(|t| value::to_naive(t, tz).date())),
            PgKind::Natural => match v {
                Value::Null => q.bind(None::<String>),
                Value::Int(n) => q.bind(*n),
                Value::Float(f) => q.bind(*f),
                Value::Text(s) => q.bind(s.clone()),
                Value::Timestamp(t) => q.bind(value::to_utc(*t)),
            },
        };
    }
    Ok(q)
}

type MySqlQuery<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;

/// MySQL converts between numbers and text by itself; timestamps go as DATETIME in `tz`.
fn bind_mysql<'q>(mut q: MySqlQuery<'q>, params: &[Value], tz: &TimeZone) -> MySqlQuery<'q> {
    for v in params {
        q = match v {
            Value::Null => q.bind(None::<String>),
            Value::Int(n) => q.bind(*n),
            Value::Float(f) => q.bind(*f),
            Value::Text(s) => q.bind(s.clone()),
            Value::Timestamp(t) => q.bind(value::to_naive(*t, tz)),
        };
    }
    q
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// SQLite compares with the column's affinity; timestamps go as its date functions'
/// text (`YYYY-MM-DD HH:MM:SS`) in `tz`.
fn bind_sqlite<'q>(mut q: SqliteQuery<'q>, params: &[Value], tz: &TimeZone) -> SqliteQuery<'q> {
    for v in params {
        q = match v {
            Value::Null => q.bind(None::<String>),
            Value::Int(n) => q.bind(*n),
            Value::Float(f) => q.bind(*f),
            Value::Text(s) => q.bind(s.clone()),
            Value::Timestamp(t) => q.bind(value::civil_text(*t, tz)),
        };
    }
    q
}

type Decoder<R> = fn(&R, usize, &str, &TimeZone) -> Result<Value, sqlx::Error>;

fn decode_row<R: sqlx::Row>(r: &R, tz: &TimeZone, decode: Decoder<R>) -> Result<Row, SourceError>
where
    usize: sqlx::ColumnIndex<R>,
{
    let mut columns = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let raw = r.try_get_raw(i).map_err(classify)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            let ty = raw.type_info().name().to_owned();
            decode(r, i, &ty, tz).map_err(|e| {
                SourceError::Statement(format!(
                    "column {:?} of type {ty} cannot be read: {e}",
                    c.name()
                ))
            })?
        };
        columns.push((c.name().to_owned(), value));
    }
    Ok(Row { columns })
}

fn decimal(d: Decimal) -> Value {
    let n = d.normalize();
    if n.scale() == 0 {
        if let Ok(i) = i64::try_from(n) {
            return Value::Int(i);
        }
    }
    Value::Text(n.to_string())
}

fn naive(n: chrono::NaiveDateTime, tz: &TimeZone) -> Value {
    value::from_naive(n, tz).map_or(Value::Null, Value::Timestamp)
}

fn decode_pg(
    r: &sqlx::postgres::PgRow,
    i: usize,
    ty: &str,
    tz: &TimeZone,
) -> Result<Value, sqlx::Error> {
    Ok(match ty {
        "INT2" => Value::Int(r.try_get::<i16, _>(i)?.into()),
        "INT4" => Value::Int(r.try_get::<i32, _>(i)?.into()),
        "INT8" => Value::Int(r.try_get::<i64, _>(i)?),
        "FLOAT4" => Value::Float(r.try_get::<f32, _>(i)?.into()),
        "FLOAT8" => Value::Float(r.try_get::<f64, _>(i)?),
        "NUMERIC" => decimal(r.try_get::<Decimal, _>(i)?),
        "BOOL" => Value::Int(r.try_get::<bool, _>(i)?.into()),
        "TIMESTAMPTZ" => value::from_utc(r.try_get(i)?).map_or(Value::Null, Value::Timestamp),
        "TIMESTAMP" => naive(r.try_get(i)?, tz),
        "DATE" => naive(
            r.try_get::<chrono::NaiveDate, _>(i)?
                .and_time(chrono::NaiveTime::MIN),
            tz,
        ),
        // Text types, enums, and anything else PostgreSQL sends as text.
        _ => Value::Text(r.try_get_unchecked::<String, _>(i)?),
    })
}

fn decode_mysql(
    r: &sqlx::mysql::MySqlRow,
    i: usize,
    ty: &str,
    tz: &TimeZone,
) -> Result<Value, sqlx::Error> {
    Ok(match ty {
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "BOOLEAN" | "YEAR" => {
            Value::Int(r.try_get_unchecked::<i64, _>(i)?)
        }
        t if t.ends_with("UNSIGNED") => {
            let n = r.try_get_unchecked::<u64, _>(i)?;
            i64::try_from(n).map_or_else(|_| Value::Text(n.to_string()), Value::Int)
        }
        "FLOAT" | "DOUBLE" => Value::Float(r.try_get_unchecked::<f64, _>(i)?),
        "DECIMAL" => decimal(r.try_get::<Decimal, _>(i)?),
        "DATETIME" => naive(r.try_get(i)?, tz),
        "TIMESTAMP" => value::from_utc(r.try_get(i)?).map_or(Value::Null, Value::Timestamp),
        "DATE" => naive(
            r.try_get::<chrono::NaiveDate, _>(i)?
                .and_time(chrono::NaiveTime::MIN),
            tz,
        ),
        _ => match r.try_get::<String, _>(i) {
            Ok(s) => Value::Text(s),
            // Binary strings (and text MariaDB flags as binary): read as UTF-8.
            Err(_) => Value::Text(
                String::from_utf8_lossy(&r.try_get_unchecked::<Vec<u8>, _>(i)?).into_owned(),
            ),
        },
    })
}

fn decode_sqlite(
    r: &sqlx::sqlite::SqliteRow,
    i: usize,
    ty: &str,
    _tz: &TimeZone,
) -> Result<Value, sqlx::Error> {
    Ok(match ty {
        "INTEGER" => Value::Int(r.try_get::<i64, _>(i)?),
        "REAL" => Value::Float(r.try_get::<f64, _>(i)?),
        "BLOB" => Value::Text(String::from_utf8_lossy(&r.try_get::<Vec<u8>, _>(i)?).into_owned()),
        _ => Value::Text(r.try_get_unchecked::<String, _>(i)?),
    })
}
