//! Per-object retry delays for failed reconciles.
//!
//! kube's `error_policy` is synchronous and never told about successes, so the failure count per
//! object lives here: it grows on each failure and is cleared by the next successful reconcile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use rand::Rng;

use crate::api::TeamsAppInstallation;

const BASE: Duration = Duration::from_secs(2);
const CAP: Duration = Duration::from_secs(300);

/// Failure counts per resource.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<ObjectRef<TeamsAppInstallation>, u32>>,
}

impl Backoff {
    /// Records a failure and returns how long to wait before the next attempt. Graph's
    /// `Retry-After`, when given, wins over the exponential schedule: it is what the service asked.
    pub fn next_delay(
        &self,
        key: ObjectRef<TeamsAppInstallation>,
        retry_after: Option<Duration>,
    ) -> Duration {
        let attempt = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let count = failures.entry(key).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        if let Some(wait) = retry_after {
            return wait + jitter(Duration::from_millis(250));
        }
        let exp = BASE.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let capped = exp.min(CAP);
        // Full jitter on the upper half: spreads retries of many objects failing together.
        capped / 2 + jitter(capped / 2)
    }

    /// Forgets the failures of a resource after it reconciled successfully.
    pub fn reset(&self, key: &ObjectRef<TeamsAppInstallation>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

/// A uniformly random duration in `[0, max]`.
pub fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// `period` ± 10 %, so 10,000 resources created together do not re-check together forever.
pub fn jittered(period: Duration) -> Duration {
    let tenth = period / 10;
    period - tenth + jitter(tenth * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectRef<TeamsAppInstallation> {
        ObjectRef::new("a").within("ns")
    }

    #[test]
    fn grows_then_caps_and_resets() {
        let b = Backoff::default();
        let first = b.next_delay(key(), None);
        assert!(first >= BASE / 2 && first <= BASE);
        for _ in 0..20 {
            assert!(b.next_delay(key(), None) <= CAP);
        }
        let late = b.next_delay(key(), None);
        assert!(late >= CAP / 2);
        b.reset(&key());
        assert!(b.next_delay(key(), None) <= BASE);
    }

    #[test]
    fn retry_after_wins() {
        let b = Backoff::default();
        let d = b.next_delay(key(), Some(Duration::from_millis(2128)));
        assert!(d >= Duration::from_millis(2128) && d <= Duration::from_millis(2378));
    }

    #[test]
    fn jittered_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110));
        }
    }
}
