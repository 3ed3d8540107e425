//! Waiting between attempts while something is unavailable (a store, a broker, a source
//! database): exponential backoff with a cap, reset after a success, cut short by
//! cancellation.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The largest share of a delay the jitter takes off by default.
const DEFAULT_JITTER: f64 = 0.1;

/// Growing delays between attempts: the first delay, then twice the previous one, up to
/// the cap; back to the first after [`reset`](Self::reset).
///
/// Each delay is shortened by a random share of at most 10%, so nodes that lost the same
/// service at the same moment do not all come back in lockstep. The jitter only ever
/// shortens a delay: the cap stays the longest wait.
///
/// Operational waiting, so it runs on tokio time (tests can pause it), not on the
/// engine's [`Clock`](crate::Clock).
///
/// ```
/// # async fn demo(cancel: tokio_util::sync::CancellationToken) {
/// # async fn connect() -> Result<(), String> { Ok(()) }
/// let mut backoff = worklane_engine::Backoff::default();
/// loop {
///     match connect().await {
///         Ok(()) => { backoff.reset(); break; }
///         Err(e) => {
///             tracing::warn!(error = %e, retry_in = ?backoff.peek(), "connect failed");
///             if !backoff.wait(&cancel).await {
///                 break; // cancelled
///             }
///         }
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    /// The next delay before jitter.
    current: Duration,
    /// The largest share of a delay the jitter takes off (0 for none).
    jitter: f64,
    /// State of the jitter's pseudo-random sequence (SplitMix64).
    rng: u64,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 30 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Delays from `first`, doubling up to `cap` (a `first` above `cap` is cut to it),
    /// with the default jitter from a per-instance random seed.
    pub fn new(first: Duration, cap: Duration) -> Self {
        let first = first.min(cap);
        Self {
            first,
            cap,
            current: first,
            jitter: DEFAULT_JITTER,
            rng: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        }
    }

    /// Takes a random share of at most `fraction` (clamped to 0..=1) off each delay;
    /// 0 gives exact delays.
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Seeds the jitter, so the delays are the same on every run (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = seed;
        self
    }

    /// The delay the next [`wait`](Self::wait) or [`next_delay`](Self::next_delay) gives
    /// (for logging it before waiting).
    pub fn peek(&self) -> Duration {
        if self.jitter == 0.0 {
            return self.current;
        }
        // The top 53 bits as a uniform share in [0, 1).
        let share = (mix(self.rng) >> 11) as f64 / (1u64 << 53) as f64;
        self.current.mul_f64(1.0 - self.jitter * share)
    }

    /// The current delay; the next one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.peek();
        self.rng = self.rng.wrapping_add(GAMMA);
        self.current = self.current.saturating_mul(2).min(self.cap);
        delay
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.first;
    }

    /// Sleeps the next delay; returns false, at once, when `cancel` fires first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
fn mix(state: u64) -> u64 {
    let mut z = state.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn exact(first_ms: u64, cap_ms: u64) -> Backoff {
        Backoff::new(ms(first_ms), ms(cap_ms)).with_jitter(0.0)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = exact(100, 1000);
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000].map(ms));
    }

    #[test]
    fn default_is_100_ms_to_30_s() {
        let mut b = Backoff::default().with_jitter(0.0);
        assert_eq!(b.next_delay(), ms(100));
        let last = (0..20).map(|_| b.next_delay()).last().unwrap();
        assert_eq!(last, Duration::from_secs(30));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = exact(50, 5000);
        for _ in 0..4 {
            b.next_delay();
        }
        assert_eq!(b.peek(), ms(800));
        b.reset();
        assert_eq!(b.next_delay(), ms(50));
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn a_first_delay_above_the_cap_is_cut() {
        let mut b = exact(500, 200);
        assert_eq!(b.next_delay(), ms(200));
        assert_eq!(b.next_delay(), ms(200));
    }

    #[test]
    fn peek_shows_the_next_delay() {
        let mut b = Backoff::default().with_seed(7);
        for _ in 0..10 {
            let shown = b.peek();
            assert_eq!(b.peek(), shown);
            assert_eq!(b.next_delay(), shown);
        }
    }

    #[test]
    fn jitter_only_shortens_and_is_deterministic_per_seed() {
        let run = |seed| {
            let mut b = Backoff::new(ms(100), ms(1000)).with_seed(seed);
            (0..50).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        let mut nominal = exact(100, 1000);
        let mut shortened = 0;
        for d in &a {
            let n = nominal.next_delay();
            assert!(
                *d <= n && *d >= n.mul_f64(1.0 - DEFAULT_JITTER),
                "{d:?} vs {n:?}"
            );
            shortened += usize::from(*d < n);
        }
        assert!(shortened > 40, "jitter applied to {shortened} of 50");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_the_delay() {
        let cancel = CancellationToken::new();
        let mut b = exact(100, 1000);
        let start = Instant::now();
        assert!(b.wait(&cancel).await);
        assert_eq!(start.elapsed(), ms(100));
        assert!(b.wait(&cancel).await);
        assert_eq!(start.elapsed(), ms(300));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_returns_false_promptly_when_cancelled() {
        let cancel = CancellationToken::new();
        let mut b = exact(30_000, 30_000);
        let start = Instant::now();
        let canceller = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ms(10)).await;
                cancel.cancel();
            })
        };
        assert!(!b.wait(&cancel).await);
        assert_eq!(start.elapsed(), ms(10));
        canceller.await.unwrap();
        // Already cancelled: no time passes.
        assert!(!b.wait(&cancel).await);
        assert_eq!(start.elapsed(), ms(10));
    }
}
