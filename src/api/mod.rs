//! The Kubernetes API of the operator: the `TeamsAppInstallation` and `TeamsAppRollout`
//! resources, their duration syntax, what the API server accepts in a spec, and the annotation
//! and finalizer names users see.

mod connection;
mod intent;
mod interval;
pub mod lenient;
mod plan;
mod resource;
mod rollout;
mod rollout_status;
mod rollout_validation;
mod validation;

pub use connection::{
    AllowedNamespaces, CONNECTION_FINALIZER, CertificateSecretRef, ClusterGraphConnection,
    ClusterGraphConnectionSpec, ConnectionBudgets, ConnectionCloud, ConnectionCredential,
    ConnectionKind, ConnectionRef, ConnectionSettings, ConnectionSubscription, GraphConnection,
    GraphConnectionSpec, GraphConnectionStatus, SecretKeyRef, WorkloadIdentity,
};
pub use intent::{Consent, ConsentMode, Ensure, ManagementPolicy};
pub use interval::{IntervalError, parse_interval};
pub use plan::{InstallationPlan, PlannedAction, RolloutPlan, WavePlan};
pub use resource::{
    AppReference, DeletionPolicy, InstallPolicy, TeamsAppInstallation, TeamsAppInstallationSpec,
    TeamsAppInstallationStatus,
};
pub use rollout::{
    Audience, AudienceExclusion, Eligibility, InstallationTemplate, Principals, RemovalPolicy,
    TeamsAppRollout, TeamsAppRolloutSpec, Wave,
};
pub use rollout_status::{
    AudienceStatus, RemovalStatus, SkippedCounts, TeamsAppRolloutStatus, WaveStatus,
};
pub use validation::{
    INTERVAL_MAX_LENGTH, INTERVAL_MESSAGE, INTERVAL_RULE, InvalidSpec, LONG_WAIT_RULE, MAX_COUNT,
    MAX_INTERVAL, MAX_LONG_WAIT, TARGET_VERSION_MAX_LENGTH, TARGET_VERSION_MESSAGE,
    TARGET_VERSION_RULE, USER_MAX_LENGTH, USER_MESSAGE, USER_RULE, all_users_rule,
    is_valid_duration, is_valid_interval, is_valid_target_version, is_valid_user,
};

/// The API group every resource of the operator lives in.
pub const GROUP: &str = "teamsapps.dev";

/// The annotation `kubectl annotate … teamsapps.dev/reconcile-requested-at="$(date +%s)"
/// --overwrite` sets to ask for a re-check now, with fresh data (like Flux's
/// `reconcile.fluxcd.io/requestedAt`); every kind honours it.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "teamsapps.dev/reconcile-requested-at";

/// The finalizer that holds a `TeamsAppInstallation`'s deletion until the app is uninstalled
/// in Graph. Only installations with `deletionPolicy: Uninstall` carry it.
pub const UNINSTALL_FINALIZER: &str = "teamsapps.dev/uninstall";

/// The finalizer that holds a `TeamsAppRollout`'s deletion until its installations are gone
/// (each by its own `deletionPolicy`): a cluster without a garbage collector for owner
/// references, or a foreground deletion, must not leave installations behind.
pub const ROLLOUT_FINALIZER: &str = "teamsapps.dev/rollout-installations";

/// The annotation that approves one held set of rollout removals: its value is the digest the
/// rollout's `status.removals.blockedDigest` shows.
pub const APPROVE_REMOVALS_ANNOTATION: &str = "teamsapps.dev/approve-removals";

/// On a rollout's installation: when its user was first found absent from the audience (RFC
/// 3339). The user leaves once absent for `removalDelay`; reappearing clears it.
pub const ABSENT_SINCE_ANNOTATION: &str = "teamsapps.dev/absent-since";

/// Renders the TeamsAppInstallation CRD as YAML, as `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&TeamsAppInstallation::crd())
}

/// Renders the TeamsAppRollout CRD as YAML, as `crds/` holds it.
pub fn rollout_crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&TeamsAppRollout::crd())
}

/// Renders the GraphConnection CRD as YAML, as `crds/` holds it.
pub fn connection_crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&GraphConnection::crd())
}

/// Renders the ClusterGraphConnection CRD as YAML, as `crds/` holds it.
pub fn cluster_connection_crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&ClusterGraphConnection::crd())
}

/// Every CRD of the operator as one multi-document YAML stream, as `teams-app-operator crd`
/// prints it.
pub fn all_crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!(
        "{}---\n{}---\n{}---\n{}",
        crd_yaml()?,
        rollout_crd_yaml()?,
        connection_crd_yaml()?,
        cluster_connection_crd_yaml()?
    ))
}
