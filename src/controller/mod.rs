//! kube-runtime wiring: watch `TeamsAppInstallation`s, reconcile each, log every outcome; and
//! start the rollout controller on the same cache.

mod admission;
mod backoff;
mod catalog;
mod cleanup;
mod context;
mod events;
pub(crate) mod finalizer;
mod installed;
mod reconciler;
mod settings;
mod shared_read;
mod status;
mod views;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use kube::api::ListParams;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, controller, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::TeamsAppInstallation;
use crate::graph::GraphClient;
use crate::rollout;
use crate::telemetry::{Health, Metrics};

pub use context::{Context, ReconcileError};
pub use finalizer::FINALIZER;
pub use reconciler::{error_policy, reconcile};
pub use settings::ControllerSettings;
pub use status::MANAGER;

/// Annotation that asks for an immediate reconcile when its value changes, like Flux's
/// `reconcile.fluxcd.io/requestedAt`: `kubectl annotate tai/x teamsapps.dev/reconcile-requested-at="$(date +%s)" --overwrite`.
pub use crate::reconcile::RECONCILE_REQUESTED_ANNOTATION;

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Why the controller could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the TeamsAppInstallation CRD is not installed (install it with `teams-app-operator crd | kubectl apply -f -` or the Helm chart): {0}"
    )]
    CrdMissing(kube::Error),
    #[error("cannot list TeamsAppInstallations: {0}")]
    Kube(kube::Error),
}

/// What the controller reports to: metrics and readiness.
#[derive(Clone, Default)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Checks that the CRD is installed and the resources can be listed: one clear error for a
/// missing CRD or missing RBAC at start-up, instead of a watcher retrying forever.
pub async fn preflight(client: &Client, settings: &ControllerSettings) -> Result<(), RunError> {
    let api = resources(client, settings);
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(match &e {
            kube::Error::Api(s) if s.code == 404 => RunError::CrdMissing(e),
            _ => RunError::Kube(e),
        }),
    }
}

fn resources(client: &Client, settings: &ControllerSettings) -> Api<TeamsAppInstallation> {
    match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first. Dropping
/// the returned future stops it at once (what losing the leader Lease does).
pub async fn run(
    client: Client,
    graph: GraphClient,
    settings: ControllerSettings,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), RunError> {
    preflight(&client, &settings).await?;
    let rollouts_served = rollout::available(&client, settings.namespace.as_deref())
        .await
        .map_err(RunError::Kube)?;
    let api = resources(&client, &settings);
    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: settings.instance.clone(),
    };
    let concurrency = settings.concurrency;
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        graph,
        catalog: catalog::CatalogCache::new(settings.catalog_cache_ttl),
        installed: installed::InstalledApps::new(settings.user_snapshot_ttl),
        settings,
        backoff: Default::default(),
        metrics: telemetry.metrics.clone(),
    });

    let (reader, writer) = reflector::store();
    telemetry.health.controller_started();
    telemetry.metrics.controller_started(concurrency);
    let _counting = CountResources::start(&telemetry.metrics, reader.clone());
    let synced = {
        let (reader, health) = (reader.clone(), telemetry.health.clone());
        async move {
            if reader.wait_until_ready().await.is_ok() {
                info!("resource cache synced");
                health.caches_synced();
            }
        }
    };
    let (child_events, child_events_rx) = rollout::child_events();
    let (triggers, finished) = admission::by_user(
        Box::pin(triggers(api, writer, child_events)),
        concurrency.into(),
    );
    info!(concurrency, "controller started");
    // The rollout controller reads installations from this controller's cache and is woken by
    // their changes; without its CRD (a chart upgraded from before rollouts: Helm never adds
    // CRDs on upgrade) installations are reconciled all the same.
    let rollouts = if rollouts_served {
        let shared = rollout::Shared {
            client: ctx.client.clone(),
            graph: ctx.graph.clone(),
            namespace: ctx.settings.namespace.clone(),
            instance: ctx.settings.instance.clone(),
            installations: reader.clone(),
            metrics: telemetry.metrics.clone(),
        };
        rollout::run(shared, child_events_rx, shutdown.clone()).boxed()
    } else {
        warn!(
            "the TeamsAppRollout CRD is not installed: rollouts are not reconciled (install it with `teams-app-operator crd | kubectl apply -f -`)"
        );
        futures::future::ready(()).boxed()
    };
    let metrics = &telemetry.metrics;
    let controller = Controller::for_stream(triggers, reader)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| {
            report_finished(&finished, &outcome);
            async move { log_outcome(metrics, outcome) }
        });
    futures::future::join3(synced, controller, rollouts).await;
    info!("controller stopped");
    Ok(())
}

/// The watch that feeds the controller, reflected into the cache the reconciles read.
///
/// Our own status writes must not wake the controller (each wake would cost Graph calls), so
/// only changes that matter trigger a reconcile: spec (generation), finalizers, deletion and
/// the reconcile-request annotation. Periodic drift checks come from requeues.
///
/// Every change of an installation a rollout owns, status included, wakes that rollout.
fn triggers(
    api: Api<TeamsAppInstallation>,
    writer: reflector::store::Writer<TeamsAppInstallation>,
    child_events: rollout::ChildEventSender,
) -> impl futures::Stream<Item = Result<TeamsAppInstallation, watcher::Error>> {
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        // The cache holds every resource for the life of the process: drop what the operator
        // never reads (managedFields and kubectl's last-applied copy are most of an object).
        .modify(|obj| {
            obj.managed_fields_mut().clear();
            if let Some(annotations) = &mut obj.metadata.annotations {
                annotations.remove(LAST_APPLIED_ANNOTATION);
            }
        })
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(
                watcher::Event::Apply(obj)
                | watcher::Event::InitApply(obj)
                | watcher::Event::Delete(obj),
            ) = event
                && let Some(owner) = rollout::owner_of(obj)
            {
                // The receiver is gone only when rollouts are not reconciled.
                let _ = child_events.unbounded_send(owner);
            }
        })
        .applied_objects()
        .predicate_filter(reconcile_trigger, Default::default())
}

/// Every reconcile the admission let through ends in one result that names the resource.
fn report_finished(finished: &admission::Finished, outcome: &ControllerOutcome) {
    match outcome {
        Ok((obj, _)) => finished.finished(obj.namespace.as_deref(), &obj.name),
        Err(
            controller::Error::ReconcilerFailed(_, obj) | controller::Error::ObjectNotFound(obj),
        ) => finished.finished(obj.namespace.as_deref(), &obj.name),
        Err(_) => {}
    }
}

/// Every result of the controller's stream is logged, and every real error counted.
fn log_outcome(metrics: &Metrics, outcome: ControllerOutcome) {
    match outcome {
        Ok((obj, _)) => debug!(object = %obj, "reconciled"),
        // Counted by the reconcile itself (controller_runtime_reconcile_errors_total).
        Err(controller::Error::ReconcilerFailed(e, obj)) => {
            warn!(object = %obj, kind = e.kind(), error = %e, "reconcile failed")
        }
        // A requeue (drift check, retry) came due for a resource deleted meanwhile: expected,
        // nothing failed (kube-rs/kube#1167).
        Err(controller::Error::ObjectNotFound(obj)) => {
            debug!(object = %obj, "requeue for a deleted resource dropped")
        }
        Err(e) => {
            metrics.controller_error();
            warn!(error = %e, "controller error")
        }
    }
}

type ControllerOutcome = Result<
    (
        kube::runtime::reflector::ObjectRef<TeamsAppInstallation>,
        kube::runtime::controller::Action,
    ),
    controller::Error<ReconcileError, watcher::Error>,
>;

/// Hands the controller's cache to the resource-state gauges while the controller runs, and
/// takes it back however the controller ends (a standby must not report stale counts).
struct CountResources<'a>(&'a Metrics);

impl<'a> CountResources<'a> {
    fn start(metrics: &'a Metrics, store: reflector::Store<TeamsAppInstallation>) -> Self {
        metrics.watch_resources(Some(store));
        Self(metrics)
    }
}

impl Drop for CountResources<'_> {
    fn drop(&mut self) {
        self.0.watch_resources(None);
    }
}

/// The properties whose change should trigger a reconcile (see [`run`]).
fn reconcile_trigger(obj: &TeamsAppInstallation) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    predicates::generation(obj).hash(&mut h);
    predicates::finalizers(obj).hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUESTED_ANNOTATION))
        .hash(&mut h);
    Some(h.finish())
}
