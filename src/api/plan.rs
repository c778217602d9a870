//! What a resource in `managementPolicy: Observe` reports it would do: `status.plan` on a
//! `TeamsAppInstallation` (one user) and on a `TeamsAppRollout` (rolled up per wave).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lenient;

/// The one Graph write a plan would make.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PlannedAction {
    /// Nothing to write: the user's installation already is as the spec asks.
    #[default]
    None,
    Install,
    Upgrade,
    Uninstall,
    /// Something stops the write (`blockedReason` says what, e.g. `ConsentRequired`).
    Blocked,
}

impl PlannedAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Install => "Install",
            Self::Upgrade => "Upgrade",
            Self::Uninstall => "Uninstall",
            Self::Blocked => "Blocked",
        }
    }
}

/// What one installation would do in `Manage`, computed from the same reads.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstallationPlan {
    /// `None`, `Install`, `Upgrade`, `Uninstall` or `Blocked`.
    pub action: PlannedAction,
    /// For `Blocked`: the reason the resource would stop at (like `ConsentRequired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// The plan in words.
    #[serde(default)]
    pub message: String,
    /// The installed version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// The version the write would move to (the catalog's latest published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<String>,
    /// The application RSC permissions the write would consent to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<String>,
    /// The Graph writes, as `METHOD path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// The `metadata.generation` the plan was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the plan last changed (re-checks that find the same plan leave it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_time: Option<Time>,
}

impl InstallationPlan {
    /// The same plan, whenever and for whichever generation it was computed.
    pub fn same_plan(&self, other: &Self) -> bool {
        let strip = |p: &Self| Self {
            generation: None,
            computed_time: None,
            ..p.clone()
        };
        strip(self) == strip(other)
    }
}

/// A rollout's plan: what switching it to `Manage` would do, wave by wave.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPlan {
    /// A digest of what the plan was computed from: the spec's revision, the catalog's latest
    /// version and its required permissions, and the eligible audience. Set it as
    /// `spec.approvedPlanRevision` to run exactly this plan.
    pub revision: String,
    /// The spec revision (`status.revision`) the plan was computed for: with `catalogVersion`
    /// and the wave sizes, it lets a stale approval say what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_revision: Option<String>,
    /// The catalog's latest published version the plan moves users to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<String>,
    /// Per wave, in order.
    #[serde(default)]
    pub waves: Vec<WavePlan>,
    /// Installations of users who left the audience that `Manage` would remove.
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub removals: u32,
    /// Graph writes `Manage` would make, by kind (`install`, `upgrade`, `uninstall`).
    #[serde(default)]
    pub calls: BTreeMap<String, u32>,
    /// The least time those writes take at the tenant's Graph budget (per class, at its
    /// documented rate), like `1m40s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration: Option<String>,
    /// A few users per action (`Install`, `Upgrade`, `Uninstall`, `Blocked`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub samples: BTreeMap<String, Vec<String>>,
    /// When the plan last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_time: Option<Time>,
}

/// One wave of a rollout's plan.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WavePlan {
    pub name: String,
    /// Eligible users in the wave.
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub users: u32,
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub installs: u32,
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub upgrades: u32,
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub uninstalls: u32,
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub unchanged: u32,
    /// Users whose write something stops, by reason (`ConsentRequired`, `BlockedByPolicy`…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub blocked: BTreeMap<String, u32>,
    /// Users whose installation has not computed its plan yet.
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub pending: u32,
}
