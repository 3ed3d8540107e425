//! What each inbound message means: one engine command (or a read), and the answer that
//! goes to the output queue. Unparseable messages are answered with INVALID_FORMAT and
//! their original is moved to the error queue.

use crate::codec::{ActionKind, CreateTask, Inbound, Notice, Outbound, TaskAction};
use crate::config::Settings;
use crate::transport::{Incoming, Outgoing};
use std::sync::Arc;
use worklane_domain::{
    Action, ActionMeta, DomainError, ErrorCode, EventType, NewTask, OnDuplicate, Timestamp,
};
use worklane_engine::{Command, CommandResult, Engine, EngineError, Outcome};

/// Header on a message moved to the error queue: why it could not be processed.
pub const ERROR_REASON_HEADER: &str = "x-worklane-error";
/// Header on a message moved to the error queue: the capture point that moved it.
pub const ERROR_CAPTURE_POINT_HEADER: &str = "x-worklane-capture-point";
/// Header on a message moved to the error queue: the queue it came from.
pub const ERROR_SOURCE_QUEUE_HEADER: &str = "x-worklane-source-queue";

/// Turns inbound messages into commands and answers.
#[derive(Debug, Clone)]
pub struct Semantics {
    engine: Engine,
    settings: Arc<Settings>,
}

impl Semantics {
    /// Semantics of the capture point `settings` describe, writing through `engine`.
    pub fn new(engine: Engine, settings: Arc<Settings>) -> Self {
        Self { engine, settings }
    }

    /// Carries out what `msg` asks and returns what to publish before acknowledging it:
    /// the answer (unless switched off) and, for an unparseable message, its copy for the
    /// error queue. An `Err` means the store could not do it: nothing was written, and the
    /// message must not be acknowledged.
    pub async fn respond(&self, msg: &Incoming) -> Result<Vec<Outgoing>, EngineError> {
        let s = &self.settings;
        let correlation = msg.correlation().map(str::to_owned);
        let transformed;
        let body = match &s.inbound {
            None => &msg.body,
            Some(t) => match t.apply(&msg.body) {
                Ok(b) => {
                    transformed = b;
                    &transformed
                }
                // Its own format is unknown: the answer is GTLMessages, untransformed.
                Err(e) => {
                    let e = DomainError::invalid("GTLMessages", e);
                    return Ok(self.poison(msg, &e, correlation, false));
                }
            },
        };
        let inbound = match s.codec.parse_inbound(body) {
            Ok(m) => m,
            Err(e) => return Ok(self.poison(msg, &e, correlation, true)),
        };
        let meta_of = |m: &ActionMeta| {
            ActionMeta {
                request_id: correlation.clone(),
                ..m.clone()
            }
            .defaulted(&s.id)
        };
        let answer = match inbound {
            Inbound::Ping => Some(Answer::plain(Outbound::Pong)),
            Inbound::CreateTask(c) => {
                let meta = meta_of(&c.meta);
                let param = c
                    .fields
                    .capture_id
                    .as_ref()
                    .map(|id| format!("CaptureId={id}"));
                let cmd = self.create_command(c, meta, msg);
                let result = self.engine.execute_result(cmd).await?;
                self.answer_result(result, param).await?
            }
            Inbound::Action(a) => {
                let meta = meta_of(&a.meta);
                match action_of(&a) {
                    None => self.task_info(&a, meta).await?,
                    Some(action) => {
                        let mut cmd = Command::act(a.target.task_ref(&s.id), action, meta);
                        if let Some(id) = &msg.message_id {
                            cmd = cmd.idempotent(format!("{}:{id}", s.id));
                        }
                        let result = self.engine.execute_result(cmd).await?;
                        self.answer_result(result, a.target.as_param()).await?
                    }
                }
            }
        };
        Ok(outgoing(answer, s, correlation))
    }

    fn create_command(&self, c: CreateTask, meta: ActionMeta, msg: &Incoming) -> Command {
        let s = &self.settings;
        let has_capture_id = c.fields.capture_id.is_some();
        let mut on_duplicate = if s.check_if_captured {
            OnDuplicate::Refuse
        } else {
            OnDuplicate::Allow
        };
        if msg.message_id.is_none() && msg.redelivered && has_capture_id {
            // No message id to recognise a redelivery by: its CaptureId does. If the first
            // delivery created the task, answer with that task instead of a second one.
            on_duplicate = OnDuplicate::ReturnExisting;
        }
        let new = NewTask {
            capture_point_id: s.id.clone(),
            fields: c.fields.with_defaults(&s.defaults),
            hold: c.hold,
            on_duplicate,
        };
        let cmd = Command::create(new, meta);
        match &msg.message_id {
            Some(id) => cmd.idempotent(format!("{}:{id}", s.id)),
            None => cmd,
        }
    }

    /// The answer to a command: the message its event is sent as, or Error.
    async fn answer_result(
        &self,
        result: CommandResult,
        task_param: Option<String>,
    ) -> Result<Option<Answer>, EngineError> {
        match result {
            Ok(Outcome { event: Some(e), .. }) => Ok(Notice::from_event(&e).map(|n| Answer {
                message: Outbound::Notice(n),
                message_id: Some(self.event_message_id(e.seq)),
            })),
            // An idempotent capture found its task: answer with the task's TaskCreated.
            Ok(Outcome {
                event: None, task, ..
            }) => {
                let events = self
                    .engine
                    .events()
                    .task_events(task.broker_id)
                    .await
                    .map_err(store)?;
                let created = events
                    .iter()
                    .find(|e| e.event_type == EventType::TaskCreated);
                Ok(created.and_then(|e| {
                    Notice::from_event(e).map(|n| Answer {
                        message: Outbound::Notice(n),
                        message_id: Some(self.event_message_id(e.seq)),
                    })
                }))
            }
            Err(e) => Ok(Some(Answer::plain(Outbound::Error(
                (&name_task(e, task_param)).into(),
            )))),
        }
    }

    async fn task_info(
        &self,
        a: &TaskAction,
        meta: ActionMeta,
    ) -> Result<Option<Answer>, EngineError> {
        let r = a.target.task_ref(&self.settings.id);
        let found = self.engine.tasks().find_task(&r).await.map_err(store)?;
        Ok(Some(Answer::plain(match found {
            Some(task) => {
                let at = meta.action_date_time.unwrap_or_else(Timestamp::now);
                Outbound::Notice(Notice::task_info(&task, meta.actor, meta.reason, at))
            }
            None => Outbound::Error(
                (&DomainError::new(
                    ErrorCode::TaskNotFound,
                    format!("no task with {}", r.as_param().replace('=', " ")),
                )
                .with_param(r.as_param()))
                    .into(),
            ),
        })))
    }

    /// INVALID_FORMAT on the output queue, and the original on the error queue with the
    /// reason in a header. The answer goes through the outbound transformation unless
    /// `transform_answer` is false (the inbound transformation failed, so the message's
    /// format is unknown).
    fn poison(
        &self,
        msg: &Incoming,
        e: &DomainError,
        correlation: Option<String>,
        transform_answer: bool,
    ) -> Vec<Outgoing> {
        let s = &self.settings;
        tracing::warn!(capture_point = %s.id, message_id = ?msg.message_id, error = %e, "unparseable message moved to the error queue");
        let answer = Some(Answer::plain(Outbound::Error(e.into())));
        let mut out = if transform_answer {
            outgoing(answer, s, correlation)
        } else {
            plain_outgoing(answer, s, correlation)
        };
        out.push(Outgoing {
            queue: s.error_queue.clone(),
            body: msg.body.clone(),
            correlation_id: msg.correlation_id.clone(),
            message_id: msg.message_id.clone(),
            headers: vec![
                (ERROR_REASON_HEADER.to_owned(), e.to_string()),
                (ERROR_CAPTURE_POINT_HEADER.to_owned(), s.id.clone()),
                (ERROR_SOURCE_QUEUE_HEADER.to_owned(), s.input_queue.clone()),
            ],
        });
        out
    }

    fn event_message_id(&self, seq: i64) -> String {
        format!("{}:event:{seq}", self.settings.id)
    }
}

fn store(e: worklane_store::StoreError) -> EngineError {
    EngineError::Store(Arc::new(e))
}

/// Puts the task's id first among an INVALID_FORMAT's parameters (the store's refusals
/// of other kinds already name the task).
fn name_task(e: DomainError, task_param: Option<String>) -> DomainError {
    match task_param {
        Some(p) if e.code == ErrorCode::InvalidFormat && !e.parameters.contains(&p) => {
            e.for_task(p)
        }
        _ => e,
    }
}

/// The command an action message asks for; `None` for GetTaskInfo (a read).
fn action_of(a: &TaskAction) -> Option<Action> {
    Some(match &a.kind {
        ActionKind::Update(fields) => {
            let mut fields = fields.clone();
            // Named by BrokerId and CaptureId both: BrokerId finds it, CaptureId changes.
            if a.target.broker_id.is_some() {
                fields.capture_id = a.target.capture_id.clone();
            }
            Action::Update(fields)
        }
        ActionKind::Complete => Action::Complete,
        ActionKind::Hold => Action::Hold,
        ActionKind::Resume => Action::Resume,
        ActionKind::Restart => Action::Restart,
        ActionKind::Cancel => Action::Cancel,
        ActionKind::GetTaskInfo => return None,
    })
}

/// An answer, before the switch and the queue are applied.
struct Answer {
    message: Outbound,
    message_id: Option<String>,
}

impl Answer {
    fn plain(message: Outbound) -> Self {
        Self {
            message,
            message_id: None,
        }
    }
}

/// The answer as a message for the output queue, unless there is none or its type is
/// switched off.
fn outgoing(answer: Option<Answer>, s: &Settings, correlation: Option<String>) -> Vec<Outgoing> {
    match answer {
        Some(a) if s.sends(a.message.name()) => {
            let (body, headers) = s.outbound_body(&a.message);
            vec![Outgoing {
                queue: s.output_queue.clone(),
                body,
                correlation_id: correlation,
                message_id: a.message_id,
                headers,
            }]
        }
        _ => Vec::new(),
    }
}

/// Like [`outgoing`], in GTLMessages whatever the outbound transformation.
fn plain_outgoing(
    answer: Option<Answer>,
    s: &Settings,
    correlation: Option<String>,
) -> Vec<Outgoing> {
    match answer {
        Some(a) if s.sends(a.message.name()) => vec![Outgoing {
            queue: s.output_queue.clone(),
            body: s.codec.render_outbound(&a.message).into_bytes(),
            correlation_id: correlation,
            message_id: a.message_id,
            headers: Vec::new(),
        }],
        _ => Vec::new(),
    }
}
