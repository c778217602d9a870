//! The per-tenant request budget every Graph request passes before it is sent.
//!
//! Graph throttles per app per tenant and per kind of call (30 reads/s, 30 installs/s, 15
//! deletes/s), and throttled requests count against the quota too, so hammering on after a 429
//! only extends the penalty. Two mechanisms keep the operator under the limits:
//! - a token bucket per [`CallClass`] paces requests (each `$batch` item counts on its own —
//!   batching saves round trips, not quota);
//! - a 429 with `Retry-After` blocks the *whole tenant* until that instant, so every caller
//!   waits it out instead of each one discovering the throttle separately, and restarts the
//!   class's turns from there: the turns that fell within the block are void, so its callers
//!   do not all go at once when it ends (which would overrun Graph's window and draw the next
//!   429, block after block).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// tokio's clock, so tests can run the budget on paused time.
use tokio::time::Instant;

use super::metrics::GraphMetrics;

/// Graph's throttling classes for Teams app calls, each limited on its own per app per tenant
/// (graph-contract.md; the simulator's `budgets` use the same classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// GET a user's installedApps (list or one): 30/s.
    InstalledAppsRead,
    /// GET appCatalogs: 30/s.
    CatalogRead,
    /// POST installedApps (install): 30/s.
    Install,
    /// DELETE installedApps: 15/s.
    Delete,
    /// Other Teams calls, upgrade among them: 30/s.
    Other,
    /// Directory reads (a group's members, a user): Graph's identity and access limits, which
    /// are far higher than the Teams ones (thousands of resource units per 10 s per tenant).
    DirectoryRead,
}

impl CallClass {
    pub const ALL: [CallClass; 6] = [
        Self::InstalledAppsRead,
        Self::CatalogRead,
        Self::Install,
        Self::Delete,
        Self::Other,
        Self::DirectoryRead,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstalledAppsRead => "installed_apps_read",
            Self::CatalogRead => "catalog_read",
            Self::Install => "install",
            Self::Delete => "delete",
            Self::Other => "other",
            Self::DirectoryRead => "directory_read",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::InstalledAppsRead => 0,
            Self::CatalogRead => 1,
            Self::Install => 2,
            Self::Delete => 3,
            Self::Other => 4,
            Self::DirectoryRead => 5,
        }
    }

    /// The class of a Graph request, from its method and path (relative to the version root).
    pub fn of(method: &str, path: &str) -> Self {
        let path = path.split('?').next().unwrap_or_default();
        match method {
            "GET" if path.starts_with("/appCatalogs") => Self::CatalogRead,
            "GET" if path.starts_with("/groups") || !path.contains("/teamwork") => {
                Self::DirectoryRead
            }
            "GET" => Self::InstalledAppsRead,
            "POST" if path.ends_with("/installedApps") => Self::Install,
            "DELETE" => Self::Delete,
            _ => Self::Other,
        }
    }
}

/// Requests per second per class; `0` disables the limit for that class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Each read class: GET installedApps and GET appCatalogs.
    pub read_per_second: f64,
    /// Each write class: install, and other calls (upgrade).
    pub write_per_second: f64,
    pub delete_per_second: f64,
    /// Directory reads: a group's members, a user.
    pub directory_per_second: f64,
    /// How many requests of one class may go out back to back before pacing starts. `1` means
    /// strict pacing.
    pub burst: f64,
    /// Each class's limit is spread over one second plus this. Graph counts a request in its
    /// one-second window when it arrives, after a delay that varies from request to request:
    /// paced at exactly the limit, that jitter squeezes one request too many into some window
    /// now and then, and each 429 holds the class for a second or more (30 requests' worth).
    /// A guard of the latency's spread keeps every window at or under the limit.
    pub window_guard: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            read_per_second: 30.0,
            write_per_second: 30.0,
            delete_per_second: 15.0,
            directory_per_second: 20.0,
            burst: 1.0,
            window_guard: Duration::from_millis(50),
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
    /// Counts restarts: a turn reserved before the last one is void.
    epoch: u64,
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
    /// period. Turns reserved so far are void (see [`TenantBudget::acquire`]).
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

impl BudgetConfig {
    fn per_second(&self, class: CallClass) -> f64 {
        match class {
            CallClass::InstalledAppsRead | CallClass::CatalogRead => self.read_per_second,
            CallClass::Install | CallClass::Other => self.write_per_second,
            CallClass::Delete => self.delete_per_second,
            CallClass::DirectoryRead => self.directory_per_second,
        }
    }

    /// The rate the client paces `class` at: its limit over one second plus the guard.
    fn paced_per_second(&self, class: CallClass) -> f64 {
        self.per_second(class) / (1.0 + self.window_guard.as_secs_f64())
    }
}

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

    /// Waits until one request of `class` may be sent; returns how long that took.
    pub async fn acquire(&self, class: CallClass) -> Duration {
        let started = Instant::now();
        let bucket = &self.buckets[class.index()];
        loop {
            self.wait_unblocked(Some(class)).await;
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
        waited
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
    /// `$batch` envelope: its items already did).
    pub(crate) async fn wait_unblocked(&self, class: Option<CallClass>) {
        while let Some(left) = self.blocked_for(class) {
            tokio::time::sleep(left).await;
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

    #[test]
    fn requests_fall_into_graphs_classes() {
        let cases = [
            (
                "GET",
                "/users/u/teamwork/installedApps?$filter=x",
                CallClass::InstalledAppsRead,
            ),
            (
                "GET",
                "/users/u/teamwork/installedApps/i",
                CallClass::InstalledAppsRead,
            ),
            (
                "GET",
                "/appCatalogs/teamsApps?$filter=x",
                CallClass::CatalogRead,
            ),
            (
                "POST",
                "/users/u/teamwork/installedApps",
                CallClass::Install,
            ),
            (
                "POST",
                "/users/u/teamwork/installedApps/i/upgrade",
                CallClass::Other,
            ),
            (
                "DELETE",
                "/users/u/teamwork/installedApps/i",
                CallClass::Delete,
            ),
        ];
        for (method, path, class) in cases {
            assert_eq!(CallClass::of(method, path), class, "{method} {path}");
        }
    }
}
