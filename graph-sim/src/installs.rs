//! Graph's operations on a user's installed apps: install, upgrade, uninstall, and the checks
//! Teams makes first (the user exists (404), has a Teams licence (403) and is known to Teams
//! (404); neither the tenant admin nor an app permission policy blocks the app (403)).

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::Value;

use super::errors::GraphError;
use super::faults::UpgradeAtLatest;
use super::knobs::Knobs;
use super::notify::InstallChange;
use super::rsc::{self, ConsentRequest};
use super::state::{AdminError, App, Definition, Install, Tenant, User};
use super::subscriptions::ChangeType;
use super::version;

/// Graph's message for a `teamwork` call on a user without a Teams (Office 365) licence.
pub(crate) const NO_LICENCE: &str = "Failed to get license information for the user. Ensure user has a valid Office365 license assigned to them.";

/// Teams' answer to an app the tenant admin blocked org-wide. The wording is Graph's, as a user
/// quoted it from a team-scope install (microsoft/powerapps-tools issue 107, 2020): Microsoft
/// documents no message, and none for a user-scope install was found, so this one stands for
/// both.
const BLOCKED_BY_TENANT: &str =
    "Trying to CreateTeamAppEntitlement for an App that is explicitly blocked by the tenant admin.";

/// Teams' answer to removing an app the tenant admin's app setup policy installed: Graph's
/// wording and exception type (`innerError.code`) as quoted in microsoftgraph/microsoft-graph-docs
/// issue #13146 (403 `Forbidden`, `AppIsTenantAdminPreinstalled`).
const PREINSTALLED_BY_ADMIN: &str = "Trying to RemoveUserAppEntitlement for an App that is explicitly preinstalled by the tenant admin.";

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Tenant {
    /// The user a `teamwork` call addresses. An unknown (or soft-deleted) user is a 404; a user
    /// without a Teams licence is a 403 with the message Graph sends (its wording is what users
    /// search for); a user Teams has not provisioned yet is a 404 again, in Teams' own words.
    pub fn teams_user(&self, key: &str) -> Result<&User, GraphError> {
        let user = self
            .live_user(key)
            .ok_or_else(|| GraphError::not_found(format!("User '{key}' was not found.")))?;
        if !user.teams_licensed() {
            return Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                NO_LICENCE,
            ));
        }
        if !user.teams_provisioned {
            return Err(GraphError::not_found(format!(
                "User Id '{}' not found.",
                user.id
            )));
        }
        Ok(user)
    }

    /// Index of installation `installation_id` of the user `user_key`.
    pub fn installation_index(
        &self,
        user_key: &str,
        installation_id: &str,
    ) -> Result<usize, GraphError> {
        let user = self.teams_user(user_key)?;
        self.installs
            .iter()
            .position(|i| same(&i.user_id, &user.id) && i.id() == installation_id)
            .ok_or_else(|| {
                GraphError::not_found(format!(
                    "Installation '{installation_id}' was not found for user '{user_key}'."
                ))
            })
    }

    /// The tenant admin's block first (org-wide), then the user's app permission policy.
    fn check_policy(user: &User, app: &App, knobs: &Knobs) -> Result<(), GraphError> {
        if knobs.blocks(app) {
            return Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                BLOCKED_BY_TENANT,
            ));
        }
        if user.blocked_apps.iter().any(|b| app.answers_to(b)) {
            return Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "App is blocked by app permission policy",
            ));
        }
        Ok(())
    }

    /// Teams' consent checks for a call moving to `def` (see [`rsc::check`]).
    fn check_consent(
        &self,
        def: &Definition,
        request: &ConsentRequest,
        knobs: &Knobs,
    ) -> Result<(), GraphError> {
        rsc::check(
            &def.required,
            request,
            self.personal_scope_rsc_enabled(),
            knobs.consent_refusal.as_ref(),
        )
    }

    /// Installs the highest published definition of `app_id` the catalog shows for the user,
    /// once the consent matches what that definition requires.
    pub fn install(
        &mut self,
        user_key: &str,
        app_id: &str,
        request: ConsentRequest,
        knobs: &Knobs,
    ) -> Result<String, GraphError> {
        let user = self.teams_user(user_key)?;
        let app = self.shown_app(app_id, knobs)?;
        Self::check_policy(user, app, knobs)?;
        if self.install_of(&user.id, &app.id).is_some() {
            return Err(GraphError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "App is already installed for the user.",
            ));
        }
        let def = app.highest_published().ok_or_else(|| {
            GraphError::not_found(format!("App '{app_id}' has no published definition."))
        })?;
        self.check_consent(def, &request, knobs)?;
        let consent = request.consent.map(|c| c.raw);
        let install = Install::new(&user.id, &app.id, def.version.clone(), consent);
        let id = install.id();
        self.changed(ChangeType::Created, &install);
        self.installs.push(install);
        Ok(id)
    }

    /// The user's installations (true state), copied for a read view or a lag snapshot.
    pub fn installs_of(&self, user_id: &str) -> Vec<Install> {
        self.installs
            .iter()
            .filter(|i| same(&i.user_id, user_id))
            .cloned()
            .collect()
    }

    /// The version an upgrade of the installation moves to: the highest published definition the
    /// catalog shows, after Teams' checks. Already there: re-applied (204) or refused (400), as
    /// `upgradeAtLatest` says. Returns the installation's index and the version.
    pub fn upgrade_target(
        &self,
        user_key: &str,
        installation_id: &str,
        request: &ConsentRequest,
        knobs: &Knobs,
    ) -> Result<(usize, String), GraphError> {
        let index = self.installation_index(user_key, installation_id)?;
        let install = &self.installs[index];
        let user = self.teams_user(user_key)?;
        let app = self.shown_app(&install.app_id, knobs)?;
        Self::check_policy(user, app, knobs)?;
        let def = app
            .highest_published()
            .ok_or_else(|| GraphError::not_found("The app has no published definition."))?;
        let version = def.version.clone();
        if knobs.upgrade_at_latest == UpgradeAtLatest::BadRequest
            && version::compare(&install.version, &version).is_eq()
        {
            return Err(GraphError::bad_request(format!(
                "App '{}' is already installed at its latest published version {version}; \
                 there is nothing to upgrade.",
                install.app_id
            )));
        }
        self.check_consent(def, request, knobs)?;
        Ok((index, version))
    }

    /// Moves installation `index` to `version` (see [`Tenant::upgrade_target`]); `consent`, when
    /// the call had a body, replaces the consented set (a body without one clears it).
    pub fn apply_upgrade(&mut self, index: usize, version: String, consent: Option<Option<Value>>) {
        let install = &mut self.installs[index];
        install.version = version;
        install.upgrade_count += 1;
        install.last_upgrade = Some(Timestamp::now());
        if let Some(consent) = consent {
            install.consent = consent;
        }
        let install = install.clone();
        self.changed(ChangeType::Updated, &install);
    }

    /// Remembers a change of an installation for the subscriptions on its app.
    pub fn changed(&mut self, change: ChangeType, install: &Install) {
        self.changes.push(InstallChange {
            change,
            install: install.clone(),
        });
    }

    /// "Teams updates it": moves `user`'s installation of `app` to the catalog's highest
    /// published version, without Teams' checks (admin API). Already there: `Conflict`.
    pub fn upgrade_out_of_band(&mut self, user: &str, app: &str) -> Result<String, AdminError> {
        let index = self.installation_of(user, app)?;
        let install = &self.installs[index];
        let latest = self
            .app(&install.app_id)
            .and_then(App::highest_published)
            .map(|d| d.version.clone())
            .ok_or_else(|| AdminError::Invalid(format!("app {app} has no published version")))?;
        if version::compare(&install.version, &latest).is_eq() {
            return Err(AdminError::Conflict(format!(
                "{user} already has {app} at its latest published version {latest}"
            )));
        }
        self.apply_upgrade(index, latest.clone(), None);
        Ok(latest)
    }

    /// "A user uninstalls": removes `user`'s installation of `app`, preinstalled or not (admin
    /// API).
    pub fn uninstall_out_of_band(&mut self, user: &str, app: &str) -> Result<(), AdminError> {
        let index = self.installation_of(user, app)?;
        let install = self.installs.remove(index);
        self.changed(ChangeType::Deleted, &install);
        Ok(())
    }

    /// The index of `user`'s (id or UPN) installation of `app` (catalog or manifest id).
    fn installation_of(&self, user: &str, app: &str) -> Result<usize, AdminError> {
        let user_id = self
            .user(user)
            .map(|u| u.id.clone())
            .ok_or_else(|| AdminError::NotFound(format!("user {user} not found")))?;
        let app_id = self
            .apps
            .iter()
            .find(|a| a.answers_to(app))
            .map(|a| a.id.clone())
            .ok_or_else(|| AdminError::NotFound(format!("app {app} not found")))?;
        self.install_of(&user_id, &app_id)
            .ok_or_else(|| AdminError::NotFound(format!("{user} does not have {app} installed")))
    }

    /// App `id` as the catalog shows it now; not (yet) there: 404 as for an unknown app.
    fn shown_app(&self, id: &str, knobs: &Knobs) -> Result<&App, GraphError> {
        self.catalog_app(id, knobs.now, knobs.catalog_lag)
            .ok_or_else(|| {
                GraphError::not_found(format!("App '{id}' was not found in the app catalog."))
            })
    }

    pub fn uninstall(&mut self, user_key: &str, installation_id: &str) -> Result<(), GraphError> {
        let index = self.installation_index(user_key, installation_id)?;
        if self.installs[index].preinstalled {
            return Err(
                GraphError::new(StatusCode::FORBIDDEN, "Forbidden", PREINSTALLED_BY_ADMIN)
                    .with_inner_code("AppIsTenantAdminPreinstalled"),
            );
        }
        let install = self.installs.remove(index);
        self.changed(ChangeType::Deleted, &install);
        Ok(())
    }
}
