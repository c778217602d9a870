//! controller-runtime's series (`controller_runtime_*`, labelled by controller) and the
//! objects-by-state gauge, for any kind. The process registers them once
//! ([`crate::telemetry::Metrics`]); each controller reports through its own [`ControllerSeries`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::conditions::{Conditioned, ResourceState};

/// controller-runtime's `result` values. This operator counts a successful reconcile as
/// `success` even though it always schedules a drift check, and an error as `error`; `requeue`
/// and `requeue_after` exist (at 0) so that queries written for Go operators find them.
const RECONCILE_RESULTS: [&str; 4] = ["success", "error", "requeue", "requeue_after"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: &'static str,
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The `controller_runtime_*` families, shared by every controller of the process.
#[derive(Clone)]
pub struct ControllerMetrics {
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_time: HistogramFamily<ControllerLabels>,
    active_workers: Family<ControllerLabels, Gauge>,
    max_concurrent: Family<ControllerLabels, Gauge>,
    /// `teams_app_operator_controller_errors_total`: not labelled (it predates the second kind).
    controller_errors: Counter,
}

impl ControllerMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            active_workers: Family::default(),
            max_concurrent: Family::default(),
            controller_errors: Counter::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller and result (success, error, requeue, requeue_after)",
            metrics.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            metrics.reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "controller_runtime_reconcile_time",
            "Length of time per reconciliation per controller",
            Unit::Seconds,
            metrics.reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            metrics.active_workers.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            metrics.max_concurrent.clone(),
        );
        registry.register(
            "teams_app_operator_controller_errors",
            "Errors of the controller machinery other than failed reconciles (watch, queue)",
            metrics.controller_errors.clone(),
        );
        metrics
    }

    /// The series of the controller named `controller` (the `controller` label: the kind's
    /// lowercase name, as controller-runtime names its controllers).
    pub fn controller(&self, controller: &'static str) -> ControllerSeries {
        ControllerSeries {
            families: self.clone(),
            labels: ControllerLabels { controller },
        }
    }
}

/// One controller's `controller_runtime_*` series.
#[derive(Clone)]
pub struct ControllerSeries {
    families: ControllerMetrics,
    labels: ControllerLabels,
}

impl ControllerSeries {
    /// The controller started with this many workers. Like controller-runtime (which does it
    /// when a controller starts, so after winning the leader election), this creates every
    /// reconcile series at 0: `rate()` and dashboards work before the first reconcile or error,
    /// and a standby that never reconciled shows none.
    pub fn started(&self, workers: u16) {
        let f = &self.families;
        f.max_concurrent
            .get_or_create(&self.labels)
            .set(i64::from(workers));
        for result in RECONCILE_RESULTS {
            drop(f.reconcile_total.get_or_create(&self.result(result)));
        }
        drop(f.reconcile_errors.get_or_create(&self.labels));
        drop(f.active_workers.get_or_create(&self.labels));
        // The latency histogram too: a controller with nothing to reconcile yet (no connection
        // exists) still has its buckets, so the dashboard's latency panel selects something.
        drop(f.reconcile_time.get_or_create(&self.labels));
    }

    /// A reconcile started; the returned guard records its duration and result when finished.
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.families
            .active_workers
            .get_or_create(&self.labels)
            .inc();
        ReconcileTimer {
            series: self.clone(),
            started: Instant::now(),
            finished: false,
        }
    }

    /// The `controller` label.
    pub fn name(&self) -> &'static str {
        self.labels.controller
    }

    /// The controller's stream yielded an error that is not a failed reconcile.
    pub fn controller_error(&self) {
        self.families.controller_errors.inc();
    }

    fn reconcile_finished(&self, elapsed: Duration, success: bool) {
        let f = &self.families;
        f.active_workers.get_or_create(&self.labels).dec();
        f.reconcile_time
            .get_or_create(&self.labels)
            .observe(elapsed.as_secs_f64());
        let result = if success { "success" } else { "error" };
        f.reconcile_total.get_or_create(&self.result(result)).inc();
        if !success {
            f.reconcile_errors.get_or_create(&self.labels).inc();
        }
    }

    fn result(&self, result: &'static str) -> ResultLabels {
        ResultLabels {
            controller: self.labels.controller,
            result,
        }
    }
}

/// Records one reconcile's duration and result; a dropped, unfinished timer (the reconcile was
/// cancelled, e.g. on losing the lease) counts as an error.
pub struct ReconcileTimer {
    series: ControllerSeries,
    started: Instant,
    finished: bool,
}

impl ReconcileTimer {
    pub fn finish(mut self, success: bool) {
        self.finished = true;
        self.series
            .reconcile_finished(self.started.elapsed(), success);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        if !self.finished {
            self.series
                .reconcile_finished(self.started.elapsed(), false);
        }
    }
}

/// Objects of one kind by state (`teams_app_operator_resources{state}` for installations,
/// `…_rollouts{state}`), read from a controller's cache at scrape time: no bookkeeping on the
/// reconcile path can drift from it. Absent while no controller of the kind runs here.
pub struct StateGauge<K: Conditioned + 'static> {
    name: &'static str,
    help: &'static str,
    store: Mutex<Option<Store<K>>>,
}

impl<K: Conditioned + 'static> StateGauge<K> {
    pub fn new(name: &'static str, help: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            help,
            store: Mutex::new(None),
        })
    }

    /// Counts `store` while the returned guard lives, and nothing afterwards (a standby must
    /// not report stale counts), however the controller that owns the store ends.
    pub fn count(self: &Arc<Self>, store: Store<K>) -> Counting<K> {
        self.set(Some(store));
        Counting(self.clone())
    }

    fn set(&self, store: Option<Store<K>>) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = store;
    }
}

/// See [`StateGauge::count`].
pub struct Counting<K: Conditioned + 'static>(Arc<StateGauge<K>>);

impl<K: Conditioned + 'static> Drop for Counting<K> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

impl<K: Conditioned + 'static> std::fmt::Debug for StateGauge<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl<K> Collector for StateGauge<K>
where
    K: Conditioned + Clone + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(store) = self
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return Ok(());
        };
        let mut counts = [0i64; ResourceState::ALL.len()];
        for obj in store.state() {
            let state = ResourceState::of(&*obj);
            if let Some(i) = ResourceState::ALL.iter().position(|s| *s == state) {
                counts[i] += 1;
            }
        }
        let gauge_type = ConstGauge::new(0i64).metric_type();
        let mut family = encoder.encode_descriptor(self.name, self.help, None, gauge_type)?;
        for (state, count) in ResourceState::ALL.iter().zip(counts) {
            let labels = [("state", state.as_str())];
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
