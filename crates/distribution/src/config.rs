//! `[[queue]]` and `[distribution]` as the configuration file writes them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How agents get a queue's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Offers: the best task goes to the Ready agent waiting longest, who accepts or
    /// rejects it before the offer times out.
    Push,
    /// Agents ask for their next task (`POST /api/v1/agents/{id}/next`).
    Pull,
    /// Both.
    #[default]
    Both,
}

impl Mode {
    pub fn pushes(self) -> bool {
        matches!(self, Self::Push | Self::Both)
    }

    pub fn pulls(self) -> bool {
        matches!(self, Self::Pull | Self::Both)
    }
}

/// One interaction queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub id: String,
    /// Tasks of these processes enter the queue (as does a process whose `queue` names
    /// it).
    #[serde(default)]
    pub processes: Vec<String>,
    /// Or: tasks for which this CEL condition over the task holds (queues are tried in
    /// the file's order).
    pub when: Option<String>,
    /// Which agents may take its tasks: CEL over `agent` and `task`. Anyone when absent.
    pub requires: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// How long an agent has to answer an offer.
    #[serde(default = "default_offer_timeout", with = "humantime_serde")]
    pub offer_timeout: Duration,
}

fn default_offer_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `[distribution]`: the distribution layer's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionConfig {
    /// The DistributionPointId tasks are distributed by (seed 001; at most 16
    /// characters).
    #[serde(default = "default_point")]
    pub point_id: String,
    /// How long an agent's channel (its SSE stream) may stay away before its offers go
    /// back to the queue.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub disconnect_grace: Duration,
    /// How many of a queue's best tasks one pull or offer looks at when the queue's
    /// `requires` reads the task or the agent has room on some channels only.
    #[serde(default = "default_scan")]
    pub scan: u32,
}

impl Default for DistributionConfig {
    fn default() -> Self {
        Self {
            point_id: default_point(),
            disconnect_grace: default_grace(),
            scan: default_scan(),
        }
    }
}

fn default_point() -> String {
    "worklane".to_owned()
}

fn default_grace() -> Duration {
    Duration::from_secs(30)
}

fn default_scan() -> u32 {
    200
}
