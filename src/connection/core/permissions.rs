//! The application permissions the operator needs, and which of them a token lacks.
//!
//! Each need is met by any of several roles (a broader role includes a narrower one), as the
//! Graph permission tables of each call list them:
//! - installed apps: <https://learn.microsoft.com/graph/api/userteamwork-list-installedapps>
//!   (`TeamsAppInstallation.ReadWriteForUser.All`; the `…SelfForUser.All` roles reach only
//!   the calling app's own installation, which is not what the operator manages);
//! - the catalog: <https://learn.microsoft.com/graph/api/appcatalogs-list-teamsapps>;
//! - a group's transitive members: <https://learn.microsoft.com/graph/api/group-list-transitivemembers>;
//! - users' properties: <https://learn.microsoft.com/graph/api/user-get>;
//! - consenting resource-specific permissions at install or upgrade:
//!   <https://learn.microsoft.com/graph/api/userteamwork-post-installedapps>
//!   (`TeamsAppInstallation.ReadWriteAndConsentForUser.All`).

/// One thing the operator needs, by the least-privileged role that grants it.
struct Need {
    role: &'static str,
    any_of: &'static [&'static str],
    /// Who needs it.
    for_: Use,
}

/// Which users of a connection need a permission.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Always,
    /// Rollouts (directory reads).
    Rollouts,
    /// Resources that consent RSC application permissions (`spec.consent`).
    Consent,
}

const NEEDS: [Need; 5] = [
    Need {
        role: "TeamsAppInstallation.ReadWriteForUser.All",
        any_of: &[
            "TeamsAppInstallation.ReadWriteForUser.All",
            "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
        ],
        for_: Use::Always,
    },
    Need {
        role: "AppCatalog.Read.All",
        any_of: &[
            "AppCatalog.Read.All",
            "AppCatalog.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        for_: Use::Always,
    },
    Need {
        role: "GroupMember.Read.All",
        any_of: &[
            "GroupMember.Read.All",
            "GroupMember.ReadWrite.All",
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        for_: Use::Rollouts,
    },
    Need {
        role: "User.Read.All",
        any_of: &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        for_: Use::Rollouts,
    },
    Need {
        role: "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
        any_of: &["TeamsAppInstallation.ReadWriteAndConsentForUser.All"],
        for_: Use::Consent,
    },
];

/// The roles the operator needs and `granted` lacks, each by its least-privileged name: for
/// installations, for rollouts too when `rollouts` is set, and for consenting RSC permissions
/// when `consent` is set.
pub fn missing(granted: &[String], rollouts: bool, consent: bool) -> Vec<&'static str> {
    NEEDS
        .iter()
        .filter(|need| match need.for_ {
            Use::Always => true,
            Use::Rollouts => rollouts,
            Use::Consent => consent,
        })
        .filter(|need| {
            !need
                .any_of
                .iter()
                .any(|role| granted.iter().any(|g| g.eq_ignore_ascii_case(role)))
        })
        .map(|need| need.role)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn everything_the_operator_needs_is_nothing_missing() {
        let granted = roles(&[
            "TeamsAppInstallation.ReadWriteForUser.All",
            "AppCatalog.Read.All",
            "GroupMember.Read.All",
            "User.Read.All",
        ]);
        assert!(missing(&granted, true, false).is_empty());
    }

    #[test]
    fn the_self_variant_does_not_count() {
        let granted = roles(&[
            "TeamsAppInstallation.ReadWriteSelfForUser.All",
            "AppCatalog.Read.All",
        ]);
        assert_eq!(
            missing(&granted, false, false),
            ["TeamsAppInstallation.ReadWriteForUser.All"]
        );
    }

    #[test]
    fn rollouts_need_two_more_and_broader_roles_cover_them() {
        let granted = roles(&[
            "TeamsAppInstallation.ReadWriteForUser.All",
            "AppCatalog.Read.All",
        ]);
        assert!(missing(&granted, false, false).is_empty());
        assert_eq!(
            missing(&granted, true, false),
            ["GroupMember.Read.All", "User.Read.All"]
        );
        let broader = roles(&[
            "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
            "Directory.Read.All",
        ]);
        assert!(missing(&broader, true, false).is_empty());
    }

    #[test]
    fn consenting_rsc_permissions_needs_the_and_consent_role() {
        let granted = roles(&[
            "TeamsAppInstallation.ReadWriteForUser.All",
            "AppCatalog.Read.All",
        ]);
        assert_eq!(
            missing(&granted, false, true),
            ["TeamsAppInstallation.ReadWriteAndConsentForUser.All"]
        );
        let consenting = roles(&[
            "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
            "AppCatalog.Read.All",
        ]);
        assert!(missing(&consenting, false, true).is_empty());
    }

    #[test]
    fn no_roles_is_everything_missing() {
        assert_eq!(missing(&[], true, false).len(), 4);
    }
}
