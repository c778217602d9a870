//! The connection controller, one for each kind of connection: checks a connection (a token,
//! then one catalog read), reports what it found — granted and missing permissions, token
//! expiry, who uses it — and holds its deletion while resources still use it.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, info};

use crate::api::{
    CONNECTION_FINALIZER, ClusterGraphConnection, ConnectionKind, ConnectionSettings,
    GraphConnection, GraphConnectionStatus,
};
use crate::graph::{GraphClient, GraphError};
use crate::kit::conditions::Conditioned;
use crate::kit::metrics::ControllerSeries;
use crate::kit::watch;
use crate::kit::{
    Announcement, HasPlumbing, Plumbing, ReconcileFailure, apply_status, clock, error_policy,
    finalizer, log_outcome,
};

use super::super::core::{Failure, Findings, Granted, Reason, Verdict, judge, wants_fresh_token};
use crate::tenancy::{ConnectionKey, Connections};

/// The `controller` label of each kind's `controller_runtime_*` series.
pub const CONTROLLER: &str = "graphconnection";
pub const CLUSTER_CONTROLLER: &str = "clustergraphconnection";

/// How often a connection that resources still use is looked at while it waits to be deleted
/// (their deletions are not watched here).
const IN_USE_RECHECK: Duration = Duration::from_secs(10);

/// At most this many users are named in `status.usedBy`.
const USED_BY_SHOWN: usize = 10;

/// Who uses a connection: the resources that name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// `TeamsAppInstallation ns/name`, `TeamsAppRollout ns/name`, sorted.
    pub users: Vec<String>,
    /// Whether any of them is a rollout (rollouts need two more permissions).
    pub rollouts: bool,
    /// Whether any of them consents RSC application permissions (`spec.consent`).
    pub consent: bool,
    /// The change-notification subscriptions made through the connection.
    pub subscriptions: Vec<crate::api::ConnectionSubscription>,
}

/// Counts a connection's users from the operator's caches (handed over by the process).
pub type UsageOf = Arc<dyn Fn(&ConnectionKey) -> Usage + Send + Sync>;

/// What the two kinds of connection have in common, for one controller over both.
pub trait ConnectionObject:
    Resource<DynamicType = ()>
    + Conditioned<Status = GraphConnectionStatus>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    const KIND: ConnectionKind;
    fn settings(&self) -> &ConnectionSettings;
    /// The Api to write this object through.
    fn api(client: &Client, obj: &Self) -> Api<Self>;
}

impl ConnectionObject for GraphConnection {
    const KIND: ConnectionKind = ConnectionKind::GraphConnection;

    fn settings(&self) -> &ConnectionSettings {
        &self.spec.connection
    }

    fn api(client: &Client, obj: &Self) -> Api<Self> {
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default())
    }
}

impl ConnectionObject for ClusterGraphConnection {
    const KIND: ConnectionKind = ConnectionKind::ClusterGraphConnection;

    fn settings(&self) -> &ConnectionSettings {
        &self.spec.connection
    }

    fn api(client: &Client, _obj: &Self) -> Api<Self> {
        Api::all(client.clone())
    }
}

/// What of a connection decides its resources' answer: its spec (generation) and whether it is
/// Ready, with the reason.
fn answer_of<K: ConnectionObject>(obj: &K) -> (Option<i64>, Option<(String, String)>) {
    let ready = obj
        .conditions()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()));
    (obj.meta().generation, ready)
}

/// The key of a connection object.
pub fn key_of<K: ConnectionObject>(obj: &K) -> ConnectionKey {
    ConnectionKey {
        kind: K::KIND,
        namespace: obj.namespace(),
        name: obj.name_any(),
    }
}

struct Context<K: Resource<DynamicType = ()>> {
    plumbing: Plumbing<K>,
    connections: Arc<Connections>,
    usage: UsageOf,
}

impl<K: Resource<DynamicType = ()>> HasPlumbing<K> for Context<K> {
    fn plumbing(&self) -> &Plumbing<K> {
        &self.plumbing
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// A failure that passes on its own: reported in status, then retried with backoff.
    #[error("{0}")]
    Graph(GraphError),
}

impl ReconcileFailure for ConnectionError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectionError::Graph(e) => e.retry_after(),
            ConnectionError::Kube(_) => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ConnectionError::Kube(_) => "kube",
            ConnectionError::Graph(_) => "graph",
        }
    }
}

/// What the process hands one connection controller.
pub struct Wiring<K: Resource<DynamicType = ()> + Clone + 'static> {
    /// The kind's Api over what the operator watches.
    pub api: Api<crate::kit::decode::Decoded<K>>,
    /// The kind's cache, filled as the controller runs (the registry reads the same cache).
    pub writer: reflector::store::Writer<K>,
    pub connections: Arc<Connections>,
    pub usage: UsageOf,
    pub metrics: ControllerSeries,
    /// Called for every change of a connection after the first list (status included, and
    /// deletion): the resources that use it look again.
    pub on_change: Box<dyn Fn(&ConnectionKey) + Send + Sync>,
    /// Connections to look at again now, e.g. when their subscriptions changed.
    pub reconcile_on: futures::stream::BoxStream<'static, ObjectRef<K>>,
}

/// Runs the controller of one kind of connection until `shutdown` resolves.
pub async fn run<K: ConnectionObject>(
    client: Client,
    instance: Option<String>,
    wiring: Wiring<K>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Wiring {
        api,
        writer,
        connections,
        usage,
        metrics,
        on_change,
        reconcile_on,
    } = wiring;
    let ctx = Arc::new(Context {
        plumbing: Plumbing::new(client, instance, metrics.clone()),
        connections,
        usage,
    });
    let reader = writer.as_reader();
    let objects = watch::objects_of(
        api,
        reader.clone(),
        ctx.plumbing.recorder.clone(),
        metrics.clone(),
    );
    // Before the cache takes the new version: compared with the old one, only what changes a
    // resource's answer (the spec, or being Ready) wakes its users — not a token's new expiry
    // or the in-use count, which would wake thousands of resources for nothing.
    let previous = reader.clone();
    let triggers = objects
        .modify(watch::slim)
        .inspect(move |event| match event {
            Ok(watcher::Event::Apply(obj)) => {
                let old = previous.get(&ObjectRef::from_obj(obj));
                if old.as_deref().map(answer_of) != Some(answer_of(obj)) {
                    on_change(&key_of(obj))
                }
            }
            Ok(watcher::Event::Delete(obj)) => on_change(&key_of(obj)),
            _ => {}
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(watch::trigger, Default::default());
    metrics.started(1);
    info!(kind = K::KIND.as_str(), "connection controller started");
    Controller::for_stream(triggers, reader)
        .reconcile_on(reconcile_on)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy, ctx)
        .for_each(|outcome| {
            log_outcome(&metrics, &outcome);
            futures::future::ready(())
        })
        .await;
    info!(kind = K::KIND.as_str(), "connection controller stopped");
}

async fn reconcile<K: ConnectionObject>(
    obj: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Action, ConnectionError> {
    ctx.plumbing
        .reconcile(&*obj, async {
            let api = K::api(&ctx.plumbing.client, &obj);
            let key = key_of(&*obj);
            let usage = (ctx.usage)(&key);
            if obj.meta().deletion_timestamp.is_some() {
                return finalize(&*obj, &api, &ctx, &key, &usage).await;
            }
            let obj = if finalizer::holds(&*obj, CONNECTION_FINALIZER) {
                (*obj).clone()
            } else {
                finalizer::add(&api, &*obj, CONNECTION_FINALIZER).await?
            };
            check(&obj, &api, &ctx, &key, &usage).await
        })
        .await
}

/// One check: a token, a read, a verdict, a status. While the connection is being deleted
/// and still used, it goes on being checked (its resources may still need it to uninstall) and
/// its status says who holds the deletion.
async fn check<K: ConnectionObject>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context<K>,
    key: &ConnectionKey,
    usage: &Usage,
) -> Result<Action, ConnectionError> {
    let secrets_namespace = match K::KIND {
        ConnectionKind::GraphConnection => obj.namespace().unwrap_or_default(),
        ConnectionKind::ClusterGraphConnection => ctx.connections.operator_namespace().to_string(),
    };
    let last_reason = ready_reason(obj);
    let (findings, expires_at, transient) =
        match ctx
            .connections
            .client(key, obj.settings(), &secrets_namespace)
        {
            Ok(client) => observe(&client, usage, wants_fresh_token(last_reason.as_deref())).await,
            Err(message) => (
                Findings {
                    token: Err(Failure::Credential(message)),
                    probe: None,
                    used_by_rollouts: usage.rollouts,
                    used_for_consent: usage.consent,
                },
                None,
                None,
            ),
        };
    let mut judgment = judge(&findings);
    let deleting = obj.meta().deletion_timestamp.is_some();
    if deleting {
        judgment.verdict = held_by(&judgment.verdict, usage);
        judgment.recheck = IN_USE_RECHECK;
    }
    let granted = findings
        .token
        .as_ref()
        .map(|g| g.roles.clone())
        .unwrap_or_default();
    let status = GraphConnectionStatus {
        conditions: judgment.verdict.conditions(
            obj.meta().generation,
            obj.conditions(),
            &clock::now(),
        ),
        observed_generation: obj.meta().generation,
        granted_permissions: granted,
        missing_permissions: judgment.missing.iter().map(|s| s.to_string()).collect(),
        token_expires_at: expires_at,
        in_use: Some(usage.users.len() as i64),
        used_by: usage.users.iter().take(USED_BY_SHOWN).cloned().collect(),
        subscriptions: usage.subscriptions.clone(),
    };
    report(obj, api, ctx, &judgment.verdict, &status).await?;
    match transient {
        // Reported; the kit's backoff (with Graph's Retry-After) schedules the next look.
        Some(e) if judgment.verdict.is_reconciling() => Err(ConnectionError::Graph(e)),
        _ => Ok(Action::requeue(judgment.recheck)),
    }
}

/// A connection being deleted that resources still use: still Ready if it works (they may need
/// it to uninstall), with the reason `InUse` naming who holds it.
fn held_by(verdict: &Verdict, usage: &Usage) -> Verdict {
    let shown = usage
        .users
        .iter()
        .take(USED_BY_SHOWN)
        .cloned()
        .collect::<Vec<_>>();
    let more = usage.users.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let waits = format!(
        "deletion waits until no resource uses this connection: {} resource(s) do ({}{more})",
        usage.users.len(),
        shown.join(", "),
    );
    if verdict.is_ready() {
        Verdict::settled(Reason::InUse, waits)
    } else {
        Verdict::new(
            verdict.standing,
            verdict.reason,
            format!("{}; {waits}", verdict.message),
        )
    }
}

/// The reason of the Ready condition the object shows now.
fn ready_reason<K: ConnectionObject>(obj: &K) -> Option<String> {
    obj.conditions()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

/// Gets a token and makes one read. Returns what was found, the token's expiry, and the error
/// when it is one that passes on its own.
async fn observe(
    client: &GraphClient,
    usage: &Usage,
    fresh_token: bool,
) -> (Findings, Option<Time>, Option<GraphError>) {
    let (token, expires_at, mut transient) = match client.token_facts(fresh_token).await {
        Ok(facts) => {
            let expires_at = facts
                .expires_at
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .map(Time);
            let granted = Granted {
                roles: facts.roles,
                expires_at: facts.expires_at,
            };
            (Ok(granted), expires_at, None)
        }
        Err(e) => (Err(failure(&e)), None, Some(e)),
    };
    let probe = match &token {
        Ok(_) => match client.probe().await {
            Ok(()) => Some(Ok(())),
            Err(e) => {
                let failed = failure(&e);
                transient = Some(e);
                Some(Err(failed))
            }
        },
        Err(_) => None,
    };
    let findings = Findings {
        token,
        probe,
        used_by_rollouts: usage.rollouts,
        used_for_consent: usage.consent,
    };
    (findings, expires_at, transient)
}

fn failure(e: &GraphError) -> Failure {
    match e {
        GraphError::Credential(message) => Failure::Credential(message.clone()),
        other => Failure::Graph {
            class: other.class(),
            message: other.to_string(),
        },
    }
}

/// Writes the status, and an Event when the reason changed.
async fn report<K: ConnectionObject>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context<K>,
    verdict: &Verdict,
    status: &GraphConnectionStatus,
) -> Result<(), kube::Error> {
    let before = ready_reason(obj);
    apply_status(api, obj, status).await?;
    if before.as_deref() != Some(verdict.reason.as_str()) {
        let event = if verdict.is_stalled() {
            Announcement::warning(verdict.reason.as_str(), "Checking", verdict.message.clone())
        } else {
            Announcement::normal(verdict.reason.as_str(), "Checking", verdict.message.clone())
        };
        ctx.plumbing.publish(obj, &event).await;
    }
    Ok(())
}

/// The connection is being deleted: it goes once no resource names it, so that resources
/// with `deletionPolicy: Uninstall` can always still uninstall through it.
async fn finalize<K: ConnectionObject>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context<K>,
    key: &ConnectionKey,
    usage: &Usage,
) -> Result<Action, ConnectionError> {
    if !finalizer::holds(obj, CONNECTION_FINALIZER) {
        return Ok(Action::await_change());
    }
    if usage.users.is_empty() {
        ctx.connections.forget(key);
        finalizer::remove(api, obj, CONNECTION_FINALIZER).await?;
        info!("connection deleted: no resource uses it");
        return Ok(Action::await_change());
    }
    debug!(
        users = usage.users.len(),
        "connection in use: deletion waits"
    );
    check(obj, api, ctx, key, usage).await
}
