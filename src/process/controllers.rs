//! The one place the kinds meet: the installation controller fills the cache the rollout
//! controller reads, and wakes a rollout when one of its installations changes; the connection
//! controllers check the connections every resource's Graph calls go through, and wake the
//! resources that use one when it changes. The kinds are peers; neither imports the other.

use std::future::Future;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::warn;

use crate::api::{
    ClusterGraphConnection, ConnectionKind, ConnectionRef, Consent, GraphConnection,
    TeamsAppInstallation, TeamsAppRollout,
};
use crate::connection::{self, Usage, UsageOf};
use crate::graph::GraphSettings;
use crate::installation::{self, ControllerSettings};
use crate::kit::decode::Decoded;
use crate::kit::watch;
use crate::rollout;
use crate::telemetry::Telemetry;
use crate::tenancy::{Caches, ConnectionKey, Connections, DefaultConnection, MetricsFor};

/// Why the controllers could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the TeamsAppInstallation CRD is not installed (install it with `teams-app-operator crd | kubectl apply -f -` or the Helm chart): {0}"
    )]
    CrdMissing(kube::Error),
    #[error("cannot list TeamsAppInstallations: {0}")]
    Kube(kube::Error),
}

/// How the operator reaches Graph: the flags' settings every connection's client starts from,
/// the operator's own connection (unless turned off), and where `ClusterGraphConnection`s keep
/// their credentials.
#[derive(Clone)]
pub struct GraphAccess {
    pub template: GraphSettings,
    /// The Graph metrics observer of each connection, by its `connection` label.
    pub metrics_for: MetricsFor,
    pub default: Option<DefaultConnection>,
    pub operator_namespace: String,
}

/// Checks that the installation CRD is installed and its resources can be listed: one clear
/// error for a missing CRD or missing RBAC at start-up, instead of a watcher retrying forever.
pub async fn preflight(client: &Client, settings: &ControllerSettings) -> Result<(), RunError> {
    let api = watch::scoped::<TeamsAppInstallation>(client, settings.namespace.as_deref());
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Err(RunError::CrdMissing(kube::Error::Api(e))),
        Err(e) => Err(RunError::Kube(e)),
    }
}

/// Runs every controller until `shutdown` resolves; in-flight reconciles finish first.
/// Dropping the returned future stops them at once (what losing the leader Lease does).
pub async fn run(
    client: Client,
    access: GraphAccess,
    settings: ControllerSettings,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), RunError> {
    preflight(&client, &settings).await?;
    let namespace = settings.namespace.as_deref();
    let rollouts_api = watch::scoped::<TeamsAppRollout>(&client, namespace);
    let rollouts_served = watch::served(&rollouts_api).await.map_err(RunError::Kube)?;
    let (installations, installation_cache) = reflector::store();
    let (rollouts, rollout_cache) = reflector::store::<TeamsAppRollout>();
    let (wake_rollout, rollout_wakeups) = mpsc::unbounded();
    let (wake_installation, installation_wakeups) = mpsc::unbounded();
    let wake = Wake {
        installations: installations.clone(),
        rollouts: rollouts.clone(),
        installation: wake_installation,
        rollout: wake_rollout.clone(),
    };
    let connection_kinds = ConnectionKinds::start(
        &client,
        access,
        &settings,
        &telemetry,
        &wake,
        shutdown.clone(),
    )
    .await?;
    let metrics = &telemetry.metrics;
    telemetry.health.controller_started();
    let installation_wiring = installation::Wiring {
        metrics: metrics.controller(installation::CONTROLLER),
        states: metrics.installation_states.clone(),
        failing: metrics.failing.controller(installation::CONTROLLER),
        synced: {
            let health = telemetry.health.clone();
            Box::new(move || health.caches_synced())
        },
        cache: installation_cache,
        // Every change of an installation a rollout owns, status included, wakes that rollout.
        // The receiver is gone only when rollouts are not reconciled.
        on_change: Box::new(move |obj| {
            if let Some(owner) = rollout::owner_of(obj) {
                let _ = wake_rollout.unbounded_send(owner);
            }
        }),
        wakeups: installation_wakeups,
    };
    let connections = connection_kinds.registry.clone();
    // Without the rollout CRD (a chart upgraded from before rollouts: Helm never adds CRDs on
    // upgrade) installations are reconciled all the same.
    let rollouts_run = if rollouts_served {
        let wiring = rollout::Wiring {
            metrics: metrics.controller(rollout::CONTROLLER),
            states: metrics.rollout_states.clone(),
            failing: metrics.failing.controller(rollout::CONTROLLER),
            installations,
            wakeups: rollout_wakeups,
            min_membership_interval: settings.min_membership_interval,
            default_policy: settings.default_management_policy,
            cache: rollout_cache,
        };
        let namespace = settings.namespace.clone();
        let instance = settings.instance.clone();
        let connections = connections.clone();
        let synced = connection_kinds.synced.clone();
        let shutdown = shutdown.clone();
        let client = client.clone();
        async move {
            synced.await;
            rollout::run(client, connections, namespace, instance, wiring, shutdown).await
        }
        .boxed()
    } else {
        warn!(
            "the TeamsAppRollout CRD is not installed: rollouts are not reconciled (install it with `teams-app-operator crd | kubectl apply -f -`)"
        );
        drop(rollout_cache);
        futures::future::ready(()).boxed()
    };
    // Resources wait for the connections' caches: before, every named connection would look
    // missing.
    let installations_run = {
        let synced = connection_kinds.synced.clone();
        async move {
            synced.await;
            installation::run(client, connections, settings, installation_wiring, shutdown).await
        }
    };
    // The installation controller ends when shutdown is asked for (after its in-flight
    // reconciles). The rollout and connection controllers get a few seconds more to finish
    // their own, and are then dropped: a pass stuck on the API server must not keep the
    // process from exiting.
    let others = futures::future::join(rollouts_run, connection_kinds.run).fuse();
    futures::pin_mut!(installations_run, others);
    futures::select! {
        () = installations_run.as_mut().fuse() => {
            let grace = tokio::time::timeout(SHUTDOWN_GRACE, &mut others).await;
            if grace.is_err() {
                warn!("the rollout or connection controllers did not stop in time after shutdown; stopping them");
            }
        }
        _ = others => installations_run.await,
    }
    Ok(())
}

/// How long the other controllers may take to stop once the installation controller has.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Who to wake when a connection or a namespace changes.
#[derive(Clone)]
struct Wake {
    installations: Store<TeamsAppInstallation>,
    rollouts: Store<TeamsAppRollout>,
    installation: mpsc::UnboundedSender<ObjectRef<TeamsAppInstallation>>,
    rollout: mpsc::UnboundedSender<ObjectRef<TeamsAppRollout>>,
}

impl Wake {
    /// The resources that name `key`.
    fn users_of(&self, key: &ConnectionKey) {
        self.matching(|ns, reference| reference.is_some_and(|r| ConnectionKey::of(ns, r) == *key));
    }

    /// The resources of `namespace` that name a ClusterGraphConnection (its selector may
    /// match the namespace's labels now, or no more).
    fn cluster_users_in(&self, namespace: &str) {
        self.matching(|ns, reference| {
            ns == namespace
                && reference.is_some_and(|r| r.kind == ConnectionKind::ClusterGraphConnection)
        });
    }

    fn matching(&self, wanted: impl Fn(&str, Option<&ConnectionRef>) -> bool) {
        for obj in self.installations.state() {
            let ns = obj.namespace().unwrap_or_default();
            if wanted(&ns, obj.spec.connection_ref.as_ref()) {
                let _ = self.installation.unbounded_send(ObjectRef::from_obj(&*obj));
            }
        }
        for obj in self.rollouts.state() {
            let ns = obj.namespace().unwrap_or_default();
            if wanted(&ns, obj.spec.connection_ref.as_ref()) {
                let _ = self.rollout.unbounded_send(ObjectRef::from_obj(&*obj));
            }
        }
    }

    /// Who uses `key`: every resource that names it, rollouts included.
    fn usage(&self, key: &ConnectionKey) -> Usage {
        let names = |kind: &str, ns: String, name: String, reference: Option<&ConnectionRef>| {
            reference
                .filter(|r| ConnectionKey::of(&ns, r) == *key)
                .map(|_| format!("{kind} {ns}/{name}"))
        };
        let installations = self.installations.state();
        let rollouts_cached = self.rollouts.state();
        let names_it = |ns: Option<String>, reference: Option<&ConnectionRef>| {
            reference.is_some_and(|r| ConnectionKey::of(&ns.unwrap_or_default(), r) == *key)
        };
        let consent = installations
            .iter()
            .filter(|o| names_it(o.namespace(), o.spec.connection_ref.as_ref()))
            .any(|o| consents(o.spec.consent.as_ref()))
            || rollouts_cached
                .iter()
                .filter(|o| names_it(o.namespace(), o.spec.connection_ref.as_ref()))
                .any(|o| consents(o.spec.consent.as_ref()));
        let mut users: Vec<String> = installations
            .iter()
            .filter_map(|o| {
                names(
                    "TeamsAppInstallation",
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                    o.spec.connection_ref.as_ref(),
                )
            })
            .collect();
        let rollouts: Vec<String> = rollouts_cached
            .iter()
            .filter_map(|o| {
                names(
                    "TeamsAppRollout",
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                    o.spec.connection_ref.as_ref(),
                )
            })
            .collect();
        let used_by_rollouts = !rollouts.is_empty();
        users.extend(rollouts);
        users.sort();
        Usage {
            users,
            rollouts: used_by_rollouts,
            consent,
        }
    }
}

/// Whether a resource names RSC application permissions it consents to: its connection then
/// needs the `…AndConsent…` permission. (`MatchCatalog` alone does not count: the app may need
/// none, and a refused consent says which permission is missing on the resource itself.)
fn consents(consent: Option<&Consent>) -> bool {
    consent.is_some_and(|c| !c.permissions.is_empty())
}

/// The connection controllers, the namespace watch, and the registry they fill.
struct ConnectionKinds {
    registry: Arc<Connections>,
    /// Resolves once every connection cache has its first list.
    synced: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
    run: futures::future::BoxFuture<'static, ()>,
}

impl ConnectionKinds {
    async fn start(
        client: &Client,
        access: GraphAccess,
        settings: &ControllerSettings,
        telemetry: &Telemetry,
        wake: &Wake,
        shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
    ) -> Result<Self, RunError> {
        let namespace = settings.namespace.as_deref();
        // Cluster-scoped connections and namespace labels only when watching every namespace
        // (a namespaced install has no cluster-wide RBAC).
        let cluster_wide = namespace.is_none();
        let connections_api = watch::scoped::<Decoded<GraphConnection>>(client, namespace);
        let served = watch::served(&connections_api)
            .await
            .map_err(RunError::Kube)?;
        if !served {
            warn!(
                "the GraphConnection CRDs are not installed: resources naming a connection are ConnectionNotFound (install them with `teams-app-operator crd | kubectl apply -f -`)"
            );
        }
        let (gc_cache, gc_writer) = reflector::store::<GraphConnection>();
        let (cgc_cache, cgc_writer) = reflector::store::<ClusterGraphConnection>();
        let (ns_cache, ns_writer) = reflector::store::<Namespace>();
        let registry = Arc::new(Connections::new(
            client.clone(),
            access.operator_namespace,
            access.template,
            access.default,
            Caches {
                connections: gc_cache.clone(),
                cluster_connections: cgc_cache.clone(),
                namespaces: ns_cache.clone(),
            },
            access.metrics_for,
        ));
        if !served {
            let ready = futures::future::ready(()).boxed().shared();
            return Ok(Self {
                registry,
                synced: ready,
                run: futures::future::ready(()).boxed(),
            });
        }
        let usage: UsageOf = {
            let wake = wake.clone();
            Arc::new(move |key: &ConnectionKey| wake.usage(key))
        };
        let metrics = &telemetry.metrics;
        let on_change = |wake: &Wake| -> Box<dyn Fn(&ConnectionKey) + Send + Sync> {
            let wake = wake.clone();
            Box::new(move |key: &ConnectionKey| wake.users_of(key))
        };
        let namespaced = connection::run::<GraphConnection>(
            client.clone(),
            settings.instance.clone(),
            connection::Wiring {
                api: connections_api,
                writer: gc_writer,
                connections: registry.clone(),
                usage: usage.clone(),
                metrics: metrics.controller(connection::CONTROLLER),
                on_change: on_change(wake),
            },
            shutdown.clone(),
        );
        let synced = {
            let (gc, cgc, ns) = (gc_cache.clone(), cgc_cache.clone(), ns_cache.clone());
            async move {
                let _ = gc.wait_until_ready().await;
                if cluster_wide {
                    let _ = cgc.wait_until_ready().await;
                    let _ = ns.wait_until_ready().await;
                }
            }
            .boxed()
            .shared()
        };
        let run = if cluster_wide {
            let cluster = connection::run::<ClusterGraphConnection>(
                client.clone(),
                settings.instance.clone(),
                connection::Wiring {
                    api: Api::all(client.clone()),
                    writer: cgc_writer,
                    connections: registry.clone(),
                    usage,
                    metrics: metrics.controller(connection::CLUSTER_CONTROLLER),
                    on_change: on_change(wake),
                },
                shutdown.clone(),
            );
            let namespaces = namespace_labels(client.clone(), ns_writer, wake.clone(), shutdown);
            futures::future::join3(namespaced, cluster, namespaces)
                .map(drop)
                .boxed()
        } else {
            drop((cgc_writer, ns_writer));
            namespaced.boxed()
        };
        Ok(Self {
            registry,
            synced,
            run,
        })
    }
}

/// Keeps the namespaces' labels in the registry's cache (a ClusterGraphConnection's selector is
/// matched against them) and wakes a namespace's resources when its labels change.
async fn namespace_labels(
    client: Client,
    writer: reflector::store::Writer<Namespace>,
    wake: Wake,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let api: Api<Namespace> = Api::all(client);
    let config = watcher::Config::default().any_semantic();
    let previous = writer.as_reader();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|ns| {
            // Only the name and labels are read.
            ns.spec = None;
            ns.status = None;
            ns.metadata.annotations = None;
            ns.metadata.managed_fields = None;
        })
        // Before the cache takes the new version: only a change of labels wakes anyone.
        .inspect(move |event| {
            if let Ok(watcher::Event::Apply(ns)) = event {
                let old = previous.get(&ObjectRef::from_obj(ns));
                if old.map(|o| o.metadata.labels.clone()) != Some(ns.metadata.labels.clone()) {
                    wake.cluster_users_in(&ns.name_any());
                }
            }
        })
        .reflect(writer)
        .for_each(|event| {
            if let Err(e) = event {
                warn!(error = %e, "watching namespaces failed; retrying");
            }
            futures::future::ready(())
        });
    futures::pin_mut!(stream, shutdown);
    futures::future::select(stream, shutdown).await;
}

#[cfg(test)]
mod tests {
    use crate::installation::core::Reason as I;
    use crate::kit::failing::PASSING_FAILURES;
    use crate::rollout::core::Reason as R;

    /// The kit's clock counts time spent failing by these reasons, for both kinds it is wired to.
    #[test]
    fn both_kinds_give_the_reasons_the_failing_clock_counts() {
        let installation = [I::Throttled, I::GraphUnavailable, I::AuthenticationFailed];
        let rollout = [R::Throttled, R::GraphUnavailable, R::AuthenticationFailed];
        assert_eq!(installation.map(I::as_str), PASSING_FAILURES);
        assert_eq!(rollout.map(R::as_str), PASSING_FAILURES);
    }
}
