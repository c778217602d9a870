//! Writes a kind's `status` with server-side apply, as the field manager [`MANAGER`], and only
//! when it changed.
//!
//! Every status write is a watch event; writing an unchanged status would wake the controller
//! and loop, so an unchanged status (ignoring the order of conditions: see
//! [`super::conditions::same_status`]) is never sent.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use super::conditions::{Conditioned, same_status};

/// The field manager the operator's status writes are recorded under.
pub const MANAGER: &str = "teams-app-operator";

/// Applies `status` to `obj` unless `obj` already says the same. Returns whether it wrote.
pub async fn apply_status<K>(api: &Api<K>, obj: &K, status: &K::Status) -> Result<bool, kube::Error>
where
    K: Conditioned + Clone + DeserializeOwned + Debug,
{
    if obj.status().is_some_and(|old| same_status(old, status)) {
        return Ok(false);
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}
