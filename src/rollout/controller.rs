//! kube-runtime wiring for `TeamsAppRollout`s, and one reconcile top to bottom: read the
//! audience → [`plan`] (pure) → write installations → write status and Events.
//!
//! The rollout controller reads installations from the installation controller's cache (one
//! copy in memory) and is woken by their changes through [`ChildEvents`]; it never calls
//! install or upgrade itself.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{Instrument, debug, info, warn};

use crate::api::{TeamsAppInstallation, TeamsAppRollout, TeamsAppRolloutStatus};
use crate::controller::finalizer;
use crate::graph::GraphClient;
use crate::reconcile::{RECONCILE_REQUESTED_ANNOTATION, Standing};
use crate::telemetry::Metrics;

use super::children::{self, owned};
use super::membership::Memberships;
use super::progress::{Plan, blocked, plan, revision, validate_spec};

/// Holds a rollout's deletion until its installations are gone (each by its own
/// `deletionPolicy`): a cluster without a garbage collector for owner references, or a
/// foreground deletion, must not leave installations behind.
pub const ROLLOUT_FINALIZER: &str = "teamsapps.dev/rollout-installations";

/// The status field manager (the installation controller's name: one operator).
const MANAGER: &str = crate::controller::MANAGER;

/// At most this many installations are written per pass, so status keeps up with a large wave.
const WRITES_PER_PASS: usize = 500;

/// Re-check a rollout at least this often, whatever else is due.
const RESYNC: Duration = Duration::from_secs(300);

/// Wakes a rollout when one of its installations changes (sent by the installation watch).
pub type ChildEvents = mpsc::UnboundedReceiver<ObjectRef<TeamsAppRollout>>;

/// The sending half, for the installation watch.
pub type ChildEventSender = mpsc::UnboundedSender<ObjectRef<TeamsAppRollout>>;

/// A channel from the installation watch to the rollout controller.
pub fn child_events() -> (ChildEventSender, ChildEvents) {
    mpsc::unbounded()
}

/// The owning rollout of an installation event, if a rollout owns it.
pub fn owner_of(obj: &TeamsAppInstallation) -> Option<ObjectRef<TeamsAppRollout>> {
    let ns = obj.namespace()?;
    obj.owner_references()
        .iter()
        .find(|o| o.kind == "TeamsAppRollout" && o.api_version == TeamsAppRollout::api_version(&()))
        .map(|o| ObjectRef::new(&o.name).within(&ns))
}

struct RolloutContext {
    client: Client,
    graph: GraphClient,
    installations: Store<TeamsAppInstallation>,
    recorder: Recorder,
    memberships: Memberships,
}

/// Why a rollout reconcile failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("the rollout has no namespace")]
    NoNamespace,
}

/// Whether the TeamsAppRollout CRD is served: a chart upgraded from a version without it
/// (Helm never adds CRDs on upgrade) must not stop installations from being reconciled.
pub async fn available(client: &Client, namespace: Option<&str>) -> Result<bool, kube::Error> {
    match rollouts(client, namespace)
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

fn rollouts(client: &Client, namespace: Option<&str>) -> Api<TeamsAppRollout> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What the rollout controller shares with the installation controller it runs beside.
pub struct Shared {
    pub client: Client,
    pub graph: GraphClient,
    pub namespace: Option<String>,
    pub instance: Option<String>,
    /// The installation controller's cache.
    pub installations: Store<TeamsAppInstallation>,
    pub metrics: Arc<Metrics>,
}

/// Runs the rollout controller until `shutdown` resolves.
pub async fn run(
    shared: Shared,
    child_events: ChildEvents,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Shared {
        client,
        graph,
        namespace,
        instance,
        installations,
        metrics,
    } = shared;
    let api = rollouts(&client, namespace.as_deref());
    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance,
    };
    let ctx = Arc::new(RolloutContext {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        graph,
        installations,
        memberships: Memberships::default(),
    });
    let (reader, writer) = reflector::store();
    let _counting = CountRollouts::start(&metrics, reader.clone());
    let triggers = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(rollout_trigger, Default::default());
    info!("rollout controller started");
    Controller::for_stream(triggers, reader)
        .reconcile_on(child_events)
        // A wave of installations turning Ready is a burst of events: one pass for the burst.
        .with_config(controller::Config::default().debounce(Duration::from_millis(500)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| async move {
            match outcome {
                Ok((obj, _)) => debug!(object = %obj, "rollout reconciled"),
                Err(controller::Error::ObjectNotFound(obj)) => {
                    debug!(object = %obj, "event for a deleted rollout dropped")
                }
                Err(e) => warn!(error = %e, "rollout reconcile failed"),
            }
        })
        .await;
    info!("rollout controller stopped");
}

/// Hands the rollout cache to the `teams_app_operator_rollouts` gauge while the controller
/// runs, and takes it back however it ends (a standby must not report stale counts).
struct CountRollouts<'a>(&'a Metrics);

impl<'a> CountRollouts<'a> {
    fn start(metrics: &'a Metrics, store: Store<TeamsAppRollout>) -> Self {
        metrics.watch_rollouts(Some(store));
        Self(metrics)
    }
}

impl Drop for CountRollouts<'_> {
    fn drop(&mut self) {
        self.0.watch_rollouts(None);
    }
}

/// Spec, finalizers, deletion and the reconcile-request annotation wake a rollout; its own
/// status writes do not.
fn rollout_trigger(obj: &TeamsAppRollout) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    predicates::generation(obj).hash(&mut h);
    predicates::finalizers(obj).hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    requested_at(obj).hash(&mut h);
    Some(h.finish())
}

fn requested_at(obj: &TeamsAppRollout) -> Option<&str> {
    obj.annotations()
        .get(RECONCILE_REQUESTED_ANNOTATION)
        .map(String::as_str)
}

fn error_policy(_: Arc<TeamsAppRollout>, err: &RolloutError, _: Arc<RolloutContext>) -> Action {
    debug!(error = %err, "retrying rollout");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(
    rollout: Arc<TeamsAppRollout>,
    ctx: Arc<RolloutContext>,
) -> Result<Action, RolloutError> {
    let ns = rollout.namespace().ok_or(RolloutError::NoNamespace)?;
    let span =
        tracing::info_span!("reconcile_rollout", namespace = %ns, rollout = %rollout.name_any());
    async {
        let api: Api<TeamsAppRollout> = Api::namespaced(ctx.client.clone(), &ns);
        let installations: Api<TeamsAppInstallation> = Api::namespaced(ctx.client.clone(), &ns);
        if rollout.metadata.deletion_timestamp.is_some() {
            return finalize(&rollout, &api, &installations, &ctx).await;
        }
        let rollout = if finalizer::holds(&*rollout, ROLLOUT_FINALIZER) {
            rollout
        } else {
            Arc::new(finalizer::add(&api, &rollout, ROLLOUT_FINALIZER).await?)
        };
        progress(&rollout, &api, &installations, &ctx).await
    }
    .instrument(span)
    .await
}

/// One pass: audience → plan → installations → status.
async fn progress(
    rollout: &TeamsAppRollout,
    api: &Api<TeamsAppRollout>,
    installations: &Api<TeamsAppInstallation>,
    ctx: &RolloutContext,
) -> Result<Action, RolloutError> {
    let now = now();
    let requested = requested_at(rollout);
    if let Err(invalid) = validate_spec(&rollout.spec) {
        let status = blocked(
            rollout,
            Standing::Stalled,
            "InvalidSpec",
            &invalid.to_string(),
            &now,
        );
        write_status(api, rollout, status).await?;
        return Ok(Action::await_change());
    }
    let known = match ctx
        .memberships
        .audience(&ctx.graph, rollout, requested)
        .await
    {
        Ok(known) => known,
        Err(failure) => {
            let standing = if failure.terminal {
                Standing::Stalled
            } else {
                Standing::Progressing
            };
            let status = blocked(rollout, standing, failure.reason, &failure.message, &now);
            write_status(api, rollout, status).await?;
            let retry = if failure.terminal { 120 } else { 15 };
            return Ok(Action::requeue(Duration::from_secs(retry)));
        }
    };
    let children = owned(&ctx.installations, rollout);
    let Plan {
        apply,
        remove,
        mut status,
        events,
        requeue_after,
    } = plan(rollout, &known.audience, &children, &now);
    if let Some(audience) = &mut status.audience {
        audience.last_read_time = Some(known.read_time.clone());
    }
    status.last_handled_reconcile_at = requested.map(str::to_string);

    // Status first: a wave is recorded as started before its installations appear, so no
    // reader ever sees installations of a wave the status does not know has begun.
    write_status(api, rollout, status).await?;
    for event in events {
        publish(ctx, rollout, event.warning, event.reason, event.note).await;
    }
    let more_to_write = apply.len() > WRITES_PER_PASS;
    let batch = &apply[..apply.len().min(WRITES_PER_PASS)];
    children::apply(installations, rollout, batch, &revision(&rollout.spec)).await?;
    children::remove(installations, &remove, rollout.spec.removal_policy).await?;
    if !batch.is_empty() || !remove.is_empty() {
        debug!(
            written = batch.len(),
            removed = remove.len(),
            "installations written"
        );
    }

    let next = [
        Some(known.due_in),
        requeue_after,
        more_to_write.then_some(Duration::from_secs(1)),
        Some(RESYNC),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(RESYNC);
    Ok(Action::requeue(next))
}

/// The rollout is being deleted: delete its installations (each uninstalls or not by its own
/// `deletionPolicy`), wait until they are gone, then let the rollout go.
async fn finalize(
    rollout: &TeamsAppRollout,
    api: &Api<TeamsAppRollout>,
    installations: &Api<TeamsAppInstallation>,
    ctx: &RolloutContext,
) -> Result<Action, RolloutError> {
    if !finalizer::holds(rollout, ROLLOUT_FINALIZER) {
        return Ok(Action::await_change());
    }
    let remaining = owned(&ctx.installations, rollout);
    if remaining.is_empty() {
        finalizer::remove(api, rollout, ROLLOUT_FINALIZER).await?;
        if let Some(uid) = &rollout.metadata.uid {
            ctx.memberships.forget(uid);
        }
        info!("rollout deleted with its installations");
        return Ok(Action::await_change());
    }
    let names: Vec<String> = remaining
        .iter()
        .filter(|c| !c.deleting)
        .map(|c| c.name.clone())
        .collect();
    children::delete_all(installations, &names).await?;
    debug!(
        remaining = remaining.len(),
        "waiting for the rollout's installations to go"
    );
    // Their deletions wake the rollout too; this is the fallback.
    Ok(Action::requeue(Duration::from_secs(5)))
}

/// Now, to the second: the API server stores times to the second, and a status that differs
/// from what was read back only by a fraction would be written on every pass.
fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Applies the status when it says something new (every write is a watch event).
async fn write_status(
    api: &Api<TeamsAppRollout>,
    rollout: &TeamsAppRollout,
    status: TeamsAppRolloutStatus,
) -> Result<(), kube::Error> {
    if rollout.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": TeamsAppRollout::api_version(&()),
        "kind": TeamsAppRollout::kind(&()),
        "status": status,
    });
    api.patch_status(
        &rollout.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Events are best effort: a failure to record one is logged, never fails the pass.
async fn publish(
    ctx: &RolloutContext,
    rollout: &TeamsAppRollout,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(note),
        action: "Rollout".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &rollout.object_ref(&())).await {
        warn!(error = %e, reason, "could not record Event");
    }
}
