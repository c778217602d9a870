//! How long resources spend failing: `teams_app_operator_failing_seconds_total{controller,
//! reason}` (a counter of resource-seconds) and `teams_app_operator_failing_resources{controller,
//! reason}` (a gauge), for any kind.
//!
//! A resource is failing while its stored `Ready` condition is `False` with one of the reasons
//! every kind gives a failure that passes on its own ([`PASSING_FAILURES`]: `Throttled`,
//! `GraphUnavailable`, `AuthenticationFailed`). The `resources` gauge of [`super::StateGauge`] counts such a resource
//! as `reconciling`, like one that is installing; this tells them apart, and the counter adds up
//! how long: `rate()` of it is how many resources were failing on average, `increase()` over a
//! day the resource-hours an outage cost.
//!
//! The clock runs off the controller's watch (what the API server stores), not the reconcile
//! path: one reason per resource at a time, started when a watch event first shows it and
//! stopped when one shows another (or the resource goes). A closed stretch is added to the
//! counter; an open one is added at each scrape as far as it has run, so the counter never goes
//! back. It counts only while the controller runs (on the leader): dropping the
//! [`FailureClock`] closes every open stretch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::watcher;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::conditions::{Conditioned, READY, find};

/// The Ready reasons every kind gives a Graph failure that passes on its own (each kind's reasons
/// include them; its tests say so).
pub const PASSING_FAILURES: &[&str] = &["Throttled", "GraphUnavailable", "AuthenticationFailed"];

/// The process's failing-time series, for every controller. Register it once as a collector.
#[derive(Default)]
pub struct FailingTime {
    ledger: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    /// The reasons each controller counts (every series exists at 0 from the start, so `rate()`
    /// sees the first outage).
    reasons: Vec<(&'static str, &'static [&'static str])>,
    /// Seconds of stretches already closed, by controller and reason.
    closed: HashMap<(&'static str, &'static str), f64>,
    /// The open stretch of each failing resource, by controller and `namespace/name`.
    open: HashMap<(&'static str, String), Stretch>,
    /// Per controller, during a watch's (re)list: the resources it has shown so far.
    listing: HashMap<&'static str, HashSet<String>>,
}

struct Stretch {
    reason: &'static str,
    since: Instant,
}

impl Ledger {
    /// `key` of `controller` now shows `reason` (`None`: not failing).
    fn show(
        &mut self,
        controller: &'static str,
        key: String,
        reason: Option<&'static str>,
        now: Instant,
    ) {
        let slot = (controller, key);
        if let Some(open) = self.open.get(&slot)
            && Some(open.reason) == reason
        {
            return;
        }
        self.close(&slot, now);
        if let Some(reason) = reason {
            self.open.insert(slot, Stretch { reason, since: now });
        }
    }

    fn close(&mut self, slot: &(&'static str, String), now: Instant) {
        if let Some(stretch) = self.open.remove(slot) {
            let seconds = now.saturating_duration_since(stretch.since).as_secs_f64();
            *self.closed.entry((slot.0, stretch.reason)).or_default() += seconds;
        }
    }

    /// Closes the stretches of `controller` that `keep` does not name (every one for `None`).
    fn close_all(
        &mut self,
        controller: &'static str,
        keep: Option<&HashSet<String>>,
        now: Instant,
    ) {
        let gone: Vec<_> = self
            .open
            .keys()
            .filter(|(c, key)| *c == controller && keep.is_none_or(|k| !k.contains(key)))
            .cloned()
            .collect();
        for slot in gone {
            self.close(&slot, now);
        }
    }

    /// Per controller and reason: (resources failing now, seconds so far).
    fn totals(&self, now: Instant) -> Vec<(&'static str, &'static str, i64, f64)> {
        let mut rows: Vec<_> = self
            .reasons
            .iter()
            .flat_map(|(controller, reasons)| {
                reasons.iter().map(move |reason| {
                    let closed = self.closed.get(&(*controller, *reason)).copied();
                    (*controller, *reason, 0, closed.unwrap_or_default())
                })
            })
            .collect();
        for ((controller, _), stretch) in &self.open {
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.0 == *controller && r.1 == stretch.reason)
            {
                row.2 += 1;
                row.3 += now.saturating_duration_since(stretch.since).as_secs_f64();
            }
        }
        rows
    }
}

impl FailingTime {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The clock of the controller named `controller`; it counts while the returned clock lives.
    pub fn controller(self: &Arc<Self>, controller: &'static str) -> FailureClock {
        let reasons = PASSING_FAILURES;
        let mut ledger = self.lock();
        if !ledger.reasons.iter().any(|(c, _)| *c == controller) {
            ledger.reasons.push((controller, reasons));
        }
        FailureClock {
            time: self.clone(),
            controller,
            reasons,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // Plain numbers: consistent even if a holder panicked.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for FailingTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("teams_app_operator_failing")
    }
}

impl Collector for FailingTime {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let rows = self.lock().totals(Instant::now());
        let unit = Unit::Seconds;
        let mut seconds = encoder.encode_descriptor(
            "teams_app_operator_failing",
            "Resource-seconds spent with Ready=False for a failure that passes on its own (Throttled, GraphUnavailable, AuthenticationFailed), by controller and reason",
            Some(&unit),
            MetricType::Counter,
        )?;
        for (controller, reason, _, total) in &rows {
            let labels = [("controller", *controller), ("reason", *reason)];
            ConstCounter::new(*total).encode(seconds.encode_family(&labels)?)?;
        }
        let gauge_type = ConstGauge::new(0i64).metric_type();
        let mut now = encoder.encode_descriptor(
            "teams_app_operator_failing_resources",
            "Resources whose Ready condition is False now for a failure that passes on its own, by controller and reason",
            None,
            gauge_type,
        )?;
        for (controller, reason, count, _) in &rows {
            let labels = [("controller", *controller), ("reason", *reason)];
            ConstGauge::new(*count).encode(now.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// One controller's clock: feed it the controller's watch events ([`FailureClock::watch`]).
pub struct FailureClock {
    time: Arc<FailingTime>,
    controller: &'static str,
    reasons: &'static [&'static str],
}

impl FailureClock {
    /// Notes what one watch event of the controller's kind shows.
    pub fn watch<K: Conditioned>(&self, event: &watcher::Event<K>) {
        let now = Instant::now();
        let mut ledger = self.time.lock();
        match event {
            // A (re)list: resources it does not show again are gone.
            watcher::Event::Init => {
                ledger.listing.insert(self.controller, HashSet::new());
            }
            watcher::Event::InitApply(obj) => {
                let key = key_of(obj);
                if let Some(seen) = ledger.listing.get_mut(self.controller) {
                    seen.insert(key.clone());
                }
                ledger.show(self.controller, key, self.failing(obj), now);
            }
            watcher::Event::InitDone => {
                let seen = ledger.listing.remove(self.controller).unwrap_or_default();
                ledger.close_all(self.controller, Some(&seen), now);
            }
            watcher::Event::Apply(obj) => {
                ledger.show(self.controller, key_of(obj), self.failing(obj), now);
            }
            watcher::Event::Delete(obj) => ledger.show(self.controller, key_of(obj), None, now),
        }
    }

    /// The reason `obj` is failing for, if it is.
    fn failing<K: Conditioned>(&self, obj: &K) -> Option<&'static str> {
        let ready = find(obj.conditions(), READY).filter(|c| c.status == "False")?;
        self.reasons.iter().copied().find(|r| *r == ready.reason)
    }
}

impl Drop for FailureClock {
    fn drop(&mut self) {
        let mut ledger = self.time.lock();
        ledger.close_all(self.controller, None, Instant::now());
        ledger.listing.remove(self.controller);
    }
}

fn key_of<K: Conditioned>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const REASONS: &[&str] = &["Throttled", "GraphUnavailable"];

    fn row(rows: &[(&str, &str, i64, f64)], reason: &str) -> (i64, f64) {
        let r = rows
            .iter()
            .find(|r| r.1 == reason)
            .expect("a row per reason");
        (r.2, r.3)
    }

    #[test]
    fn stretches_add_up_per_reason_and_never_go_back() {
        let mut ledger = Ledger {
            reasons: vec![("tai", REASONS)],
            ..Ledger::default()
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(row(&ledger.totals(t0), "Throttled"), (0, 0.0));
        ledger.show("tai", "ns/a".into(), Some("Throttled"), at(0));
        ledger.show("tai", "ns/b".into(), Some("Throttled"), at(1));
        // The same reason again (a retry) changes nothing.
        ledger.show("tai", "ns/a".into(), Some("Throttled"), at(2));
        assert_eq!(row(&ledger.totals(at(3)), "Throttled"), (2, 5.0));
        // a moves on to another reason, b recovers: closed stretches stay counted.
        ledger.show("tai", "ns/a".into(), Some("GraphUnavailable"), at(4));
        ledger.show("tai", "ns/b".into(), None, at(4));
        let rows = ledger.totals(at(6));
        assert_eq!(row(&rows, "Throttled"), (0, 7.0));
        assert_eq!(row(&rows, "GraphUnavailable"), (1, 2.0));
        // A relist that no longer shows a closes it too.
        ledger.close_all("tai", Some(&HashSet::new()), at(7));
        assert_eq!(row(&ledger.totals(at(9)), "GraphUnavailable"), (0, 3.0));
    }
}
