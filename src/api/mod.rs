//! The Kubernetes API of the operator: the `TeamsAppInstallation` resource and its duration
//! syntax.

mod interval;
mod resource;

pub use interval::{IntervalError, parse_interval};
pub use resource::{
    AppReference, DeletionPolicy, InstallPolicy, TeamsAppInstallation, TeamsAppInstallationSpec,
    TeamsAppInstallationStatus,
};

/// The API group every resource of the operator lives in.
pub const GROUP: &str = "teamsapps.dev";

/// Renders the CRD as YAML, exactly as `teams-app-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&TeamsAppInstallation::crd())
}
