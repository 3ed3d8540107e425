//! Which failures are retried (`http_retry_applies_to`), how often
//! (`http_retry_max_attempts`) and when: exponential backoff with jitter, or the target's
//! Retry-After when it gives one.

use crate::config::{NotificationTargetConfig, RetryRule};
use rand::Rng;
use std::time::{Duration, SystemTime};
use worklane_domain::Timestamp;
use worklane_store::AttemptOutcome;

/// The longest Retry-After honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection (refused, DNS, TLS handshake, proxy).
    Connect,
    /// No answer within `http_response_timeout`.
    Timeout,
    /// An answer other than 2xx.
    Status(u16),
}

/// The retry policy of a target.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    rules: Vec<RetryRule>,
    max_retries: u32,
    initial: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// The policy of a validated target.
    pub fn new(cfg: &NotificationTargetConfig) -> Self {
        Self {
            rules: cfg.retry_rules().unwrap_or_default(),
            max_retries: cfg.http_retry_max_attempts,
            initial: cfg.http_retry_backoff_initial,
            max: cfg.http_retry_backoff_max,
        }
    }

    /// Whether `http_retry_applies_to` covers the failure.
    pub fn retries(&self, f: &Failure) -> bool {
        self.rules.iter().any(|r| match (r, f) {
            (RetryRule::Connect, Failure::Connect) => true,
            (RetryRule::Timeout, Failure::Timeout) => true,
            (RetryRule::Status(lo, hi), Failure::Status(c)) => (lo..=hi).contains(&c),
            _ => false,
        })
    }

    /// What follows the `attempt`-th attempt (1 is the first) failing with `f`.
    pub fn after_failure(
        &self,
        attempt: u32,
        f: &Failure,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) -> AttemptOutcome {
        if !self.retries(f) || attempt > self.max_retries {
            return AttemptOutcome::Failed;
        }
        let delay = match retry_after {
            Some(d) => d.min(MAX_RETRY_AFTER),
            None => self.backoff(attempt),
        };
        let delay = jiff::SignedDuration::try_from(delay).unwrap_or(jiff::SignedDuration::MAX);
        AttemptOutcome::Retry(now.checked_add(delay).unwrap_or(now))
    }

    /// The delay after the `attempt`-th failure: `initial * 2^(attempt-1)` capped at the
    /// maximum, then a random point in its upper half, so a burst of failures does not
    /// come back as a burst.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self.initial.saturating_mul(1 << exp).min(self.max);
        let half = full / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// Parses Retry-After: delay seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(applies: &str, max: u32) -> RetryPolicy {
        let c: NotificationTargetConfig = toml::from_str(&format!(
            "id = \"t\"\nuri = \"http://h/\"\nhttp_retry_applies_to = {applies}\n\
             http_retry_max_attempts = {max}\nhttp_retry_backoff_initial = \"1s\"\n\
             http_retry_backoff_max = \"10s\"\n"
        ))
        .unwrap();
        RetryPolicy::new(&c)
    }

    #[test]
    fn applies_to_decides_what_is_retried() {
        let p = policy("[\"connect\", \"5xx\", \"404\"]", 3);
        let now = Timestamp::now();
        assert!(matches!(
            p.after_failure(1, &Failure::Connect, None, now),
            AttemptOutcome::Retry(_)
        ));
        assert!(matches!(
            p.after_failure(1, &Failure::Status(503), None, now),
            AttemptOutcome::Retry(_)
        ));
        assert!(matches!(
            p.after_failure(1, &Failure::Status(404), None, now),
            AttemptOutcome::Retry(_)
        ));
        assert_eq!(
            p.after_failure(1, &Failure::Status(400), None, now),
            AttemptOutcome::Failed
        );
        assert_eq!(
            p.after_failure(1, &Failure::Timeout, None, now),
            AttemptOutcome::Failed
        );
        assert_eq!(
            p.after_failure(1, &Failure::Status(429), None, now),
            AttemptOutcome::Failed
        );
        // Three retries: the fourth attempt is the last.
        assert!(matches!(
            p.after_failure(3, &Failure::Connect, None, now),
            AttemptOutcome::Retry(_)
        ));
        assert_eq!(
            p.after_failure(4, &Failure::Connect, None, now),
            AttemptOutcome::Failed
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = policy("[\"connect\"]", 10);
        for attempt in 1..=6 {
            let full = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(10));
            for _ in 0..50 {
                let d = p.backoff(attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_wins_over_backoff() {
        let p = policy("[\"429\"]", 5);
        let now = Timestamp::from_second(1000).unwrap();
        let out = p.after_failure(1, &Failure::Status(429), Some(Duration::from_secs(7)), now);
        assert_eq!(
            out,
            AttemptOutcome::Retry(Timestamp::from_second(1007).unwrap())
        );
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after(" 120 ", base),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                base - Duration::from_secs(30)
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", base), None);
    }
}
