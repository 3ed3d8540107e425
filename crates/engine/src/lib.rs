//! The engine: the one write path every channel uses ([`Engine::execute`], batched into
//! group commits), the event-log [`Consumer`] every outbound channel builds on, the
//! background [`Processor`] that moves new tasks along, and [`Retention`], which prunes
//! old rows.

mod backoff;
mod batch;
pub mod clock;
mod consumer;
mod dispatcher;
mod distribute;
mod engine;
mod feed;
mod processor;
mod retention;
mod rules;
pub mod supervisor;

pub use backoff::Backoff;
pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use consumer::{Consumer, EventHandler};
pub use dispatcher::Dispatcher;
pub use distribute::ORIGIN as DISTRIBUTION_ORIGIN;
pub use engine::{commit_batch, Engine, EngineError, EngineOptions};
pub use feed::{Events, Feed, FeedBatch, Follower};
pub use processor::Processor;
pub use retention::{Retention, PRUNED_TOTAL};
pub use rules::Rules;
pub use supervisor::{Health, Lease, PartState, Stage, Supervisor};
pub use worklane_domain::{Command, CommandResult, Op, Outcome, Selection};
