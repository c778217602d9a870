//! Finalizers on any kind: whether an object holds one, adding and removing it.
//!
//! Changes go through a merge patch that carries `resourceVersion`, so a concurrent edit makes
//! the patch fail (and the reconcile retry) instead of overwriting someone else's finalizer list.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// Whether `obj` carries the finalizer `name`.
pub fn holds<K: Resource>(obj: &K, name: &str) -> bool {
    obj.finalizers().iter().any(|f| f == name)
}

/// Adds the finalizer `name` to `obj`.
pub async fn add<K>(api: &Api<K>, obj: &K, name: &str) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(name.to_string());
    patch_finalizers(api, obj, finalizers).await
}

/// Removes the finalizer `name` from `obj`.
pub async fn remove<K>(api: &Api<K>, obj: &K, name: &str) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let finalizers = obj
        .finalizers()
        .iter()
        .filter(|f| *f != name)
        .cloned()
        .collect();
    patch_finalizers(api, obj, finalizers).await
}

async fn patch_finalizers<K>(
    api: &Api<K>,
    obj: &K,
    finalizers: Vec<String>,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": obj.meta().resource_version,
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}
