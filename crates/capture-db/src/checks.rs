//! Start-up checks: every configured statement is prepared against the source (nothing
//! runs), and parameter names the source cannot supply are reported. Errors name the
//! option: `DB1.completedUpdateSql: column "statu" does not exist`.

use crate::attributes::is_known_parameter;
use crate::config::{Role, STATEMENTS};
use crate::point::CapturePoint;
use crate::source::SourceError;

/// What the checks found.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A statement is wrong (the message names the option).
    #[error("{0}")]
    Statement(String),
    /// The source could not be reached; the checks could not run.
    #[error("{0}")]
    Unavailable(String),
}

impl CapturePoint {
    /// Prepares each statement against the source and checks its parameter names.
    pub async fn check(&self) -> Result<(), CheckError> {
        let id = &self.cfg.id;
        let mut capture_columns = Vec::new();
        let mut update_columns = Vec::new();
        for (option, _) in STATEMENTS {
            // startupQuerySql already ran on connecting; preparing it again proves nothing.
            if option == "startupQuerySql" {
                continue;
            }
            let Some(stmt) = self.statement(option) else {
                continue;
            };
            let columns = self.source.prepare(&stmt.sql).await.map_err(|e| match e {
                SourceError::Unavailable(m) => {
                    CheckError::Unavailable(format!("{id}: source unavailable: {m}"))
                }
                other => CheckError::Statement(format!("{id}.{option}: {other}")),
            })?;
            match option {
                "captureQuerySql" => capture_columns = columns,
                "sourceUpdateQuerySql" => update_columns = columns,
                _ => {}
            }
        }
        // Custom data of a captured task comes from its row's columns and the defaults.
        let defaults: Vec<String> = self.cfg.defaults.data.keys().cloned().collect();
        for (option, role) in STATEMENTS {
            let Some(stmt) = self.statement(option) else {
                continue;
            };
            let columns: Vec<&String> = match (option, role) {
                ("capturedUpdateSql" | "errorUpdateSql", _) => {
                    capture_columns.iter().chain(&defaults).collect()
                }
                ("sourceUpdatedUpdateSql" | "sourceErrorUpdateSql", _) => update_columns
                    .iter()
                    .chain(&capture_columns)
                    .chain(&defaults)
                    .collect(),
                (_, Role::Notification) => {
                    // Tasks may carry custom data set by others (REST, other updates):
                    // an unknown name is only suspicious here.
                    for name in &stmt.binds {
                        if !is_known_parameter(name)
                            && !capture_columns.contains(name)
                            && !update_columns.contains(name)
                            && !defaults.contains(name)
                        {
                            tracing::warn!(capture_point = %id, option, parameter = %name,
                                "parameter is no attribute and no column of captureQuerySql: it is read from the task's custom data and is NULL when absent");
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(name) = stmt
                .binds
                .iter()
                .find(|n| !is_known_parameter(n) && !columns.contains(n))
            {
                return Err(CheckError::Statement(format!(
                    "{id}.{option}: unknown parameter ?'{name}': neither a task attribute nor a column of the query"
                )));
            }
        }
        Ok(())
    }
}
