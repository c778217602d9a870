//! The per-tenant request budget every Graph request passes before it is sent.
//!
//! Graph throttles per app per tenant and per kind of call (30 reads/s, 30 installs/s, 15
//! deletes/s), and throttled requests count against the quota too, so hammering on after a 429
//! only extends the penalty. Two mechanisms keep the operator under the limits:
//! - a token bucket per [`CallClass`] paces requests (each `$batch` item counts on its own —
//!   batching saves round trips, not quota);
//! - a 429 with `Retry-After` blocks the *whole tenant* until that instant, so no caller sends
//!   into the throttle (each discovering it separately would only extend it), and restarts the
//!   class's turns from there: the turns that fell within the block are void, so its callers
//!   do not all go at once when it ends (which would overrun Graph's window and draw the next
//!   429, block after block).
//!
//! A caller waits out its paced turn however long it is (that is the rate; the scale benchmark
//! depends on it), but a block only up to the patience it brings
//! ([`TenantBudget::acquire_within`]): the client brings a second, and a longer block fails the
//! call at once with what is left of it, so a reconcile reports the throttling instead of
//! sitting through it (see [`GraphClient::send`](super::GraphClient)).
//!
//! `class` holds the call classes and their configured rates, `bucket` the pacing of one class;
//! this module holds the tenant's budget, which combines them with the 429 blocks.

mod bucket;
pub(crate) mod class;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// tokio's clock, so tests can run the budget on paused time.
use tokio::time::Instant;

use super::metrics::GraphMetrics;
use bucket::TokenBucket;
pub use class::{BudgetConfig, CallClass};

/// The shared budget of one tenant. Cheap to share (`Arc`); all clones of a
/// [`GraphClient`](super::GraphClient) use the same one.
pub struct TenantBudget {
    buckets: [Mutex<TokenBucket>; CallClass::ALL.len()],
    /// Per class: a 429 on one class (Graph throttles each on its own) holds that class only.
    blocked_until: [Mutex<Option<Instant>>; CallClass::ALL.len()],
    waited_nanos: AtomicU64,
    metrics: Arc<dyn GraphMetrics>,
}

impl std::fmt::Debug for TenantBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantBudget")
            .field("total_wait", &self.total_wait())
            .field("blocked_for", &self.blocked_for(None))
            .finish_non_exhaustive()
    }
}

impl TenantBudget {
    pub fn new(config: BudgetConfig, metrics: Arc<dyn GraphMetrics>) -> Self {
        let now = Instant::now();
        Self {
            buckets: CallClass::ALL.map(|class| {
                Mutex::new(TokenBucket::new(
                    config.paced_per_second(class),
                    config.burst,
                    now,
                ))
            }),
            blocked_until: CallClass::ALL.map(|_| Mutex::new(None)),
            waited_nanos: AtomicU64::new(0),
            metrics,
        }
    }

    /// Waits until one request of `class` may be sent, however long a 429 block lasts; returns
    /// how long that took.
    pub async fn acquire(&self, class: CallClass) -> Duration {
        let waited = self.acquire_within(class, Duration::MAX).await;
        waited.unwrap_or_else(|left| left)
    }

    /// Waits until one request of `class` may be sent; returns how long that took. Its paced
    /// turn is always waited for, a 429 block only while no more than `patience` of it is left:
    /// otherwise `Err` with what is left, at once (also when a 429 lands while waiting).
    pub async fn acquire_within(
        &self,
        class: CallClass,
        patience: Duration,
    ) -> Result<Duration, Duration> {
        let started = Instant::now();
        let bucket = &self.buckets[class.index()];
        loop {
            self.wait_unblocked_within(Some(class), patience).await?;
            let (delay, epoch) = {
                let mut bucket = lock(bucket);
                (bucket.reserve(Instant::now()), bucket.epoch)
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            // A 429 while this caller waited for its turn voided the turn: take a new one,
            // after the block.
            if lock(bucket).epoch == epoch {
                break;
            }
        }
        let waited = started.elapsed();
        if waited >= Duration::from_millis(1) {
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
            self.metrics.budget_wait(class, waited);
        }
        Ok(waited)
    }

    /// Graph answered a call of `class` 429 with `Retry-After`: nobody sends calls of that class
    /// to this tenant for `delay` (`None`: every class, for a throttled `$batch` envelope).
    pub fn block_for(&self, class: Option<CallClass>, delay: Duration) {
        let until = Instant::now() + delay;
        for (blocked, bucket) in self
            .blocks(class)
            .zip(self.classes(class).map(|i| &self.buckets[i]))
        {
            let mut blocked = lock(blocked);
            if blocked.is_none_or(|current| current < until) {
                *blocked = Some(until);
                lock(bucket).restart_at(until);
            }
        }
    }

    /// How much longer calls of `class` (`None`: any class) are blocked by a 429, if at all.
    pub fn blocked_for(&self, class: Option<CallClass>) -> Option<Duration> {
        let now = Instant::now();
        self.blocks(class)
            .filter_map(|blocked| *lock(blocked))
            .map(|until| until.saturating_duration_since(now))
            .filter(|left| !left.is_zero())
            .max()
    }

    fn blocks(&self, class: Option<CallClass>) -> impl Iterator<Item = &Mutex<Option<Instant>>> {
        self.classes(class).map(|i| &self.blocked_until[i])
    }

    /// The indices of `class` (`None`: of every class).
    fn classes(&self, class: Option<CallClass>) -> impl Iterator<Item = usize> {
        (0..CallClass::ALL.len()).filter(move |i| class.is_none_or(|c| c.index() == *i))
    }

    /// Total time requests have spent waiting in this budget since it was created.
    pub fn total_wait(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    /// Waits out a 429 block of `class` (`None`: of any class) without taking a token (the
    /// `$batch` envelope: its items already did) — unless more than `patience` of it is left:
    /// then `Err` with what is left, at once.
    pub(crate) async fn wait_unblocked_within(
        &self,
        class: Option<CallClass>,
        patience: Duration,
    ) -> Result<(), Duration> {
        while let Some(left) = self.blocked_for(class) {
            if left > patience {
                return Err(left);
            }
            tokio::time::sleep(left).await;
        }
        Ok(())
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

    /// A budget whose read classes allow `per_second` (0: unlimited), the rest at defaults.
    fn reads_at(per_second: f64) -> Arc<TenantBudget> {
        let config = BudgetConfig {
            read_per_second: per_second,
            ..BudgetConfig::default()
        };
        Arc::new(TenantBudget::new(config, Arc::new(NoopMetrics)))
    }

    #[tokio::test]
    async fn a_429_blocks_every_caller() {
        let budget = reads_at(0.0);
        let started = Instant::now();
        budget.block_for(Some(CallClass::InstalledAppsRead), ms(200));
        assert!(
            budget.blocked_for(Some(CallClass::CatalogRead)).is_none(),
            "each class is throttled on its own"
        );
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(async move {
                    budget.acquire(CallClass::InstalledAppsRead).await;
                    Instant::now()
                })
            })
            .collect();
        for caller in callers {
            // Nobody got through before the block ended.
            assert!(caller.await.unwrap() >= started + ms(200));
        }
        assert!(budget.total_wait() >= ms(300));
        assert_eq!(budget.blocked_for(None), None);
    }

    #[tokio::test]
    async fn a_block_longer_than_the_patience_fails_at_once_with_what_is_left() {
        let budget = reads_at(0.0);
        let class = CallClass::InstalledAppsRead;
        budget.block_for(Some(class), ms(2000));
        // Refused rather than waited out: nearly all of the block is still left.
        let left = budget.acquire_within(class, ms(1000)).await.unwrap_err();
        assert!(left > ms(1500) && left <= ms(2000), "{left:?}");
        assert!(budget.blocked_for(Some(class)).is_some());
        // Another class is not blocked; a short block is waited out.
        assert!(
            budget
                .acquire_within(CallClass::Install, ms(1000))
                .await
                .is_ok()
        );
        budget.block_for(Some(CallClass::Install), ms(300));
        assert!(
            budget
                .acquire_within(CallClass::Install, ms(1000))
                .await
                .is_ok()
        );
        assert_eq!(budget.blocked_for(Some(CallClass::Install)), None);
    }

    #[tokio::test]
    async fn a_429_restarts_the_turns_instead_of_releasing_them_at_once() {
        let budget = reads_at(10.0);
        let class = CallClass::InstalledAppsRead;
        budget.acquire(class).await;
        // Four callers take the turns at 100, 200, 300 and 400 ms; a 429 at 50 ms holds the
        // class for 200 ms.
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(async move {
                    budget.acquire(class).await;
                    Instant::now()
                })
            })
            .collect();
        tokio::time::sleep(ms(50)).await;
        let block = Instant::now();
        budget.block_for(Some(class), ms(200));
        let mut sent = Vec::new();
        for caller in callers {
            sent.push(caller.await.unwrap());
        }
        sent.sort();
        assert!(sent[0] >= block + ms(200), "nobody during the block");
        for pair in sent.windows(2) {
            // Paced from the block's end, not the turns that fell within it all at once.
            assert!(pair[1] - pair[0] >= ms(95), "{:?}", pair[1] - pair[0]);
        }
    }
}
