//! Which Graph client serves a resource: the registry of connections.
//!
//! Every resource names a connection (`spec.connectionRef`) or uses the operator's own (its
//! flags). [`Connections::resolve`] turns that into a [`GraphClient`] — or a refusal, decided
//! from the cluster's caches alone, before any Graph call. Clients are built once per
//! connection and rebuilt when its spec changes; clients of one (tenant, client id) share one
//! request budget, since Graph throttles per app registration per tenant, and different
//! tenants never slow each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};
use url::Url;

use super::credentials::CredentialRef;
use super::policy::{Reach, Request, admit};
use crate::api::{
    AppReference, ClusterGraphConnection, ConnectionCloud, ConnectionKind, ConnectionRef,
    ConnectionSettings, GraphConnection,
};
use crate::graph::{
    BudgetConfig, Cloud, CredentialSource, GraphClient, GraphMetrics, GraphSettings, TenantBudget,
};
use crate::kit::conditions::is_true;

/// Why a resource cannot use the connection it names (or the operator's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The named connection does not exist (or the operator's own is turned off).
    NotFound(String),
    /// The connection's policy does not serve this namespace, app or group set.
    NotAllowed(String),
    /// The connection exists and allows it, but is not Ready (yet).
    NotReady(String),
}

/// A client for one resource, and what to call its connection in messages and metrics.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub client: GraphClient,
    /// `GraphConnection team-a/graph`, `ClusterGraphConnection shared`, or `default`.
    pub connection: String,
}

/// What a resource asks for.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    pub namespace: &'a str,
    pub connection_ref: Option<&'a ConnectionRef>,
    pub app: &'a AppReference,
    /// The groups a rollout names; empty for an installation.
    pub groups: &'a [String],
}

/// The operator's own connection, from its flags.
#[derive(Clone)]
pub struct DefaultConnection {
    pub client: GraphClient,
    /// `--default-connection-namespaces`: empty serves every namespace.
    pub namespaces: Vec<String>,
}

/// The caches the registry reads.
#[derive(Clone)]
pub struct Caches {
    pub connections: Store<GraphConnection>,
    pub cluster_connections: Store<ClusterGraphConnection>,
    pub namespaces: Store<Namespace>,
}

/// Makes the Graph metrics observer of one connection, by its `connection` label.
pub type MetricsFor = Arc<dyn Fn(&str) -> Arc<dyn GraphMetrics> + Send + Sync>;

/// The registry.
pub struct Connections {
    kube: Client,
    /// Where a `ClusterGraphConnection`'s Secrets and ServiceAccounts are read.
    operator_namespace: String,
    /// The flags' settings (timeouts, retries, token refresh, metrics, default rates), the base
    /// of every connection's client.
    template: GraphSettings,
    default: Option<DefaultConnection>,
    caches: Caches,
    /// Each connection's client records its Graph series under its own `connection` label.
    metrics_for: MetricsFor,
    clients: Mutex<HashMap<ConnectionKey, Built>>,
    budgets: Mutex<HashMap<BudgetKey, Arc<TenantBudget>>>,
}

/// A connection by kind, namespace (none for a cluster connection) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionKey {
    pub kind: ConnectionKind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ConnectionKey {
    /// The key of the connection `reference` names from `namespace`.
    pub fn of(namespace: &str, reference: &ConnectionRef) -> Self {
        Self {
            kind: reference.kind,
            namespace: (reference.kind == ConnectionKind::GraphConnection).then(|| {
                reference
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.to_string())
            }),
            name: reference.name.clone(),
        }
    }

    /// The `connection` label of its Graph series: `gc:NS/NAME` or `cgc:NAME`.
    pub fn metrics_label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("gc:{ns}/{}", self.name),
            None => format!("cgc:{}", self.name),
        }
    }

    /// How resources and messages name it: `GraphConnection NS/NAME` or
    /// `ClusterGraphConnection NAME` (the key of its change-notification subscriptions too).
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.as_str(), self.name),
            None => format!("{} {}", self.kind.as_str(), self.name),
        }
    }

    /// The key [`Self::describe`] wrote; `None` for anything else (`default`, the operator's own).
    pub fn described(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(' ')?;
        match kind {
            "GraphConnection" => {
                let (ns, name) = rest.split_once('/')?;
                Some(Self {
                    kind: ConnectionKind::GraphConnection,
                    namespace: Some(ns.to_string()),
                    name: name.to_string(),
                })
            }
            "ClusterGraphConnection" => Some(Self {
                kind: ConnectionKind::ClusterGraphConnection,
                namespace: None,
                name: rest.to_string(),
            }),
            _ => None,
        }
    }
}

/// (tenant, client id), lower-cased: one Graph budget.
type BudgetKey = (String, String);

/// A connection the caches hold: whom it serves, its spec and status, and where its
/// credentials are read.
struct Found<'a> {
    reach: Reach<'a>,
    settings: &'a ConnectionSettings,
    status: Option<&'a crate::api::GraphConnectionStatus>,
    secrets_namespace: &'a str,
}

/// A client and the spec it was built from (a changed spec builds a new one).
struct Built {
    settings: ConnectionSettings,
    client: GraphClient,
}

impl Connections {
    pub fn new(
        kube: Client,
        operator_namespace: String,
        template: GraphSettings,
        default: Option<DefaultConnection>,
        caches: Caches,
        metrics_for: MetricsFor,
    ) -> Self {
        let mut budgets = HashMap::new();
        if let Some(default) = &default {
            budgets.insert(
                budget_key(default.client.tenant_id(), default.client.client_id()),
                default.client.budget().clone(),
            );
        }
        Self {
            kube,
            operator_namespace,
            template,
            default,
            caches,
            metrics_for,
            clients: Mutex::new(HashMap::new()),
            budgets: Mutex::new(budgets),
        }
    }

    /// The client for `asking`, or why there is none. Reads only the caches: a refusal costs
    /// no Graph call.
    pub fn resolve(&self, asking: &Asking<'_>) -> Result<Resolved, Refused> {
        let no_labels = BTreeMap::new();
        let namespace = self
            .caches
            .namespaces
            .get(&ObjectRef::new(asking.namespace));
        let request = Request {
            namespace: asking.namespace,
            namespace_labels: namespace
                .as_ref()
                .and_then(|ns| ns.metadata.labels.as_ref())
                .unwrap_or(&no_labels),
            app: asking.app,
            groups: asking.groups,
        };
        let Some(reference) = asking.connection_ref else {
            let Some(default) = &self.default else {
                return Err(Refused::NotFound(
                    "the operator's own connection is turned off (--default-connection=none): name a GraphConnection or ClusterGraphConnection in spec.connectionRef".into(),
                ));
            };
            let name = "the operator's own connection";
            admit(name, Reach::Default(&default.namespaces), None, &request)
                .map_err(|r| Refused::NotAllowed(r.message))?;
            return Ok(Resolved {
                client: default.client.clone(),
                connection: "default".into(),
            });
        };
        let key = ConnectionKey::of(asking.namespace, reference);
        let described = key.describe();
        match reference.kind {
            ConnectionKind::GraphConnection => {
                let own = key.namespace.as_deref().unwrap_or(asking.namespace);
                // Refused before it is looked up: whether another namespace has such a
                // connection is none of this namespace's business.
                admit(&described, Reach::Namespace(own), None, &request)
                    .map_err(|r| Refused::NotAllowed(r.message))?;
                let found = self
                    .caches
                    .connections
                    .get(&ObjectRef::new(&reference.name).within(own))
                    .ok_or_else(|| Refused::NotFound(format!("{described} does not exist")))?;
                let found = Found {
                    reach: Reach::Namespace(own),
                    settings: &found.spec.connection,
                    status: found.status.as_ref(),
                    secrets_namespace: own,
                };
                self.connect(&key, described, found, &request)
            }
            ConnectionKind::ClusterGraphConnection => {
                let found = self
                    .caches
                    .cluster_connections
                    .get(&ObjectRef::new(&reference.name))
                    .ok_or_else(|| Refused::NotFound(format!("{described} does not exist")))?;
                let found = Found {
                    reach: Reach::Cluster(found.spec.allowed_namespaces.as_ref()),
                    settings: &found.spec.connection,
                    status: found.status.as_ref(),
                    secrets_namespace: &self.operator_namespace,
                };
                self.connect(&key, described, found, &request)
            }
        }
    }

    /// The client of a connection found in the caches, if its policy serves `request` and it
    /// is Ready.
    fn connect(
        &self,
        key: &ConnectionKey,
        described: String,
        found: Found<'_>,
        request: &Request<'_>,
    ) -> Result<Resolved, Refused> {
        admit(&described, found.reach, Some(found.settings), request)
            .map_err(|r| Refused::NotAllowed(r.message))?;
        if let Err(why) = connection_ready(found.status) {
            return Err(Refused::NotReady(format!(
                "{described} is not Ready: {why}"
            )));
        }
        let client = self
            .client(key, found.settings, found.secrets_namespace)
            .map_err(|e| Refused::NotReady(format!("{described}: {e}")))?;
        Ok(Resolved {
            client,
            connection: described,
        })
    }

    /// The client of a connection, built on first use and again when its spec changed. The
    /// connection controller checks connections through this too, so a resource and its
    /// connection's status share one token cache.
    pub fn client(
        &self,
        key: &ConnectionKey,
        settings: &ConnectionSettings,
        secrets_namespace: &str,
    ) -> Result<GraphClient, String> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(built) = clients.get(key)
            && built.settings == *settings
        {
            return Ok(built.client.clone());
        }
        let client = self.build(key, settings, secrets_namespace)?;
        clients.insert(
            key.clone(),
            Built {
                settings: settings.clone(),
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// Drops a deleted connection's client (its token cache with it).
    pub fn forget(&self, key: &ConnectionKey) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.remove(key);
    }

    /// Where a `ClusterGraphConnection`'s credentials are read.
    pub fn operator_namespace(&self) -> &str {
        &self.operator_namespace
    }

    fn build(
        &self,
        key: &ConnectionKey,
        spec: &ConnectionSettings,
        secrets_namespace: &str,
    ) -> Result<GraphClient, String> {
        let loader = CredentialRef::new(self.kube.clone(), secrets_namespace, &spec.credential)
            .ok_or("its credential names no secretRef, certificateSecretRef or workloadIdentity")?;
        let mut settings = self.template.clone();
        settings.cloud = cloud(spec.cloud);
        settings.tenant_id = spec.tenant_id.clone();
        settings.client_id = spec.client_id.clone();
        settings.credential = CredentialSource::Loaded(Arc::new(loader));
        settings.graph_url = parse_url("graphUrl", spec.graph_url.as_deref())?;
        settings.login_url = parse_url("loginUrl", spec.login_url.as_deref())?;
        settings.budget = rates(&self.template.budget, spec);
        settings.metrics = (self.metrics_for)(&key.metrics_label());
        let budget = {
            let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
            budgets
                .entry(budget_key(&spec.tenant_id, &spec.client_id))
                .or_insert_with(|| {
                    Arc::new(TenantBudget::new(settings.budget, settings.metrics.clone()))
                })
                .clone()
        };
        GraphClient::with_budget(settings, budget).map_err(|e| e.to_string())
    }
}

/// Whether a connection's status says Ready, or what it says instead.
fn connection_ready(status: Option<&crate::api::GraphConnectionStatus>) -> Result<(), String> {
    let Some(status) = status else {
        return Err("not checked yet".into());
    };
    if is_true(&status.conditions, "Ready") {
        return Ok(());
    }
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    Err(match ready {
        Some(c) => format!("{}: {}", c.reason, c.message),
        None => "not checked yet".into(),
    })
}

fn budget_key(tenant: &str, client: &str) -> BudgetKey {
    (tenant.to_ascii_lowercase(), client.to_ascii_lowercase())
}

fn cloud(cloud: ConnectionCloud) -> Cloud {
    match cloud {
        ConnectionCloud::Public => Cloud::Public,
        ConnectionCloud::UsGov => Cloud::UsGov,
        ConnectionCloud::UsGovDod => Cloud::UsGovDod,
        ConnectionCloud::China => Cloud::China,
    }
}

fn parse_url(field: &str, value: Option<&str>) -> Result<Option<Url>, String> {
    value
        .map(|v| Url::parse(v).map_err(|e| format!("spec.{field} is not a URL: {e}")))
        .transpose()
}

/// The flags' rates with the connection's overrides.
fn rates(base: &BudgetConfig, spec: &ConnectionSettings) -> BudgetConfig {
    let mut config = *base;
    if let Some(b) = &spec.budgets {
        config.read_per_second = b.read_per_second.unwrap_or(config.read_per_second);
        config.write_per_second = b.write_per_second.unwrap_or(config.write_per_second);
        config.delete_per_second = b.delete_per_second.unwrap_or(config.delete_per_second);
        config.directory_per_second = b
            .directory_per_second
            .unwrap_or(config.directory_per_second);
    }
    config
}

#[cfg(test)]
mod tests;
