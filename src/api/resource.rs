//! The `TeamsAppInstallation` custom resource: what users declare and what the operator reports.
//!
//! The Rust types are the source of truth: `teams-app-operator crd` prints the CRD generated from
//! them, and a test keeps `crds/` in step. Doc comments become the schema descriptions that
//! `kubectl explain tai.spec` shows, so they are written for users.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::connection::{CONNECTION_REF_MESSAGE, CONNECTION_REF_RULE, ConnectionRef};
use super::intent::{Consent, Ensure, ManagementPolicy};
use super::plan::InstallationPlan;
use super::validation::{
    INTERVAL_MESSAGE, INTERVAL_RULE, InvalidSpec, TARGET_VERSION_MESSAGE, TARGET_VERSION_RULE,
    USER_MESSAGE, USER_RULE, invalid, is_valid_interval, is_valid_target_version, is_valid_user,
};

/// Declares that one user should have one Teams app installed, at least at a given version.
// Clippy mistakes the repeated `type_` keys of separate `printcolumn(...)` entries for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "teamsapps.dev",
    version = "v1alpha1",
    kind = "TeamsAppInstallation",
    namespaced,
    shortname = "tai",
    category = "teams",
    status = "TeamsAppInstallationStatus",
    derive = "PartialEq",
    doc = "Keeps a Microsoft Teams app installed and up to date for one user.",
    printcolumn(name = "User", type_ = "string", json_path = ".spec.user"),
    printcolumn(name = "App", type_ = "string", json_path = ".status.appDisplayName"),
    printcolumn(
        name = "Installed",
        type_ = "string",
        json_path = ".status.installedVersion"
    ),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.targetVersion"),
    printcolumn(name = "Latest", type_ = "string", json_path = ".status.latestVersion"),
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
    printcolumn(name = "Plan", type_ = "string", json_path = ".status.plan.action"),
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
pub struct TeamsAppInstallationSpec {
    /// The user to install the app for: an Entra ID object id (GUID) or a user principal name
    /// (alice@contoso.com; at most 113 characters, Entra's limit). Immutable: create a new
    /// resource for another user.
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("spec.user is immutable"),
        validation = Rule::new(USER_RULE).message(USER_MESSAGE)
    )]
    // max = USER_MAX_LENGTH (the attribute takes a literal).
    #[schemars(length(min = 1, max = 113))]
    pub user: String,

    /// The Teams app, by exactly one of `id` (the catalog app id) or `externalId` (the app
    /// manifest id). Immutable: create a new resource for another app.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.app is immutable"))]
    pub app: AppReference,

    /// The minimum version the user should have. Graph's upgrade always moves to the latest
    /// published version, so this is a floor, not a pin: absent means "the latest published
    /// version in the catalog"; a version not yet published makes the operator wait for it.
    /// The operator never downgrades. Dotted decimal numbers only, like `1.4.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(TARGET_VERSION_RULE).message(TARGET_VERSION_MESSAGE))]
    // max = TARGET_VERSION_MAX_LENGTH.
    #[schemars(length(min = 1, max = 64))]
    pub target_version: Option<String>,

    /// `IfMissing` (default) installs the app when the user does not have it; `Never` only
    /// upgrades installs that already exist.
    #[serde(default)]
    pub install_policy: InstallPolicy,

    /// What deleting this resource does in Teams: `Orphan` (default) leaves the app installed;
    /// `Uninstall` removes it from the user (a finalizer holds deletion until it is done).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// When true, the operator makes no Graph calls at all for this resource (also on
    /// deletion, which then leaves the app installed).
    #[serde(default)]
    pub suspend: bool,

    /// How often to re-check the installation against Graph for drift, as a duration like
    /// `30m`, `1h` or `90s`, at most `168h`. Defaults to the operator's `--default-interval`;
    /// values below the operator's `--min-interval` (1m unless configured otherwise) are raised
    /// to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(INTERVAL_RULE).message(INTERVAL_MESSAGE))]
    // max = INTERVAL_MAX_LENGTH.
    #[schemars(length(max = 64))]
    pub interval: Option<String>,

    /// The `GraphConnection` (in this namespace) or `ClusterGraphConnection` whose tenant and
    /// credential this resource's Graph calls use. Absent: the operator's own connection (its
    /// flags), where the operator allows it. Cannot change once set: moving a resource to
    /// another tenant is delete + create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,

    /// `Manage` writes to Graph; `Observe` reads as usual but never writes, and
    /// `status.plan` says what `Manage` would do (the resource is Ready, reason `Observed`).
    /// Absent: the operator's `--default-management-policy` (`Manage` unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// Consent to the app's resource-specific (RSC) application permissions. An app version
    /// that requires application permissions this does not cover is not installed or upgraded
    /// (Stalled, `ConsentRequired`, naming what is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,

    /// `Present` (default): installed, at least at the target version. `Absent`: uninstalled
    /// where installed and never installed (Ready, reason `Absent`, once it is gone).
    #[serde(default)]
    pub ensure: Ensure,
}

/// A Teams app in the tenant's catalog.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.id) != has(self.externalId)").message("set exactly one of app.id or app.externalId"))]
pub struct AppReference {
    /// The catalog app id (`teamsApp.id` in Graph), generated when the app was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub id: Option<String>,

    /// The app's manifest id (`teamsApp.externalId` in Graph), chosen by the developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub external_id: Option<String>,
}

/// Whether the operator may install the app, or only upgrade an existing install.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InstallPolicy {
    /// Install the app when the user does not have it.
    #[default]
    IfMissing,
    /// Never install; only keep an existing install up to date.
    Never,
}

/// What happens in Teams when the resource is deleted.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Leave the app installed.
    #[default]
    Orphan,
    /// Uninstall the app from the user before the resource goes away.
    Uninstall,
}

/// What the operator last saw in Graph and what it concluded.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TeamsAppInstallationStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The Entra tenant the operator works in for this resource (its connection's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,

    /// The catalog app id the spec resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_app_id: Option<String>,

    /// The app's display name in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_display_name: Option<String>,

    /// Graph's id of the user's installation (stable across upgrades).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<String>,

    /// The version the user has installed, as Graph last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,

    /// The highest published version in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<String>,

    /// When the operator last asked Graph to install the app for the user. Graph's reads lag
    /// its writes, so for a while after this the operator waits for the install to show instead
    /// of asking again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_install_time: Option<Time>,

    /// When the operator last asked Graph to upgrade this installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_upgrade_time: Option<Time>,

    /// The value of the `teamsapps.dev/reconcile-requested-at` annotation last acted on: a
    /// changed value makes the operator re-check now, reading the catalog afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The application RSC permissions the wanted version requires (from the catalog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_permissions: Vec<String>,

    /// The application RSC permissions the user's installation was consented with, as Graph
    /// shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consented_permissions: Vec<String>,

    /// In `managementPolicy: Observe`: what `Manage` would do now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed: most resources have none, and every cached object carries the field.
    pub plan: Option<Box<InstallationPlan>>,

    /// `Ready` is always present; `Reconciling` and `Stalled` appear only while true
    /// (the kstatus convention understood by Flux, Argo CD and `kubectl wait`).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// `metav1.Condition` list keyed by `type`, so server-side apply merges entries per type.
pub(super) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

impl AppReference {
    /// The reference as a human-readable string for messages: `id:…` or `externalId:…`.
    pub fn describe(&self) -> String {
        match (&self.id, &self.external_id) {
            (Some(id), _) => format!("id {id}"),
            (None, Some(ext)) => format!("externalId {ext}"),
            (None, None) => "no app reference".to_string(),
        }
    }
}

impl TeamsAppInstallationSpec {
    /// Checks the fields the CRD constrains beyond their type, with the CRD's messages. The
    /// API server already refuses all of this; objects stored before the rules were added are
    /// what this catches.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        if !is_valid_user(&self.user) {
            return Err(invalid("spec.user", USER_MESSAGE));
        }
        if let Some(version) = &self.target_version
            && !is_valid_target_version(version)
        {
            return Err(invalid("spec.targetVersion", TARGET_VERSION_MESSAGE));
        }
        if let Some(interval) = &self.interval
            && !is_valid_interval(interval)
        {
            return Err(invalid("spec.interval", INTERVAL_MESSAGE));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field_with_the_crds_message() {
        let spec: TeamsAppInstallationSpec = serde_json::from_value(serde_json::json!({
            "user": "..", "app": {"id": "x"}
        }))
        .expect("spec");
        let err = spec.validate().expect_err("`..` is not a user");
        assert_eq!(err.field, "spec.user");
        assert_eq!(err.message, USER_MESSAGE);

        let spec: TeamsAppInstallationSpec = serde_json::from_value(serde_json::json!({
            "user": "alice@contoso.com", "app": {"id": "x"}, "targetVersion": "latest"
        }))
        .expect("spec");
        assert_eq!(
            spec.validate().map_err(|e| e.field),
            Err("spec.targetVersion")
        );
    }
}
