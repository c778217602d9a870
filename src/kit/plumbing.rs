//! What every controller of a kind shares, and the parts of a reconcile that are the same for
//! every kind: counting it, naming the resource in its log lines, retrying it with per-object
//! backoff (or Graph's `Retry-After`), and logging every outcome of the controller's stream.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, debug, warn};

use super::backoff::FailureBackoff;
use super::events::{Announcement, Recorder};
use super::metrics::ControllerSeries;
use super::status::MANAGER;

/// How a kind's reconcile failed, as the kit needs to know it.
pub trait ReconcileFailure: std::error::Error + Send + Sync + 'static {
    /// Graph's `Retry-After`, which overrides the per-object backoff.
    fn retry_after(&self) -> Option<Duration>;
    /// A short label for logs.
    fn kind(&self) -> &'static str;
}

/// The Kubernetes side every controller needs: a client, one long-lived Event recorder, the
/// per-object failure backoff and the controller's metrics.
pub struct Plumbing<K: Resource<DynamicType = ()>> {
    pub client: Client,
    pub recorder: Recorder,
    pub backoff: FailureBackoff<K>,
    pub metrics: ControllerSeries,
}

/// A kind's reconcile context exposes its plumbing, so the kit's error policy serves it.
pub trait HasPlumbing<K: Resource<DynamicType = ()>> {
    fn plumbing(&self) -> &Plumbing<K>;
}

impl<K: Resource<DynamicType = ()>> Plumbing<K> {
    /// `instance` names this replica in Events (`reportingInstance`).
    pub fn new(client: Client, instance: Option<String>, metrics: ControllerSeries) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), MANAGER, instance),
            client,
            backoff: FailureBackoff::default(),
            metrics,
        }
    }

    /// Publishes `event` on `obj` (best effort).
    pub async fn publish(&self, obj: &K, event: &Announcement) {
        self.recorder.publish(obj, event).await;
    }

    /// Runs one reconcile of `obj`: counted in `controller_runtime_*`, every log line inside
    /// naming the resource, and its failure backoff cleared when it succeeds.
    pub async fn reconcile<E, Fut>(&self, obj: &K, work: Fut) -> Result<Action, E>
    where
        Fut: Future<Output = Result<Action, E>>,
    {
        let timer = self.metrics.reconcile_started();
        // `resource`: JSON logs already use `name` for the span's own name.
        let span = tracing::info_span!(
            "reconcile",
            controller = self.metrics.name(),
            namespace = %obj.namespace().unwrap_or_default(),
            resource = %obj.name_any(),
        );
        let result = work.instrument(span).await;
        if result.is_ok() {
            self.backoff.reset(&ObjectRef::from_obj(obj));
        }
        timer.finish(result.is_ok());
        result
    }
}

/// kube-runtime's error hook for any kind: per-object exponential backoff, or Graph's
/// `Retry-After` when the failure carries one.
pub fn error_policy<K, E, C>(obj: Arc<K>, err: &E, ctx: Arc<C>) -> Action
where
    K: Resource<DynamicType = ()>,
    E: ReconcileFailure,
    C: HasPlumbing<K>,
{
    let delay = ctx
        .plumbing()
        .backoff
        .next_delay(ObjectRef::from_obj(&*obj), err.retry_after());
    debug!(namespace = ?obj.namespace(), name = %obj.name_any(), ?delay, error = %err, "retrying after failure");
    Action::requeue(delay)
}

/// One item of a controller's output stream.
pub type Outcome<K, E> = Result<(ObjectRef<K>, Action), controller::Error<E, watcher::Error>>;

/// Every result of a controller's stream is logged, and every real error counted: a stream's
/// errors are never dropped silently.
pub fn log_outcome<K, E>(metrics: &ControllerSeries, outcome: &Outcome<K, E>)
where
    K: Resource<DynamicType = ()> + Debug,
    E: ReconcileFailure,
{
    match outcome {
        Ok((obj, _)) => debug!(object = %obj, "reconciled"),
        // Counted by the reconcile itself (controller_runtime_reconcile_errors_total).
        Err(controller::Error::ReconcilerFailed(e, obj)) => {
            warn!(object = %obj, kind = e.kind(), error = %e, "reconcile failed")
        }
        // A requeue (drift check, retry) came due for an object deleted meanwhile: expected,
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
