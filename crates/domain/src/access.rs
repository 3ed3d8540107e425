//! Who may do what (SPEC 10): the four roles, the caller a request was authenticated as,
//! and the scope that limits an agent or an integration to its own tasks. Pure: the API
//! authenticates, the engine applies a command's [`Scope`] to the task it loaded, inside
//! the write transaction, so a task reassigned a moment earlier cannot be acted on.

use crate::{DomainError, ErrorCode, QueueType, Task};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A caller's role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users, tokens and configuration reload.
    Admin,
    /// Every task, queue and agent.
    Supervisor,
    /// Only the tasks offered or assigned to it or in its workbins, and its own state.
    Agent,
    /// Task actions as its capture point (every capture point when unbound).
    Integration,
}

impl Role {
    /// Every role, in the order of the matrix in the docs.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Integration => "integration",
        }
    }

    /// Admins and supervisors see and act on every task.
    pub fn sees_everything(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role (admin, supervisor, agent, integration)"))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What events record as the actor: `user:<id>` or `token:<name>`.
    pub actor: String,
    pub role: Role,
    /// An agent's own limits (role agent).
    pub agent: Option<AgentScope>,
    /// The capture point an integration is bound to.
    pub capture_point_id: Option<String>,
}

impl Principal {
    /// What a command this caller sends may touch (None: any task).
    pub fn scope(&self) -> Option<Scope> {
        match self.role {
            Role::Admin | Role::Supervisor => None,
            Role::Agent => Some(Scope::Agent(self.agent.clone().unwrap_or_default())),
            Role::Integration => self.capture_point_id.clone().map(Scope::CapturePoint),
        }
    }

    /// Whether this caller may act as agent `id` (its state, pulls, offers, channel).
    pub fn is_agent(&self, id: &str) -> bool {
        match self.role {
            Role::Admin | Role::Supervisor => true,
            Role::Agent => self.agent.as_ref().is_some_and(|a| a.id == id),
            Role::Integration => false,
        }
    }
}

/// An agent as its scope needs it: its id, and the groups and places whose workbins it
/// may open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentScope {
    pub id: String,
    pub groups: Vec<String>,
    pub place: Option<String>,
    pub place_groups: Vec<String>,
}

/// The tasks a command may touch, checked against the task as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// Tasks offered or assigned to this agent, or in one of its workbins.
    Agent(AgentScope),
    /// Tasks of this capture point.
    CapturePoint(String),
}

impl Scope {
    /// Refuses with FORBIDDEN, naming the task, when `task` is outside the scope: the one
    /// refusal the API (reads) and the engine (actions) both answer.
    pub fn check(&self, task: &Task) -> Result<(), DomainError> {
        if self.permits(task) {
            return Ok(());
        }
        Err(DomainError::new(
            ErrorCode::Forbidden,
            format!(
                "task {} is not offered or assigned to you, nor in your workbins or capture point",
                task.broker_id
            ),
        )
        .with_param(format!("BrokerId={}", task.broker_id)))
    }

    pub fn permits(&self, task: &Task) -> bool {
        match self {
            Scope::CapturePoint(cp) => task.capture_point_id == *cp,
            Scope::Agent(a) => {
                if task.offer.as_ref().is_some_and(|o| o.agent == a.id)
                    || task.assigned_to_user.as_deref() == Some(a.id.as_str())
                {
                    return true;
                }
                let Some(target) = task.queue_target.as_deref() else {
                    return false;
                };
                match task.queue_type {
                    Some(QueueType::AgentWorkbin) => target == a.id,
                    Some(QueueType::AgentGroupWorkbin) => a.groups.iter().any(|g| g == target),
                    Some(QueueType::PlaceWorkbin) => a.place.as_deref() == Some(target),
                    Some(QueueType::PlaceGroupWorkbin) => {
                        a.place_groups.iter().any(|g| g == target)
                    }
                    Some(QueueType::InteractionQueue) | None => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Offer, Timestamp};

    fn task() -> Task {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "brokerId": 7, "captureId": "c", "capturePointId": "crm",
            "status": "Distributed", "priority": 0,
            "createdDateTime": "2026-01-01T00:00:00Z", "version": 1,
        }))
        .unwrap_or_else(|e| panic!("a task: {e}"));
        t.queue_type = Some(QueueType::InteractionQueue);
        t.queue_target = Some("claims".into());
        t
    }

    fn ann() -> Scope {
        Scope::Agent(AgentScope {
            id: "ann".into(),
            groups: vec!["motor".into()],
            place: Some("desk-4".into()),
            place_groups: vec!["floor-2".into()],
        })
    }

    #[test]
    fn an_agent_reaches_its_offers_assignments_and_workbins_only() {
        let mut t = task();
        assert!(!ann().permits(&t), "a task in a queue is nobody's yet");
        t.offer = Some(Offer {
            id: "7-2".into(),
            agent: "ann".into(),
            offered_date_time: Timestamp::UNIX_EPOCH,
            expires_date_time: Timestamp::UNIX_EPOCH,
        });
        assert!(ann().permits(&t));
        if let Some(o) = t.offer.as_mut() {
            o.agent = "bob".into();
        }
        assert!(!ann().permits(&t), "bob's offer");
        t.offer = None;
        t.assigned_to_user = Some("ann".into());
        assert!(ann().permits(&t));
        t.assigned_to_user = Some("bob".into());
        assert!(!ann().permits(&t));
        t.assigned_to_user = None;
        for (qt, target, ok) in [
            (QueueType::AgentWorkbin, "ann", true),
            (QueueType::AgentWorkbin, "bob", false),
            (QueueType::AgentGroupWorkbin, "motor", true),
            (QueueType::AgentGroupWorkbin, "home", false),
            (QueueType::PlaceWorkbin, "desk-4", true),
            (QueueType::PlaceWorkbin, "desk-5", false),
            (QueueType::PlaceGroupWorkbin, "floor-2", true),
            (QueueType::PlaceGroupWorkbin, "floor-3", false),
            (QueueType::InteractionQueue, "ann", false),
        ] {
            t.queue_type = Some(qt);
            t.queue_target = Some(target.into());
            assert_eq!(ann().permits(&t), ok, "{qt:?} {target}");
        }
    }

    #[test]
    fn an_integration_reaches_its_capture_points_tasks() {
        let t = task();
        assert!(Scope::CapturePoint("crm".into()).permits(&t));
        assert!(!Scope::CapturePoint("fax".into()).permits(&t));
    }

    #[test]
    fn scopes_by_role() {
        let p = |role, cp: Option<&str>| Principal {
            actor: "token:x".into(),
            role,
            agent: None,
            capture_point_id: cp.map(str::to_owned),
        };
        assert_eq!(p(Role::Admin, None).scope(), None);
        assert_eq!(p(Role::Supervisor, None).scope(), None);
        assert_eq!(p(Role::Integration, None).scope(), None, "unbound");
        assert_eq!(
            p(Role::Integration, Some("crm")).scope(),
            Some(Scope::CapturePoint("crm".into()))
        );
        assert!(p(Role::Supervisor, None).is_agent("ann"));
        assert!(!p(Role::Integration, None).is_agent("ann"));
        let mut a = p(Role::Agent, None);
        a.agent = Some(AgentScope {
            id: "ann".into(),
            ..Default::default()
        });
        assert!(a.is_agent("ann") && !a.is_agent("bob"));
        assert!(matches!(a.scope(), Some(Scope::Agent(s)) if s.id == "ann"));
        assert_eq!("supervisor".parse::<Role>(), Ok(Role::Supervisor));
        assert!("root".parse::<Role>().is_err());
    }
}
