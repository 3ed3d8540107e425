//! Source updates (SPEC section 5): each row of sourceUpdateQuerySql is an update
//! request; it names its task by InteractionId (then ExternalId is a captureId change)
//! or by ExternalId. Then sourceUpdatedUpdateSql marks it applied, or
//! sourceErrorUpdateSql says why not (unknown task, refused change, bad value).
//!
//! A crash between applying an update and marking its row makes the row come again; the
//! update is applied again, which changes nothing the first one did not.

use crate::attributes::{update_from_row, Context, UpdateTarget, EXTERNAL_ID, INTERACTION_ID};
use crate::point::{error_description, error_number, CapturePoint, PointError};
use crate::source::Row;
use futures::future::join_all;
use std::collections::HashMap;
use worklane_domain::{Action, TaskRef};
use worklane_engine::{Command, CommandResult, EngineError};

impl CapturePoint {
    /// One poll of sourceUpdateQuerySql. Returns the rows handled (0 when the option is
    /// not set).
    pub async fn source_update_step(&self) -> Result<usize, PointError> {
        let Some(query) = self.statement("sourceUpdateQuerySql") else {
            return Ok(0);
        };
        let rows = self
            .source
            .query(&query.sql, &[], self.cfg.batch_size)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let results = self.apply_updates(&rows).await?;
        let done = self.statement("sourceUpdatedUpdateSql");
        let failed = self.statement("sourceErrorUpdateSql");
        let mut execs = Vec::new();
        let mut labels = Vec::new();
        for (row, result) in rows.iter().zip(&results) {
            let what = row
                .get_ci(INTERACTION_ID)
                .or_else(|| row.get_ci(EXTERNAL_ID))
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            match result {
                Ok(outcome) => {
                    if let Some(s) = done {
                        execs.push(s.bind(&Context {
                            row: Some(row),
                            task: Some(&outcome.task),
                            ..Context::default()
                        }));
                        labels.push((s.option, what));
                    }
                }
                Err(refusal) => {
                    tracing::info!(capture_point = %self.cfg.id, %what, code = refusal.code.as_str(), message = %refusal.message, "source update refused");
                    if let Some(s) = failed {
                        let descr = error_description(refusal);
                        let ctx = Context {
                            row: Some(row),
                            error: Some((error_number(refusal.code), &descr)),
                            ..Context::default()
                        };
                        execs.push(s.bind(&ctx));
                        labels.push((s.option, what));
                    }
                }
            }
        }
        self.run_statements(&execs, &labels).await?;
        metrics::counter!(crate::point::SOURCE_UPDATES, "capture_point" => self.cfg.id.clone())
            .increment(rows.len() as u64);
        Ok(rows.len())
    }

    /// Applies the rows' updates: rows naming the same task one after the other, in row
    /// order; different tasks at the same time (so the engine commits them together).
    async fn apply_updates(&self, rows: &[Row]) -> Result<Vec<CommandResult>, EngineError> {
        let mut results: Vec<Option<CommandResult>> = vec![None; rows.len()];
        let mut groups: HashMap<String, Vec<(usize, Command)>> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            match update_from_row(row, &self.tz) {
                Ok((target, fields)) => {
                    let (key, task) = match target {
                        UpdateTarget::Broker(id) => (format!("b:{id}"), TaskRef::Broker(id)),
                        UpdateTarget::Capture(capture_id) => (
                            format!("c:{capture_id}"),
                            TaskRef::Capture {
                                capture_point_id: self.cfg.id.clone(),
                                capture_id,
                            },
                        ),
                    };
                    let cmd = Command::act(task, Action::Update(fields), self.meta());
                    groups.entry(key).or_default().push((i, cmd));
                }
                Err(refusal) => results[i] = Some(Err(refusal)),
            }
        }
        let engine = &self.engine;
        let done = join_all(groups.into_values().map(|cmds| async move {
            let mut out = Vec::with_capacity(cmds.len());
            for (i, cmd) in cmds {
                out.push((i, engine.execute_result(cmd).await?));
            }
            Ok::<_, EngineError>(out)
        }))
        .await;
        for group in done {
            for (i, r) in group? {
                results[i] = Some(r);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every row has a result"))
            .collect())
    }
}
