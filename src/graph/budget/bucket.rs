//! The token bucket that paces one call class.

use std::time::Duration;

// tokio's clock, so tests can run the bucket on paused time.
use tokio::time::Instant;

/// A token bucket that hands out reservations: taking a token may drive the balance negative,
/// and the caller sleeps until its token exists. Callers are thus served in arrival order
/// without polling.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Tokens per second; `None` = unlimited.
    rate: Option<f64>,
    capacity: f64,
    tokens: f64,
    last: Instant,
    /// Counts restarts: a turn reserved before the last one is void.
    pub(super) epoch: u64,
}

impl TokenBucket {
    pub fn new(per_second: f64, burst: f64, now: Instant) -> Self {
        let rate = (per_second.is_finite() && per_second > 0.0).then_some(per_second);
        let capacity = if burst.is_finite() {
            burst.max(1.0)
        } else {
            1.0
        };
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
            epoch: 0,
        }
    }

    /// Nothing goes before `at`; from then on turns are handed out afresh, as after an idle
    /// period. Turns reserved so far are void (see
    /// [`TenantBudget::acquire`](super::TenantBudget::acquire)).
    pub fn restart_at(&mut self, at: Instant) {
        self.tokens = self.capacity;
        self.last = at;
        self.epoch += 1;
    }

    /// Takes one token; returns how long the caller must wait before using it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        if now > self.last {
            self.last = now;
        }
        self.tokens = (self.tokens + elapsed * rate).min(self.capacity) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_paces_after_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 2.0, t0);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        let third = b.reserve(t0);
        let fourth = b.reserve(t0);
        assert!(third.abs_diff(ms(100)) < ms(1), "{third:?}");
        assert!(fourth.abs_diff(ms(200)) < ms(1), "{fourth:?}");
    }

    #[test]
    fn bucket_refills_with_time_up_to_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 2.0, t0);
        b.reserve(t0);
        b.reserve(t0);
        // Ten seconds later only `capacity` tokens are available, not a hundred.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert!(b.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn strict_pacing_spaces_requests_evenly() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(30.0, 1.0, t0);
        let delays: Vec<_> = (0..31).map(|_| b.reserve(t0)).collect();
        assert_eq!(delays[0], Duration::ZERO);
        // The 31st request of a burst waits a full second: at most 30 per second.
        assert!(delays[30].abs_diff(Duration::from_secs(1)) < ms(1));
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, 1.0, t0);
        for _ in 0..1000 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
    }
}
