//! The operator's Prometheus metrics, served as OpenMetrics text on `/metrics`.
//!
//! Controller series use controller-runtime's names (written by the kit, labelled by
//! controller), so dashboards and alerts written for Go operators work unchanged. Graph series
//! are our own (`teams_app_operator_graph_*`). Every label is low-cardinality: an operation, a
//! call class, an HTTP status, a state — never an object name, a user, an app id or an error
//! text.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::api::{TeamsAppInstallation, TeamsAppRollout};
use crate::graph::{CallClass, GraphMetrics, Operation};

/// The `connection` label of the operator's own connection's Graph series.
pub const DEFAULT_CONNECTION: &str = "default";
use crate::kit::metrics::ControllerSeries;
use crate::kit::{ControllerMetrics, FailingTime, StateGauge};

/// Every Graph series carries `connection`: `default` (the operator's own), `gc:NS/NAME` or
/// `cgc:NAME` — as many values as there are connections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    /// The HTTP status, or `none` when no answer came (timeout, connection error).
    code: String,
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    result: &'static str,
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    name: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

/// All metrics of one operator process, and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    controllers: ControllerMetrics,
    leader: Family<LeaseLabels, Gauge>,
    graph: GraphSeries,
    /// `teams_app_operator_resources{state}`: installations by kstatus state.
    pub installation_states: Arc<StateGauge<TeamsAppInstallation>>,
    /// `teams_app_operator_rollouts{state}`: rollouts by kstatus state.
    pub rollout_states: Arc<StateGauge<TeamsAppRollout>>,
    /// `teams_app_operator_failing_seconds_total` and `…_failing_resources`, by controller and
    /// reason.
    pub failing: Arc<FailingTime>,
    /// `teams_app_operator_notifications_received_total` and `…_subscriptions`, once change
    /// notifications start.
    pub notifications: Arc<super::notifications::NotificationSeries>,
    /// `teams_app_operator_notification_correction_seconds`: from a change notification to the
    /// Graph write that put its resource right.
    pub corrections: Histogram,
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

impl GraphSeries {
    fn register(registry: &mut Registry) -> Self {
        let graph = GraphSeries {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            throttled: Family::default(),
            budget_wait: Family::new_with_constructor(latency_histogram),
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
        graph.start_at_zero(DEFAULT_CONNECTION);
        graph
    }

    /// Every series with a fixed label set exists at 0 from the start, so `rate()` and
    /// `increase()` see the first 429, budget wait or failed token request too (a series born
    /// with its first event has no earlier sample to count from).
    fn start_at_zero(&self, connection: &str) {
        let connection = connection.to_string();
        for operation in Operation::ALL {
            let operation = operation.as_str();
            let labels = OperationLabels {
                operation,
                connection: connection.clone(),
            };
            drop(self.throttled.get_or_create(&labels));
        }
        for class in CallClass::ALL {
            let class = class.as_str();
            let labels = ClassLabels {
                class,
                connection: connection.clone(),
            };
            drop(self.budget_wait.get_or_create(&labels));
        }
        for result in ["success", "failure"] {
            let labels = OutcomeLabels {
                result,
                connection: connection.clone(),
            };
            drop(self.token_refreshes.get_or_create(&labels));
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let controllers = ControllerMetrics::register(&mut registry);
        let leader = Family::<LeaseLabels, Gauge>::default();
        registry.register(
            "leader_election_master_status",
            "1 while this process holds the leader Lease, 0 while it stands by",
            leader.clone(),
        );
        let graph = GraphSeries::register(&mut registry);
        let installation_states = StateGauge::new(
            "teams_app_operator_resources",
            "TeamsAppInstallations this controller watches, by state: stalled, reconciling, ready, not_ready (Ready=False otherwise), unknown (no status yet)",
        );
        registry.register_collector(Box::new(installation_states.clone()));
        let rollout_states = StateGauge::new(
            "teams_app_operator_rollouts",
            "TeamsAppRollouts this controller watches, by state: stalled (halted, or the audience unreadable), reconciling (waves in progress or baking), ready (complete), not_ready (paused), unknown (no status yet)",
        );
        registry.register_collector(Box::new(rollout_states.clone()));
        let failing = FailingTime::new();
        registry.register_collector(Box::new(failing.clone()));
        let notifications = Arc::new(super::notifications::NotificationSeries::default());
        registry.register_collector(Box::new(notifications.clone()));
        // 5 ms … 82 s: a notification's correction within Graph's call, or behind a full budget.
        let corrections = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        registry.register_with_unit(
            "teams_app_operator_notification_correction",
            "Time from a Graph change notification's arrival to the install, upgrade or uninstall that put its resource right (notifications that needed no write are not counted)",
            Unit::Seconds,
            corrections.clone(),
        );
        Self {
            registry,
            controllers,
            leader,
            graph,
            installation_states,
            rollout_states,
            failing,
            notifications,
            corrections,
        }
    }

    /// The `controller_runtime_*` series of the controller named `controller`.
    pub fn controller(&self, controller: &'static str) -> ControllerSeries {
        self.controllers.controller(controller)
    }

    /// The observer to hand to the Graph client of `connection`
    /// ([`crate::graph::GraphSettings::metrics`]): its series carry `connection="…"`, and those
    /// with a fixed label set exist at 0 from now on.
    pub fn graph_observer(&self, connection: &str) -> Arc<dyn GraphMetrics> {
        self.graph.start_at_zero(connection);
        Arc::new(ConnectionSeries {
            series: self.graph.clone(),
            connection: connection.to_string(),
        })
    }

    /// The OpenMetrics text of every series.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Whether this process holds the leader Lease `lease`.
    pub fn set_leader(&self, lease: &str, leader: bool) {
        self.leader
            .get_or_create(&LeaseLabels {
                name: lease.to_string(),
            })
            .set(i64::from(leader));
    }
}

/// The Graph series as one connection's client records them.
struct ConnectionSeries {
    series: GraphSeries,
    connection: String,
}

impl GraphMetrics for ConnectionSeries {
    fn request(&self, operation: Operation, status: Option<u16>, latency: Duration) {
        let code = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        let operation = operation.as_str();
        let connection = self.connection.clone();
        self.series
            .requests
            .get_or_create(&RequestLabels {
                operation,
                code,
                connection: connection.clone(),
            })
            .inc();
        self.series
            .latency
            .get_or_create(&OperationLabels {
                operation,
                connection,
            })
            .observe(latency.as_secs_f64());
    }

    fn throttled(&self, operation: Operation, _retry_after: Option<Duration>) {
        self.series
            .throttled
            .get_or_create(&OperationLabels {
                operation: operation.as_str(),
                connection: self.connection.clone(),
            })
            .inc();
    }

    fn budget_wait(&self, class: CallClass, waited: Duration) {
        self.series
            .budget_wait
            .get_or_create(&ClassLabels {
                class: class.as_str(),
                connection: self.connection.clone(),
            })
            .observe(waited.as_secs_f64());
    }

    fn token_refresh(&self, success: bool, _latency: Duration) {
        let result = if success { "success" } else { "failure" };
        self.series
            .token_refreshes
            .get_or_create(&OutcomeLabels {
                result,
                connection: self.connection.clone(),
            })
            .inc();
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
        metrics.controller("teamsappinstallation").started(4);
        metrics.controller("teamsapprollout").started(1);
        let text = metrics.render().expect("renders");
        for line in [
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="success"} 0"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="error"} 0"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="requeue"} 0"#,
            r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="requeue_after"} 0"#,
            r#"controller_runtime_reconcile_errors_total{controller="teamsappinstallation"} 0"#,
            r#"controller_runtime_active_workers{controller="teamsappinstallation"} 0"#,
            r#"controller_runtime_max_concurrent_reconciles{controller="teamsappinstallation"} 4"#,
            r#"controller_runtime_reconcile_total{controller="teamsapprollout",result="success"} 0"#,
            r#"controller_runtime_max_concurrent_reconciles{controller="teamsapprollout"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn each_connection_has_its_own_graph_series_from_zero() {
        let metrics = Metrics::new();
        let team = metrics.graph_observer("gc:team-a/graph");
        team.throttled(Operation::Install, None);
        let text = metrics.render().expect("renders");
        for line in [
            r#"teams_app_operator_graph_throttled_total{operation="install",connection="gc:team-a/graph"} 1"#,
            r#"teams_app_operator_graph_throttled_total{operation="install",connection="default"} 0"#,
            r#"teams_app_operator_graph_token_refreshes_total{result="failure",connection="gc:team-a/graph"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn renders_controller_runtime_names_and_graph_series() {
        let metrics = Metrics::new();
        let installations = metrics.controller("teamsappinstallation");
        installations.reconcile_started().finish(true);
        installations.reconcile_started().finish(false);
        drop(installations.reconcile_started());
        let graph = metrics.graph_observer(DEFAULT_CONNECTION);
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
            r#"teams_app_operator_graph_requests_total{operation="upgrade",code="204",connection="default"} 1"#,
            r#"teams_app_operator_graph_requests_total{operation="upgrade",code="none",connection="default"} 1"#,
            r#"teams_app_operator_graph_throttled_total{operation="list_installations",connection="default"} 1"#,
            r#"teams_app_operator_graph_budget_wait_seconds_count{class="installed_apps_read",connection="default"} 1"#,
            r#"teams_app_operator_graph_token_refreshes_total{result="success",connection="default"} 1"#,
            r#"leader_election_master_status{name="tao"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics text ends with # EOF"
        );
        // Fixed label sets exist at 0 before their first event.
        for line in [
            r#"teams_app_operator_graph_throttled_total{operation="install",connection="default"} 0"#,
            r#"teams_app_operator_graph_budget_wait_seconds_count{class="delete",connection="default"} 0"#,
            r#"teams_app_operator_graph_token_refreshes_total{result="failure",connection="default"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // No store yet: the resource gauge is absent rather than zero.
        assert!(!text.contains("teams_app_operator_resources"));
        assert!(!text.contains("teams_app_operator_rollouts"));
    }
}
