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
    /// The shorthand for the user's service plans when `plans` is absent: `true` (the default)
    /// = Exchange Online and the Teams plan `TEAMS1` (`TeamspaceAPI`,
    /// `57ff2da0-773e-42df-b2af-ffb7a2317929`), both `Enabled`; `false` = the Teams plan
    /// `Deleted` (a licence that was removed), so every `teamwork` call for them is a 403
    /// `Forbidden` "Failed to get license information for the user. Ensure user has a valid
    /// Office365 license assigned to them."
    #[serde(default = "yes")]
    pub teams_enabled: bool,
    /// The user's service plans exactly, as Graph's `assignedPlans` lists them (any number, in
    /// any state), instead of the `teamsEnabled` shorthand (give one or the other). The user has
    /// a Teams licence while a `TeamspaceAPI` plan is `Enabled` or `Warning` (a subscription in
    /// its grace period still works); `Suspended`, `LockedOut`, `Deleted` or no Teams plan at all
    /// is the 403 above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plans: Option<Vec<PlanSeed>>,
    /// `false` = the directory knows the user (`GET /users/{id}` answers, groups list them) but
    /// Teams has not provisioned them yet, as for a user just created or just licensed: every
    /// installedApps call for them (list, install, …) answers 404 `NotFound`
    /// "User Id '{id}' not found.".
    #[serde(default = "yes")]
    pub teams_provisioned: bool,
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
    /// `true` = soft-deleted (in the tenant's deleted items) from the start, as
    /// `DELETE /_sim/tenants/{t}/users/{id}` leaves a user: gone from directory reads and group
    /// memberships, unknown to Teams, until `POST …/users/{id}/restore` brings the user back with
    /// the memberships listed in the seed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// One service plan of a user, as Graph's `assignedPlan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanSeed {
    pub service_plan_id: String,
    /// Graph's values are `Enabled`, `Warning`, `Suspended`, `Deleted` and `LockedOut`; any
    /// other text is passed through as it is.
    pub capability_status: String,
    /// The service the plan belongs to, e.g. `TeamspaceAPI` or `exchange`. Default: known for
    /// the Teams (`TEAMS1`) and Exchange Online (Plan 2) plan ids, else `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Default: a fixed date, so responses do not change from run to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_date_time: Option<jiff::Timestamp>,
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
    /// `true` makes the user's Teams plans `Enabled` (adding `TEAMS1` when they have none),
    /// `false` makes them `Deleted`; see [`UserSeed::teams_enabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_enabled: Option<bool>,
    /// Replaces the user's service plans; see [`UserSeed::plans`]. Not together with
    /// `teamsEnabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plans: Option<Vec<PlanSeed>>,
    /// See [`UserSeed::teams_provisioned`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_provisioned: Option<bool>,
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
