//! The operator's Prometheus metrics, served as OpenMetrics text on `/metrics`.
//!
//! Controller series use controller-runtime's names, so dashboards and alerts written for Go
//! operators work unchanged. Graph series are our own (`teams_app_operator_graph_*`). Every label
//! is low-cardinality: an operation, a call class, an HTTP status, a state — never an object
//! name, a user, an app id or an error text.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::api::{TeamsAppInstallation, TeamsAppRollout};
use crate::graph::{CallClass, GraphMetrics, Operation};
use crate::reconcile::conditions::ResourceState;

/// The `controller` label of controller-runtime's series.
pub const CONTROLLER: &str = "teamsappinstallation";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    /// The HTTP status, or `none` when no answer came (timeout, connection error).
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    name: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// All metrics of one operator process, and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_time: HistogramFamily<ControllerLabels>,
    active_workers: Family<ControllerLabels, Gauge>,
    max_concurrent: Family<ControllerLabels, Gauge>,
    controller_errors: Counter,
    leader: Family<LeaseLabels, Gauge>,
    graph: GraphSeries,
    resources: Arc<StateGauge<TeamsAppInstallation>>,
    rollouts: Arc<StateGauge<TeamsAppRollout>>,
}

/// The Graph client's series; also the [`GraphMetrics`] the client reports to.
#[derive(Clone)]
struct GraphSeries {
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<OperationLabels>,
    throttled: Family<OperationLabels, Counter>,
    budget_wait: HistogramFamily<ClassLabels>,
    token_refreshes: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller and result (success, error, requeue, requeue_after)",
            reconcile_total.clone(),
        );
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        let reconcile_time: HistogramFamily<ControllerLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        registry.register_with_unit(
            "controller_runtime_reconcile_time",
            "Length of time per reconciliation per controller",
            Unit::Seconds,
            reconcile_time.clone(),
        );
        let active_workers = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            active_workers.clone(),
        );
        let max_concurrent = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            max_concurrent.clone(),
        );
        let controller_errors = Counter::default();
        registry.register(
            "teams_app_operator_controller_errors",
            "Errors of the controller machinery other than failed reconciles (watch, queue)",
            controller_errors.clone(),
        );
        let leader = Family::<LeaseLabels, Gauge>::default();
        registry.register(
            "leader_election_master_status",
            "1 while this process holds the leader Lease, 0 while it stands by",
            leader.clone(),
        );

        let graph = GraphSeries {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 12))
            }),
            throttled: Family::default(),
            budget_wait: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 12))
            }),
            token_refreshes: Family::default(),
        };
        let g = registry.sub_registry_with_prefix("teams_app_operator_graph");
        g.register(
            "requests",
            "Microsoft Graph requests by operation and HTTP status (code=none: no answer)",
            graph.requests.clone(),
        );
        g.register_with_unit(
            "request_duration",
            "Microsoft Graph request latency by operation",
            Unit::Seconds,
            graph.latency.clone(),
        );
        g.register(
            "throttled",
            "Microsoft Graph answers 429 Too Many Requests, by operation",
            graph.throttled.clone(),
        );
        g.register_with_unit(
            "budget_wait",
            "Time requests waited on the per-tenant rate budget (token buckets and Retry-After) before being sent",
            Unit::Seconds,
            graph.budget_wait.clone(),
        );
        g.register(
            "token_refreshes",
            "Access token requests to Entra ID, by result (success, failure)",
            graph.token_refreshes.clone(),
        );

        let resources = Arc::new(StateGauge::new(
            "teams_app_operator_resources",
            "TeamsAppInstallations this controller watches, by state: stalled, reconciling, ready, not_ready (Ready=False otherwise), unknown (no status yet)",
            ResourceState::of,
        ));
        registry.register_collector(Box::new(resources.clone()));
        let rollouts = Arc::new(StateGauge::new(
            "teams_app_operator_rollouts",
            "TeamsAppRollouts this controller watches, by state: stalled (halted, or the audience unreadable), reconciling (waves in progress or baking), ready (complete), not_ready (paused), unknown (no status yet)",
            |r: &TeamsAppRollout| {
                ResourceState::from_conditions(
                    r.status
                        .as_ref()
                        .map_or(&[][..], |s| s.conditions.as_slice()),
                )
            },
        ));
        registry.register_collector(Box::new(rollouts.clone()));

        Self {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            active_workers,
            max_concurrent,
            controller_errors,
            leader,
            graph,
            resources,
            rollouts,
        }
    }

    /// The observer to hand to the Graph client ([`crate::graph::GraphSettings::metrics`]).
    pub fn graph_observer(&self) -> Arc<dyn GraphMetrics> {
        Arc::new(self.graph.clone())
    }

    /// The OpenMetrics text of every series.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// A reconcile started; the returned guard records its duration and result when finished.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        let labels = ControllerLabels {
            controller: CONTROLLER,
        };
        self.active_workers.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self,
            started: std::time::Instant::now(),
            finished: false,
        }
    }

    fn reconcile_finished(&self, elapsed: Duration, success: bool) {
        let labels = ControllerLabels {
            controller: CONTROLLER,
        };
        self.active_workers.get_or_create(&labels).dec();
        self.reconcile_time
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let result = if success { "success" } else { "error" };
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: CONTROLLER,
                result,
            })
            .inc();
        if !success {
            self.reconcile_errors.get_or_create(&labels).inc();
        }
    }

    /// The controller started with this many workers. Like controller-runtime (which does it
    /// when a controller starts, so after winning the leader election), this creates every
    /// reconcile series at 0: `rate()` and dashboards work before the first reconcile or error,
    /// and a standby that never reconciled shows none.
    pub fn controller_started(&self, workers: u16) {
        let labels = ControllerLabels {
            controller: CONTROLLER,
        };
        self.max_concurrent
            .get_or_create(&labels)
            .set(i64::from(workers));
        for result in RECONCILE_RESULTS {
            drop(self.reconcile_total.get_or_create(&ResultLabels {
                controller: CONTROLLER,
                result,
            }));
        }
        drop(self.reconcile_errors.get_or_create(&labels));
        drop(self.active_workers.get_or_create(&labels));
    }

    /// The controller's stream yielded an error that is not a failed reconcile.
    pub fn controller_error(&self) {
        self.controller_errors.inc();
    }

    /// Whether this process holds the leader Lease `lease`.
    pub fn set_leader(&self, lease: &str, leader: bool) {
        self.leader
            .get_or_create(&LeaseLabels {
                name: lease.to_string(),
            })
            .set(i64::from(leader));
    }

    /// The resources the running controller sees, counted by state on every scrape. `None` when
    /// this process does not reconcile (a standby), so that only the leader reports them and a
    /// `sum` across replicas stays right.
    pub fn watch_resources(&self, store: Option<Store<TeamsAppInstallation>>) {
        self.resources.watch(store);
    }

    /// The rollouts the running rollout controller sees, as [`Metrics::watch_resources`].
    pub fn watch_rollouts(&self, store: Option<Store<TeamsAppRollout>>) {
        self.rollouts.watch(store);
    }
}

/// Records one reconcile's duration and result; a dropped, unfinished timer (the reconcile was
/// cancelled, e.g. on losing the lease) counts as an error.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    started: std::time::Instant,
    finished: bool,
}

impl ReconcileTimer<'_> {
    pub fn finish(mut self, success: bool) {
        self.finished = true;
        self.metrics
            .reconcile_finished(self.started.elapsed(), success);
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.metrics
                .reconcile_finished(self.started.elapsed(), false);
        }
    }
}

impl GraphMetrics for GraphSeries {
    fn request(&self, operation: Operation, status: Option<u16>, latency: Duration) {
        let code = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.as_str(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                operation: operation.as_str(),
            })
            .observe(latency.as_secs_f64());
    }

    fn throttled(&self, operation: Operation, _retry_after: Option<Duration>) {
        self.throttled
            .get_or_create(&OperationLabels {
                operation: operation.as_str(),
            })
            .inc();
    }

    fn budget_wait(&self, class: CallClass, waited: Duration) {
        self.budget_wait
            .get_or_create(&ClassLabels {
                class: class.as_str(),
            })
            .observe(waited.as_secs_f64());
    }

    fn token_refresh(&self, success: bool, _latency: Duration) {
        let result = if success { "success" } else { "failure" };
        self.token_refreshes
            .get_or_create(&OutcomeLabels { result })
            .inc();
    }
}

/// Objects of one kind by state (`teams_app_operator_resources{state}` for installations,
/// `…_rollouts{state}`), read from a controller's cache at scrape time: no bookkeeping on the
/// reconcile path can drift from it. Absent while no controller of the kind runs here.
struct StateGauge<K: kube::Resource<DynamicType = ()> + 'static> {
    name: &'static str,
    help: &'static str,
    state_of: fn(&K) -> ResourceState,
    store: Mutex<Option<Store<K>>>,
}

impl<K: kube::Resource<DynamicType = ()> + 'static> StateGauge<K> {
    fn new(name: &'static str, help: &'static str, state_of: fn(&K) -> ResourceState) -> Self {
        Self {
            name,
            help,
            state_of,
            store: Mutex::new(None),
        }
    }

    fn watch(&self, store: Option<Store<K>>) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = store;
    }
}

impl<K: kube::Resource<DynamicType = ()> + 'static> std::fmt::Debug for StateGauge<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl<K> Collector for StateGauge<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
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
            let state = (self.state_of)(&obj);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_series_exist_at_zero_once_the_controller_starts() {
        let metrics = Metrics::new();
        let before = metrics.render().expect("renders");
        assert!(
            !before.contains("controller_runtime_reconcile_total{"),
            "{before}"
        );
        metrics.controller_started(4);
        let text = metrics.render().expect("renders");
        for line in [
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="success"} 0"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="error"} 0"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="requeue"} 0"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="requeue_after"} 0"#,
            r#"controller_runtime_reconcile_errors_total{controller="teamsappinstallation"} 0"#,
            r#"controller_runtime_active_workers{controller="teamsappinstallation"} 0"#,
            r#"controller_runtime_max_concurrent_reconciles{controller="teamsappinstallation"} 4"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn renders_controller_runtime_names_and_graph_series() {
        let metrics = Metrics::new();
        metrics.reconcile_started().finish(true);
        metrics.reconcile_started().finish(false);
        drop(metrics.reconcile_started());
        let graph = metrics.graph_observer();
        graph.request(Operation::Upgrade, Some(204), Duration::from_millis(20));
        graph.request(Operation::Upgrade, None, Duration::from_millis(20));
        graph.throttled(Operation::ListInstallations, Some(Duration::from_secs(2)));
        graph.budget_wait(CallClass::InstalledAppsRead, Duration::from_millis(300));
        graph.token_refresh(true, Duration::from_millis(5));
        metrics.set_leader("tao", true);

        let text = metrics.render().expect("renders");
        for line in [
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="success"} 1"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="error"} 2"#,
            r#"controller_runtime_reconcile_errors_total{controller="teamsappinstallation"} 2"#,
            r#"controller_runtime_reconcile_time_seconds_count{controller="teamsappinstallation"} 3"#,
            r#"controller_runtime_active_workers{controller="teamsappinstallation"} 0"#,
            r#"teams_app_operator_graph_requests_total{operation="upgrade",code="204"} 1"#,
            r#"teams_app_operator_graph_requests_total{operation="upgrade",code="none"} 1"#,
            r#"teams_app_operator_graph_throttled_total{operation="list_installations"} 1"#,
            r#"teams_app_operator_graph_budget_wait_seconds_count{class="installed_apps_read"} 1"#,
            r#"teams_app_operator_graph_token_refreshes_total{result="success"} 1"#,
            r#"leader_election_master_status{name="tao"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics text ends with # EOF"
        );
        // No store yet: the resource gauge is absent rather than zero.
        assert!(!text.contains("teams_app_operator_resources"));
        assert!(!text.contains("teams_app_operator_rollouts"));
    }
}
