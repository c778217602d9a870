//! The connection kinds' side of the process: the GraphConnection and ClusterGraphConnection
//! controllers, the namespace-label watch a ClusterGraphConnection's selector needs, and the
//! registry they fill, which every resource's Graph calls resolve through.

use std::future::Future;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::warn;

use crate::api::{ClusterGraphConnection, GraphConnection};
use crate::connection::{self, UsageOf};
use crate::graph::GraphSettings;
use crate::installation::ControllerSettings;
use crate::kit::decode::Decoded;
use crate::kit::watch;
use crate::telemetry::Telemetry;
use crate::tenancy::{Caches, ConnectionKey, Connections, DefaultConnection, MetricsFor};

use super::receiver::Receiver;
use super::wake::Wake;

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
    /// Where Graph's change notifications are received, if anywhere.
    pub notifications: Option<Receiver>,
}

/// Asks a connection's controller to look at it again (its status then shows its
/// subscriptions anew), by the name resources know it by; the operator's own is no object.
pub(super) type LookAgain = Arc<dyn Fn(&str) + Send + Sync>;

/// The connection controllers, the namespace watch, and the registry they fill.
pub(super) struct ConnectionKinds {
    pub(super) registry: Arc<Connections>,
    pub(super) look_again: LookAgain,
    /// Resolves once every connection cache has its first list.
    pub(super) synced: Shared<BoxFuture<'static, ()>>,
    pub(super) run: BoxFuture<'static, ()>,
}

/// The caches' writers the watches fill.
struct Writers {
    connections: reflector::store::Writer<GraphConnection>,
    cluster_connections: reflector::store::Writer<ClusterGraphConnection>,
    namespaces: reflector::store::Writer<Namespace>,
}

impl ConnectionKinds {
    pub(super) async fn start(
        client: &Client,
        access: GraphAccess,
        settings: &ControllerSettings,
        telemetry: &Telemetry,
        wake: &Wake,
        shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
    ) -> Result<Self, kube::Error> {
        let namespace = settings.namespace.as_deref();
        let connections_api = watch::scoped::<Decoded<GraphConnection>>(client, namespace);
        let served = watch::served(&connections_api).await?;
        let (caches, writers) = caches();
        let registry = Arc::new(Connections::new(
            client.clone(),
            access.operator_namespace,
            access.template,
            access.default,
            caches.clone(),
            access.metrics_for,
        ));
        let (look_again, wakeups) = look_again();
        if !served {
            warn!(
                "the GraphConnection CRDs are not installed: resources naming a connection are ConnectionNotFound (install them with `teams-app-operator crd | kubectl apply -f -`)"
            );
            return Ok(Self {
                registry,
                look_again,
                synced: futures::future::ready(()).boxed().shared(),
                run: futures::future::ready(()).boxed(),
            });
        }
        // Cluster-scoped connections and namespace labels only when watching every namespace
        // (a namespaced install has no cluster-wide RBAC).
        let cluster_wide = namespace.is_none();
        let usage: UsageOf = {
            let wake = wake.clone();
            let board = access.notifications.map(|n| n.board);
            Arc::new(move |key: &ConnectionKey| {
                let mut usage = wake.usage(key);
                if let Some(board) = &board {
                    usage.subscriptions = board.of_connection(&key.describe());
                }
                usage
            })
        };
        let common = Common {
            registry: &registry,
            usage,
            telemetry,
            wake,
        };
        let instance = settings.instance.clone();
        let namespaced = connection::run::<GraphConnection>(
            client.clone(),
            instance.clone(),
            common.wiring(
                connections_api,
                writers.connections,
                wakeups.namespaced.boxed(),
                connection::CONTROLLER,
            ),
            shutdown.clone(),
        );
        let run = if cluster_wide {
            let cluster = connection::run::<ClusterGraphConnection>(
                client.clone(),
                instance,
                common.wiring(
                    Api::all(client.clone()),
                    writers.cluster_connections,
                    wakeups.cluster.boxed(),
                    connection::CLUSTER_CONTROLLER,
                ),
                shutdown.clone(),
            );
            let labels =
                namespace_labels(client.clone(), writers.namespaces, wake.clone(), shutdown);
            futures::future::join3(namespaced, cluster, labels)
                .map(drop)
                .boxed()
        } else {
            drop((writers.cluster_connections, writers.namespaces));
            namespaced.boxed()
        };
        Ok(Self {
            registry,
            look_again,
            synced: synced(caches, cluster_wide),
            run,
        })
    }
}

/// What both connection controllers are wired to.
struct Common<'a> {
    registry: &'a Arc<Connections>,
    usage: UsageOf,
    telemetry: &'a Telemetry,
    wake: &'a Wake,
}

impl Common<'_> {
    fn wiring<K: Resource<DynamicType = ()> + Clone + 'static>(
        &self,
        api: Api<Decoded<K>>,
        writer: reflector::store::Writer<K>,
        reconcile_on: futures::stream::BoxStream<'static, ObjectRef<K>>,
        controller: &'static str,
    ) -> connection::Wiring<K> {
        let wake = self.wake.clone();
        connection::Wiring {
            api,
            writer,
            connections: self.registry.clone(),
            usage: self.usage.clone(),
            metrics: self.telemetry.metrics.controller(controller),
            on_change: Box::new(move |key: &ConnectionKey| wake.users_of(key)),
            reconcile_on,
        }
    }
}

/// The connection controllers' extra queues.
struct Wakeups {
    namespaced: mpsc::UnboundedReceiver<ObjectRef<GraphConnection>>,
    cluster: mpsc::UnboundedReceiver<ObjectRef<ClusterGraphConnection>>,
}

/// [`LookAgain`], and the queues it fills.
fn look_again() -> (LookAgain, Wakeups) {
    let (namespaced, namespaced_queue) = mpsc::unbounded();
    let (cluster, cluster_queue) = mpsc::unbounded();
    let look_again: LookAgain = Arc::new(move |connection: &str| {
        let Some(key) = ConnectionKey::described(connection) else {
            return;
        };
        match key.namespace {
            Some(ns) => drop(namespaced.unbounded_send(ObjectRef::new(&key.name).within(&ns))),
            None => drop(cluster.unbounded_send(ObjectRef::new(&key.name))),
        }
    });
    let wakeups = Wakeups {
        namespaced: namespaced_queue,
        cluster: cluster_queue,
    };
    (look_again, wakeups)
}

/// The registry's caches, and their writers.
fn caches() -> (Caches, Writers) {
    let (connections, gc) = reflector::store::<GraphConnection>();
    let (cluster_connections, cgc) = reflector::store::<ClusterGraphConnection>();
    let (namespaces, ns) = reflector::store::<Namespace>();
    let caches = Caches {
        connections,
        cluster_connections,
        namespaces,
    };
    let writers = Writers {
        connections: gc,
        cluster_connections: cgc,
        namespaces: ns,
    };
    (caches, writers)
}

/// Resolves once the caches that are filled have their first list.
fn synced(caches: Caches, cluster_wide: bool) -> Shared<BoxFuture<'static, ()>> {
    async move {
        let _ = caches.connections.wait_until_ready().await;
        if cluster_wide {
            let _ = caches.cluster_connections.wait_until_ready().await;
            let _ = caches.namespaces.wait_until_ready().await;
        }
    }
    .boxed()
    .shared()
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
