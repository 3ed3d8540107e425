//! The form tasks and events take in the store: an absent optional attribute is left out
//! instead of written as `null`. Half of a queued task's JSON was such nulls, written
//! again with every change and with every event's task snapshot. Reading accepts both
//! forms (a missing optional attribute is absent), so rows written before stay readable;
//! what the API, the event stream and the notifications show still names every attribute.

use std::cell::Cell;

thread_local! {
    static STORED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, a serialization on this thread, in the stored form.
pub fn stored<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            STORED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(STORED.with(|s| s.replace(true)));
    f()
}

/// Whether serialization leaves `v` out: absent, in the stored form.
pub(crate) fn absent<T>(v: &Option<T>) -> bool {
    v.is_none() && STORED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{action, ActionMeta, BrokerId, Event, NewTask, Task, Transition};

    fn created() -> Transition {
        let new = NewTask {
            capture_point_id: "cp".into(),
            fields: Default::default(),
            hold: false,
            on_duplicate: Default::default(),
        };
        let now = "2026-11-30T10:00:00Z".parse().unwrap();
        action::create(&new, BrokerId(7), &ActionMeta::default(), now)
    }

    fn task() -> Task {
        created().task
    }

    #[test]
    fn the_stored_form_leaves_out_absent_attributes_and_reads_back_the_same() {
        let t = task();
        let shown = serde_json::to_string(&t).unwrap();
        let kept = stored(|| serde_json::to_string(&t).unwrap());
        assert!(shown.contains("\"queue\":null"), "{shown}");
        assert!(!kept.contains("null"), "{kept}");
        assert!(
            kept.len() < shown.len() * 2 / 3,
            "{} of {}",
            kept.len(),
            shown.len()
        );
        assert_eq!(serde_json::from_str::<Task>(&kept).unwrap(), t);
        assert_eq!(serde_json::from_str::<Task>(&shown).unwrap(), t);
        // Only inside `stored`, and the event's snapshot too.
        assert_eq!(serde_json::to_string(&t).unwrap(), shown);
        let c = created();
        let e = Event::from_parts(3, c.event, c.task);
        let kept = stored(|| serde_json::to_string(&e).unwrap());
        assert!(!kept.contains("null"), "{kept}");
        assert_eq!(serde_json::from_str::<Event>(&kept).unwrap(), e);
    }

    #[test]
    fn the_form_is_restored_after_a_panic() {
        let r = std::panic::catch_unwind(|| stored(|| panic!("inside")));
        assert!(r.is_err());
        assert!(serde_json::to_string(&task()).unwrap().contains("null"));
    }
}
