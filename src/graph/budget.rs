//! The per-tenant request budget every Graph request passes before it is sent.
//!
//! Graph throttles per app per tenant and per kind of call (30 reads/s, 30 installs/s, 15
//! deletes/s), and throttled requests count against the quota too, so hammering on after a 429
//! only extends the penalty. Two mechanisms keep the operator under the limits:
//! - a token bucket per [`CallClass`] paces requests (each `$batch` item counts on its own —
//!   batching saves round trips, not quota);
//! - a 429 with `Retry-After` blocks the *whole tenant* until that instant, so every caller
//!   waits it out instead of each one discovering the throttle separately.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// tokio's clock, so tests can run the budget on paused time.
use tokio::time::Instant;

use super::metrics::GraphMetrics;

/// Graph's throttling buckets, as far as the operator's calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// GET installedApps, GET appCatalogs.
    Read,
    /// Install (POST installedApps) and upgrade.
    Write,
    /// DELETE installedApps.
    Delete,
}

impl CallClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Read => 0,
            Self::Write => 1,
            Self::Delete => 2,
        }
    }
}

/// Requests per second per class; `0` disables the limit for that class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    pub read_per_second: f64,
    pub write_per_second: f64,
    pub delete_per_second: f64,
    /// How many requests of one class may go out back to back before pacing starts. `1` means
    /// strict pacing, which keeps any one-second window at or under the limit.
    pub burst: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            read_per_second: 30.0,
            write_per_second: 30.0,
            delete_per_second: 15.0,
            burst: 1.0,
        }
    }
}

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
        }
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

/// The shared budget of one tenant. Cheap to share (`Arc`); all clones of a
/// [`GraphClient`](super::GraphClient) use the same one.
pub struct TenantBudget {
    buckets: [Mutex<TokenBucket>; 3],
    blocked_until: Mutex<Option<Instant>>,
    waited_nanos: AtomicU64,
    metrics: Arc<dyn GraphMetrics>,
}

impl std::fmt::Debug for TenantBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantBudget")
            .field("total_wait", &self.total_wait())
            .field("blocked_for", &self.blocked_for())
            .finish_non_exhaustive()
    }
}

impl TenantBudget {
    pub fn new(config: BudgetConfig, metrics: Arc<dyn GraphMetrics>) -> Self {
        let now = Instant::now();
        let bucket = |rate| Mutex::new(TokenBucket::new(rate, config.burst, now));
        Self {
            buckets: [
                bucket(config.read_per_second),
                bucket(config.write_per_second),
                bucket(config.delete_per_second),
            ],
            blocked_until: Mutex::new(None),
            waited_nanos: AtomicU64::new(0),
            metrics,
        }
    }

    /// Waits until one request of `class` may be sent; returns how long that took.
    pub async fn acquire(&self, class: CallClass) -> Duration {
        let started = Instant::now();
        self.wait_unblocked().await;
        let delay = lock(&self.buckets[class.index()]).reserve(Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // A 429 may have blocked the tenant while this caller waited for its token.
        self.wait_unblocked().await;
        let waited = started.elapsed();
        if waited >= Duration::from_millis(1) {
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
            self.metrics.budget_wait(class, waited);
        }
        waited
    }

    /// Graph answered 429 with `Retry-After`: nobody sends to this tenant for `delay`.
    pub fn block_for(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut blocked = lock(&self.blocked_until);
        if blocked.is_none_or(|current| current < until) {
            *blocked = Some(until);
        }
    }

    /// How much longer the tenant is blocked by a 429, if at all.
    pub fn blocked_for(&self) -> Option<Duration> {
        let until = (*lock(&self.blocked_until))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Total time requests have spent waiting in this budget since it was created.
    pub fn total_wait(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    /// Waits out a 429 block without taking a token (the `$batch` envelope: its items already did).
    pub(crate) async fn wait_unblocked(&self) {
        loop {
            let until = *lock(&self.blocked_until);
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until).await;
                }
                _ => return,
            }
        }
    }
}

/// The guarded data stays consistent even if a holder panicked (plain numbers), so poisoning is
/// ignored rather than propagated.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::metrics::NoopMetrics;

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

    #[tokio::test]
    async fn a_429_blocks_every_caller() {
        let budget = Arc::new(TenantBudget::new(
            BudgetConfig {
                read_per_second: 0.0,
                ..BudgetConfig::default()
            },
            Arc::new(NoopMetrics),
        ));
        let started = Instant::now();
        budget.block_for(ms(200));
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(async move {
                    budget.acquire(CallClass::Read).await;
                    Instant::now()
                })
            })
            .collect();
        for caller in callers {
            // Nobody got through before the block ended.
            assert!(caller.await.unwrap() >= started + ms(200));
        }
        assert!(budget.total_wait() >= ms(300));
        assert_eq!(budget.blocked_for(), None);
    }
}
