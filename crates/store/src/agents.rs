//! Agents (SPEC 9) as the store keeps them: reads for the API and the agent channel. The
//! engine changes agents inside its write transactions ([`crate::WriteTx`]), beside the
//! tasks they hold.

use crate::StoreError;
use async_trait::async_trait;
use worklane_domain::{Agent, AgentState, Task, Timestamp};

/// Filters and keyset pagination for [`AgentReads::list_agents`].
#[derive(Debug, Clone, Default)]
pub struct AgentQuery {
    pub state: Option<AgentState>,
    /// Agents whose id sorts after this one.
    pub after: Option<String>,
    /// At most this many (1..=1000; 0 means 100).
    pub limit: u32,
}

/// Agents as they are now, and the tasks they hold.
#[async_trait]
pub trait AgentReads: Send + Sync + std::fmt::Debug + 'static {
    async fn get_agent(&self, id: &str) -> Result<Option<Agent>, StoreError>;

    /// Agents in id order.
    async fn list_agents(&self, query: &AgentQuery) -> Result<Vec<Agent>, StoreError>;

    /// The tasks these agents hold: offered to them, or Assigned to them.
    async fn work_of(&self, ids: &[String]) -> Result<Vec<Task>, StoreError>;

    /// When the earliest live offer expires.
    async fn next_offer_expiry(&self) -> Result<Option<Timestamp>, StoreError>;
}
