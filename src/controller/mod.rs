//! kube-runtime wiring: watch `TeamsAppInstallation`s, reconcile each, log every outcome.

mod backoff;
mod finalizer;
mod reconciler;
mod settings;
mod status;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, controller, predicates, reflector, watcher};
use kube::{Api, Client, Resource};
use tracing::{info, warn};

use crate::api::TeamsAppInstallation;
use crate::graph::GraphClient;

pub use finalizer::FINALIZER;
pub use reconciler::{Context, ReconcileError, error_policy, reconcile};
pub use settings::ControllerSettings;
pub use status::MANAGER;

/// Annotation that asks for an immediate reconcile when its value changes, like Flux's
/// `reconcile.fluxcd.io/requestedAt`: `kubectl annotate tai/x teamsapps.dev/reconcile-requested-at="$(date +%s)" --overwrite`.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "teamsapps.dev/reconcile-requested-at";

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

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    graph: GraphClient,
    settings: ControllerSettings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    let api: Api<TeamsAppInstallation> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // One clear error for a missing CRD or missing RBAC, instead of a watcher retrying forever.
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        return Err(match &e {
            kube::Error::Api(s) if s.code == 404 => RunError::CrdMissing(e),
            _ => RunError::Kube(e),
        });
    }
    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: settings.instance.clone(),
    };
    let concurrency = settings.concurrency;
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        graph,
        settings,
        backoff: Default::default(),
    });

    let (reader, writer) = reflector::store();
    // Our own status writes must not wake the controller (each wake would cost Graph calls), so
    // only changes that matter trigger a reconcile: spec (generation), finalizers, deletion and
    // the reconcile-request annotation. Periodic drift checks come from requeues.
    let triggers = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(reconcile_trigger, Default::default());
    info!(concurrency, "controller started");
    Controller::for_stream(triggers, reader)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| async move {
            match outcome {
                Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
                Err(controller::Error::ReconcilerFailed(e, obj)) => {
                    warn!(object = %obj, kind = e.kind(), error = %e, "reconcile failed")
                }
                Err(e) => warn!(error = %e, "controller error"),
            }
        })
        .await;
    info!("controller stopped");
    Ok(())
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
