//! Actions and the task state machine (SPEC section 2). `decide` is the one place that
//! says which action is allowed from which status and what it changes.

use crate::error::{DomainError, ErrorCode};
use crate::event::{EventType, NewEvent};
use crate::fields::{check_len, limits, NewTask, TaskFields};
use crate::task::{BrokerId, Offer, QueueType, Status, Task};
use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// Audit attributes every action may carry (seed 001, "Task Action Messages"), plus the
/// request's reference id (seed 003) and the channel that asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionMeta {
    /// Who triggered the action; adapters default it to their capture point's id.
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// When the action was triggered; the time it is processed when absent.
    pub action_date_time: Option<Timestamp>,
    /// The request's reference id (X-Request-Id, AMQP correlation id...), copied to the event.
    pub request_id: Option<String>,
    /// The channel that asked (a capture point's id, `REST`, `processor`), so an adapter
    /// can tell its own requests from changes made by someone else.
    pub origin: Option<String>,
}

impl ActionMeta {
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(a) = &self.actor {
            check_len("actor", a, limits::TEXT)?;
        }
        if let Some(r) = &self.reason {
            check_len("reason", r, limits::TEXT)?;
        }
        Ok(())
    }

    /// Sets the actor and origin when absent, leaving given values alone.
    pub fn defaulted(mut self, origin: &str) -> Self {
        if self.actor.is_none() {
            self.actor = Some(origin.to_owned());
        }
        if self.origin.is_none() {
            self.origin = Some(origin.to_owned());
        }
        self
    }
}

/// What classification decides: the business structure the task belongs to, and what
/// the classification rules set on it (empty without rules).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    pub tenant_id: Option<String>,
    pub solution_id: Option<String>,
    pub department_id: Option<String>,
    pub process_id: Option<String>,
    pub contract_id: Option<String>,
    pub business_calendar_id: Option<String>,
    /// Attributes the rules set (applied before the structure above).
    #[serde(default, skip_serializing_if = "TaskFields::is_empty")]
    pub fields: TaskFields,
}

/// What prioritization decides: the attributes it sets (priority, businessValue,
/// dueDateTime...) and when the task is next reprioritized (none: never).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prioritization {
    #[serde(default, skip_serializing_if = "TaskFields::is_empty")]
    pub fields: TaskFields,
    pub reprioritize_date_time: Option<Timestamp>,
}

/// An action on an existing task. Create is [`NewTask`], handled by [`create`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Update(TaskFields),
    Hold,
    Resume,
    Restart,
    Cancel,
    Complete,
    /// A supervisor's (or, later, the distribution layer's) assignment to an agent.
    Assign {
        user: String,
    },
    /// Processing: New → Captured.
    Classify(Classification),
    /// Processing: Captured → Queued.
    Prioritize(Prioritization),
    /// A Queued (or Distributed) task's priority changed by the rules as time passes:
    /// recorded as TaskUpdated.
    Reprioritize(Prioritization),
    /// Handed to the distribution layer: Queued → Distributed, with a new distributionId.
    Distribute {
        distribution_id: String,
        distribution_point_id: String,
    },
    /// The distribution layer is asked to route a Queued task (TaskRouteRequested).
    RouteRequest,
    /// Into an interaction queue or a workbin (TaskDistributedQueue): a Distributed task
    /// as it is routed, moved to a workbin or transferred to a queue; an Assigned one
    /// transferred or moved back. Any offer or assignment is dropped.
    Enqueue {
        queue: Option<String>,
        queue_type: QueueType,
        queue_target: Option<String>,
    },
    /// A push offer to one agent (TaskOffered): a Distributed task in an interaction
    /// queue with no live offer.
    Offer(Offer),
    /// The offered agent accepts: → Assigned to it (TaskAssigned).
    Accept {
        offer_id: String,
    },
    /// The offer ends unanswered or rejected, or the agent left (TaskReturned): the task
    /// stays in its queue for the next agent. With an id, only that offer.
    Return {
        offer_id: Option<String>,
    },
    /// Transfer to an agent: a Distributed or Assigned task → Assigned to `user`.
    Transfer {
        user: String,
    },
    /// An agent's completion: Complete, recording the agent's result code
    /// (`ext.resultCode`) when given.
    Finish {
        result_code: Option<String>,
    },
    /// Processing failed: → ErrorHeld with the reason.
    ErrorHold {
        error: String,
    },
    /// Classified into an inactive process or contract: → Rejected.
    Reject,
    /// Expired after a final status, or removed: the task is deleted (TaskStopped).
    Stop,
}

impl Action {
    /// The action's name as the seeds write it, for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Update(_) => "update",
            Self::Hold => "hold",
            Self::Resume => "resume",
            Self::Restart => "restart",
            Self::Cancel => "cancel",
            Self::Complete => "complete",
            Self::Assign { .. } => "assign",
            Self::Classify(_) => "classify",
            Self::Prioritize(_) => "prioritize",
            Self::Reprioritize(_) => "reprioritize",
            Self::Distribute { .. } => "distribute",
            Self::RouteRequest => "route",
            Self::Enqueue { .. } => "enqueue",
            Self::Offer(_) => "offer",
            Self::Accept { .. } => "accept",
            Self::Return { .. } => "return",
            Self::Transfer { .. } => "transfer",
            Self::Finish { .. } => "complete",
            Self::ErrorHold { .. } => "error-hold",
            Self::Reject => "reject",
            Self::Stop => "stop",
        }
    }

    /// Input checks that need no task (lengths, ranges).
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            Self::Update(fields) => fields.validate(),
            Self::Classify(c) => c.fields.validate(),
            Self::Prioritize(p) | Self::Reprioritize(p) => p.fields.validate(),
            Self::Assign { user } | Self::Transfer { user } => {
                if user.trim().is_empty() {
                    return Err(DomainError::invalid("assignedToUser", "must not be empty"));
                }
                check_len("assignedToUser", user, limits::USER)
            }
            Self::ErrorHold { error } => check_len("error", error, limits::TEXT),
            Self::Enqueue {
                queue,
                queue_type,
                queue_target,
            } => {
                if let Some(q) = queue {
                    check_len("queue", q, limits::QUEUE)?;
                }
                if let Some(t) = queue_target {
                    check_len("queueTarget", t, limits::QUEUE)?;
                }
                match (queue_type, queue, queue_target) {
                    (QueueType::InteractionQueue, None, _) => Err(DomainError::invalid(
                        "queue",
                        "an interaction queue needs its id",
                    )),
                    (QueueType::InteractionQueue, _, _) => Ok(()),
                    (_, _, None) => Err(DomainError::invalid(
                        "queueTarget",
                        format!("a {} needs its target", queue_type.as_str()),
                    )),
                    _ => Ok(()),
                }
            }
            Self::Finish {
                result_code: Some(code),
            } => check_len("resultCode", code, limits::EXT),
            Self::Distribute {
                distribution_id,
                distribution_point_id,
            } => {
                check_len("distributionId", distribution_id, limits::DISTRIBUTION_ID)?;
                check_len(
                    "distributionPointId",
                    distribution_point_id,
                    limits::SHORT_ID,
                )
            }
            _ => Ok(()),
        }
    }
}

impl Prioritization {
    /// Writes the attributes into `task`, sets its next reprioritization (clearing it when
    /// there is none), and returns the names of those that changed.
    fn apply_to(&self, task: &mut Task) -> Vec<String> {
        let mut changes = self.fields.apply_to(task);
        if task.reprioritize_date_time != self.reprioritize_date_time {
            task.reprioritize_date_time = self.reprioritize_date_time;
            if !changes.iter().any(|c| c == "reprioritizeDateTime") {
                changes.push("reprioritizeDateTime".to_owned());
            }
        }
        changes
    }
}

/// The result of an allowed action: the task after it, and the event that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub task: Task,
    pub event: NewEvent,
    /// The task is to be deleted from the store (its event keeps the last snapshot).
    pub deleted: bool,
}

fn event(
    event_type: EventType,
    meta: &ActionMeta,
    at: Timestamp,
    changes: Vec<String>,
) -> NewEvent {
    NewEvent {
        event_type,
        actor: meta.actor.clone(),
        reason: meta.reason.clone(),
        request_id: meta.request_id.clone(),
        origin: meta.origin.clone(),
        event_date_time: at,
        changes,
        agent: None,
    }
}

/// Builds the task a create makes. The store supplies the generated brokerId.
pub fn create(new: &NewTask, broker_id: BrokerId, meta: &ActionMeta, now: Timestamp) -> Transition {
    let at = meta.action_date_time.unwrap_or(now);
    let f = &new.fields;
    let mut task = Task {
        broker_id,
        capture_id: f
            .capture_id
            .clone()
            .unwrap_or_else(|| broker_id.to_string()),
        capture_point_id: new.capture_point_id.clone(),
        distribution_id: None,
        distribution_point_id: None,
        tenant_id: None,
        solution_id: None,
        department_id: None,
        process_id: None,
        contract_id: None,
        business_calendar_id: None,
        channel: None,
        category: None,
        status: if new.hold {
            Status::NewHeld
        } else {
            Status::New
        },
        priority: 0,
        business_value: None,
        created_date_time: now,
        held_date_time: new.hold.then_some(at),
        distributed_date_time: None,
        assigned_date_time: None,
        completed_date_time: None,
        activation_date_time: None,
        due_date_time: None,
        expiration_date_time: None,
        reprioritize_date_time: None,
        assigned_to_user: None,
        queue: None,
        queue_type: None,
        queue_target: None,
        offer: None,
        ext: Default::default(),
        data: Default::default(),
        error: None,
        version: 1,
    };
    let mut fields = f.clone();
    fields.capture_id = None;
    let mut changes = vec!["status".to_owned()];
    changes.extend(fields.apply_to(&mut task));
    Transition {
        task,
        event: event(EventType::TaskCreated, meta, at, changes),
        deleted: false,
    }
}

/// Applies `action` to `task` by the rules of SPEC section 2, or refuses it with the
/// protocol's code. Pure: `now` is the processing time.
pub fn decide(
    task: &Task,
    action: &Action,
    meta: &ActionMeta,
    now: Timestamp,
) -> Result<Transition, DomainError> {
    use Status::*;
    action.validate()?;
    let at = meta.action_date_time.unwrap_or(now);
    let mut t = task.clone();
    let s = task.status;
    let mut changes: Vec<String> = Vec::new();
    let mut deleted = false;
    let event_type = match action {
        Action::Update(fields) => {
            changes = fields.apply_to(&mut t);
            EventType::TaskUpdated
        }
        Action::Hold => {
            if !matches!(s, New | Captured | Queued | Distributed) {
                return Err(task.refuse(ErrorCode::CannotHoldAssignedTask, "hold"));
            }
            t.revoke_distribution();
            t.status = Held;
            t.held_date_time = Some(at);
            EventType::TaskHeld
        }
        Action::Resume => {
            t.status = match s {
                NewHeld | ErrorHeld => New,
                // Distributed again by the distribution layer, with a new distributionId.
                Held => Queued,
                _ => return Err(task.refuse(ErrorCode::CannotResumeTask, "resume")),
            };
            t.held_date_time = None;
            t.error = None;
            EventType::TaskResumed
        }
        Action::Restart => {
            if !matches!(
                s,
                New | NewHeld | Captured | Queued | Distributed | Held | ErrorHeld
            ) {
                return Err(task.refuse(ErrorCode::CannotRestartTask, "restart"));
            }
            t.revoke_distribution();
            t.status = New;
            t.held_date_time = None;
            t.error = None;
            EventType::TaskRestarted
        }
        Action::Cancel => {
            if !matches!(
                s,
                New | NewHeld | Captured | Queued | Distributed | Held | ErrorHeld
            ) {
                return Err(task.refuse(ErrorCode::CannotCancelCompletedTask, "cancel"));
            }
            t.revoke_distribution();
            t.status = Canceled;
            EventType::TaskCanceled
        }
        Action::Complete | Action::Finish { .. } => {
            if s.is_final() {
                return Err(task.refuse(ErrorCode::CannotCompleteTask, "complete"));
            }
            if let Action::Finish {
                result_code: Some(code),
            } = action
            {
                if t.ext.result_code.as_ref() != Some(code) {
                    t.ext.result_code = Some(code.clone());
                    changes.push("ext.resultCode".to_owned());
                }
            }
            t.offer = None;
            t.status = Completed;
            t.completed_date_time = Some(at);
            EventType::TaskCompleted
        }
        Action::Assign { user } | Action::Transfer { user } => {
            let allowed = match action {
                Action::Assign { .. } => matches!(s, Queued | Distributed),
                _ => matches!(s, Distributed | Assigned),
            };
            if !allowed {
                return Err(task.refuse(ErrorCode::CannotAssignTask, action.name()));
            }
            t.offer = None;
            t.status = Assigned;
            t.assigned_to_user = Some(user.clone());
            t.assigned_date_time = Some(at);
            changes.push("assignedToUser".to_owned());
            EventType::TaskAssigned
        }
        Action::Classify(c) => {
            if s != New {
                return Err(task.refuse(ErrorCode::InvalidTransition, "classify"));
            }
            changes = c.fields.apply_to(&mut t);
            macro_rules! set {
                ($($f:ident => $n:literal),*) => {$(
                    if let Some(v) = &c.$f {
                        if t.$f.as_ref() != Some(v) {
                            t.$f = Some(v.clone());
                            if !changes.iter().any(|c| c == $n) { changes.push($n.to_owned()); }
                        }
                    }
                )*};
            }
            set!(tenant_id => "tenantId", solution_id => "solutionId",
                department_id => "departmentId", process_id => "processId",
                contract_id => "contractId", business_calendar_id => "businessCalendarId");
            t.status = Captured;
            EventType::TaskCaptured
        }
        Action::Prioritize(p) => {
            if !matches!(s, Captured | Queued) {
                return Err(task.refuse(ErrorCode::InvalidTransition, "prioritize"));
            }
            changes = p.apply_to(&mut t);
            t.status = Queued;
            EventType::TaskQueued
        }
        Action::Reprioritize(p) => {
            if !matches!(s, Queued | Distributed) {
                return Err(task.refuse(ErrorCode::InvalidTransition, "reprioritize"));
            }
            changes = p.apply_to(&mut t);
            EventType::TaskUpdated
        }
        Action::Distribute {
            distribution_id,
            distribution_point_id,
        } => {
            if s != Queued {
                return Err(task.refuse(ErrorCode::InvalidTransition, "distribute"));
            }
            t.status = Distributed;
            t.distribution_id = Some(distribution_id.clone());
            t.distribution_point_id = Some(distribution_point_id.clone());
            t.distributed_date_time = Some(at);
            changes.push("distributionId".to_owned());
            EventType::TaskDistributed
        }
        Action::RouteRequest => {
            if s != Queued {
                return Err(task.refuse(ErrorCode::InvalidTransition, "route"));
            }
            EventType::TaskRouteRequested
        }
        Action::Enqueue {
            queue,
            queue_type,
            queue_target,
        } => {
            if !matches!(s, Distributed | Assigned) {
                return Err(task.refuse(ErrorCode::InvalidTransition, "enqueue"));
            }
            t.offer = None;
            t.status = Distributed;
            if t.assigned_to_user.take().is_some() {
                t.assigned_date_time = None;
                changes.push("assignedToUser".to_owned());
            }
            t.queue = queue.clone();
            t.queue_type = Some(*queue_type);
            t.queue_target = queue_target.clone();
            changes.extend(["queue", "queueType", "queueTarget"].map(str::to_owned));
            EventType::TaskDistributedQueue
        }
        Action::Offer(offer) => {
            if s != Distributed
                || task.offer.is_some()
                || task.queue_type != Some(QueueType::InteractionQueue)
            {
                return Err(task.refuse(ErrorCode::InvalidTransition, "offer"));
            }
            t.offer = Some(offer.clone());
            changes.push("offer".to_owned());
            EventType::TaskOffered
        }
        Action::Accept { offer_id } => {
            let Some(offer) = task.offer.as_ref().filter(|o| &o.id == offer_id) else {
                return Err(offer_gone(task, offer_id));
            };
            if offer.expires_date_time <= now {
                return Err(offer_gone(task, offer_id));
            }
            t.status = Assigned;
            t.assigned_to_user = Some(offer.agent.clone());
            t.assigned_date_time = Some(at);
            t.offer = None;
            changes.push("assignedToUser".to_owned());
            EventType::TaskAssigned
        }
        Action::Return { offer_id } => {
            let live = task
                .offer
                .as_ref()
                .filter(|o| offer_id.as_ref().is_none_or(|id| &o.id == id));
            if live.is_none() {
                return Err(offer_gone(task, offer_id.as_deref().unwrap_or("")));
            }
            t.offer = None;
            changes.push("offer".to_owned());
            EventType::TaskReturned
        }
        Action::ErrorHold { error } => {
            if s.is_final() || s == Assigned {
                return Err(task.refuse(ErrorCode::InvalidTransition, "error-hold"));
            }
            t.revoke_distribution();
            t.status = ErrorHeld;
            t.error = Some(error.clone());
            t.held_date_time = Some(at);
            changes.push("error".to_owned());
            EventType::TaskErrorHeld
        }
        Action::Reject => {
            if !matches!(s, New | Captured) {
                return Err(task.refuse(ErrorCode::InvalidTransition, "reject"));
            }
            t.status = Rejected;
            EventType::TaskRejected
        }
        Action::Stop => {
            deleted = true;
            EventType::TaskStopped
        }
    };
    if t.status != s {
        changes.insert(0, "status".to_owned());
    }
    t.version += 1;
    let mut ev = event(event_type, meta, at, changes);
    ev.agent = holder(&t).or_else(|| holder(task)).map(str::to_owned);
    Ok(Transition {
        task: t,
        event: ev,
        deleted,
    })
}

/// The agent holding a task: the one it is offered to, or assigned to while Assigned.
fn holder(t: &Task) -> Option<&str> {
    match (&t.offer, t.status) {
        (Some(o), _) => Some(&o.agent),
        (None, Status::Assigned) => t.assigned_to_user.as_deref(),
        _ => None,
    }
}

fn offer_gone(task: &Task, offer_id: &str) -> DomainError {
    DomainError::new(
        ErrorCode::OfferNotFound,
        format!(
            "task {} has no live offer {offer_id:?} (answered, timed out or revoked)",
            task.broker_id
        ),
    )
    .with_param(format!("OfferId={offer_id}"))
    .with_param(format!("BrokerId={}", task.broker_id))
}
