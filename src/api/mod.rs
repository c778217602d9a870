//! The Kubernetes API of the operator: the `TeamsAppInstallation` resource and its duration
//! syntax, and what the API server accepts in a spec.

mod interval;
mod resource;
mod rollout;
mod validation;

pub use interval::{IntervalError, parse_interval};
pub use resource::{
    AppReference, DeletionPolicy, InstallPolicy, TeamsAppInstallation, TeamsAppInstallationSpec,
    TeamsAppInstallationStatus,
};
pub use rollout::{
    Audience, AudienceExclusion, AudienceStatus, Eligibility, InstallationTemplate, RemovalPolicy,
    SkippedCounts, TeamsAppRollout, TeamsAppRolloutSpec, TeamsAppRolloutStatus, Wave, WaveStatus,
};
pub use validation::{
    INTERVAL_MAX_LENGTH, INTERVAL_MESSAGE, INTERVAL_RULE, InvalidSpec, TARGET_VERSION_MAX_LENGTH,
    TARGET_VERSION_MESSAGE, TARGET_VERSION_RULE, USER_MAX_LENGTH, USER_MESSAGE, USER_RULE,
    all_users_rule, is_valid_interval, is_valid_target_version, is_valid_user,
};

/// The API group every resource of the operator lives in.
pub const GROUP: &str = "teamsapps.dev";

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

/// Every CRD of the operator as one multi-document YAML stream, as `teams-app-operator crd`
/// prints it.
pub fn all_crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!("{}---\n{}", crd_yaml()?, rollout_crd_yaml()?))
}
