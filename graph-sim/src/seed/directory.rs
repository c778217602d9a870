//! The directory part of a seed: users (their directory properties and Teams licence) and groups,
//! and the admin API's change to a user.

use serde::{Deserialize, Serialize};

/// A user in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSeed {
    /// The Entra object id (a GUID).
    pub id: String,
    pub user_principal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `false` = the user has no Teams licence: every `teamwork` call for them is a 403
    /// `Forbidden` "Failed to get license information for the user. Ensure user has a valid
    /// Office365 license assigned to them." In directory reads, `assignedPlans` then shows the
    /// Teams service plan (`TeamspaceAPI`, `57ff2da0-773e-42df-b2af-ffb7a2317929`) with
    /// `capabilityStatus: "Deleted"` — a licence that was removed — instead of `"Enabled"`.
    #[serde(default = "yes")]
    pub teams_enabled: bool,
    /// Catalog app ids a Teams app permission policy blocks for this user: install and upgrade
    /// answer 403 `Forbidden` "App is blocked by app permission policy".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_apps: Vec<String>,
    /// Graph's `accountEnabled`: `false` = the account is disabled (sign-in blocked). Only what
    /// directory reads show; the Teams calls do not look at it.
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// Graph's `userType`.
    #[serde(default)]
    pub user_type: UserType,
}

fn yes() -> bool {
    true
}

/// Graph's `user.userType`: a member of the organisation or a guest (B2B) account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserType {
    #[default]
    Member,
    Guest,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "Member",
            Self::Guest => "Guest",
        }
    }
}

/// A change to a user's directory properties and licence (`PATCH /_sim/tenants/{t}/users/{id}`);
/// absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    /// See [`UserSeed::teams_enabled`]: also what `assignedPlans` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
}

/// A group in the directory. Its members are named by user object id, UPN or group id; a group
/// member makes that group's members transitive members of this one (nesting may be deep and may
/// even loop: every user is counted once). A name that matches nothing is a seed error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupSeed {
    /// The Entra object id (a GUID); must not also be a user's id or UPN.
    pub id: String,
    /// Defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Direct members: user ids, UPNs or group ids.
    #[serde(default)]
    pub members: Vec<String>,
}
