//! Which resources may want the same Graph installation, without scanning the cache.
//!
//! The one-owner rule (see the core's `ownership`) compares a resource with the others for the
//! same user and app. At 10,000 resources a scan of the whole cache per reconcile is 10⁸
//! comparisons per pass, so the watch keeps an index instead: resources by lowercase user and
//! by Graph installation id (a UPN in one resource and an object id in another meet there).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::TeamsAppInstallation;

use super::super::core::Claim;
use super::views::claim_of;

type Key = ObjectRef<TeamsAppInstallation>;

/// Resources by the keys they may share a Graph installation under.
#[derive(Default)]
pub struct RivalIndex(Mutex<Index>);

/// Keys are hashes: the index holds one number per key, not a copy of every user and
/// installation id (a collision only adds a candidate, which the claims then tell apart).
#[derive(Default)]
struct Index {
    by_key: HashMap<u64, HashSet<Key>>,
    keys_of: HashMap<Key, Vec<u64>>,
    hasher: std::collections::hash_map::RandomState,
}

/// What a key names: a user (lowercase) or a Graph installation id.
const USER: u8 = 0;
const INSTALLATION: u8 = 1;

impl Index {
    fn keys(&self, obj: &TeamsAppInstallation) -> Vec<u64> {
        let mut keys = vec![self.hash(USER, &obj.spec.user.to_lowercase())];
        if let Some(id) = obj.status.as_ref().and_then(|s| s.installation_id.as_ref()) {
            keys.push(self.hash(INSTALLATION, id));
        }
        keys
    }

    fn hash(&self, kind: u8, text: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        kind.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    }
}

impl RivalIndex {
    /// A watch event: `obj` changed (`gone`: deleted from the API server).
    pub fn update(&self, obj: &TeamsAppInstallation, gone: bool) {
        let key = ObjectRef::from_obj(obj);
        let mut index = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let index = &mut *index;
        for old in index.keys_of.remove(&key).unwrap_or_default() {
            if let Some(set) = index.by_key.get_mut(&old) {
                set.remove(&key);
                if set.is_empty() {
                    index.by_key.remove(&old);
                }
            }
        }
        if gone {
            return;
        }
        let new = index.keys(obj);
        for k in &new {
            index.by_key.entry(*k).or_default().insert(key.clone());
        }
        index.keys_of.insert(key, new);
    }

    /// The claims of the resources that may be on the same Graph installation as `me` (`me`
    /// included when cached), read from `store`.
    pub fn claims(
        &self,
        store: &Store<TeamsAppInstallation>,
        me: &TeamsAppInstallation,
    ) -> Vec<Claim> {
        let candidates: HashSet<Key> = {
            let index = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            index
                .keys(me)
                .iter()
                .filter_map(|k| index.by_key.get(k))
                .flatten()
                .cloned()
                .collect()
        };
        candidates
            .iter()
            .filter_map(|key| store.get(key))
            .map(|obj| claim_of(&obj))
            .collect()
    }

    /// The other resources, not being deleted, on the same Graph installation as `obj`: who may
    /// take it over when `obj` goes.
    pub fn successors(
        &self,
        store: &Store<TeamsAppInstallation>,
        obj: &TeamsAppInstallation,
    ) -> Vec<Key> {
        let me = claim_of(obj);
        self.claims(store, obj)
            .into_iter()
            .filter(|c| !c.deleting && !c.is(&me) && c.same_installation(&me))
            .map(|c| ObjectRef::new(&c.name).within(&c.namespace))
            .collect()
    }
}

impl RivalIndex {
    /// The resources that may be about Graph installation `installation_id`, or about `user`
    /// when given: who a change notification concerns. Candidates only (a hash collision adds
    /// one); the caller checks what they ask for.
    pub fn about(
        &self,
        store: &Store<TeamsAppInstallation>,
        installation_id: &str,
        user: Option<&str>,
    ) -> Vec<std::sync::Arc<TeamsAppInstallation>> {
        let candidates: HashSet<Key> = {
            let index = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let mut keys = vec![index.hash(INSTALLATION, installation_id)];
            keys.extend(user.map(|u| index.hash(USER, &u.to_lowercase())));
            keys.iter()
                .filter_map(|k| index.by_key.get(k))
                .flatten()
                .cloned()
                .collect()
        };
        candidates.iter().filter_map(|key| store.get(key)).collect()
    }
}

impl std::fmt::Debug for RivalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let index = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        write!(f, "RivalIndex({} resources)", index.keys_of.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tai(name: &str, user: &str, installation: Option<&str>) -> TeamsAppInstallation {
        let spec = serde_json::json!({"user": user, "app": {"id": "33333333-3333-3333-3333-333333333333"}});
        let mut obj = TeamsAppInstallation::new(name, serde_json::from_value(spec).expect("spec"));
        obj.metadata.namespace = Some("ns".into());
        obj.status = installation.map(|id| crate::api::TeamsAppInstallationStatus {
            installation_id: Some(id.into()),
            ..Default::default()
        });
        obj
    }

    #[test]
    fn candidates_share_a_user_or_an_installation_and_leave_when_gone() {
        let index = RivalIndex::default();
        let a = tai("a", "Alice@contoso.com", Some("inst-1"));
        let b = tai("b", "alice@contoso.com", None);
        let c = tai("c", "22222222-2222-2222-2222-222222222222", Some("inst-1"));
        let d = tai("d", "bob@contoso.com", None);
        for obj in [&a, &b, &c, &d] {
            index.update(obj, false);
        }
        let keys_for = |obj: &TeamsAppInstallation| {
            let index = index.0.lock().unwrap();
            let mut names: Vec<String> = index
                .keys(obj)
                .iter()
                .filter_map(|k| index.by_key.get(k))
                .flatten()
                .map(|k| k.name.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            names.sort();
            names
        };
        assert_eq!(keys_for(&a), ["a", "b", "c"]);
        assert_eq!(keys_for(&d), ["d"]);
        index.update(&a, true);
        assert_eq!(keys_for(&c), ["c"]);
        assert_eq!(keys_for(&b), ["b"]);
    }
}
