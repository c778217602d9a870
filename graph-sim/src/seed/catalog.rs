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
