//! Request rate limits, counted in fixed windows of the engine's clock: failed
//! authentications per client address (on by default: a flood of made-up tokens would
//! otherwise cost a store lookup each), and requests per authenticated caller (opt-in).

use jiff::SignedDuration;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use worklane_domain::Timestamp;

/// The address a request came from (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// At most this many distinct keys are counted in one window; further ones pass
/// uncounted, so memory stays bounded whatever a client sends.
const MAX_KEYS: usize = 100_000;

/// A count per key in the current window.
#[derive(Debug)]
pub struct Window {
    /// The most a key may count in one window (0: no limit).
    pub limit: u32,
    pub length: SignedDuration,
    counts: Mutex<(i64, HashMap<String, u32>)>,
}

impl Window {
    pub fn new(limit: u32, length: SignedDuration) -> Self {
        Self {
            limit,
            length,
            counts: Mutex::new((i64::MIN, HashMap::new())),
        }
    }

    fn index(&self, now: Timestamp) -> i64 {
        now.as_millisecond()
            .div_euclid(self.length.as_millis().max(1) as i64)
    }

    /// How long until the window ends at `now`: what a refused caller waits.
    pub fn retry_after(&self, now: Timestamp) -> SignedDuration {
        let len = self.length.as_millis().max(1) as i64;
        SignedDuration::from_millis(len - now.as_millisecond().rem_euclid(len))
    }

    /// Whether `key` has used up its window at `now` (without counting this call).
    pub fn exhausted(&self, key: &str, now: Timestamp) -> bool {
        if self.limit == 0 {
            return false;
        }
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let i = self.index(now);
        if c.0 != i {
            *c = (i, HashMap::new());
        }
        c.1.get(key).is_some_and(|n| *n >= self.limit)
    }

    /// Counts one for `key`; false when that goes over the limit.
    pub fn count(&self, key: &str, now: Timestamp) -> bool {
        if self.limit == 0 {
            return true;
        }
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let i = self.index(now);
        if c.0 != i {
            *c = (i, HashMap::new());
        }
        if !c.1.contains_key(key) && c.1.len() >= MAX_KEYS {
            return true;
        }
        let n = c.1.entry(key.to_owned()).or_insert(0);
        *n += 1;
        *n <= self.limit
    }
}

/// The API's rate limits.
#[derive(Debug)]
pub struct Limits {
    /// Failed authentications per client address per minute.
    pub failed_auth: Window,
    /// Requests per authenticated caller per second.
    pub per_caller: Window,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(DEFAULT_FAILED_AUTH_PER_MINUTE, 0)
    }
}

/// Failed authentications one address may make per minute before it is refused 429.
pub const DEFAULT_FAILED_AUTH_PER_MINUTE: u32 = 60;

impl Limits {
    pub fn new(failed_auth_per_minute: u32, per_caller_per_second: u32) -> Self {
        Self {
            failed_auth: Window::new(failed_auth_per_minute, SignedDuration::from_secs(60)),
            per_caller: Window::new(per_caller_per_second, SignedDuration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_per_key_and_starts_again() {
        let w = Window::new(2, SignedDuration::from_secs(60));
        let t: Timestamp = "2026-12-01T10:00:10Z".parse().unwrap();
        assert!(w.count("a", t) && w.count("a", t));
        assert!(w.exhausted("a", t));
        assert!(!w.count("a", t), "the third in the window");
        assert!(!w.exhausted("b", t) && w.count("b", t), "by key");
        assert_eq!(w.retry_after(t), SignedDuration::from_secs(50));
        let next = "2026-12-01T10:01:00Z".parse().unwrap();
        assert!(
            !w.exhausted("a", next) && w.count("a", next),
            "a new window"
        );
        let off = Window::new(0, SignedDuration::from_secs(1));
        assert!((0..1000).all(|_| off.count("a", t)));
    }
}
