//! The `TeamsAppRollout` custom resource: one app for everyone in some groups, in waves.
//!
//! A rollout turns an audience (Entra groups and users) into one `TeamsAppInstallation` per
//! eligible user, wave by wave; the installations' own controller does the Graph work. Doc
//! comments become `kubectl explain tar.spec` text, so they are written for users.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::connection::{CONNECTION_REF_MESSAGE, CONNECTION_REF_RULE, ConnectionRef};
use super::intent::{Consent, Ensure, ManagementPolicy};
use super::lenient;
use super::resource::{AppReference, DeletionPolicy, InstallPolicy};
use super::rollout_status::TeamsAppRolloutStatus;
use super::rollout_validation::{
    AUDIENCE_MESSAGE, AUDIENCE_RULE, BAKE_TIME_MESSAGE, GROUPS_MESSAGE, GROUPS_RULE,
    MAX_FAILURES_MESSAGE, MAX_FAILURES_RULE, MEMBERSHIP_INTERVAL_MESSAGE, REMOVAL_DELAY_MESSAGE,
    REMOVAL_LIMIT_MESSAGE, REMOVAL_LIMIT_RULE, TEMPLATE_INTERVAL_MESSAGE, USERS_MESSAGE,
    WAVE_COUNTS_MESSAGE, WAVE_COUNTS_RULE, WAVE_KINDS_MESSAGE, WAVE_KINDS_RULE, WAVE_NAME_MESSAGE,
    WAVE_NAME_RULE, WAVE_NAMES_MESSAGE, WAVE_NAMES_RULE, WAVE_ONE_OF_MESSAGE, WAVE_ONE_OF_RULE,
    WAVE_PERCENTS_MESSAGE, WAVE_PERCENTS_RULE,
};
use super::validation::{
    INTERVAL_RULE, LONG_WAIT_RULE, TARGET_VERSION_MESSAGE, TARGET_VERSION_RULE, all_users_rule,
};

/// Gives a Teams app to everyone in some Entra groups, in waves that halt on failure.
// Clippy mistakes the repeated `type_` keys of separate `printcolumn(...)` entries for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "teamsapps.dev",
    version = "v1alpha1",
    kind = "TeamsAppRollout",
    namespaced,
    shortname = "tar",
    category = "teams",
    status = "TeamsAppRolloutStatus",
    derive = "PartialEq",
    doc = "Gives a Microsoft Teams app to everyone in some Entra groups, in waves that halt on failure.",
    printcolumn(name = "App", type_ = "string", json_path = ".status.app"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.targetVersion"),
    printcolumn(name = "Wave", type_ = "string", json_path = ".status.currentWave"),
    printcolumn(
        name = "Users Ready",
        type_ = "string",
        json_path = ".status.readySummary"
    ),
    printcolumn(
        name = "Plan",
        type_ = "string",
        json_path = ".status.plan.revision",
        priority = "1"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(CONNECTION_REF_RULE).message(CONNECTION_REF_MESSAGE))]
pub struct TeamsAppRolloutSpec {
    /// The Teams app, by exactly one of `id` (the catalog app id) or `externalId` (the app
    /// manifest id). Immutable: create a new rollout for another app.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.app is immutable"))]
    pub app: AppReference,

    /// The minimum version every user should have (as on a TeamsAppInstallation). Changing it
    /// rolls the new version out wave by wave again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(TARGET_VERSION_RULE).message(TARGET_VERSION_MESSAGE))]
    #[schemars(length(min = 1, max = 64))]
    pub target_version: Option<String>,

    /// `IfMissing` (default) installs the app for users who lack it; `Never` only upgrades.
    #[serde(default)]
    pub install_policy: InstallPolicy,

    /// Who gets the app: members of `groups` (transitively) and `users`, minus `exclude`.
    pub audience: Audience,

    /// Which members are skipped (and counted by reason) rather than given the app.
    #[serde(default)]
    pub eligibility: Eligibility,

    /// Ordered waves; each is a cumulative share of the eligible audience. Which wave a user is
    /// in depends only on their object id, so membership changes never move users between
    /// waves that have finished. Waves with a `count` come first, then waves with a `percent`;
    /// within each kind the shares never go down. No waves: one wave of everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(
        validation = Rule::new(WAVE_NAMES_RULE).message(WAVE_NAMES_MESSAGE),
        validation = Rule::new(WAVE_KINDS_RULE).message(WAVE_KINDS_MESSAGE),
        validation = Rule::new(WAVE_COUNTS_RULE).message(WAVE_COUNTS_MESSAGE),
        validation = Rule::new(WAVE_PERCENTS_RULE).message(WAVE_PERCENTS_MESSAGE)
    )]
    #[schemars(length(max = 20))]
    pub waves: Vec<Wave>,

    /// How many Stalled installations a wave tolerates: a count (`2`) or a share of the wave
    /// (`"5%"`). More halts the rollout (Stalled, `FailureBudgetExceeded`): no new
    /// installations until the failures clear or this is raised. Up to this many, a wave still
    /// completes. Default 0; a count is at most 1000000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option_int_or_string"
    )]
    #[x_kube(validation = Rule::new(MAX_FAILURES_RULE).message(MAX_FAILURES_MESSAGE))]
    pub max_failures: Option<IntOrString>,

    /// When true, the rollout creates, changes and removes no installations.
    #[serde(default)]
    pub paused: bool,

    /// What happens to a user's installation when the user leaves the audience or becomes
    /// ineligible: `Orphan` (default) deletes the TeamsAppInstallation and leaves the app
    /// installed in Teams; `Uninstall` removes the app from the user too.
    #[serde(default)]
    pub removal_policy: RemovalPolicy,

    /// Settings copied into every TeamsAppInstallation the rollout creates.
    #[serde(default)]
    pub template: InstallationTemplate,

    /// How often the audience is read again from Graph, as a duration like `10m` (default), at
    /// most `168h`. Values below the operator's `--min-membership-interval` (1m unless configured
    /// otherwise) are raised to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(INTERVAL_RULE).message(MEMBERSHIP_INTERVAL_MESSAGE))]
    #[schemars(length(max = 64))]
    pub membership_interval: Option<String>,

    /// How long a user must be absent from the audience — in every read over that span —
    /// before they leave the rollout (default `1h`: Graph's membership index lags changes and
    /// one read can miss a member). `0s` removes at the first read that misses them; at most
    /// `720h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(LONG_WAIT_RULE).message(REMOVAL_DELAY_MESSAGE))]
    #[schemars(length(max = 64))]
    pub removal_delay: Option<String>,

    /// The most users that may leave at once, as a count or a percentage of the eligible
    /// audience (default `10%`, at least 1). Beyond it every removal is held (installs go on)
    /// and the rollout is Stalled with `RemovalLimitExceeded` until a person raises the limit
    /// or approves that exact set with the `teamsapps.dev/approve-removals` annotation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option_int_or_string"
    )]
    #[x_kube(validation = Rule::new(REMOVAL_LIMIT_RULE).message(REMOVAL_LIMIT_MESSAGE))]
    pub removal_limit: Option<IntOrString>,

    /// The `GraphConnection` (in this namespace) or `ClusterGraphConnection` whose tenant and
    /// credential the rollout's directory reads and its installations use (they inherit it).
    /// Absent: the operator's own connection (its flags), where the operator allows it. Cannot
    /// change once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,

    /// `Manage` acts wave by wave; `Observe` creates every installation in `Observe` (none
    /// writes to Graph) and rolls their plans up per wave in `status.plan`. Absent: the
    /// operator's `--default-management-policy` (`Manage` unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// In `Manage`: proceed only while the current plan's `status.plan.revision` equals this
    /// (else Stalled, `PlanChanged`, with nothing written), so what a reviewer approved in
    /// `Observe` is what runs. Absent: no such check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub approved_plan_revision: Option<String>,

    /// Consent to the app's resource-specific (RSC) application permissions, for every user:
    /// one decision for the whole rollout. A version needing more holds the rollout before its
    /// next wave (Stalled, `ConsentRequired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,

    /// `Present` (default) gives the app to the audience; `Absent` removes it from them, in the
    /// same waves, bake times and failure budget (the removal limit does not apply).
    #[serde(default)]
    pub ensure: Ensure,
}

/// Entra groups and users; at least one of `groups` or `users`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(AUDIENCE_RULE).message(AUDIENCE_MESSAGE))]
pub struct Audience {
    #[serde(flatten)]
    pub members: Principals,

    /// Never given the app, whatever else says so.
    #[serde(default)]
    pub exclude: AudienceExclusion,
}

/// Groups and users excluded from an audience: their members and they get nothing.
pub type AudienceExclusion = Principals;

/// Entra groups (their transitive members) and users.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Principals {
    /// Entra group object ids (GUIDs). Membership is transitive: members of nested groups count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(GROUPS_RULE).message(GROUPS_MESSAGE))]
    #[schemars(length(max = 100), inner(length(min = 36, max = 36)))]
    pub groups: Vec<String>,

    /// Users by object id (GUID) or user principal name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(all_users_rule()).message(USERS_MESSAGE))]
    // max = USER_MAX_LENGTH.
    #[schemars(length(max = 1000), inner(length(min = 1, max = 113)))]
    pub users: Vec<String>,
}

/// Which members of the audience are skipped. Skipped users are counted, never installed.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Eligibility {
    /// Skip guests (`userType: Guest`). Default true.
    #[serde(default = "yes")]
    pub skip_guests: bool,
    /// Skip users whose account is disabled. Default true.
    #[serde(default = "yes")]
    pub skip_disabled: bool,
    /// Skip users without an enabled Microsoft Teams service plan in their assigned licences.
    /// Default true.
    #[serde(default = "yes")]
    pub require_teams_license: bool,
}

fn yes() -> bool {
    true
}

impl Default for Eligibility {
    fn default() -> Self {
        Self {
            skip_guests: true,
            skip_disabled: true,
            require_teams_license: true,
        }
    }
}

/// One wave: a cumulative share of the eligible audience, by `percent` or `count`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(WAVE_ONE_OF_RULE).message(WAVE_ONE_OF_MESSAGE))]
pub struct Wave {
    /// The wave's name: lowercase letters, digits and `-` (it becomes a label value).
    #[x_kube(validation = Rule::new(WAVE_NAME_RULE).message(WAVE_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 63))]
    pub name: String,

    /// Cumulative share of the eligible audience in this and earlier waves, 1 to 100.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option_u32"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub percent: Option<u32>,

    /// Cumulative number of eligible users in this and earlier waves, 1 to 1000000. Count waves
    /// come before percent waves.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option_u32"
    )]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub count: Option<u32>,

    /// How long to wait after every installation of the wave is Ready before the next wave
    /// starts, as a duration like `1h`, at most `720h`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(LONG_WAIT_RULE).message(BAKE_TIME_MESSAGE))]
    #[schemars(length(max = 64))]
    pub bake_time: Option<String>,
}

/// What happens to the installation of a user who leaves the audience.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemovalPolicy {
    /// Delete the TeamsAppInstallation; the app stays installed in Teams.
    #[default]
    Orphan,
    /// Delete the TeamsAppInstallation and uninstall the app from the user.
    Uninstall,
}

/// The TeamsAppInstallation settings a rollout sets on every installation it creates.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstallationTemplate {
    /// Drift re-check period of each installation (see TeamsAppInstallation spec.interval), at
    /// most `168h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(INTERVAL_RULE).message(TEMPLATE_INTERVAL_MESSAGE))]
    #[schemars(length(max = 64))]
    pub interval: Option<String>,

    /// What deleting an installation (and so the rollout) does in Teams: `Orphan` (default)
    /// leaves the app installed, `Uninstall` removes it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Suspend every installation: no Graph calls.
    #[serde(default)]
    pub suspend: bool,
}

impl TeamsAppRolloutSpec {
    /// The waves as configured, or the implicit single wave of everyone.
    pub fn effective_waves(&self) -> Vec<Wave> {
        if self.waves.is_empty() {
            vec![Wave {
                name: "all".to_string(),
                percent: Some(100),
                count: None,
                bake_time: None,
            }]
        } else {
            self.waves.clone()
        }
    }
}
