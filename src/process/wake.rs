//! Who a change of a connection or a namespace concerns: the resources of either workload kind
//! that name it, read from the controllers' caches (no API call), and woken through the
//! controllers' own queues.

use futures::channel::mpsc;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{ConnectionKind, ConnectionRef, Consent, TeamsAppInstallation, TeamsAppRollout};
use crate::connection::Usage;
use crate::tenancy::ConnectionKey;

/// Who to wake when a connection or a namespace changes.
#[derive(Clone)]
pub(super) struct Wake {
    pub(super) installations: Store<TeamsAppInstallation>,
    pub(super) rollouts: Store<TeamsAppRollout>,
    pub(super) installation: mpsc::UnboundedSender<ObjectRef<TeamsAppInstallation>>,
    pub(super) rollout: mpsc::UnboundedSender<ObjectRef<TeamsAppRollout>>,
}

impl Wake {
    /// The resources that name `key`.
    pub(super) fn users_of(&self, key: &ConnectionKey) {
        self.matching(|ns, reference| reference.is_some_and(|r| ConnectionKey::of(ns, r) == *key));
    }

    /// The resources of `namespace` that name a ClusterGraphConnection (its selector may
    /// match the namespace's labels now, or no more).
    pub(super) fn cluster_users_in(&self, namespace: &str) {
        self.matching(|ns, reference| {
            ns == namespace
                && reference.is_some_and(|r| r.kind == ConnectionKind::ClusterGraphConnection)
        });
    }

    fn matching(&self, wanted: impl Fn(&str, Option<&ConnectionRef>) -> bool) {
        for obj in self.installations.state() {
            let ns = obj.namespace().unwrap_or_default();
            if wanted(&ns, obj.spec.connection_ref.as_ref()) {
                let _ = self.installation.unbounded_send(ObjectRef::from_obj(&*obj));
            }
        }
        for obj in self.rollouts.state() {
            let ns = obj.namespace().unwrap_or_default();
            if wanted(&ns, obj.spec.connection_ref.as_ref()) {
                let _ = self.rollout.unbounded_send(ObjectRef::from_obj(&*obj));
            }
        }
    }

    /// Who uses `key`: every resource that names it, rollouts included, in one walk of each
    /// cache.
    pub(super) fn usage(&self, key: &ConnectionKey) -> Usage {
        let installations = self.installations.state();
        let rollouts = self.rollouts.state();
        let named = installations
            .iter()
            .map(|o| {
                let user = Named::of(INSTALLATION, &**o, o.spec.connection_ref.as_ref());
                (user, &o.spec.consent)
            })
            .chain(rollouts.iter().map(|o| {
                let user = Named::of(ROLLOUT, &**o, o.spec.connection_ref.as_ref());
                (user, &o.spec.consent)
            }));
        let mut usage = Usage::default();
        for (user, consent) in named {
            if !user
                .reference
                .is_some_and(|r| ConnectionKey::of(&user.namespace, r) == *key)
            {
                continue;
            }
            usage.rollouts |= user.kind == ROLLOUT;
            usage.consent |= consents(consent.as_ref());
            usage
                .users
                .push(format!("{} {}/{}", user.kind, user.namespace, user.name));
        }
        usage.users.sort();
        usage
    }
}

/// A resource of either kind, as [`Wake::usage`] lists it.
struct Named<'a> {
    kind: &'static str,
    namespace: String,
    name: String,
    reference: Option<&'a ConnectionRef>,
}

const INSTALLATION: &str = "TeamsAppInstallation";
const ROLLOUT: &str = "TeamsAppRollout";

impl<'a> Named<'a> {
    fn of(
        kind: &'static str,
        obj: &impl ResourceExt,
        reference: Option<&'a ConnectionRef>,
    ) -> Self {
        Named {
            kind,
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            reference,
        }
    }
}

/// Whether a resource names RSC application permissions it consents to: its connection then
/// needs the `…AndConsent…` permission. (`MatchCatalog` alone does not count: the app may need
/// none, and a refused consent says which permission is missing on the resource itself.)
fn consents(consent: Option<&Consent>) -> bool {
    consent.is_some_and(|c| !c.permissions.is_empty())
}
