//! Ordering between capture and notifications for one task: a task's notification
//! statements must not run before its row's capturedUpdateSql, or the captured update
//! would overwrite what the notification wrote (and the seed's `status='new'` filter
//! would see the row again). Rows being captured are registered here by ExternalId from
//! before their tasks are created until their batch is marked; the notifier waits for a
//! task's ExternalId to leave the registry before running its statements.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The ExternalIds of rows created and not yet marked.
#[derive(Debug, Default)]
pub struct Unmarked {
    ids: Mutex<HashMap<String, usize>>,
    changed: Notify,
}

impl Unmarked {
    /// Registers `ids` until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, ids: Vec<String>) -> Held {
        let mut map = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for id in &ids {
            *map.entry(id.clone()).or_default() += 1;
        }
        Held {
            ids,
            registry: self.clone(),
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
    }

    /// Waits until no row with ExternalId `id` is waiting to be marked.
    pub async fn wait_marked(&self, id: &str) {
        loop {
            let changed = self.changed.notified();
            if !self.contains(id) {
                return;
            }
            // The timeout is a safety net only: releases always notify.
            let _ = tokio::time::timeout(Duration::from_millis(250), changed).await;
        }
    }
}

/// Rows registered in [`Unmarked`]; released when dropped (marked, failed, or given up).
#[derive(Debug)]
pub struct Held {
    ids: Vec<String>,
    registry: Arc<Unmarked>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.registry.ids.lock().unwrap_or_else(|e| e.into_inner());
        for id in &self.ids {
            if let Some(n) = map.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    map.remove(id);
                }
            }
        }
        drop(map);
        self.registry.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_ends_when_the_last_hold_is_released() {
        let r = Arc::new(Unmarked::default());
        let a = r.hold(vec!["C1".into()]);
        let b = r.hold(vec!["C1".into(), "C2".into()]);
        r.wait_marked("C3").await;
        let waiter = {
            let r = r.clone();
            tokio::spawn(async move { r.wait_marked("C1").await })
        };
        drop(a);
        assert!(r.contains("C1"), "still held by the second batch");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("released")
            .expect("join");
        assert!(!r.contains("C2"));
    }
}
