//! Agents (SPEC section 9): the people the distribution layer hands tasks to, their
//! skills and capacity, and their state. Pure: callers pass the time.

use crate::error::DomainError;
use crate::fields::{check_len, limits};
use crate::task::{QueueType, Task};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The highest skill level.
pub const MAX_SKILL: u8 = 10;
/// The most tasks of one channel an agent may hold at once.
pub const MAX_CAPACITY: u32 = 100;
/// The capacity key that stands for every channel not named, and for tasks with none.
pub const ANY_CHANNEL: &str = "*";

/// An agent's state as the agent sets it. Busy is not stored: it is derived from the
/// agent's work and capacity (see [`Agent::shown_state`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgentState {
    LoggedOut,
    Ready,
    NotReady,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoggedOut => "LoggedOut",
            Self::Ready => "Ready",
            Self::NotReady => "NotReady",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::LoggedOut, Self::Ready, Self::NotReady]
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    format!("unknown state {s:?} (Ready, NotReady or LoggedOut)"),
                )
            })
    }
}

/// What an agent is, as an administrator sets it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentProfile {
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Skill name → level 0..=10.
    #[serde(default, deserialize_with = "whole::map")]
    pub skills: BTreeMap<String, u8>,
    /// Channel → how many of its tasks the agent holds at once (offered or assigned);
    /// `"*"` for every other channel. Empty: one task of any channel.
    #[serde(default, deserialize_with = "whole::map")]
    pub capacity: BTreeMap<String, u32>,
    /// The agent's place (PlaceWorkbin) and place groups (PlaceGroupWorkbin).
    pub place: Option<String>,
    #[serde(default)]
    pub place_groups: Vec<String>,
}

impl AgentProfile {
    /// Lengths, levels and capacities, naming the attribute that is wrong.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(n) = &self.name {
            check_len("name", n, limits::TEXT)?;
        }
        for g in self.groups.iter().chain(&self.place_groups) {
            check_id("groups", g)?;
        }
        if let Some(p) = &self.place {
            check_id("place", p)?;
        }
        for (skill, level) in &self.skills {
            check_id("skills", skill)?;
            if *level > MAX_SKILL {
                return Err(DomainError::invalid(
                    &format!("skills.{skill}"),
                    format!("level {level} is above {MAX_SKILL}"),
                ));
            }
        }
        for (channel, n) in &self.capacity {
            check_id("capacity", channel)?;
            if *n > MAX_CAPACITY {
                return Err(DomainError::invalid(
                    &format!("capacity.{channel}"),
                    format!("{n} is above {MAX_CAPACITY}"),
                ));
            }
        }
        Ok(())
    }
}

pub fn check_id(attribute: &str, v: &str) -> Result<(), DomainError> {
    if v.trim().is_empty() {
        return Err(DomainError::invalid(attribute, "must not be empty"));
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(DomainError::invalid(
            attribute,
            format!("contains the control character {c:?}"),
        ));
    }
    check_len(attribute, v, limits::USER)
}

/// An agent id as given from outside: 1 to 64 characters, none of them whitespace or
/// one that has a meaning in a URL (`/ % ? #`), so an id is its own path segment.
pub fn check_agent_id(id: &str) -> Result<(), DomainError> {
    check_id("id", id)?;
    if let Some(c) = id.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '/' | '%' | '?' | '#' | '\u{FEFF}')
    }) {
        return Err(DomainError::invalid(
            "id",
            format!("an agent id may not contain {c:?}"),
        ));
    }
    Ok(())
}

/// The characters an agent id may hold, as an ECMA-262 class (for the OpenAPI document).
pub const AGENT_ID_CLASS: &str = r"[^\s/%?#\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// An agent: profile, state, and when it began waiting for work.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    #[serde(flatten)]
    pub profile: AgentProfile,
    pub state: AgentState,
    /// Why the agent is NotReady (or LoggedOut), as given.
    pub reason: Option<String>,
    pub state_date_time: Timestamp,
    /// Since when the agent has waited for work: when it became Ready, or was last given
    /// a task (offered or assigned). Push offers go to the agent waiting longest.
    pub waiting_since: Timestamp,
    pub version: i64,
}

impl Agent {
    /// A new agent, logged out.
    pub fn new(id: String, profile: AgentProfile, now: Timestamp) -> Self {
        Self {
            id,
            profile,
            state: AgentState::LoggedOut,
            reason: None,
            state_date_time: now,
            waiting_since: now,
            version: 1,
        }
    }

    /// The capacity bucket a task of `channel` counts in: the channel when the agent's
    /// capacity names it, `"*"` otherwise; None when the agent takes no such task.
    pub fn bucket<'a>(&'a self, channel: Option<&str>) -> Option<&'a str> {
        let cap = &self.profile.capacity;
        if cap.is_empty() {
            return Some(ANY_CHANNEL);
        }
        if let Some((k, _)) = channel.and_then(|c| cap.get_key_value(c)) {
            return Some(k);
        }
        cap.get_key_value(ANY_CHANNEL).map(|(k, _)| k.as_str())
    }

    fn limit(&self, bucket: &str) -> u32 {
        if self.profile.capacity.is_empty() {
            return 1;
        }
        self.profile.capacity.get(bucket).copied().unwrap_or(0)
    }

    /// Whether the agent, holding `work`, has room for one more task of `channel`.
    pub fn has_room(&self, work: &Load, channel: Option<&str>) -> bool {
        self.bucket(channel)
            .is_some_and(|b| work.get(b) < self.limit(b))
    }

    /// Whether the agent has room for a task of some channel.
    pub fn has_any_room(&self, work: &Load) -> bool {
        if self.profile.capacity.is_empty() {
            return work.get(ANY_CHANNEL) < 1;
        }
        self.profile.capacity.iter().any(|(b, n)| work.get(b) < *n)
    }

    /// Whether the agent has room for a task of any channel (so the first task in queue
    /// order fits, whatever its channel).
    pub fn takes_any_channel(&self, work: &Load) -> bool {
        if self.profile.capacity.is_empty() {
            return work.get(ANY_CHANNEL) < 1;
        }
        self.profile.capacity.contains_key(ANY_CHANNEL)
            && self.profile.capacity.iter().all(|(b, n)| work.get(b) < *n)
    }

    /// The state as shown: Busy when Ready without room for any task.
    pub fn shown_state(&self, work: &Load) -> &'static str {
        if self.state == AgentState::Ready && !self.has_any_room(work) {
            "Busy"
        } else {
            self.state.as_str()
        }
    }

    /// Whether the agent may take tasks from a workbin of `queue_type` for `target`.
    pub fn sees_workbin(&self, queue_type: QueueType, target: Option<&str>) -> bool {
        let Some(target) = target else { return false };
        let p = &self.profile;
        match queue_type {
            QueueType::InteractionQueue => false,
            QueueType::AgentWorkbin => self.id == target,
            QueueType::AgentGroupWorkbin => p.groups.iter().any(|g| g == target),
            QueueType::PlaceWorkbin => p.place.as_deref() == Some(target),
            QueueType::PlaceGroupWorkbin => p.place_groups.iter().any(|g| g == target),
        }
    }
}

/// How many tasks an agent holds (offered or assigned), by capacity bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load(pub BTreeMap<String, u32>);

impl Load {
    /// The agent's load from the tasks it holds: those offered to it, and those assigned
    /// to it and not finished.
    pub fn of<'a>(agent: &Agent, tasks: impl IntoIterator<Item = &'a Task>) -> Self {
        let mut load = Load::default();
        for t in tasks {
            if holds(agent, t) {
                let b = agent.bucket(t.channel.as_deref()).unwrap_or(ANY_CHANNEL);
                load.add(b);
            }
        }
        load
    }

    pub fn get(&self, bucket: &str) -> u32 {
        self.0.get(bucket).copied().unwrap_or(0)
    }

    pub fn add(&mut self, bucket: &str) {
        self.add_n(bucket, 1);
    }

    pub fn add_n(&mut self, bucket: &str, n: u32) {
        *self.0.entry(bucket.to_owned()).or_default() += n;
    }

    /// One task fewer in `bucket` (none below zero).
    pub fn remove(&mut self, bucket: &str) {
        if let Some(n) = self.0.get_mut(bucket) {
            *n = n.saturating_sub(1);
        }
    }

    /// Every task held.
    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }
}

/// Whether `agent` holds task `t`: it has the task's live offer, or the task is assigned
/// to it.
pub fn holds(agent: &Agent, t: &Task) -> bool {
    t.holder() == Some(agent.id.as_str())
}

/// A change to an agent's profile: the given attributes replace the agent's, the others
/// stay as they are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole::opt_map")]
    pub skills: Option<BTreeMap<String, u8>>,
    #[serde(default, deserialize_with = "whole::opt_map")]
    pub capacity: Option<BTreeMap<String, u32>>,
    pub place: Option<String>,
    pub place_groups: Option<Vec<String>>,
}

impl AgentPatch {
    /// The profile with this patch applied.
    pub fn apply(&self, p: &AgentProfile) -> AgentProfile {
        let mut p = p.clone();
        if let Some(v) = &self.name {
            p.name = Some(v.clone());
        }
        if let Some(v) = &self.groups {
            p.groups = v.clone();
        }
        if let Some(v) = &self.skills {
            p.skills = v.clone();
        }
        if let Some(v) = &self.capacity {
            p.capacity = v.clone();
        }
        if let Some(v) = &self.place {
            p.place = Some(v.clone());
        }
        if let Some(v) = &self.place_groups {
            p.place_groups = v.clone();
        }
        p
    }
}

/// What is asked of an agent. The engine applies it in one transaction with what follows
/// from it: an agent that leaves Ready loses its offers back to their queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    Create {
        id: String,
        profile: AgentProfile,
    },
    Update {
        id: String,
        patch: AgentPatch,
    },
    SetState {
        id: String,
        state: AgentState,
        reason: Option<String>,
    },
    /// The agent's channel has been away past the grace period: its offers go back and
    /// it is NotReady ("disconnected") until it says otherwise.
    Disconnected {
        id: String,
    },
}

impl AgentCommand {
    pub fn id(&self) -> &str {
        match self {
            Self::Create { id, .. }
            | Self::Update { id, .. }
            | Self::SetState { id, .. }
            | Self::Disconnected { id } => id,
        }
    }
}

/// An agent as shown: with its load and derived state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    #[serde(flatten)]
    pub agent: Agent,
    /// The state shown: the agent's, or Busy when Ready without room.
    pub shown_state: String,
    /// Tasks held (offered or assigned), by capacity bucket.
    pub load: BTreeMap<String, u32>,
}

impl AgentView {
    pub fn new(agent: Agent, load: &Load) -> Self {
        Self {
            shown_state: agent.shown_state(load).to_owned(),
            load: load.0.clone(),
            agent,
        }
    }
}

/// Maps of whole numbers that also take JSON numbers written with a zero fraction (`2.0`),
/// which JSON Schema counts as integers.
pub mod whole {
    use serde::{de::Error, Deserialize, Deserializer};
    use std::collections::BTreeMap;

    fn convert<T: TryFrom<u64>, E: Error>(
        m: BTreeMap<String, f64>,
    ) -> Result<BTreeMap<String, T>, E> {
        m.into_iter()
            .map(|(k, v)| {
                let n = (v.fract() == 0.0 && (0.0..=1e15).contains(&v))
                    .then_some(v as u64)
                    .and_then(|n| T::try_from(n).ok())
                    .ok_or_else(|| E::custom(format!("{k}: {v} is not a whole number in range")))?;
                Ok((k, n))
            })
            .collect()
    }

    /// A map of whole numbers.
    pub fn map<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        d: D,
    ) -> Result<BTreeMap<String, T>, D::Error> {
        convert(BTreeMap::<String, f64>::deserialize(d)?)
    }

    /// An optional map of whole numbers (null or absent: none).
    pub fn opt_map<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, T>>, D::Error> {
        Option::<BTreeMap<String, f64>>::deserialize(d)?
            .map(convert)
            .transpose()
    }
}
