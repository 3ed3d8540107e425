//! The injected clock: every time decision (processing, activation, expiration, retries,
//! and later calendars, reprioritization and reservation timeouts) reads it, so tests move
//! time with a [`TestClock`] instead of sleeping.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use worklane_domain::Timestamp;

/// What time it is, and waiting for a time to come.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Timestamp;

    /// Resolves once `now() >= at` (at once when it already is).
    fn sleep_until(&self, at: Timestamp) -> BoxFuture<'static, ()>;

    /// Resolves once `d` has passed on this clock.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let at = self
            .now()
            .checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        self.sleep_until(at)
    }
}

/// The clock every part shares.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock; waits are tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, at: Timestamp) -> BoxFuture<'static, ()> {
        let wait = at.duration_since(Timestamp::now());
        // A far-off time waits a day at most: the caller's loop looks again then.
        let wait = Duration::try_from(wait)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(86_400));
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when a test moves it. Waits resolve as soon as the clock
/// reaches their time.
#[derive(Debug, Clone)]
pub struct TestClock {
    now: Arc<watch::Sender<Timestamp>>,
}

impl TestClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// A clock standing at 2026-01-05T09:00:00Z (a Monday morning).
    pub fn at_default() -> Self {
        Self::new("2026-01-05T09:00:00Z".parse().expect("valid timestamp"))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let d = jiff::SignedDuration::try_from(d).expect("duration fits");
        self.now
            .send_modify(|t| *t = t.checked_add(d).expect("time fits"));
    }

    /// Sets the clock to `t` (forward or back).
    pub fn set(&self, t: Timestamp) {
        self.now.send_replace(t);
    }

    /// This clock as a [`SharedClock`] (the same clock: moving one moves the other).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: Timestamp) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as any clone of the clock; when all are gone the
            // time can never come, so wait forever as a timer that never fires would.
            if rx.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_test_clock_wakes_sleepers_when_moved_past_their_time() {
        let clock = TestClock::at_default();
        let start = clock.now();
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(60)));
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke a second early");
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(
            clock.now().duration_since(start),
            jiff::SignedDuration::from_secs(60)
        );
        // A time already passed resolves at once.
        clock.sleep_until(start).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_sleeps_on_tokio_time() {
        let clock = SystemClock;
        let at = clock.now() + jiff::SignedDuration::from_millis(1500);
        let before = tokio::time::Instant::now();
        clock.sleep_until(at).await;
        assert!(before.elapsed() >= Duration::from_millis(1400));
    }
}
