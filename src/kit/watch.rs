//! Watching a kind: its `Api` over the watched namespaces, whether its CRD is served, which
//! changes wake its controller, and what of each object its cache keeps.

use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use kube::api::ListParams;
use kube::runtime::predicates;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{APPROVE_REMOVALS_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION};

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The kind in one namespace, or in all when `namespace` is `None`.
pub fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Whether the kind's CRD is served (and listable with our RBAC): `Ok(false)` when the API
/// server does not know the kind (404), the error for anything else.
pub async fn served<K>(api: &Api<K>) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// The `reconcile-requested-at` annotation's value, if set.
pub fn requested_at<K: Resource>(obj: &K) -> Option<&str> {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUESTED_ANNOTATION))
        .map(String::as_str)
}

/// Annotations by which a person asks something of the operator: a change wakes the object.
const REQUEST_ANNOTATIONS: [&str; 2] =
    [RECONCILE_REQUESTED_ANNOTATION, APPROVE_REMOVALS_ANNOTATION];

/// The properties whose change wakes a controller: spec (generation), finalizers, deletion and
/// the annotations a person asks with. The controller's own status writes do not (each wake
/// would cost Graph calls); periodic checks come from requeues.
pub fn trigger<K: Resource>(obj: &K) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    predicates::generation(obj).hash(&mut h);
    predicates::finalizers(obj).hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    let annotations = obj.meta().annotations.as_ref();
    for name in REQUEST_ANNOTATIONS {
        annotations.and_then(|a| a.get(name)).hash(&mut h);
    }
    Some(h.finish())
}

/// Drops what the operator never reads from an object before its cache keeps it for the life
/// of the process (managedFields and kubectl's last-applied copy are most of an object).
pub fn slim<K: ResourceExt>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    if let Some(annotations) = &mut obj.meta_mut().annotations {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}
