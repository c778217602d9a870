//! kube-runtime wiring for `TeamsAppRollout`s, and one reconcile top to bottom: observe the
//! audience → [`plan`] (pure) → [`report`] (status and Events) → act (write installations).
//!
//! The rollout controller reads installations from the installation controller's cache (one
//! copy in memory), handed over by the process, and is woken by their changes; it never calls
//! install or upgrade itself.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, reflector};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{debug, info};

use crate::api::{
    ManagementPolicy, ROLLOUT_FINALIZER, TeamsAppInstallation, TeamsAppRollout,
    TeamsAppRolloutStatus,
};
use crate::graph::{GraphClient, GraphError};
use crate::kit::metrics::ControllerSeries;
use crate::kit::watch::{self, requested_at};
use crate::kit::{
    Announcement, FailureClock, HasPlumbing, Plumbing, ReconcileFailure, StateGauge, apply_status,
    clock, error_policy, finalizer, log_outcome,
};
use crate::tenancy::{Asking, Connections, Refused};

use super::super::core::{
    ChildToApply, Plan, Reason, Seen, Verdict, blocked, plan, revision, validate_spec,
};
use super::catalog::{CatalogFailure, Catalogs};
use super::children::{self, owned};
use super::membership::{AudienceFailure, Memberships};

/// The `controller` label of this kind's `controller_runtime_*` series.
pub const CONTROLLER: &str = "teamsapprollout";

/// At most this many installations are written per pass, so status keeps up with a large wave.
const WRITES_PER_PASS: usize = 500;

/// Re-check a rollout at least this often, whatever else is due.
const RESYNC: Duration = Duration::from_secs(300);

/// Re-read an audience that needs a person (a missing permission, an unknown group) this often.
const STALLED_AUDIENCE_RETRY: Duration = Duration::from_secs(120);

/// Wakes rollouts when one of their installations changes.
pub type Wakeups = mpsc::UnboundedReceiver<ObjectRef<TeamsAppRollout>>;

/// The owning rollout of an installation, if a rollout owns it.
pub fn owner_of(obj: &TeamsAppInstallation) -> Option<ObjectRef<TeamsAppRollout>> {
    let ns = obj.namespace()?;
    obj.owner_references()
        .iter()
        .find(|o| o.kind == "TeamsAppRollout" && o.api_version == TeamsAppRollout::api_version(&()))
        .map(|o| ObjectRef::new(&o.name).within(&ns))
}

/// What the process hands the rollout controller.
pub struct Wiring {
    pub metrics: ControllerSeries,
    pub states: Arc<StateGauge<TeamsAppRollout>>,
    /// Times how long rollouts spend failing, from the watch.
    pub failing: FailureClock,
    /// The installation controller's cache.
    pub installations: Store<TeamsAppInstallation>,
    /// A rollout to look at because one of its installations changed.
    pub wakeups: Wakeups,
    /// The shortest `spec.membershipInterval` honoured (`--min-membership-interval`).
    pub min_membership_interval: Duration,
    /// The cache the watch fills (the process reads it too: which rollouts use a connection).
    pub cache: reflector::store::Writer<TeamsAppRollout>,
    /// The policy of a rollout whose spec sets none (`--default-management-policy`).
    pub default_policy: ManagementPolicy,
}

struct Context {
    plumbing: Plumbing<TeamsAppRollout>,
    connections: Arc<Connections>,
    installations: Store<TeamsAppInstallation>,
    memberships: Memberships,
    catalogs: Catalogs,
    default_policy: ManagementPolicy,
}

impl HasPlumbing<TeamsAppRollout> for Context {
    fn plumbing(&self) -> &Plumbing<TeamsAppRollout> {
        &self.plumbing
    }
}

/// Why a rollout reconcile failed; retried with per-rollout backoff (or Graph's Retry-After).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A transient Graph failure reading the audience; the status already says so.
    #[error("{0}")]
    Graph(GraphError),
    #[error("the rollout has no namespace")]
    NoNamespace,
}

impl ReconcileFailure for RolloutError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            RolloutError::Graph(e) => e.retry_after(),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            RolloutError::Kube(_) => "kube",
            RolloutError::Graph(_) => "graph",
            RolloutError::NoNamespace => "invalid",
        }
    }
}

/// Runs the rollout controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    connections: Arc<Connections>,
    namespace: Option<String>,
    instance: Option<String>,
    wiring: Wiring,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Wiring {
        metrics,
        states,
        failing,
        installations,
        wakeups,
        min_membership_interval,
        cache: writer,
        default_policy,
    } = wiring;
    let ctx = Arc::new(Context {
        plumbing: Plumbing::new(client, instance, metrics.clone()),
        connections,
        installations,
        memberships: Memberships::new(min_membership_interval),
        catalogs: Catalogs::default(),
        default_policy,
    });
    let reader = writer.as_reader();
    let _counting = states.count(reader.clone());
    let objects = watch::objects(
        &ctx.plumbing.client,
        namespace.as_deref(),
        reader.clone(),
        ctx.plumbing.recorder.clone(),
        metrics.clone(),
    );
    let triggers = objects
        .modify(watch::slim)
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                failing.watch(event);
            }
        })
        .applied_objects()
        .predicate_filter(watch::trigger, Default::default());
    metrics.started(1);
    info!("rollout controller started");
    Controller::for_stream(triggers, reader)
        .reconcile_on(wakeups)
        // A wave of installations turning Ready is a burst of events: one pass for the burst.
        .with_config(controller::Config::default().debounce(Duration::from_millis(500)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| {
            log_outcome(&metrics, &outcome);
            futures::future::ready(())
        })
        .await;
    info!("rollout controller stopped");
}

async fn reconcile(
    rollout: Arc<TeamsAppRollout>,
    ctx: Arc<Context>,
) -> Result<Action, RolloutError> {
    ctx.plumbing
        .reconcile(&*rollout, async {
            let ns = rollout.namespace().ok_or(RolloutError::NoNamespace)?;
            let client = &ctx.plumbing.client;
            let api: Api<TeamsAppRollout> = Api::namespaced(client.clone(), &ns);
            let installations: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), &ns);
            if rollout.metadata.deletion_timestamp.is_some() {
                return finalize(&rollout, &api, &installations, &ctx).await;
            }
            if finalizer::holds(&*rollout, ROLLOUT_FINALIZER) {
                progress(&rollout, &api, &installations, &ctx).await
            } else {
                let rollout = finalizer::add(&api, &rollout, ROLLOUT_FINALIZER).await?;
                progress(&rollout, &api, &installations, &ctx).await
            }
        })
        .await
}

/// What one pass concluded, before anything is written.
struct Pass {
    status: TeamsAppRolloutStatus,
    events: Vec<Announcement>,
    /// Installations to create or update, and to remove (none when the pass stopped before
    /// the waves).
    apply: Vec<ChildToApply>,
    remove: Vec<String>,
    /// Installations whose users were first found absent in this read, and those back again.
    mark_absent: Vec<String>,
    clear_absent: Vec<String>,
    /// When the audience acted on was read.
    read_time: Option<Time>,
    /// When to look again; `None`: when the rollout changes.
    next: Option<Duration>,
    /// A transient Graph failure: the kit's backoff paces the retry.
    failure: Option<GraphError>,
}

/// One pass: observe the audience → plan → report → write the installations.
async fn progress(
    rollout: &TeamsAppRollout,
    api: &Api<TeamsAppRollout>,
    installations: &Api<TeamsAppInstallation>,
    ctx: &Context,
) -> Result<Action, RolloutError> {
    let pass = observe_and_plan(rollout, ctx, &clock::now()).await;
    report(rollout, api, ctx, &pass).await?;
    if let Some(failure) = pass.failure {
        return Err(RolloutError::Graph(failure));
    }
    // Status first, then children: a wave is recorded as started before its installations
    // appear, so no reader ever sees installations of a wave the status does not know began.
    let batch = &pass.apply[..pass.apply.len().min(WRITES_PER_PASS)];
    children::apply(installations, rollout, batch, &revision(&rollout.spec)).await?;
    children::remove(installations, &pass.remove, rollout.spec.removal_policy).await?;
    children::mark_absent(installations, &pass.mark_absent, pass.read_time.as_ref()).await?;
    children::mark_absent(installations, &pass.clear_absent, None).await?;
    if !batch.is_empty() || !pass.remove.is_empty() {
        debug!(
            written = batch.len(),
            removed = pass.remove.len(),
            "installations written"
        );
    }
    let more_to_write = pass.apply.len() > WRITES_PER_PASS;
    Ok(match pass.next {
        Some(next) if more_to_write => Action::requeue(next.min(Duration::from_secs(1))),
        Some(next) => Action::requeue(next),
        None => Action::await_change(),
    })
}

/// Validates the spec, reads the audience, and plans the pass.
async fn observe_and_plan(rollout: &TeamsAppRollout, ctx: &Context, now: &Time) -> Pass {
    let stopped = |verdict: Verdict, next, failure| Pass {
        status: blocked(rollout, &verdict, now),
        events: Vec::new(),
        apply: Vec::new(),
        remove: Vec::new(),
        mark_absent: Vec::new(),
        clear_absent: Vec::new(),
        read_time: None,
        next,
        failure,
    };
    if let Err(invalid) = validate_spec(&rollout.spec) {
        // Nothing changes until the spec does.
        let verdict = Verdict::stalled(Reason::InvalidSpec, invalid.to_string());
        return stopped(verdict, None, None);
    }
    let graph = match connect(ctx, rollout) {
        Ok(graph) => graph,
        // Woken when the connection (or its namespace's labels) changes.
        Err(refused) => return stopped(unusable(&refused), Some(STALLED_AUDIENCE_RETRY), None),
    };
    let requested = requested_at(rollout);
    let known = match ctx.memberships.audience(&graph, rollout, requested).await {
        Ok(known) => known,
        Err(AudienceFailure { verdict, error }) => {
            return stopped(verdict, Some(STALLED_AUDIENCE_RETRY), error);
        }
    };
    let catalog = match ctx.catalogs.catalog(&graph, rollout).await {
        Ok(catalog) => catalog,
        Err(CatalogFailure { verdict, error }) => {
            return stopped(verdict, Some(STALLED_AUDIENCE_RETRY), Some(error));
        }
    };
    let children = owned(&ctx.installations, rollout);
    let seen = Seen {
        audience: &known.audience,
        read_time: &known.read_time,
        suspect_read: known.suspect,
        policy: (rollout.spec.management_policy).unwrap_or(ctx.default_policy),
        catalog: &catalog,
    };
    let Plan {
        apply,
        remove,
        mark_absent,
        clear_absent,
        mut status,
        events,
        requeue_after,
    } = plan(rollout, &seen, &children, now);
    if let Some(audience) = &mut status.audience {
        audience.last_read_time = Some(known.read_time.clone());
    }
    status.last_handled_reconcile_at = requested.map(str::to_string);
    let next = [Some(known.due_in), requeue_after, Some(RESYNC)]
        .into_iter()
        .flatten()
        .min();
    Pass {
        status,
        events,
        apply,
        remove,
        mark_absent,
        clear_absent,
        read_time: Some(known.read_time.clone()),
        next,
        failure: None,
    }
}

/// The Graph client of the rollout's connection, or why it has none (from the caches alone).
/// Every group the audience names, excluded ones too, must be allowed by the connection.
fn connect(ctx: &Context, rollout: &TeamsAppRollout) -> Result<GraphClient, Refused> {
    let namespace = rollout.namespace().unwrap_or_default();
    let audience = &rollout.spec.audience;
    let groups: Vec<String> = audience
        .members
        .groups
        .iter()
        .chain(&audience.exclude.groups)
        .cloned()
        .collect();
    ctx.connections
        .resolve(&Asking {
            namespace: &namespace,
            connection_ref: rollout.spec.connection_ref.as_ref(),
            app: &rollout.spec.app,
            groups: &groups,
        })
        .map(|resolved| resolved.client)
}

/// A connection that cannot be used: refused by its policy (a person's job), or not Ready yet.
fn unusable(refused: &Refused) -> Verdict {
    match refused {
        Refused::NotFound(m) => Verdict::stalled(Reason::ConnectionNotFound, m.clone()),
        Refused::NotAllowed(m) => Verdict::stalled(Reason::ConnectionNotAllowed, m.clone()),
        Refused::NotReady(m) => Verdict::progressing(Reason::ConnectionNotReady, m.clone()),
    }
}

/// The single exit that writes status (only when changed) and publishes the pass's Events.
async fn report(
    rollout: &TeamsAppRollout,
    api: &Api<TeamsAppRollout>,
    ctx: &Context,
    pass: &Pass,
) -> Result<(), kube::Error> {
    apply_status(api, rollout, &pass.status).await?;
    for event in &pass.events {
        ctx.plumbing.publish(rollout, event).await;
    }
    Ok(())
}

/// The rollout is being deleted: delete its installations (each uninstalls or not by its own
/// `deletionPolicy`), wait until they are gone, then let the rollout go.
async fn finalize(
    rollout: &TeamsAppRollout,
    api: &Api<TeamsAppRollout>,
    installations: &Api<TeamsAppInstallation>,
    ctx: &Context,
) -> Result<Action, RolloutError> {
    if !finalizer::holds(rollout, ROLLOUT_FINALIZER) {
        return Ok(Action::await_change());
    }
    let remaining = owned(&ctx.installations, rollout);
    if remaining.is_empty() {
        finalizer::remove(api, rollout, ROLLOUT_FINALIZER).await?;
        if let Some(uid) = &rollout.metadata.uid {
            ctx.memberships.forget(uid);
            ctx.catalogs.forget(uid);
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
