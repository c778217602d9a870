//! Objects decoded one by one, so that one the operator cannot read never stalls its kind.
//!
//! kube-runtime's watcher lists a kind a page at a time and decodes the page as a whole: one
//! object that does not decode fails the list, the watcher retries it with backoff, for ever,
//! and no object of the kind is reconciled again (nor does the cache ever sync). An object the
//! API server stored can fail to decode: stored before its schema gained a bound or changed a
//! type, or with a status someone else wrote. So the controllers watch [`Decoded<K>`]: each
//! object decodes on its own, as a `K` or, failing that, as its metadata and what failed
//! ([`Decoded::Unreadable`]). The watch ([`super::watch::objects`]) leaves an unreadable object
//! out of the cache, and so out of every reconcile, and says so on the object itself.

use std::borrow::Cow;

use kube::Resource;
use kube::api::ObjectMeta;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, de};

/// An object of kind `K` as the API server sent it.
#[derive(Clone, Debug)]
pub enum Decoded<K> {
    Readable(K),
    /// Not a `K`: its metadata, and where and why decoding failed (`spec.paused: invalid
    /// type: string "yes", expected a boolean`).
    Unreadable {
        metadata: Box<ObjectMeta>,
        error: String,
    },
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if let Ok(obj) = K::deserialize(&value) {
            return Ok(Self::Readable(obj));
        }
        // Only on failure: decode again, keeping track of where it fails.
        let error = match serde_path_to_error::deserialize::<_, K>(&value) {
            Ok(obj) => return Ok(Self::Readable(obj)),
            Err(e) if e.path().to_string() == "." => e.inner().to_string(),
            Err(e) => format!("{}: {}", e.path(), e.inner()),
        };
        // Without readable metadata there is nothing to name: the list fails as it would.
        let metadata = match value.get("metadata") {
            Some(meta) => Box::new(ObjectMeta::deserialize(meta).map_err(de::Error::custom)?),
            None => return Err(de::Error::custom(error)),
        };
        Ok(Self::Unreadable { metadata, error })
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Decoded<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Readable(obj) => obj.meta(),
            Self::Unreadable { metadata, .. } => metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Readable(obj) => obj.meta_mut(),
            Self::Unreadable { metadata, .. } => metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::core::ObjectList;
    use serde_json::json;

    use super::*;
    use crate::api::TeamsAppRollout;

    fn rollout(name: &str, paused: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppRollout",
            "metadata": {"name": name, "namespace": "teams", "resourceVersion": "1"},
            "spec": {
                "app": {"id": "x"},
                "audience": {"groups": ["44444444-4444-4444-4444-444444444444"]},
                "paused": paused,
            },
        })
    }

    #[test]
    fn one_unreadable_object_does_not_fail_the_list() {
        let page = json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppRolloutList",
            "metadata": {"resourceVersion": "7"},
            "items": [rollout("good", json!(false)), rollout("bad", json!("yes"))],
        });
        // As a list of the type itself, one object fails them all (what kube's watcher sees).
        assert!(serde_json::from_value::<ObjectList<TeamsAppRollout>>(page.clone()).is_err());
        let list: ObjectList<Decoded<TeamsAppRollout>> =
            serde_json::from_value(page).expect("the list decodes");
        assert!(
            matches!(&list.items[0], Decoded::Readable(r) if r.meta().name.as_deref() == Some("good"))
        );
        match &list.items[1] {
            Decoded::Unreadable { metadata, error } => {
                assert_eq!(metadata.name.as_deref(), Some("bad"));
                assert!(error.starts_with("spec.paused: invalid type"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let bad: Decoded<TeamsAppRollout> =
            serde_json::from_value(rollout("bad", json!("yes"))).expect("decodes");
        let reference = bad.object_ref(&());
        assert_eq!(reference.kind.as_deref(), Some("TeamsAppRollout"));
        assert_eq!(reference.name.as_deref(), Some("bad"));
    }
}
