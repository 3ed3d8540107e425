//! The engine: the one write path every channel uses ([`Engine::execute`], batched into
//! group commits), the event-log [`Consumer`] every outbound channel builds on, and the
//! background [`Processor`] that moves new tasks along.

mod consumer;
mod engine;
mod processor;

pub use consumer::{Consumer, EventHandler};
pub use engine::{Engine, EngineError, EngineOptions};
pub use processor::Processor;
pub use worklane_store::{Command, CommandResult, Op, Outcome, Store};
