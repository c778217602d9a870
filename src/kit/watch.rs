//! Watching a kind: its `Api` over the watched namespaces, its objects (decoded one by one,
//! so one the operator cannot read stalls nothing), whether its CRD is served, which changes
//! wake its controller, and what of each object its cache keeps.

use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use futures::{Stream, StreamExt};
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;

use super::decode::Decoded;
use super::events::{Announcement, Recorder};
use super::metrics::ControllerSeries;
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

/// Every object of the kind in `namespace` (all when `None`), as kube-runtime's watcher reports
/// them, with backoff on errors — except that an object that does not decode as `K` does not
/// fail the whole list (see [`super::decode`]): it is left out, or dropped from `cache` if an
/// earlier readable version is there, so the operator never acts on a spec it cannot read. It
/// is reported each time the watch sees it: a Warning Event `Unreadable` on the object naming
/// the field, a log line, and `teams_app_operator_controller_errors_total`.
pub fn objects<K>(
    client: &Client,
    namespace: Option<&str>,
    cache: Store<K>,
    recorder: Recorder,
    metrics: ControllerSeries,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    objects_of(
        scoped::<Decoded<K>>(client, namespace),
        cache,
        recorder,
        metrics,
    )
}

/// [`objects`] of any kind, namespaced or cluster-scoped, through `api`.
pub fn objects_of<K>(
    api: Api<Decoded<K>>,
    cache: Store<K>,
    recorder: Recorder,
    metrics: ControllerSeries,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map(move |event| {
            let (cache, recorder, metrics) = (cache.clone(), recorder.clone(), metrics.clone());
            async move {
                let readable = |obj| match obj {
                    Decoded::Readable(obj) => Ok(obj),
                    unreadable => Err(unreadable),
                };
                let event = match event {
                    Ok(event) => event,
                    Err(e) => return Some(Err(e)),
                };
                let event = match event {
                    watcher::Event::Init => watcher::Event::Init,
                    watcher::Event::InitDone => watcher::Event::InitDone,
                    watcher::Event::InitApply(obj) => match readable(obj) {
                        Ok(obj) => watcher::Event::InitApply(obj),
                        Err(unreadable) => {
                            report(&unreadable, &recorder, &metrics).await;
                            return None;
                        }
                    },
                    watcher::Event::Apply(obj) => match readable(obj) {
                        Ok(obj) => watcher::Event::Apply(obj),
                        Err(unreadable) => {
                            report(&unreadable, &recorder, &metrics).await;
                            return cached(&cache, &unreadable)
                                .map(|k| Ok(watcher::Event::Delete(k)));
                        }
                    },
                    watcher::Event::Delete(obj) => match readable(obj) {
                        Ok(obj) => watcher::Event::Delete(obj),
                        Err(unreadable) => {
                            return cached(&cache, &unreadable)
                                .map(|k| Ok(watcher::Event::Delete(k)));
                        }
                    },
                };
                Some(Ok(event))
            }
        })
}

/// The readable version of `obj` the cache holds, if any.
fn cached<K>(cache: &Store<K>, obj: &Decoded<K>) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let meta = obj.meta();
    let mut key = ObjectRef::<K>::new(meta.name.as_deref()?);
    if let Some(ns) = &meta.namespace {
        key = key.within(ns);
    }
    cache.get(&key).map(|k| (*k).clone())
}

async fn report<K>(obj: &Decoded<K>, recorder: &Recorder, metrics: &ControllerSeries)
where
    K: Resource<DynamicType = ()>,
{
    let Decoded::Unreadable { metadata, error } = obj else {
        return;
    };
    let kind = K::kind(&());
    warn!(
        kind = %kind,
        namespace = metadata.namespace.as_deref().unwrap_or_default(),
        resource = metadata.name.as_deref().unwrap_or_default(),
        %error,
        "cannot read a resource: left alone until it is fixed"
    );
    metrics.controller_error();
    let note = format!(
        "The operator cannot read this {kind} and leaves it alone until it is fixed: {error}"
    );
    let event = Announcement::warning("Unreadable", "Reading", note);
    recorder.publish(obj, &event).await;
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
