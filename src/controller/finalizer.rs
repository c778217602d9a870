//! The finalizer that holds deletion until the app is uninstalled in Graph.
//!
//! Only resources with `deletionPolicy: Uninstall` carry it. Changes go through a merge patch
//! that carries `resourceVersion`, so a concurrent edit makes the patch fail (and the reconcile
//! retry) instead of overwriting someone else's finalizer list.

use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::api::TeamsAppInstallation;

/// The operator's finalizer name.
pub const FINALIZER: &str = "teamsapps.dev/uninstall";

pub fn has_finalizer(obj: &TeamsAppInstallation) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

pub async fn add_finalizer(
    api: &Api<TeamsAppInstallation>,
    obj: &TeamsAppInstallation,
) -> Result<TeamsAppInstallation, kube::Error> {
    let mut finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
    finalizers.push(FINALIZER.to_string());
    patch_finalizers(api, obj, finalizers).await
}

pub async fn remove_finalizer(
    api: &Api<TeamsAppInstallation>,
    obj: &TeamsAppInstallation,
) -> Result<TeamsAppInstallation, kube::Error> {
    let finalizers = obj
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    patch_finalizers(api, obj, finalizers).await
}

async fn patch_finalizers(
    api: &Api<TeamsAppInstallation>,
    obj: &TeamsAppInstallation,
    finalizers: Vec<String>,
) -> Result<TeamsAppInstallation, kube::Error> {
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": obj.metadata.resource_version,
        }
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}
