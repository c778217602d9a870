//! Per-object retry delays for failed reconciles, for any kind.
//!
//! kube's `error_policy` is synchronous and never told about successes, so the failure count per
//! object lives here: it grows on each failure and is cleared by the next successful reconcile.
//! The delays follow the crate's one [`Backoff`] schedule.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::ObjectRef;

use crate::backoff::{Backoff, jitter};

/// 2 s, 4 s, 8 s, … up to 5 minutes between reconciles of a resource that keeps failing.
const SCHEDULE: Backoff = Backoff {
    base: Duration::from_secs(2),
    max: Duration::from_secs(300),
};

/// Failure counts per resource.
pub struct FailureBackoff<K: Resource<DynamicType = ()>> {
    failures: Mutex<HashMap<ObjectRef<K>, u32>>,
}

impl<K: Resource<DynamicType = ()>> Default for FailureBackoff<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
        }
    }
}

impl<K: Resource<DynamicType = ()>> FailureBackoff<K> {
    /// Records a failure and returns how long to wait before the next attempt. Graph's
    /// `Retry-After`, when given, wins over the exponential schedule: it is what the service asked.
    pub fn next_delay(&self, key: ObjectRef<K>, retry_after: Option<Duration>) -> Duration {
        let attempt = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let count = failures.entry(key).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        if let Some(wait) = retry_after {
            return wait + jitter(Duration::from_millis(250));
        }
        SCHEDULE.delay(attempt)
    }

    /// Forgets the failures of a resource after it reconciled successfully.
    pub fn reset(&self, key: &ObjectRef<K>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TeamsAppInstallation;

    fn key() -> ObjectRef<TeamsAppInstallation> {
        ObjectRef::new("a").within("ns")
    }

    #[test]
    fn grows_then_caps_and_resets() {
        let b = FailureBackoff::<TeamsAppInstallation>::default();
        let first = b.next_delay(key(), None);
        assert!(first >= SCHEDULE.base / 2 && first <= SCHEDULE.base);
        for _ in 0..20 {
            assert!(b.next_delay(key(), None) <= SCHEDULE.max);
        }
        let late = b.next_delay(key(), None);
        assert!(late >= SCHEDULE.max / 2);
        b.reset(&key());
        assert!(b.next_delay(key(), None) <= SCHEDULE.base);
    }

    #[test]
    fn retry_after_wins() {
        let b = FailureBackoff::<TeamsAppInstallation>::default();
        let d = b.next_delay(key(), Some(Duration::from_millis(2128)));
        assert!(d >= Duration::from_millis(2128) && d <= Duration::from_millis(2378));
    }
}
