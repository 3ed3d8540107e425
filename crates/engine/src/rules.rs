//! The business rules in force, shared by the writer and whoever reloads them.

use std::sync::{Arc, RwLock};
use worklane_rules::RuleSet;

/// A handle to the rule set in force; cheap to clone. A reload replaces the whole set at
/// once: a batch decides with the set it started with.
#[derive(Debug, Clone, Default)]
pub struct Rules(Arc<RwLock<Arc<RuleSet>>>);

impl Rules {
    /// A handle holding `set`.
    pub fn new(set: impl Into<Arc<RuleSet>>) -> Self {
        Self(Arc::new(RwLock::new(set.into())))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `set` in force for every batch from now on.
    pub fn replace(&self, set: impl Into<Arc<RuleSet>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = set.into();
    }
}
