//! Capture (SPEC section 5): each row of captureQuerySql becomes a task, then
//! capturedUpdateSql marks the row, or errorUpdateSql says why it could not.
//!
//! Idempotency: each create carries the key `dbcp:<cp>:<ExternalId>:<row fingerprint>`
//! (the fingerprint: SHA-256 of a canonical encoding of the row, see `fingerprint`),
//! stored by the engine in the same transaction as the task. A row offered again with
//! exactly the same column values (the crash case: task created, row not yet marked) is
//! answered from that key: no second task, and capturedUpdateSql runs with the same
//! InteractionId. A row with an ExternalId this capture point already captured but any
//! different value is a new capture request: with `check_if_captured` it is refused with
//! TASK_ALREADY_CAPTURED (errorUpdateSql); without, it is answered with the existing task
//! (capture is idempotent on capture point and ExternalId).

use crate::attributes::{fields_for_capture, Context, EXTERNAL_ID};
use crate::point::{error_description, error_number, CapturePoint, PointError};
use crate::source::Row;
use crate::unmarked::Held;
use crate::value::Value;
use futures::future::join_all;
use std::collections::HashSet;
use worklane_domain::{DomainError, NewTask, OnDuplicate};
use worklane_engine::{Command, CommandResult};

/// Rows read by one poll, each with what became of it; the input of [`CapturePoint::mark`].
#[derive(Debug)]
pub struct CapturedBatch {
    rows: Vec<(Row, CommandResult)>,
    /// Keeps the rows' ExternalIds registered as not yet marked until the batch is
    /// marked or dropped, so their tasks' notifications wait for capturedUpdateSql.
    _held: Vec<Held>,
}

impl CapturedBatch {
    /// How many rows the poll read.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the poll found no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// What became of each row: the task (created now or earlier), or the refusal.
    pub fn results(&self) -> impl Iterator<Item = &CommandResult> {
        self.rows.iter().map(|(_, r)| r)
    }
}

/// Marks the encoding [`fingerprint`] hashes: a future encoding gets another mark, so
/// the two can never yield the same bytes.
const FINGERPRINT_ENCODING: &[u8] = b"worklane dbcp row v1\0";

/// SHA-256 of a canonical byte encoding of a row, as 64 lowercase hex digits: the same
/// row gives the same fingerprint in every build and version (the encoding is defined
/// here, byte by byte, never by a `Debug` or `Display` output).
///
/// The encoding is [`FINGERPRINT_ENCODING`], then for each column in the query's order:
/// the name (its UTF-8 length as a big-endian u64, then its bytes), then the value as a
/// tag byte and its bytes: `0` NULL (no bytes); `1` integer (i64, big-endian); `2` float
/// (the IEEE 754 bits, big-endian u64); `3` text (length as big-endian u64, then UTF-8);
/// `4` timestamp (nanoseconds since 1970-01-01T00:00:00Z, big-endian i128). Every
/// variable-length part carries its length, so two different rows never encode alike.
fn fingerprint(row: &Row) -> String {
    use sha2::{Digest, Sha256};
    fn bytes(h: &mut Sha256, b: &[u8]) {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    }
    let mut h = Sha256::new();
    h.update(FINGERPRINT_ENCODING);
    for (name, value) in &row.columns {
        bytes(&mut h, name.as_bytes());
        match value {
            Value::Null => h.update([0]),
            Value::Int(v) => {
                h.update([1]);
                h.update(v.to_be_bytes());
            }
            Value::Float(v) => {
                h.update([2]);
                h.update(v.to_bits().to_be_bytes());
            }
            Value::Text(v) => {
                h.update([3]);
                bytes(&mut h, v.as_bytes());
            }
            Value::Timestamp(v) => {
                h.update([4]);
                h.update(v.as_nanosecond().to_be_bytes());
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The idempotency key of the create of `row` by capture point `cp`.
fn capture_key(cp: &str, row: &Row) -> String {
    let external = row
        .get_ci(EXTERNAL_ID)
        .and_then(Value::to_attribute_text)
        .unwrap_or_default();
    format!("dbcp:{cp}:{external}:{}", fingerprint(row))
}

impl CapturePoint {
    /// The idempotency key of a row's create.
    fn capture_key(&self, row: &Row) -> String {
        capture_key(&self.cfg.id, row)
    }

    /// First half of a poll: reads up to `batch_size` rows and creates their tasks, all
    /// at once so the engine commits them together. Nothing is written to the source yet.
    pub async fn read_and_create(&self) -> Result<CapturedBatch, PointError> {
        self.read_and_create_excluding(&HashSet::new()).await
    }

    /// [`Self::read_and_create`], skipping rows whose create key is in `in_flight` (rows
    /// of a batch being marked right now, which the source still shows as new).
    async fn read_and_create_excluding(
        &self,
        in_flight: &HashSet<String>,
    ) -> Result<CapturedBatch, PointError> {
        let Some(query) = self.statement("captureQuerySql") else {
            return Ok(CapturedBatch {
                rows: Vec::new(),
                _held: Vec::new(),
            });
        };
        // At most a batch is in flight, so twice a batch always leaves a full batch of
        // new rows; a fixed limit keeps the statement text (and its prepared form) fixed.
        let limit = if in_flight.is_empty() {
            self.cfg.batch_size
        } else {
            2 * self.cfg.batch_size
        };
        let mut rows = self.source.query(&query.sql, &[], limit).await?;
        if !in_flight.is_empty() {
            rows.retain(|r| !in_flight.contains(&self.capture_key(r)));
        }
        rows.truncate(self.cfg.batch_size);
        let external_ids = rows
            .iter()
            .filter_map(|r| r.get_ci(EXTERNAL_ID).and_then(Value::to_attribute_text))
            .collect();
        let mut held = vec![self.unmarked.hold(external_ids)];
        let on_duplicate = if self.cfg.check_if_captured {
            OnDuplicate::Refuse
        } else {
            OnDuplicate::ReturnExisting
        };
        let mut pending = Vec::with_capacity(rows.len());
        let mut commands = Vec::new();
        for row in &rows {
            match fields_for_capture(row, &self.tz) {
                Ok(fields) => {
                    let new = NewTask {
                        capture_point_id: self.cfg.id.clone(),
                        fields: fields.with_defaults(&self.cfg.defaults),
                        hold: false,
                        on_duplicate,
                    };
                    let cmd = Command::create(new, self.meta()).idempotent(self.capture_key(row));
                    pending.push(None);
                    commands.push(cmd);
                }
                Err(refusal) => pending.push(Some(Err(refusal))),
            }
        }
        let mut results = join_all(commands.into_iter().map(|c| self.engine.execute_result(c)))
            .await
            .into_iter();
        let mut out = Vec::with_capacity(rows.len());
        for (row, done) in rows.into_iter().zip(pending) {
            let result = match done {
                Some(refused) => refused,
                // A store failure stops the poll; rows created so far are answered from
                // their keys on the next one.
                None => results.next().expect("one result per command")?,
            };
            out.push((row, result));
        }
        // Rows without an ExternalId: their tasks' captureId is the brokerId.
        let generated = out
            .iter()
            .filter(|(r, _)| r.get_ci(EXTERNAL_ID).is_none_or(Value::is_null))
            .filter_map(|(_, res)| res.as_ref().ok().map(|o| o.task.capture_id.clone()))
            .collect();
        held.push(self.unmarked.hold(generated));
        Ok(CapturedBatch {
            rows: out,
            _held: held,
        })
    }

    /// Second half of a poll: runs capturedUpdateSql for each captured row and
    /// errorUpdateSql for each refused one, in one source transaction.
    pub async fn mark(&self, batch: CapturedBatch) -> Result<usize, PointError> {
        let n = batch.rows.len();
        let captured = self.statement("capturedUpdateSql");
        let error = self.statement("errorUpdateSql");
        let mut execs = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for (row, result) in &batch.rows {
            let what = row
                .get_ci(EXTERNAL_ID)
                .map(|v| format!("ExternalId={v:?}"))
                .unwrap_or_default();
            match result {
                Ok(outcome) => {
                    if let Some(s) = captured {
                        execs.push(s.bind(&Context {
                            row: Some(row),
                            task: Some(&outcome.task),
                            ..Context::default()
                        }));
                        labels.push((s.option, what));
                    }
                }
                Err(refusal) => {
                    log_refusal(&self.cfg.id, &what, refusal);
                    if let Some(s) = error {
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
        let refused = batch.rows.iter().filter(|(_, r)| r.is_err()).count() as u64;
        let cp = self.cfg.id.clone();
        metrics::counter!(crate::point::ROWS_CAPTURED, "capture_point" => cp.clone())
            .increment(n as u64 - refused);
        metrics::counter!(crate::point::ROWS_REFUSED, "capture_point" => cp).increment(refused);
        Ok(n)
    }

    /// One poll: [`Self::read_and_create`] then [`Self::mark`]. Returns the rows handled.
    pub async fn capture_step(&self) -> Result<usize, PointError> {
        let batch = self.read_and_create().await?;
        if batch.is_empty() {
            return Ok(0);
        }
        self.mark(batch).await
    }
}

/// Capture with the source work of one batch overlapping the store work of the next:
/// while batch k's rows are marked (capturedUpdateSql, in the source), batch k+1 is read
/// and its tasks created (in the store). Rows of the batch being marked are still new to
/// the source until its transaction commits; they are recognised by their create key
/// and skipped.
#[derive(Debug, Default)]
pub struct CapturePipeline {
    /// Created, not yet marked.
    pending: Option<CapturedBatch>,
}

impl CapturePipeline {
    /// A pipeline with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when a created batch still waits to be marked.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// One round: marks the batch created in the previous round while reading and
    /// creating the next. Returns how many rows it read. On an error, rows not marked
    /// are read again by a later poll (their creates are answered from their keys).
    pub async fn step(&mut self, point: &CapturePoint) -> Result<usize, PointError> {
        let pending = self.pending.take();
        let in_flight: HashSet<String> = pending
            .iter()
            .flat_map(|b| b.rows.iter().map(|(r, _)| point.capture_key(r)))
            .collect();
        let mark = async {
            match pending {
                Some(b) => point.mark(b).await,
                None => Ok(0),
            }
        };
        let (marked, next) = tokio::join!(mark, point.read_and_create_excluding(&in_flight));
        let read = match next {
            Ok(batch) => {
                let n = batch.len();
                if n > 0 {
                    self.pending = Some(batch);
                }
                n
            }
            Err(e) => {
                marked?;
                return Err(e);
            }
        };
        marked?;
        Ok(read)
    }

    /// Marks the batch still pending (before waiting, and before stopping).
    pub async fn flush(&mut self, point: &CapturePoint) -> Result<usize, PointError> {
        match self.pending.take() {
            Some(b) => point.mark(b).await,
            None => Ok(0),
        }
    }
}

fn log_refusal(cp: &str, what: &str, refusal: &DomainError) {
    tracing::info!(capture_point = cp, %what, code = refusal.code.as_str(), message = %refusal.message, "row not captured");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(columns: Vec<(&str, Value)>) -> Row {
        Row {
            columns: columns
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }

    #[test]
    fn fingerprints_tell_rows_apart() {
        let a = row(vec![
            ("ExternalId", Value::Text("1".into())),
            ("P", Value::Int(1)),
        ]);
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        let differ = [
            row(vec![
                ("ExternalId", Value::Text("1".into())),
                ("P", Value::Int(2)),
            ]),
            // The same digits as another type.
            row(vec![("ExternalId", Value::Int(1)), ("P", Value::Int(1))]),
            row(vec![
                ("ExternalId", Value::Text("1".into())),
                ("P", Value::Float(1.0)),
            ]),
            row(vec![
                ("ExternalId", Value::Text("1".into())),
                ("P", Value::Null),
            ]),
            // Bytes moved across the name/value boundary.
            row(vec![
                ("ExternalId", Value::Text("1".into())),
                ("P1", Value::Text("".into())),
            ]),
            row(vec![
                ("ExternalId", Value::Text("1".into())),
                ("p", Value::Int(1)),
            ]),
            // Column order is part of the row.
            row(vec![
                ("P", Value::Int(1)),
                ("ExternalId", Value::Text("1".into())),
            ]),
        ];
        for b in &differ {
            assert_ne!(fingerprint(&a), fingerprint(b), "{b:?}");
        }
        let split_a = row(vec![("a", Value::Text("bc".into()))]);
        let split_b = row(vec![("ab", Value::Text("c".into()))]);
        assert_ne!(fingerprint(&split_a), fingerprint(&split_b));
    }

    /// Pinned: a change in the encoding or the hash changes every key, and rows in flight
    /// during an upgrade would be captured again (docs/database-capture.md). Change this
    /// value only together with `FINGERPRINT_ENCODING` and a note in the docs.
    #[test]
    fn the_key_of_a_known_row_is_pinned() {
        let at: jiff::Timestamp = "2026-01-02T03:04:05.123456789Z".parse().unwrap();
        let r = row(vec![
            ("ExternalId", Value::Text("case-17".into())),
            ("Priority", Value::Int(-5)),
            ("Score", Value::Float(1.5)),
            ("Note", Value::Null),
            ("Title", Value::Text("größe \"x\"\n".into())),
            ("ReceivedAt", Value::Timestamp(at)),
        ]);
        assert_eq!(
            capture_key("DB1", &r),
            "dbcp:DB1:case-17:41cb5c21ee4df818a3b036bf5443f021bd5484cb59afa4b3749bbd608c39e3d7"
        );
        assert_eq!(
            fingerprint(&Row::default()),
            "645e2e5b708b6b729a480b2de03f417f94c0625ca2821758933626c379d53066"
        );
    }
}
