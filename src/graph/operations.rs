//! The Graph calls the operator makes, as typed methods on [`GraphClient`].

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::budget::CallClass;
use super::client::{Call, GraphClient, Target};
use super::error::GraphError;
use super::metrics::Operation;
use super::models::{
    AppRef, CatalogApp, ConsentedPermissionSet, InstallOutcome, Installation, Page,
    UninstallOutcome, WireInstallation, WireTeamsApp,
};
use super::odata::{Route, quote};

/// A list that keeps handing out next links is a server bug; stop rather than loop forever.
const MAX_PAGES: usize = 100;

/// `/users/{user}/teamwork/installedApps`
pub(crate) fn installed_apps(user: &str) -> Route {
    Route::new().user(user).lit("teamwork").lit("installedApps")
}

/// The list request that finds `app` among a user's installations.
/// What every read of installations asks for: the app and the installed version, and the
/// consented RSC permissions (which Graph returns only when `$select`ed).
pub(crate) const INSTALLATION_SELECT: &str = "id,consentedPermissionSet";
pub(crate) const INSTALLATION_EXPAND: &str = "teamsApp,teamsAppDefinition";

/// What a catalog read asks of each definition: its version and state, and the RSC
/// permissions it requires (`authorization`), which decide consent before any write.
pub(crate) const DEFINITION_EXPAND: &str =
    "appDefinitions($select=id,teamsAppId,displayName,version,publishingState,authorization)";

pub(crate) fn find_installation_route(user: &str, app: &AppRef) -> Route {
    installed_apps(user)
        .query("$select", INSTALLATION_SELECT)
        .query("$expand", INSTALLATION_EXPAND)
        .query(
            "$filter",
            format!("teamsApp/{} eq {}", app.property(), quote(app.value())),
        )
}

pub(crate) fn installation_route(user: &str, installation_id: &str) -> Route {
    installed_apps(user).seg(installation_id)
}

pub(crate) fn get_installation_route(user: &str, installation_id: &str) -> Route {
    installation_route(user, installation_id)
        .query("$select", INSTALLATION_SELECT)
        .query("$expand", INSTALLATION_EXPAND)
}

pub(crate) fn upgrade_route(user: &str, installation_id: &str) -> Route {
    installation_route(user, installation_id).lit("upgrade")
}

pub(crate) fn catalog_route(app: &AppRef) -> Route {
    Route::new()
        .lit("appCatalogs")
        .lit("teamsApps")
        .query(
            "$filter",
            format!("{} eq {}", app.property(), quote(app.value())),
        )
        .query("$expand", DEFINITION_EXPAND)
}

#[derive(Serialize)]
struct InstallBody<'a> {
    #[serde(rename = "teamsApp@odata.bind")]
    bind: String,
    #[serde(
        rename = "consentedPermissionSet",
        skip_serializing_if = "Option::is_none"
    )]
    consent: Option<&'a ConsentedPermissionSet>,
}

#[derive(Serialize)]
struct UpgradeBody<'a> {
    #[serde(rename = "consentedPermissionSet")]
    consent: &'a ConsentedPermissionSet,
}

impl GraphClient {
    /// The user's installation of `app`, or `None` when it is not installed.
    ///
    /// Graph filters server-side; the result is checked again here so that a server ignoring the
    /// filter can never make the operator act on another app's installation.
    pub async fn find_installation(
        &self,
        user: &str,
        app: &AppRef,
    ) -> Result<Option<Installation>, GraphError> {
        let found = self
            .first_in_pages(
                Operation::ListInstallations,
                CallClass::InstalledAppsRead,
                find_installation_route(user, app),
                |i: &WireInstallation| i.matches(app),
            )
            .await?;
        match found {
            Some(found) => {
                let id = found.id.clone();
                found
                    .into_model()
                    .map(Some)
                    .ok_or_else(|| incomplete(&format!("installation {id} names no teamsApp")))
            }
            None => Ok(None),
        }
    }

    /// Every Teams app installed for the user (following `@odata.nextLink`).
    pub async fn list_installations(&self, user: &str) -> Result<Vec<Installation>, GraphError> {
        let route = installed_apps(user)
            .query("$select", INSTALLATION_SELECT)
            .query("$expand", INSTALLATION_EXPAND);
        let mut all = Vec::new();
        self.first_in_pages(
            Operation::ListInstallations,
            CallClass::InstalledAppsRead,
            route,
            |i: &WireInstallation| {
                all.push(i.clone());
                false
            },
        )
        .await?;
        Ok(all
            .into_iter()
            .filter_map(WireInstallation::into_model)
            .collect())
    }

    /// One installation by id (404 → [`ErrorClass::NotFound`](super::ErrorClass::NotFound)).
    pub async fn get_installation(
        &self,
        user: &str,
        installation_id: &str,
    ) -> Result<Installation, GraphError> {
        let wire: WireInstallation = self
            .get_json(
                Operation::GetInstallation,
                CallClass::InstalledAppsRead,
                Target::Route(get_installation_route(user, installation_id)),
            )
            .await?;
        wire.into_model()
            .ok_or_else(|| incomplete(&format!("installation {installation_id} names no teamsApp")))
    }

    /// Installs a catalog app for the user. Graph answers 201 without a body: call
    /// [`GraphClient::find_installation`] to learn the installation id.
    pub async fn install(
        &self,
        user: &str,
        catalog_app_id: &str,
        consent: Option<&ConsentedPermissionSet>,
    ) -> Result<InstallOutcome, GraphError> {
        let body = InstallBody {
            bind: self.catalog_app_url(catalog_app_id),
            consent,
        };
        let result = self
            .send(Call {
                op: Operation::Install,
                method: Method::POST,
                target: Target::Route(installed_apps(user)),
                body: Some(to_json(&body)?),
                class: Some(CallClass::Install),
                eventual_consistency: false,
            })
            .await;
        match result {
            Ok(_) => Ok(InstallOutcome::Installed),
            // Already installed is the state we wanted: success for a desired-state operator.
            Err(err) if err.status() == Some(409) => Ok(InstallOutcome::AlreadyInstalled),
            Err(err) => Err(err),
        }
    }

    /// Upgrades an installation to the catalog's latest *published* definition (Graph offers
    /// no way to pick a version). The new version may take a while to show in reads.
    pub async fn upgrade(
        &self,
        user: &str,
        installation_id: &str,
        consent: Option<&ConsentedPermissionSet>,
    ) -> Result<(), GraphError> {
        let body = match consent {
            Some(consent) => Some(to_json(&UpgradeBody { consent })?),
            None => None,
        };
        self.send(Call {
            op: Operation::Upgrade,
            method: Method::POST,
            target: Target::Route(upgrade_route(user, installation_id)),
            body,
            class: Some(CallClass::Other),
            eventual_consistency: false,
        })
        .await
        .map(drop)
    }

    /// Removes an installation; one that is already gone counts as removed.
    pub async fn uninstall(
        &self,
        user: &str,
        installation_id: &str,
    ) -> Result<UninstallOutcome, GraphError> {
        let result = self
            .send(Call {
                op: Operation::Uninstall,
                method: Method::DELETE,
                target: Target::Route(installation_route(user, installation_id)),
                body: None,
                class: Some(CallClass::Delete),
                eventual_consistency: false,
            })
            .await;
        match result {
            Ok(_) => Ok(UninstallOutcome::Removed),
            Err(err) if err.status() == Some(404) => Ok(UninstallOutcome::AlreadyGone),
            Err(err) => Err(err),
        }
    }

    /// The catalog entry for `app` with all its definitions, or `None` when the tenant's
    /// catalog has no such app.
    pub async fn catalog_app(&self, app: &AppRef) -> Result<Option<CatalogApp>, GraphError> {
        let found = self
            .first_in_pages(
                Operation::CatalogApp,
                CallClass::CatalogRead,
                catalog_route(app),
                |a: &WireTeamsApp| a.matches(app),
            )
            .await?;
        Ok(found.map(WireTeamsApp::into_model))
    }

    /// Whether the tenant lets apps be consented resource-specific permissions in personal
    /// scope (`isUserPersonalScopeResourceSpecificConsentEnabled` of
    /// `GET /teamwork/teamsAppSettings`,
    /// https://learn.microsoft.com/graph/api/teamsappsettings-get). Needs
    /// `TeamworkAppSettings.Read.All`; read only after Graph refused a write that consented.
    pub async fn personal_scope_consent_enabled(&self) -> Result<bool, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Settings {
            is_user_personal_scope_resource_specific_consent_enabled: Option<bool>,
        }
        let route = Route::new().lit("teamwork").lit("teamsAppSettings");
        let settings: Settings = self
            .get_json(
                Operation::AppSettings,
                CallClass::Other,
                Target::Route(route),
            )
            .await?;
        // Unset reads as Graph's default, enabled.
        Ok(settings
            .is_user_personal_scope_resource_specific_consent_enabled
            .unwrap_or(true))
    }

    /// The cheapest read that proves a connection works: one app of the tenant's catalog
    /// (`$top=1`, ids only), as the operator's own permission allows.
    pub async fn probe(&self) -> Result<(), GraphError> {
        let route = Route::new()
            .lit("appCatalogs")
            .lit("teamsApps")
            .query("$top", "1")
            .query("$select", "id");
        let _: Page<serde_json::Value> = self
            .get_json(
                Operation::CatalogApp,
                CallClass::CatalogRead,
                Target::Route(route),
            )
            .await?;
        Ok(())
    }

    /// Walks a list page by page until `wanted` picks an item or the pages end.
    async fn first_in_pages<T: DeserializeOwned>(
        &self,
        op: Operation,
        class: CallClass,
        route: Route,
        mut wanted: impl FnMut(&T) -> bool,
    ) -> Result<Option<T>, GraphError> {
        let mut target = Target::Route(route);
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.get_json(op, class, target).await?;
            if let Some(found) = page.value.into_iter().find(|item| wanted(item)) {
                return Ok(Some(found));
            }
            match page.next_link {
                Some(link) => target = Target::NextLink(link),
                None => return Ok(None),
            }
        }
        Err(incomplete("a list kept paging past the limit"))
    }
}

fn to_json(body: &impl Serialize) -> Result<serde_json::Value, GraphError> {
    serde_json::to_value(body).map_err(|e| GraphError::Invalid(e.to_string()))
}

fn incomplete(message: &str) -> GraphError {
    GraphError::Decode {
        method: "GET".into(),
        path: String::new(),
        status: 200,
        request_id: None,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_the_contract() {
        let app = AppRef::Id("3f7a".into());
        assert_eq!(
            find_installation_route("alice@contoso.com", &app).relative(),
            "/users/alice@contoso.com/teamwork/installedApps\
             ?$select=id,consentedPermissionSet&$expand=teamsApp,teamsAppDefinition\
             &$filter=teamsApp/id%20eq%20'3f7a'"
        );
        assert_eq!(
            upgrade_route("u", "NWI2+/==").relative(),
            "/users/u/teamwork/installedApps/NWI2+%2F==/upgrade"
        );
        assert_eq!(
            catalog_route(&AppRef::ExternalId("com.o'neil.bot".into())).relative(),
            "/appCatalogs/teamsApps?$filter=externalId%20eq%20'com.o''neil.bot'\
             &$expand=appDefinitions($select%3Did,teamsAppId,displayName,version,\
             publishingState,authorization)"
        );
    }

    #[test]
    fn install_body_binds_the_catalog_app() {
        let body = InstallBody {
            bind: "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/abc".into(),
            consent: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "teamsApp@odata.bind": "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/abc"
            })
        );
    }
}
