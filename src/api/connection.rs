//! `GraphConnection` and `ClusterGraphConnection`: which Entra tenant and app registration a
//! resource's Graph calls use, with which credential, and who may use it for what.
//!
//! A namespaced `GraphConnection` serves only its own namespace (its Secrets and ServiceAccount
//! come from there too); a `ClusterGraphConnection` serves only the namespaces it names, and
//! reads its Secrets from the operator's namespace. Both may narrow the apps and groups they
//! serve. The rules are checked before any Graph call, so a refusal costs nothing — and a
//! namespace cannot borrow another namespace's credentials (the confused deputy).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The finalizer that holds a connection's deletion while resources still use it, so that a
/// `deletionPolicy: Uninstall` resource can always still uninstall.
pub const CONNECTION_FINALIZER: &str = "teamsapps.dev/connection-in-use";

/// The UUID form Entra uses for tenant and client ids.
const GUID_RULE: &str =
    "self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')";

/// A tenant id is a GUID or one of the tenant's verified domains (contoso.onmicrosoft.com).
const TENANT_RULE: &str = "self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$') || self.matches('^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)+$')";

/// Connects the resources of one namespace to one Entra tenant through one app registration.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "teamsapps.dev",
    version = "v1alpha1",
    kind = "GraphConnection",
    namespaced,
    shortname = "gc",
    category = "teams",
    status = "GraphConnectionStatus",
    derive = "PartialEq",
    doc = "A Microsoft Graph connection (tenant, app registration, credential) for the resources of its own namespace.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantId"),
    printcolumn(name = "Cloud", type_ = "string", json_path = ".spec.cloud"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "In Use", type_ = "integer", json_path = ".status.inUse"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GraphConnectionSpec {
    #[serde(flatten)]
    pub connection: ConnectionSettings,
}

/// Connects the resources of the namespaces it names to one Entra tenant through one app
/// registration.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "teamsapps.dev",
    version = "v1alpha1",
    kind = "ClusterGraphConnection",
    shortname = "cgc",
    category = "teams",
    status = "GraphConnectionStatus",
    derive = "PartialEq",
    doc = "A Microsoft Graph connection (tenant, app registration, credential) for the namespaces it allows.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantId"),
    printcolumn(name = "Cloud", type_ = "string", json_path = ".spec.cloud"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "In Use", type_ = "integer", json_path = ".status.inUse"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGraphConnectionSpec {
    #[serde(flatten)]
    pub connection: ConnectionSettings,

    /// The namespaces whose resources may use this connection: those in `names`, and those
    /// whose labels match `selector`. Without either, no namespace may: a cluster-wide
    /// credential is opt-in, never "everyone" by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<AllowedNamespaces>,
}

/// What both kinds of connection hold.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSettings {
    /// The Entra tenant: its id (a GUID) or one of its verified domains.
    #[x_kube(validation = Rule::new(TENANT_RULE).message("tenantId must be a GUID or a domain name"))]
    #[schemars(length(min = 1, max = 253))]
    pub tenant_id: String,

    /// The app registration's application (client) id, a GUID.
    #[x_kube(validation = Rule::new(GUID_RULE).message("clientId must be a GUID"))]
    #[schemars(length(min = 36, max = 36))]
    pub client_id: String,

    /// The Microsoft cloud: `public` (default, GCC included), `usgov` (GCC High), `usgov-dod`
    /// or `china`.
    #[serde(default)]
    pub cloud: ConnectionCloud,

    /// How the operator signs in as the app registration: exactly one of `secretRef`,
    /// `certificateSecretRef` or `workloadIdentity`.
    pub credential: ConnectionCredential,

    /// Request rates for this tenant and app registration, overriding the operator's flags.
    /// Connections with the same tenant and client id share one budget (Graph throttles per
    /// app per tenant): the first one's rates apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<ConnectionBudgets>,

    /// Overrides the cloud's Graph host (scheme, host and port), e.g. the Graph simulator's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("graphUrl must be an http(s) URL"))]
    #[schemars(length(max = 2048))]
    pub graph_url: Option<String>,

    /// Overrides the cloud's login host (scheme, host and port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("loginUrl must be an http(s) URL"))]
    #[schemars(length(max = 2048))]
    pub login_url: Option<String>,

    /// The apps this connection may install, by catalog id or manifest id (`externalId`).
    /// Absent: any app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub allowed_apps: Option<Vec<String>>,

    /// The Entra groups (object ids) a `TeamsAppRollout` may name as its audience or
    /// exclusions through this connection. Absent: any group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub allowed_groups: Option<Vec<String>>,
}

/// The Microsoft cloud a connection signs in to.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectionCloud {
    #[default]
    #[serde(rename = "public")]
    Public,
    #[serde(rename = "usgov")]
    UsGov,
    #[serde(rename = "usgov-dod")]
    UsGovDod,
    #[serde(rename = "china")]
    China,
}

/// Exactly one way to sign in.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.secretRef), has(self.certificateSecretRef), has(self.workloadIdentity)].filter(x, x).size() == 1").message("set exactly one of credential.secretRef, credential.certificateSecretRef or credential.workloadIdentity"))]
pub struct ConnectionCredential {
    /// A client secret: the key `key` of the Secret `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,

    /// A certificate: a PEM with the certificate and its private key under `key`, or a
    /// `kubernetes.io/tls` Secret's `tls.crt` and `tls.key` when `key` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_secret_ref: Option<CertificateSecretRef>,

    /// Workload identity federation: the operator requests a token for this ServiceAccount
    /// (audience `api://AzureADTokenExchange`) and presents it to Entra, so each connection
    /// federates as its own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentity>,
}

/// One key of one Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret holding a certificate and its key.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding one PEM with the certificate and the private key. Absent: `tls.crt`
    /// and `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

/// A ServiceAccount whose tokens the app registration trusts (a federated credential).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentity {
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: String,
}

/// Requests per second for each class of Graph call.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionBudgets {
    /// Reads of installed apps and of the catalog, each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1, max = 1000.0))]
    pub read_per_second: Option<f64>,
    /// Installs and upgrades, each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1, max = 1000.0))]
    pub write_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1, max = 1000.0))]
    pub delete_per_second: Option<f64>,
    /// Directory reads (group members, users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1, max = 1000.0))]
    pub directory_per_second: Option<f64>,
}

/// Which namespaces a `ClusterGraphConnection` serves.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedNamespaces {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    pub names: Vec<String>,
    /// Namespaces by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// What the operator last saw of a connection.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphConnectionStatus {
    /// `Ready`, `Reconciling` and `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The application permissions the tenant granted the app registration (the `roles` of
    /// its last token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_permissions: Vec<String>,
    /// What the operator needs and the registration lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_permissions: Vec<String>,
    /// When the last token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Time>,
    /// How many resources use this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<i64>,
    /// A few of them (kind/namespace/name), for a person deleting the connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    /// The Graph change-notification subscriptions made through this connection, one per app
    /// its resources manage (with the operator's notifications on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<ConnectionSubscription>,
}

/// One change-notification subscription, as the operator's leader holds it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSubscription {
    /// The catalog app whose personal-scope installations it covers.
    pub teams_app_id: String,
    /// Graph's id of the subscription, while Graph holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When Graph lets it expire (it is renewed well before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When the last notification of it arrived (as of the connection's last check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notification_at: Option<Time>,
    /// `Healthy` (its resources' drift check runs at the notification resync), `Failing`
    /// (retried with backoff) or `Missing` (not held): either of the last two sends the app's
    /// resources back to their interval.
    pub health: String,
    /// Why it is failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Names the connection a resource's Graph calls go through.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'GraphConnection' || !has(self.namespace)").message("connectionRef.namespace is for a GraphConnection only: a ClusterGraphConnection has none"))]
pub struct ConnectionRef {
    pub kind: ConnectionKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// A GraphConnection's namespace; absent means the resource's own. A GraphConnection
    /// serves only its own namespace, so naming another one is refused
    /// (`ConnectionNotAllowed`): a namespace cannot borrow another's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// The two kinds of connection.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectionKind {
    GraphConnection,
    ClusterGraphConnection,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GraphConnection => "GraphConnection",
            Self::ClusterGraphConnection => "ClusterGraphConnection",
        }
    }
}

impl std::fmt::Display for ConnectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// The CEL rule that keeps a `connectionRef` from changing once set: moving a resource between
/// tenants is delete + create. Setting one where there was none is allowed, so resources on the
/// flag-configured connection can move to an explicit one of the same tenant (the operator
/// refuses one of another tenant).
pub const CONNECTION_REF_RULE: &str = "!has(oldSelf.connectionRef) || (has(self.connectionRef) && self.connectionRef == oldSelf.connectionRef)";
pub const CONNECTION_REF_MESSAGE: &str = "spec.connectionRef cannot be changed or removed once set";
