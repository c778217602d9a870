//! What the operator knows about Teams apps and installations, and Graph's wire shapes for them.

use serde::{Deserialize, Serialize};

use crate::version::AppVersion;

/// How a manifest names an app in the tenant's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AppRef {
    /// The catalog-generated `teamsApp.id` (for store apps it equals the manifest id).
    Id(String),
    /// The manifest id (`teamsApp.externalId`), known before upload; empty for store apps.
    ExternalId(String),
}

impl AppRef {
    /// The OData property this reference filters on, relative to a `teamsApp`.
    pub(crate) fn property(&self) -> &'static str {
        match self {
            Self::Id(_) => "id",
            Self::ExternalId(_) => "externalId",
        }
    }

    pub(crate) fn value(&self) -> &str {
        match self {
            Self::Id(v) | Self::ExternalId(v) => v,
        }
    }

    fn matches(&self, id: &str, external_id: Option<&str>) -> bool {
        match self {
            Self::Id(v) => v.eq_ignore_ascii_case(id),
            Self::ExternalId(v) => external_id.is_some_and(|e| v.eq_ignore_ascii_case(e)),
        }
    }
}

impl std::fmt::Display for AppRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(v) => write!(f, "id {v}"),
            Self::ExternalId(v) => write!(f, "externalId {v}"),
        }
    }
}

/// A Teams app installed in a user's personal scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// Opaque; stays the same across upgrades.
    pub id: String,
    pub catalog_app_id: String,
    pub external_id: Option<String>,
    pub app_display_name: Option<String>,
    /// The installed `teamsAppDefinition`.
    pub definition_id: Option<String>,
    /// The installed version (may lag for a while after an upgrade).
    pub version: Option<AppVersion>,
    /// The RSC permissions consented at install or upgrade (Graph shows them only to a read
    /// that `$select`s them; empty when none were).
    pub consented: ConsentedPermissionSet,
}

/// An app in the tenant's catalog with all its current definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogApp {
    pub id: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    /// `store`, `organization`, `sideloaded` or `unknownFutureValue`.
    pub distribution_method: Option<String>,
    pub definitions: Vec<AppDefinition>,
}

impl CatalogApp {
    /// The version an upgrade moves to: the highest *published* definition. A definition still
    /// `submitted` for admin review (or rejected) is not installable, even when its version is
    /// higher.
    pub fn latest_published(&self) -> Option<&AppDefinition> {
        self.definitions
            .iter()
            .filter(|d| d.publishing_state == PublishingState::Published)
            .max_by(|a, b| a.version.cmp(&b.version))
    }
}

/// One version of a catalog app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDefinition {
    pub id: String,
    pub version: AppVersion,
    pub publishing_state: PublishingState,
    pub display_name: Option<String>,
    /// `authorization.requiredPermissionSet`: the RSC permissions this version asks for.
    pub required: ConsentedPermissionSet,
}

/// Where a definition is in the catalog's review flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PublishingState {
    Submitted,
    Rejected,
    Published,
    /// `unknownFutureValue` or anything newer than this code.
    #[serde(other)]
    Unknown,
}

/// The result of an install request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// 201: Graph installed the app.
    Installed,
    /// 409: the app was already installed for the user; for a desired-state operator that is
    /// success, not a failure.
    AlreadyInstalled,
}

/// The result of an uninstall request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// 204: Graph removed the installation.
    Removed,
    /// 404: nothing to remove (already uninstalled, or the user is gone).
    AlreadyGone,
}

/// Resource-specific (RSC) permissions consented to at install or upgrade time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentedPermissionSet {
    #[serde(default)]
    pub resource_specific_permissions: Vec<ResourceSpecificPermission>,
}

impl ConsentedPermissionSet {
    /// The names of the application permissions: what an owner consents to on the user's
    /// behalf (delegated ones need the user, not the installer).
    pub fn application(&self) -> Vec<String> {
        self.resource_specific_permissions
            .iter()
            .filter(|p| p.permission_type == PermissionType::Application)
            .map(|p| p.permission_value.clone())
            .collect()
    }

    /// What an install or upgrade must send for a definition requiring `self`: the whole set
    /// when it holds an application permission (Graph then wants it to match exactly), else
    /// nothing (a delegated-only set may be omitted).
    pub fn to_consent(&self) -> Option<&ConsentedPermissionSet> {
        self.resource_specific_permissions
            .iter()
            .any(|p| p.permission_type == PermissionType::Application)
            .then_some(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpecificPermission {
    /// e.g. `TeamsActivity.Send.User`.
    pub permission_value: String,
    pub permission_type: PermissionType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionType {
    Application,
    Delegated,
    #[serde(other)]
    UnknownFutureValue,
}

// ---- Wire shapes -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireInstallation {
    pub id: String,
    pub teams_app: Option<WireTeamsApp>,
    pub teams_app_definition: Option<WireDefinition>,
    #[serde(default)]
    pub consented_permission_set: Option<ConsentedPermissionSet>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireTeamsApp {
    pub id: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub distribution_method: Option<String>,
    #[serde(default)]
    pub app_definitions: Vec<WireDefinition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDefinition {
    pub id: String,
    pub teams_app_id: Option<String>,
    pub display_name: Option<String>,
    pub version: Option<String>,
    pub publishing_state: Option<PublishingState>,
    #[serde(default)]
    pub authorization: Option<WireAuthorization>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireAuthorization {
    #[serde(default)]
    pub required_permission_set: Option<ConsentedPermissionSet>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl WireInstallation {
    /// `None` when the response names no catalog app at all (neither expansion present).
    pub fn into_model(self) -> Option<Installation> {
        let app = self.teams_app;
        let def = self.teams_app_definition;
        let catalog_app_id = app
            .as_ref()
            .map(|a| a.id.clone())
            .or_else(|| def.as_ref().and_then(|d| d.teams_app_id.clone()))
            .filter(|id| !id.is_empty())?;
        let app_display_name = app
            .as_ref()
            .and_then(|a| non_empty(a.display_name.clone()))
            .or_else(|| def.as_ref().and_then(|d| non_empty(d.display_name.clone())));
        Some(Installation {
            id: self.id,
            catalog_app_id,
            external_id: app.and_then(|a| non_empty(a.external_id)),
            app_display_name,
            definition_id: def.as_ref().map(|d| d.id.clone()),
            version: def.and_then(|d| d.version).map(|v| AppVersion::parse(&v)),
            consented: self.consented_permission_set.unwrap_or_default(),
        })
    }

    pub fn matches(&self, app: &AppRef) -> bool {
        match (&self.teams_app, &self.teams_app_definition) {
            (Some(a), _) => app.matches(&a.id, a.external_id.as_deref()),
            // Without the teamsApp expansion only the id can be checked.
            (None, Some(d)) => match app {
                AppRef::Id(_) => app.matches(d.teams_app_id.as_deref().unwrap_or_default(), None),
                AppRef::ExternalId(_) => true,
            },
            (None, None) => false,
        }
    }
}

impl WireTeamsApp {
    pub fn matches(&self, app: &AppRef) -> bool {
        app.matches(&self.id, self.external_id.as_deref())
    }

    pub fn into_model(self) -> CatalogApp {
        CatalogApp {
            id: self.id,
            external_id: non_empty(self.external_id),
            display_name: non_empty(self.display_name),
            distribution_method: self.distribution_method,
            definitions: self
                .app_definitions
                .into_iter()
                .map(|d| AppDefinition {
                    id: d.id,
                    version: AppVersion::parse(d.version.as_deref().unwrap_or_default()),
                    publishing_state: d.publishing_state.unwrap_or(PublishingState::Unknown),
                    display_name: non_empty(d.display_name),
                    required: d
                        .authorization
                        .and_then(|a| a.required_permission_set)
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(version: &str, state: PublishingState) -> AppDefinition {
        AppDefinition {
            id: format!("def-{version}"),
            version: AppVersion::parse(version),
            publishing_state: state,
            display_name: None,
            required: ConsentedPermissionSet::default(),
        }
    }

    fn app(definitions: Vec<AppDefinition>) -> CatalogApp {
        CatalogApp {
            id: "app".into(),
            external_id: None,
            display_name: None,
            distribution_method: None,
            definitions,
        }
    }

    #[test]
    fn latest_published_ignores_submitted_and_orders_numerically() {
        use PublishingState::*;
        let catalog = app(vec![
            def("1.9.0", Published),
            def("1.10.0", Published),
            def("2.0.0", Submitted),
            def("3.0.0", Rejected),
            def("4.0.0", Unknown),
        ]);
        assert_eq!(catalog.latest_published().unwrap().id, "def-1.10.0");
        assert_eq!(app(vec![def("1.0", Submitted)]).latest_published(), None);
        assert_eq!(app(vec![]).latest_published(), None);
    }

    #[test]
    fn decodes_installations_from_graph_json() {
        let json = serde_json::json!({
            "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
            "id": "aW5zdA==",
            "teamsApp": {"id": "app-1", "externalId": "com.contoso.bot", "displayName": "Bot",
                         "distributionMethod": "organization"},
            "teamsAppDefinition": {"id": "ZGVm", "teamsAppId": "app-1", "version": "1.7",
                                   "publishingState": "published", "displayName": "Bot"}
        });
        let wire: WireInstallation = serde_json::from_value(json).unwrap();
        assert!(wire.matches(&AppRef::ExternalId("COM.contoso.bot".into())));
        assert!(!wire.matches(&AppRef::Id("app-2".into())));
        let inst = wire.into_model().unwrap();
        assert_eq!(inst.catalog_app_id, "app-1");
        assert_eq!(inst.version, Some(AppVersion::parse("1.7.0")));
        assert_eq!(inst.definition_id.as_deref(), Some("ZGVm"));
    }

    #[test]
    fn unknown_publishing_states_do_not_fail_decoding() {
        let json = serde_json::json!({"id": "a", "appDefinitions": [
            {"id": "d", "version": "1.0.0", "publishingState": "unknownFutureValue"},
            {"id": "e", "version": "weird"}
        ]});
        let app: WireTeamsApp = serde_json::from_value(json).unwrap();
        let app = app.into_model();
        assert_eq!(
            app.definitions[0].publishing_state,
            PublishingState::Unknown
        );
        assert_eq!(app.definitions[1].version.as_str(), "weird");
    }

    #[test]
    fn consent_serializes_in_graph_casing() {
        let consent = ConsentedPermissionSet {
            resource_specific_permissions: vec![ResourceSpecificPermission {
                permission_value: "TeamsActivity.Send.User".into(),
                permission_type: PermissionType::Application,
            }],
        };
        assert_eq!(
            serde_json::to_value(&consent).unwrap(),
            serde_json::json!({"resourceSpecificPermissions": [
                {"permissionValue": "TeamsActivity.Send.User", "permissionType": "application"}
            ]})
        );
    }
}
