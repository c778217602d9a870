//! What the admin API does, in process: the operations behind `/_sim` (and [`super::SimServer`]'s
//! methods), each under the simulator's one lock. [`super::admin`] is their HTTP surface.

use std::time::Instant;

use serde_json::Value;

use super::Shared;
use super::faults::FaultConfig;
use super::journal::RequestRecord;
use super::knobs::Knobs;
use super::seed::{
    AppSeed, ClientPatch, ClientSeed, DefinitionSeed, InstallationSeed, TeamsAppSettings,
    TenantSeed, TenantSettings, UserPatch, UserSeed,
};
use super::state::{AdminError, Tenant, World};
use super::subscriptions::ChangeType;
use super::{notify, render};

impl Shared {
    pub(crate) fn with_tenant<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        self.with_tenant_knobs(key, |tenant, _| f(tenant))
    }

    /// Runs `f` on a tenant with the knobs in force for it now.
    fn with_tenant_knobs<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Tenant, &Knobs) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let tenant = inner
            .world
            .tenant_mut(key)
            .ok_or_else(|| AdminError::NotFound(format!("tenant {key} not found")))?;
        let knobs = Knobs::for_tenant(&tenant.settings, &inner.faults.config, Instant::now());
        let result = f(tenant, &knobs);
        // Out-of-band installation changes notify subscribers as Graph's own do.
        notify::flush(inner);
        result
    }

    /// Runs a change of `user` that directory reads see only after `directoryLagMs`.
    fn change_user<T>(
        &self,
        tenant: &str,
        user: &str,
        change: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        self.with_tenant_knobs(tenant, |t, knobs| {
            let u = t
                .user_position(user)
                .ok_or_else(|| AdminError::NotFound(format!("user {user} not found")))?;
            t.track_user(u, knobs.directory_lag, knobs.now, change)
        })
    }

    /// Runs a change of app `app`'s catalog entry that catalog reads see only after
    /// `catalogLagMs`.
    fn change_app<T>(
        &self,
        tenant: &str,
        app: &str,
        change: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        self.with_tenant_knobs(tenant, |t, knobs| {
            t.track_app(app, knobs.catalog_lag, knobs.now, change)
        })
    }

    /// Runs a change of `group`'s members that directory reads see only after `directoryLagMs`.
    fn change_group<T>(
        &self,
        tenant: &str,
        group: &str,
        change: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        self.with_tenant_knobs(tenant, |t, knobs| {
            let g = t
                .group_position(group)
                .ok_or_else(|| AdminError::NotFound(format!("group {group} not found")))?;
            t.track_group(g, knobs.directory_lag, knobs.now, change)
        })
    }

    pub(crate) fn add_tenant(&self, seed: &TenantSeed) -> Result<(), AdminError> {
        self.lock().world.add_tenant(seed)
    }

    pub(crate) fn add_client(&self, tenant: &str, seed: &ClientSeed) -> Result<(), AdminError> {
        self.with_tenant(tenant, |t| t.add_client(seed))
    }

    pub(crate) fn patch_client(
        &self,
        tenant: &str,
        client: &str,
        patch: &ClientPatch,
    ) -> Result<(), AdminError> {
        self.with_tenant(tenant, |t| t.patch_client(client, patch))
    }

    pub(crate) fn add_app(&self, tenant: &str, seed: &AppSeed) -> Result<Value, AdminError> {
        self.change_app(tenant, &seed.id, |t| {
            t.add_app(seed)?;
            Ok(t.app(&seed.id)
                .map(|a| render::catalog_app(a, true, &[]))
                .unwrap_or_default())
        })
    }

    /// Adds a definition (or changes an existing version's state); true when the version is new.
    pub(crate) fn add_definition(
        &self,
        tenant: &str,
        app: &str,
        seed: &DefinitionSeed,
    ) -> Result<(bool, Value), AdminError> {
        self.change_app(tenant, app, |t| {
            let created = t.add_definition(app, seed)?;
            let rendered = t
                .app(app)
                .and_then(|a| a.definition(&seed.version).map(|d| render::definition(a, d)))
                .unwrap_or_default();
            tracing::info!(tenant = %t.id, app, version = %seed.version, state = seed.publishing_state.as_str(), "definition added");
            Ok((created, rendered))
        })
    }

    pub(crate) fn add_user(&self, tenant: &str, seed: &UserSeed) -> Result<Value, AdminError> {
        self.with_tenant(tenant, |t| {
            t.add_user(seed)?;
            Ok(t.user(&seed.id).map(render::user).unwrap_or_default())
        })
    }

    /// Changes a user's `accountEnabled`, `userType` or service plans; the user as changed.
    pub(crate) fn patch_user(
        &self,
        tenant: &str,
        user: &str,
        patch: &UserPatch,
    ) -> Result<Value, AdminError> {
        self.change_user(tenant, user, |t| {
            tracing::info!(tenant = %t.id, user, ?patch, "changing user");
            t.patch_user(user, patch).map(render::user)
        })
    }

    pub(crate) fn delete_user(&self, tenant: &str, user: &str) -> Result<(), AdminError> {
        self.change_user(tenant, user, |t| {
            t.soft_delete_user(user)?;
            tracing::info!(tenant = %t.id, user, "user soft-deleted");
            Ok(())
        })
    }

    pub(crate) fn restore_user(&self, tenant: &str, user: &str) -> Result<Value, AdminError> {
        self.change_user(tenant, user, |t| {
            tracing::info!(tenant = %t.id, user, "restoring user");
            t.restore_user(user).map(render::user)
        })
    }

    /// Changes a tenant's knobs (absent ones stay); the knobs as changed.
    pub(crate) fn patch_tenant(
        &self,
        tenant: &str,
        change: &TenantSettings,
    ) -> Result<TenantSettings, AdminError> {
        change.validate().map_err(AdminError::Invalid)?;
        self.with_tenant(tenant, |t| {
            t.settings = t.settings.merged(change);
            t.forget_pending_changes();
            tracing::info!(tenant = %t.id, settings = ?t.settings, "tenant settings changed");
            Ok(t.settings.clone())
        })
    }

    /// Adds `member` to `group` or removes it (see [`MemberChange`]).
    pub(crate) fn change_group_member(
        &self,
        tenant: &str,
        group: &str,
        member: &str,
        change: MemberChange,
    ) -> Result<(), AdminError> {
        self.change_group(tenant, group, |t| {
            match change {
                MemberChange::Add => t.add_member(group, member)?,
                MemberChange::Remove => t.remove_member(group, member)?,
            }
            tracing::info!(tenant = %t.id, group, member, ?change, "group membership changed");
            Ok(())
        })
    }

    pub(crate) fn add_installation(
        &self,
        tenant: &str,
        seed: &InstallationSeed,
    ) -> Result<Value, AdminError> {
        self.with_tenant(tenant, |t| {
            let id = t.add_installation(seed)?;
            let install = t.installs.iter().find(|i| i.id() == id).cloned();
            Ok(match install {
                Some(install) => {
                    t.changed(ChangeType::Created, &install);
                    render::installation(&install, t.app(&install.app_id), true, true, &[])
                }
                None => Value::Null,
            })
        })
    }

    /// Changes a tenant's Teams app settings (absent fields stay); the settings as changed.
    pub(crate) fn patch_teams_app_settings(
        &self,
        tenant: &str,
        change: &TeamsAppSettings,
    ) -> Result<TeamsAppSettings, AdminError> {
        self.with_tenant(tenant, |t| {
            if let Some(enabled) = change.is_user_personal_scope_resource_specific_consent_enabled {
                t.teams_app_settings
                    .is_user_personal_scope_resource_specific_consent_enabled = Some(enabled);
            }
            tracing::info!(tenant = %t.id, settings = ?t.teams_app_settings, "Teams app settings changed");
            Ok(t.teams_app_settings.clone())
        })
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        self.lock().journal.snapshot()
    }

    pub(crate) fn clear_requests(&self) {
        self.lock().journal.clear();
    }

    pub(crate) fn set_faults(&self, config: FaultConfig) -> Result<(), AdminError> {
        config.validate().map_err(AdminError::Invalid)?;
        tracing::info!(?config, "faults set");
        let mut inner = self.lock();
        inner.notifier.set_faults(&config);
        inner.faults.set(config);
        // Lags count from changes made under the new configuration.
        inner.lag.clear();
        for tenant in &mut inner.world.tenants {
            tenant.forget_pending_changes();
        }
        Ok(())
    }

    pub(crate) fn faults(&self) -> FaultConfig {
        self.lock().faults.config.clone()
    }

    pub(crate) fn expire_tokens(&self) {
        self.lock().tokens.expire_all(Instant::now());
    }

    /// Back to the seed: directory, catalog and installations; faults back to the start-up ones,
    /// log, tokens, subscriptions and the notification log cleared.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        // The seed was validated at start-up, so rebuilding it cannot fail.
        if let Ok(world) = World::from_seed(&inner.seed) {
            inner.world = world;
        }
        inner.faults.set(self.options.faults.clone());
        inner.notifier.set_faults(&self.options.faults);
        inner.notifier.clear_log();
        inner.subscriptions.clear();
        inner.lag.clear();
        inner.journal.clear();
        inner.tokens.clear();
        tracing::info!("reset to the seed");
    }

    pub(crate) fn state(&self) -> Value {
        let inner = self.lock();
        render::state(&inner.world, inner.tokens.len(), &inner.faults.config)
    }
}

/// A change to a group's direct members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberChange {
    Add,
    Remove,
}
