//! Application permissions (the `roles` of an app-only token) and what they let a client do with
//! users' installed Teams apps and with the directory. Only the distinctions the operator meets
//! are modelled: the `…ForUser.All` roles reach every app; the `…SelfForUser.All` roles reach
//! only the calling app's own installation (never installed in the simulator, so such a client
//! sees nothing and may change nothing); without either, every installedApps call is a 403.
//! Group memberships need a group (or directory) read role; user properties need a user (or
//! directory) read role — with only `User.ReadBasic.All`, just the basic profile is readable, and
//! with neither, members come back as bare ids.

use axum::http::StatusCode;

use super::errors::GraphError;

/// What a client without a `roles` seed field is granted: everything the operator needs.
pub(crate) const DEFAULT_ROLES: [&str; 4] = [
    "TeamsAppInstallation.ReadWriteForUser.All",
    "AppCatalog.Read.All",
    "GroupMember.Read.All",
    "User.Read.All",
];

const ANY_APP: [&str; 2] = [
    "TeamsAppInstallation.ReadWriteForUser.All",
    "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
];

const OWN_APP: [&str; 2] = [
    "TeamsAppInstallation.ReadWriteSelfForUser.All",
    "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All",
];

/// Lets a client consent to an app's application RSC permissions when it installs or upgrades
/// another app for a user (`…AndConsentSelfForUser.All` covers only the caller's own app, which
/// the simulator never installs).
const CONSENT_ANY_APP: [&str; 1] = ["TeamsAppInstallation.ReadWriteAndConsentForUser.All"];

/// Any of these lets a client subscribe to a catalog app's personal-scope installations
/// (the application permissions listed, least to most privileged, in "Get change notifications
/// for app installation": <https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>).
/// The `…Self…` roles reach only the caller's own app, never installed here, so they are not
/// among them.
const READ_INSTALLATIONS: [&str; 3] = [
    "TeamsAppInstallation.ReadForUser.All",
    "TeamsAppInstallation.ReadWriteForUser.All",
    "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
];

/// Either lets a client read `GET /teamwork/teamsAppSettings`.
const READ_TEAMS_APP_SETTINGS: [&str; 2] = [
    "TeamworkAppSettings.Read.All",
    "TeamworkAppSettings.ReadWrite.All",
];

/// Any of these lets a client list a group's (transitive) members.
const READ_MEMBERSHIPS: [&str; 6] = [
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Any of these lets a client read users' properties.
const READ_USERS: [&str; 4] = [
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Graph's basic profile of a user: all that `User.ReadBasic.All` may read (permissions
/// reference, "User.ReadBasic.All": displayName, givenName, mail, photo, surname,
/// userPrincipalName), and the `id` every directory object carries.
const BASIC_PROFILE: [&str; 6] = [
    "id",
    "displayName",
    "givenName",
    "mail",
    "surname",
    "userPrincipalName",
];

/// How much of a user a client's roles let it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserAccess {
    /// `User.Read.All`, `Directory.Read.All` or a `…ReadWrite…` variant: every property.
    Full,
    /// `User.ReadBasic.All` only: the basic profile; every other property is `null`.
    Basic,
    /// Neither: the `id` only (a member of a group the client may list).
    IdOnly,
}

impl UserAccess {
    /// Whether this client sees `property` (a canonical name) or a `null` in its place.
    pub fn sees(self, property: &str) -> bool {
        match self {
            Self::Full => true,
            Self::Basic => BASIC_PROFILE.contains(&property),
            Self::IdOnly => property == "id",
        }
    }
}

fn has_any(roles: &[String], set: &[&str]) -> bool {
    roles
        .iter()
        .any(|r| set.iter().any(|s| s.eq_ignore_ascii_case(r)))
}

pub(crate) fn may_consent(roles: &[String]) -> bool {
    has_any(roles, &CONSENT_ANY_APP)
}

pub(crate) fn may_read_installations(roles: &[String]) -> bool {
    has_any(roles, &READ_INSTALLATIONS)
}

pub(crate) fn may_read_teams_app_settings(roles: &[String]) -> bool {
    has_any(roles, &READ_TEAMS_APP_SETTINGS)
}

pub(crate) fn may_read_memberships(roles: &[String]) -> bool {
    has_any(roles, &READ_MEMBERSHIPS)
}

pub(crate) fn user_access(roles: &[String]) -> UserAccess {
    if has_any(roles, &READ_USERS) {
        UserAccess::Full
    } else if has_any(roles, &["User.ReadBasic.All"]) {
        UserAccess::Basic
    } else {
        UserAccess::IdOnly
    }
}

/// Entra ID's answer to a directory call the token's roles do not allow.
pub(crate) fn insufficient_privileges() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// Which installations a client's roles let it read and manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    AnyApp,
    OwnAppOnly,
    Nothing,
}

pub(crate) fn reach(roles: &[String]) -> Reach {
    if has_any(roles, &ANY_APP) {
        Reach::AnyApp
    } else if has_any(roles, &OWN_APP) {
        Reach::OwnAppOnly
    } else {
        Reach::Nothing
    }
}

/// A `…Self…` client touching another app's installation.
pub(crate) fn not_own_app(client_id: &str, app: &str) -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "The calling application '{client_id}' is not allowed to manage the Teams App \
             '{app}': with TeamsAppInstallation.ReadWriteSelfForUser.All an application may only \
             manage its own installation."
        ),
    )
}

/// A client with no installedApps permission at all.
pub(crate) fn missing_roles(roles: &[String]) -> GraphError {
    let required: Vec<&str> = ANY_APP.iter().chain(&OWN_APP).copied().collect();
    missing_one_of(&required, roles)
}

/// An install or upgrade consenting to application RSC permissions without the role to.
pub(crate) fn missing_consent_role(roles: &[String]) -> GraphError {
    missing_one_of(&CONSENT_ANY_APP, roles)
}

/// A subscription to app installations without a role that reads them.
pub(crate) fn missing_installation_read_role(roles: &[String]) -> GraphError {
    missing_one_of(&READ_INSTALLATIONS, roles)
}

/// A `GET /teamwork/teamsAppSettings` without a TeamworkAppSettings role.
pub(crate) fn missing_settings_role(roles: &[String]) -> GraphError {
    missing_one_of(&READ_TEAMS_APP_SETTINGS, roles)
}

/// Graph's wording for a token without any of the roles an API requires.
fn missing_one_of(required: &[&str], roles: &[String]) -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "Missing role permissions on the request. API requires one of '{}'. Roles on the \
             request '{}'.",
            required.join(", "),
            roles.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roles_decide_the_reach() {
        assert_eq!(reach(&roles(&DEFAULT_ROLES)), Reach::AnyApp);
        assert_eq!(
            reach(&roles(&["teamsappinstallation.readwriteselfforuser.all"])),
            Reach::OwnAppOnly
        );
        assert_eq!(reach(&roles(&["AppCatalog.Read.All"])), Reach::Nothing);
        assert!(missing_roles(&[]).message.contains("ReadWriteForUser.All"));
        assert!(
            !may_consent(&roles(&DEFAULT_ROLES)),
            "the defaults stay without consent"
        );
        assert!(may_consent(&roles(&[
            "teamsappinstallation.readwriteandconsentforuser.all"
        ])));
        assert!(!may_consent(&roles(&[
            "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All"
        ])));
        assert!(!may_read_teams_app_settings(&roles(&DEFAULT_ROLES)));
        assert!(may_read_teams_app_settings(&roles(&[
            "TeamworkAppSettings.Read.All"
        ])));
        assert!(may_read_teams_app_settings(&roles(&[
            "TeamworkAppSettings.ReadWrite.All"
        ])));
    }

    #[test]
    fn directory_roles() {
        let default = roles(&DEFAULT_ROLES);
        assert!(may_read_memberships(&default));
        assert_eq!(user_access(&default), UserAccess::Full);
        let members_only = roles(&["groupmember.read.all"]);
        assert!(may_read_memberships(&members_only));
        assert_eq!(user_access(&members_only), UserAccess::IdOnly);
        let directory = roles(&["Directory.Read.All"]);
        assert!(may_read_memberships(&directory));
        assert_eq!(user_access(&directory), UserAccess::Full);
        let users_only = roles(&["User.Read.All"]);
        assert!(!may_read_memberships(&users_only));
        assert_eq!(user_access(&users_only), UserAccess::Full);
        let basic = roles(&["User.ReadBasic.All", "GroupMember.Read.All"]);
        assert_eq!(user_access(&basic), UserAccess::Basic);
        assert!(UserAccess::Basic.sees("userPrincipalName") && UserAccess::Basic.sees("id"));
        assert!(
            !UserAccess::Basic.sees("accountEnabled") && !UserAccess::Basic.sees("assignedPlans")
        );
        assert_eq!(
            user_access(&roles(&["User.ReadBasic.All", "User.Read.All"])),
            UserAccess::Full
        );
    }
}
