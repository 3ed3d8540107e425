//! The capture point itself: its configuration, its source, its statements rewritten for
//! the source's driver, and the few helpers every part (capture, notifications, source
//! updates, checks) shares.

use crate::attributes::Context;
use crate::config::DatabaseCaptureConfig;
use crate::params;
use crate::source::{self, Exec, Source, SourceError};
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::sync::Arc;
use worklane_domain::{ActionMeta, DomainError, ErrorCode};
use worklane_engine::{Engine, EngineError};

/// Metric names (counters, labelled by `capture_point`).
pub const ROWS_CAPTURED: &str = "worklane_dbcp_rows_captured_total";
pub const ROWS_REFUSED: &str = "worklane_dbcp_rows_refused_total";
pub const SOURCE_UPDATES: &str = "worklane_dbcp_source_updates_total";
pub const STATEMENTS_RUN: &str = "worklane_dbcp_statements_total";
/// Also labelled by `option`: statements the source refused (logged and skipped).
pub const STATEMENTS_FAILED: &str = "worklane_dbcp_statement_failures_total";
pub const SOURCE_UNAVAILABLE: &str = "worklane_dbcp_source_unavailable_total";

/// A statement ready to bind: SQL for the source's driver and the parameter name at each
/// placeholder.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The seed's option name, for logs and errors.
    pub option: &'static str,
    pub sql: Arc<str>,
    pub binds: Vec<String>,
}

impl Statement {
    /// The statement with its parameters taken from `ctx`.
    pub fn bind(&self, ctx: &Context<'_>) -> Exec {
        Exec {
            sql: self.sql.clone(),
            params: self.binds.iter().map(|n| ctx.value(n)).collect(),
        }
    }
}

/// Why a capture point could not be set up or could not finish a step.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// The configuration is invalid (the message names the key).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl PointError {
    /// True when trying again later may succeed (source or store unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Config(_) => false,
            Self::Source(e) => e.is_unavailable(),
            Self::Engine(e) => !matches!(e, EngineError::Refused(_)),
        }
    }
}

/// A running Database Capture Point.
#[derive(Debug)]
pub struct CapturePoint {
    pub(crate) cfg: DatabaseCaptureConfig,
    pub(crate) engine: Engine,
    pub(crate) source: Arc<dyn Source>,
    pub(crate) tz: TimeZone,
    statements: HashMap<&'static str, Statement>,
    /// Rows created and not yet marked (see [`crate::unmarked`]).
    pub(crate) unmarked: Arc<crate::unmarked::Unmarked>,
}

impl CapturePoint {
    /// Validates `cfg` and sets up its source (connections are opened on first use, so a
    /// source that is down now does not stop the server from starting).
    pub async fn new(engine: Engine, cfg: DatabaseCaptureConfig) -> Result<Self, PointError> {
        cfg.validate().map_err(PointError::Config)?;
        let tz = cfg.time_zone().map_err(PointError::Config)?;
        let source = source::connect(&cfg.url, cfg.startup_query_sql.clone(), tz.clone())
            .await
            .map_err(|e| PointError::Config(format!("{}.url: {e}", cfg.id)))?;
        let dialect = source.dialect();
        let mut statements = HashMap::new();
        for (option, sql) in cfg.statements() {
            let Some(sql) = sql else { continue };
            let parsed = params::parse(sql, dialect)
                .map_err(|e| PointError::Config(format!("{}.{option}: {e}", cfg.id)))?;
            statements.insert(
                option,
                Statement {
                    option,
                    sql: parsed.sql.into(),
                    binds: parsed.binds,
                },
            );
        }
        Ok(Self {
            unmarked: Arc::default(),
            cfg,
            engine,
            source,
            tz,
            statements,
        })
    }

    /// The configured statement named `option` (seed name), when set.
    pub fn statement(&self, option: &str) -> Option<&Statement> {
        self.statements.get(option)
    }

    /// The capture point's id (its tasks' capturePointId).
    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DatabaseCaptureConfig {
        &self.cfg
    }

    /// The source database.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Audit attributes of the capture point's own requests: actor and origin are its id,
    /// so notifications can tell its own changes from everyone else's.
    pub(crate) fn meta(&self) -> ActionMeta {
        ActionMeta::default().defaulted(&self.cfg.id)
    }

    /// Runs `execs` in one source transaction; when the source refuses one of them, runs
    /// each alone so one bad row does not hold the others back. Statements the source
    /// refuses are logged and skipped (`labels` say which option and row). An unavailable
    /// source is an error carrying how many leading statements did run, so the caller can
    /// retry the rest later without running those again.
    pub(crate) async fn run_statements(
        &self,
        execs: &[Exec],
        labels: &[(&'static str, String)],
    ) -> Result<(), Partial> {
        let outcome = self.run_statements_inner(execs, labels).await;
        let cp = self.cfg.id.clone();
        match &outcome {
            Ok(()) => metrics::counter!(STATEMENTS_RUN, "capture_point" => cp)
                .increment(execs.len() as u64),
            Err(p) => {
                metrics::counter!(STATEMENTS_RUN, "capture_point" => cp.clone())
                    .increment(p.done as u64);
                metrics::counter!(SOURCE_UNAVAILABLE, "capture_point" => cp).increment(1);
            }
        }
        outcome
    }

    async fn run_statements_inner(
        &self,
        execs: &[Exec],
        labels: &[(&'static str, String)],
    ) -> Result<(), Partial> {
        match self.source.execute_all(execs).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_unavailable() => Err(Partial { done: 0, error: e }),
            Err(_) => {
                for (i, (exec, (option, what))) in execs.iter().zip(labels).enumerate() {
                    match self.source.execute_all(std::slice::from_ref(exec)).await {
                        Ok(()) => {}
                        Err(e) if e.is_unavailable() => return Err(Partial { done: i, error: e }),
                        Err(e) => {
                            metrics::counter!(STATEMENTS_FAILED, "capture_point" => self.cfg.id.clone(), "option" => *option)
                                .increment(1);
                            tracing::error!(capture_point = %self.cfg.id, option, %what, error = %e, "statement failed");
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Statements that stopped part way because the source became unavailable.
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {done} statements)")]
pub struct Partial {
    /// How many leading statements ran (and committed).
    pub done: usize,
    pub error: SourceError,
}

impl From<Partial> for PointError {
    fn from(p: Partial) -> Self {
        PointError::Source(p.error)
    }
}

/// The integer an `ErrorCode` parameter carries (seed 000 says "ErrorCode (integer)";
/// the numbers follow the order seed 001 lists the codes in).
pub fn error_number(code: ErrorCode) -> i64 {
    match code {
        ErrorCode::InvalidFormat => 1,
        ErrorCode::TaskNotFound => 2,
        ErrorCode::TaskAlreadyCaptured => 3,
        ErrorCode::CannotCompleteTask => 4,
        ErrorCode::CannotHoldAssignedTask => 5,
        ErrorCode::CannotResumeTask => 6,
        ErrorCode::CannotRestartTask => 7,
        ErrorCode::CannotCancelCompletedTask => 8,
        ErrorCode::CannotAssignTask => 9,
        ErrorCode::InvalidTransition => 10,
        ErrorCode::OfferNotFound => 11,
        ErrorCode::AgentNotFound => 12,
        ErrorCode::AgentNotAvailable => 13,
        ErrorCode::AgentExists => 14,
        ErrorCode::Forbidden => 15,
        ErrorCode::InternalError => 99,
    }
}

/// The ErrorDescription of a refusal: its code and message, at most 256 characters.
pub fn error_description(e: &DomainError) -> String {
    format!("{}: {}", e.code.as_str(), e.message)
        .chars()
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_are_at_most_256_characters() {
        let e = DomainError::invalid("priority", "x".repeat(400));
        let d = error_description(&e);
        assert_eq!(d.chars().count(), 256);
        assert!(d.starts_with("INVALID_FORMAT: priority: "));
        assert_eq!(error_number(ErrorCode::TaskAlreadyCaptured), 3);
    }
}
