//! The spec fields both workload kinds share that decide *whether* and *what* the operator may
//! write to Graph before it writes: plan mode (`managementPolicy`), resource-specific consent
//! (`consent`) and `ensure`. The kinds' controllers read them through the same pure rules.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether the operator acts on Graph or only says what it would do.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ManagementPolicy {
    /// Read Graph and write to it: install, upgrade, uninstall.
    #[default]
    Manage,
    /// Read Graph as usual, never write to it: `status.plan` says what `Manage` would do.
    Observe,
}

/// Whether the app should be there or not.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ensure {
    /// Installed, at least at the target version.
    #[default]
    Present,
    /// Not installed: uninstalled where it is, never installed, kept absent on drift.
    Absent,
}

/// How consent to the app's resource-specific (RSC) application permissions is given.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConsentMode {
    /// Consent exactly to `permissions`: a version that needs more waits (`ConsentRequired`)
    /// until someone adds them.
    #[default]
    Explicit,
    /// Consent to whatever the wanted version requires, with no review: a new version that
    /// asks for more is granted it as it rolls out.
    MatchCatalog,
}

/// The application RSC permissions the app's owner consents to on behalf of each user.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// `Explicit` (default): consent exactly to `permissions`. `MatchCatalog`: consent to
    /// whatever the version being installed requires.
    #[serde(default)]
    pub mode: ConsentMode,

    /// Application RSC permission names, like `TeamsActivity.Send.User` (the
    /// `permissionValue`s of the app definition's `authorization.requiredPermissionSet`).
    /// Delegated permissions need no consent here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(p, p.size() > 0 && p.size() <= 128)").message("each consent permission is a name of 1 to 128 characters"))]
    #[schemars(length(max = 64))]
    pub permissions: Vec<String>,
}

impl Consent {
    /// Whether `required` (application permission names) is covered by this consent.
    /// Names compare case-insensitively, as Graph's permission names do.
    pub fn missing<'a>(consent: Option<&Consent>, required: &'a [String]) -> Vec<&'a str> {
        match consent {
            Some(Consent {
                mode: ConsentMode::MatchCatalog,
                ..
            }) => Vec::new(),
            Some(Consent { permissions, .. }) => required
                .iter()
                .filter(|r| !permissions.iter().any(|p| p.eq_ignore_ascii_case(r)))
                .map(String::as_str)
                .collect(),
            None => required.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn explicit_consent_covers_only_what_it_lists() {
        let required = names(&["TeamsActivity.Send.User", "Chat.Read.User"]);
        let consent = Consent {
            mode: ConsentMode::Explicit,
            permissions: names(&["teamsactivity.send.user"]),
        };
        assert_eq!(
            Consent::missing(Some(&consent), &required),
            vec!["Chat.Read.User"]
        );
        assert_eq!(Consent::missing(None, &required).len(), 2);
        assert!(Consent::missing(None, &[]).is_empty());
    }

    #[test]
    fn match_catalog_covers_everything() {
        let consent = Consent {
            mode: ConsentMode::MatchCatalog,
            permissions: Vec::new(),
        };
        assert!(Consent::missing(Some(&consent), &names(&["A.B"])).is_empty());
    }
}
