//! What a `TeamsAppRollout` reports: its status, audience counts, removals and waves. Doc
//! comments become `kubectl explain tar.status` text, so they are written for users.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lenient;
use super::plan::RolloutPlan;
use super::resource::conditions_schema;

/// What the rollout last saw and concluded.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TeamsAppRolloutStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The app, as the spec names it (`id` or `externalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,

    /// A digest of what every installation is given (app, version, policies, template). When
    /// the spec changes it, the waves start over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,

    /// The audience at its last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<AudienceStatus>,

    /// Users pending removal and removals held.
    #[serde(default, skip_serializing_if = "RemovalStatus::is_empty")]
    pub removals: RemovalStatus,

    /// Each wave's progress, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<WaveStatus>,

    /// The wave in progress (or baking); the last wave once all are complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_wave: Option<String>,

    /// Installations Ready / eligible users, like `940/1000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_summary: Option<String>,

    /// The value of the `teamsapps.dev/reconcile-requested-at` annotation last acted on: a
    /// changed value re-reads the audience now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The application RSC permissions the catalog's latest version requires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_permissions: Vec<String>,

    /// In `managementPolicy: Observe` (and kept for review after): what `Manage` would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<RolloutPlan>,

    /// `Ready` is always present; `Reconciling` and `Stalled` appear only while true.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Audience counts at the last read.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AudienceStatus {
    /// Distinct users in the groups and user list, before exclusions and eligibility.
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub members: u32,
    /// Members removed by `exclude`.
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub excluded: u32,
    /// Members skipped by the eligibility rules, by reason.
    pub skipped: SkippedCounts,
    /// Members who get the app.
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub eligible: u32,
    /// Listed users Graph does not know (`audience.users` entries that were not found).
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "lenient::u32"
    )]
    #[schemars(range(max = u32::MAX))]
    pub not_found: u32,
    /// Eligible members whose Teams service plan is in a state the operator does not know
    /// (treated as licensed: never a reason to uninstall).
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "lenient::u32"
    )]
    #[schemars(range(max = u32::MAX))]
    pub unknown_licence_states: u32,
    /// When the audience was read from Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_time: Option<Time>,
}

/// Users on their way out of the rollout, and removals held for a person.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemovalStatus {
    /// Users absent from the audience, waiting out `removalDelay` before they are removed.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "lenient::u32"
    )]
    #[schemars(range(max = u32::MAX))]
    pub pending: u32,
    /// When the next pending removal becomes due (if still absent then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_due_time: Option<Time>,
    /// Removals due but held: more than `removalLimit` at once, or the audience read looked
    /// wrong (a group that had members read as empty).
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "lenient::u32"
    )]
    #[schemars(range(max = u32::MAX))]
    pub blocked: u32,
    /// The digest of the held removal set: annotate the rollout with
    /// `teamsapps.dev/approve-removals=<digest>` to remove exactly that set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_digest: Option<String>,
}

impl RemovalStatus {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Skipped members by reason. A user skipped for several reasons counts under the first of
/// guest, disabled, unlicensed.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCounts {
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub guests: u32,
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub disabled: u32,
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub unlicensed: u32,
}

/// One wave's progress.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WaveStatus {
    pub name: String,
    /// Eligible users in this wave.
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub users: u32,
    /// Their installations that are Ready.
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub ready: u32,
    /// Their installations that are Stalled.
    #[serde(deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub failed: u32,
    /// Their installations that a tenant policy stops (`BlockedByPolicy`, `ManagedByPolicy`,
    /// `ConsentDisabled`): skipped, not failures, so they never eat `maxFailures`.
    #[serde(default, deserialize_with = "lenient::u32")]
    #[schemars(range(max = u32::MAX))]
    pub blocked: u32,
    /// When the wave's installations were first created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When every installation of the wave was first Ready (failures within maxFailures
    /// tolerated). Stays set when users join later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}
