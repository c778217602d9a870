//! Writes `status` with server-side apply, as the field manager [`MANAGER`].
//!
//! Every status write is a watch event; writing an unchanged status would wake the controller
//! and loop, so the conclusion only hands over a status that changed (see
//! [`crate::reconcile::conditions::same_status`]).

use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus};

/// The field manager the operator's writes are recorded under.
pub const MANAGER: &str = "teams-app-operator";

/// Applies `status` with server-side apply. The caller writes only a status that changed
/// ([`crate::reconcile::conclude`] decides).
pub async fn write_status(
    api: &Api<TeamsAppInstallation>,
    obj: &TeamsAppInstallation,
    status: TeamsAppInstallationStatus,
) -> Result<(), kube::Error> {
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let patch = serde_json::json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppInstallation",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
