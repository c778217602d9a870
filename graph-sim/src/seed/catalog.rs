//! The catalog part of a seed: apps, their definitions (versions), and the installations the
//! simulator starts with.

use serde::{Deserialize, Serialize};

/// A `teamsApp` in the tenant's app catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSeed {
    /// The catalog id (catalog-generated for org apps).
    pub id: String,
    /// The manifest id; absent for store apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub distribution_method: DistributionMethod,
    #[serde(default)]
    pub definitions: Vec<DefinitionSeed>,
}

/// One version (`teamsAppDefinition`) of a catalog app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefinitionSeed {
    pub version: String,
    #[serde(default)]
    pub publishing_state: PublishingState,
    /// Defaults to the app's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_description: Option<String>,
    /// The resource-specific (RSC) permissions the version's manifest asks for: rendered as
    /// `authorization.requiredPermissionSet.resourceSpecificPermissions`, and what an install or
    /// upgrade to this version must consent to (see `rsc`). Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_permissions: Vec<RscPermission>,
}

/// One resource-specific permission (`teamsAppResourceSpecificPermission`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RscPermission {
    pub permission_type: RscPermissionType,
    /// E.g. `TeamsActivity.Send.User`; compared case-insensitively.
    pub permission_value: String,
}

/// `teamsAppResourceSpecificPermissionType`. Application permissions are used app-only, so
/// consenting to them needs `TeamsAppInstallation.ReadWriteAndConsentForUser.All`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RscPermissionType {
    Application,
    Delegated,
}

impl RscPermissionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Delegated => "delegated",
        }
    }
}

/// An app already installed for a user when the simulator starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallationSeed {
    /// Object id or UPN.
    pub user: String,
    /// Catalog id (or manifest id).
    pub app: String,
    /// The installed definition; default = the highest published one. Seeding an old version is
    /// how a demo shows an upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Installed by the tenant admin's app setup policy: Graph refuses to uninstall it (403
    /// `AppIsTenantAdminPreinstalled`); upgrades still work.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preinstalled_by_policy: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `teamsAppDefinition.publishingState`. Only `published` definitions are installable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PublishingState {
    Submitted,
    Rejected,
    #[default]
    Published,
    UnknownFutureValue,
}

impl PublishingState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Rejected => "rejected",
            Self::Published => "published",
            Self::UnknownFutureValue => "unknownFutureValue",
        }
    }
}

/// `teamsApp.distributionMethod`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DistributionMethod {
    Store,
    #[default]
    Organization,
    Sideloaded,
    UnknownFutureValue,
}

impl DistributionMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Organization => "organization",
            Self::Sideloaded => "sideloaded",
            Self::UnknownFutureValue => "unknownFutureValue",
        }
    }
}
