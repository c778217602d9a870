//! The application permissions the operator needs, and which of them a token lacks.
//!
//! Each need is met by any of several roles (a broader role includes a narrower one), as the
//! Graph permission tables of each call list them:
//! - installed apps: <https://learn.microsoft.com/graph/api/userteamwork-list-installedapps>
//!   (`TeamsAppInstallation.ReadWriteForUser.All`; the `…SelfForUser.All` roles reach only
//!   the calling app's own installation, which is not what the operator manages);
//! - the catalog: <https://learn.microsoft.com/graph/api/appcatalogs-list-teamsapps>;
//! - a group's transitive members: <https://learn.microsoft.com/graph/api/group-list-transitivemembers>;
//! - users' properties: <https://learn.microsoft.com/graph/api/user-get>.

/// One thing the operator needs, by the least-privileged role that grants it.
struct Need {
    role: &'static str,
    any_of: &'static [&'static str],
    /// Only rollouts need it (directory reads).
    rollouts_only: bool,
}

const NEEDS: [Need; 4] = [
    Need {
        role: "TeamsAppInstallation.ReadWriteForUser.All",
        any_of: &[
            "TeamsAppInstallation.ReadWriteForUser.All",
            "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
        ],
        rollouts_only: false,
    },
    Need {
        role: "AppCatalog.Read.All",
        any_of: &[
            "AppCatalog.Read.All",
            "AppCatalog.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        rollouts_only: false,
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
        rollouts_only: true,
    },
    Need {
        role: "User.Read.All",
        any_of: &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        rollouts_only: true,
    },
];

/// The roles the operator needs and `granted` lacks, each by its least-privileged name: for
/// installations, and for rollouts too when `rollouts` is set.
pub fn missing(granted: &[String], rollouts: bool) -> Vec<&'static str> {
    NEEDS
        .iter()
        .filter(|need| rollouts || !need.rollouts_only)
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
        assert!(missing(&granted, true).is_empty());
    }

    #[test]
    fn the_self_variant_does_not_count() {
        let granted = roles(&[
            "TeamsAppInstallation.ReadWriteSelfForUser.All",
            "AppCatalog.Read.All",
        ]);
        assert_eq!(
            missing(&granted, false),
            ["TeamsAppInstallation.ReadWriteForUser.All"]
        );
    }

    #[test]
    fn rollouts_need_two_more_and_broader_roles_cover_them() {
        let granted = roles(&[
            "TeamsAppInstallation.ReadWriteForUser.All",
            "AppCatalog.Read.All",
        ]);
        assert!(missing(&granted, false).is_empty());
        assert_eq!(
            missing(&granted, true),
            ["GroupMember.Read.All", "User.Read.All"]
        );
        let broader = roles(&[
            "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
            "Directory.Read.All",
        ]);
        assert!(missing(&broader, true).is_empty());
    }

    #[test]
    fn no_roles_is_everything_missing() {
        assert_eq!(missing(&[], true).len(), 4);
    }
}
