//! How long a notification's correction took: from the notification waking a resource to the
//! Graph write that put it right, for `teams_app_operator_notification_correction_seconds`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::histogram::Histogram;

use crate::api::TeamsAppInstallation;

/// When a notification woke each resource, until that resource's next look settles it: the
/// time to a correcting write is observed; a look that wrote nothing forgets it.
#[derive(Clone)]
pub struct NoticeClock {
    woken: Arc<Mutex<HashMap<ObjectRef<TeamsAppInstallation>, Instant>>>,
    corrections: Histogram,
}

impl NoticeClock {
    pub fn new(corrections: Histogram) -> Self {
        Self {
            woken: Arc::default(),
            corrections,
        }
    }

    /// A notification woke `obj` now (the earliest one counts until it is settled).
    pub(super) fn woke(&self, obj: ObjectRef<TeamsAppInstallation>) {
        self.lock().entry(obj).or_insert_with(Instant::now);
    }

    /// `obj` was looked at: observes the time since it was woken when the look `wrote`.
    pub(super) fn settle(&self, obj: &ObjectRef<TeamsAppInstallation>, wrote: bool) {
        let Some(woken) = self.lock().remove(obj) else {
            return;
        };
        if wrote {
            self.corrections.observe(woken.elapsed().as_secs_f64());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<TeamsAppInstallation>, Instant>> {
        // Plain data, each change whole under the lock.
        self.woken.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_look_that_wrote_is_timed_and_each_notice_is_settled_once() {
        let histogram = Histogram::new([0.001, 1.0]);
        let clock = NoticeClock::new(histogram.clone());
        let (a, b) = (
            ObjectRef::new("a").within("ns"),
            ObjectRef::new("b").within("ns"),
        );
        clock.woke(a.clone());
        clock.woke(b.clone());
        clock.settle(&a, true);
        clock.settle(&a, true);
        clock.settle(&b, false);
        clock.settle(&b, true);
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("c", "c", histogram);
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("c_count 1"), "{text}");
    }
}
