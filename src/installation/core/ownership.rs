//! One owner per Graph installation (one tenant, user and app).
//!
//! Two rollouts for the same app and user, or a rollout's installation beside a hand-written
//! one, make two resources that converge on one Graph install. Only one of them may write to
//! Graph — the oldest (by creation time, then namespace and name); the others only read, and
//! deleting one never uninstalls what another still wants: the next in line takes over
//! without a gap.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A resource's claim on a Graph installation, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    pub created: Option<Time>,
    /// `spec.user`, lowercase.
    pub user: String,
    /// `spec.app.id` or `spec.app.externalId`, lowercase.
    pub app: String,
    /// The catalog id the app resolved to (`status.catalogAppId`), lowercase.
    pub catalog_app_id: Option<String>,
    /// Graph's installation id (`status.installationId`): equal ids are the same installation,
    /// however the user was named (a UPN in one resource, an object id in another).
    pub installation_id: Option<String>,
    /// The tenant its Graph calls go to (`status.tenantId`, lowercase); `None` until it was
    /// first reconciled, and then it may be on any tenant's installation.
    pub tenant: Option<String>,
    /// Its connection refuses it (`ConnectionNotFound`, `ConnectionNotAllowed`): it makes no
    /// Graph calls at all, so it must not hold the installation for the others.
    pub refused: bool,
    pub deleting: bool,
}

impl Claim {
    /// `namespace/name`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether the two claims are the same resource.
    pub fn is(&self, other: &Claim) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }

    /// Whether the two claims are on the same Graph installation.
    pub fn same_installation(&self, other: &Claim) -> bool {
        // Two tenants never share an installation, however their users and apps are named.
        if let (Some(a), Some(b)) = (&self.tenant, &other.tenant)
            && a != b
        {
            return false;
        }
        if let (Some(a), Some(b)) = (&self.installation_id, &other.installation_id) {
            return a == b;
        }
        let same_app = self.app == other.app
            || (self.catalog_app_id.is_some() && self.catalog_app_id == other.catalog_app_id);
        self.user == other.user && same_app
    }

    fn seniority(&self) -> (Option<jiff::Timestamp>, &str, &str) {
        // No creation time (never from the API server) sorts last.
        let created = self.created.as_ref().map(|t| t.0);
        (
            created.or(Some(jiff::Timestamp::MAX)),
            &self.namespace,
            &self.name,
        )
    }
}

/// The resource that owns `me`'s installation when it is not `me`: the oldest of the claims on
/// the same installation that are not being deleted.
pub fn owner_other_than<'a>(me: &Claim, others: &'a [Claim]) -> Option<&'a Claim> {
    let oldest = others
        .iter()
        .filter(|c| !c.deleting && !c.refused && c.same_installation(me))
        .filter(|c| !c.is(me))
        .min_by(|a, b| a.seniority().cmp(&b.seniority()))?;
    (oldest.seniority() < me.seniority() || me.deleting).then_some(oldest)
}

/// Another resource, not being deleted, that wants `me`'s installation: deleting `me` must
/// then not uninstall it.
pub fn wanted_by_another<'a>(me: &Claim, others: &'a [Claim]) -> Option<&'a Claim> {
    others
        .iter()
        .filter(|c| !c.is(me))
        .find(|c| !c.deleting && c.same_installation(me))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, created: &str, user: &str) -> Claim {
        Claim {
            namespace: "ns".into(),
            name: name.into(),
            created: Some(Time(created.parse().expect("time"))),
            user: user.into(),
            app: "com.contoso.bot".into(),
            catalog_app_id: None,
            installation_id: None,
            tenant: None,
            refused: false,
            deleting: false,
        }
    }

    #[test]
    fn a_resource_its_connection_refuses_owns_nothing() {
        let mut a = claim("a", "2026-01-01T00:00:00Z", "alice@contoso.com");
        let b = claim("b", "2026-01-02T00:00:00Z", "alice@contoso.com");
        a.refused = true;
        let all = [a.clone(), b.clone()];
        assert_eq!(owner_other_than(&b, &all), None, "b writes");
        // Still wanted: deleting b must not uninstall what a asks for.
        assert_eq!(wanted_by_another(&b, &all), Some(&a));
    }

    #[test]
    fn resources_on_two_tenants_never_share_an_installation() {
        let mut a = claim("a", "2026-01-01T00:00:00Z", "alice@contoso.com");
        let mut b = claim("b", "2026-01-02T00:00:00Z", "alice@contoso.com");
        a.tenant = Some("tenant-a".into());
        b.tenant = Some("tenant-b".into());
        let all = [a.clone(), b.clone()];
        assert_eq!(owner_other_than(&b, &all), None);
        assert_eq!(wanted_by_another(&a, &all), None);
        // Not known yet: it may be the same installation.
        b.tenant = None;
        assert_eq!(owner_other_than(&b, &[a.clone(), b.clone()]), Some(&a));
    }

    #[test]
    fn the_oldest_owns_and_the_next_takes_over_when_it_goes() {
        let a = claim("a", "2026-01-01T00:00:00Z", "alice@contoso.com");
        let b = claim("b", "2026-01-02T00:00:00Z", "alice@contoso.com");
        let c = claim("c", "2026-01-02T00:00:00Z", "alice@contoso.com");
        let all = [a.clone(), b.clone(), c.clone()];
        assert_eq!(owner_other_than(&a, &all), None);
        assert_eq!(owner_other_than(&b, &all), Some(&a));
        assert_eq!(owner_other_than(&c, &all), Some(&a));
        // Same age: the name decides.
        let gone = [
            Claim {
                deleting: true,
                ..a.clone()
            },
            b.clone(),
            c.clone(),
        ];
        assert_eq!(owner_other_than(&b, &gone), None);
        assert_eq!(owner_other_than(&c, &gone), Some(&b));
        // The deleted one must not uninstall while b and c want it; the last one may.
        assert!(wanted_by_another(&gone[0], &gone).is_some());
        assert_eq!(wanted_by_another(&c, std::slice::from_ref(&c)), None);
    }

    #[test]
    fn other_users_and_apps_are_not_the_same_installation() {
        let a = claim("a", "2026-01-01T00:00:00Z", "alice@contoso.com");
        let bob = claim("b", "2026-01-02T00:00:00Z", "bob@contoso.com");
        let other_app = Claim {
            app: "com.contoso.other".into(),
            ..claim("c", "2026-01-02T00:00:00Z", "alice@contoso.com")
        };
        let all = [a.clone(), bob.clone(), other_app.clone()];
        assert_eq!(owner_other_than(&bob, &all), None);
        assert_eq!(owner_other_than(&other_app, &all), None);
    }

    #[test]
    fn a_upn_and_an_object_id_are_one_user_once_graph_names_the_installation() {
        let by_upn = Claim {
            installation_id: Some("aW5zdA==".into()),
            ..claim("a", "2026-01-01T00:00:00Z", "alice@contoso.com")
        };
        let by_id = Claim {
            installation_id: Some("aW5zdA==".into()),
            ..claim(
                "b",
                "2026-01-02T00:00:00Z",
                "22222222-2222-2222-2222-222222222222",
            )
        };
        let all = [by_upn.clone(), by_id.clone()];
        assert_eq!(owner_other_than(&by_id, &all), Some(&by_upn));
        // By id and by externalId: the catalog id the app resolved to tells.
        let by_catalog = Claim {
            app: "33333333-3333-3333-3333-333333333333".into(),
            catalog_app_id: Some("33333333-3333-3333-3333-333333333333".into()),
            ..claim("c", "2026-01-03T00:00:00Z", "alice@contoso.com")
        };
        let by_external = Claim {
            catalog_app_id: Some("33333333-3333-3333-3333-333333333333".into()),
            ..claim("d", "2026-01-02T00:00:00Z", "alice@contoso.com")
        };
        let all = [by_catalog.clone(), by_external.clone()];
        assert_eq!(owner_other_than(&by_catalog, &all), Some(&by_external));
    }
}
