//! The distribution layer's decisions (SPEC section 9), pure: which interaction queue a
//! task enters, which agents may take a queue's tasks and how (push offers, pull), and
//! the configuration that says so. The engine asks these inside its write transaction;
//! it alone reads and writes tasks and agents.

mod config;
mod queues;

pub use config::{DistributionConfig, Mode, QueueConfig};
pub use queues::{Queue, QueueError, Queues};

#[cfg(test)]
mod tests;
