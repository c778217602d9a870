//! Per-tenant knobs that model a tenant's directory and catalog noise: set at tenant level in the
//! seed, changed with `PATCH /_sim/tenants/{tenant}`, and overridden for every tenant by
//! `PUT /_sim/faults` while the fault configuration sets them.

use serde::{Deserialize, Serialize};

/// The longest lag a knob accepts, as for `readLagMs`.
pub const MAX_LAG_MS: u64 = 600_000;

/// A tenant's knobs; absent = off. As the body of `PATCH /_sim/tenants/{tenant}`, absent fields
/// stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSettings {
    /// Milliseconds before a change to a user or a group membership (`PATCH`, `DELETE` and
    /// restore of a user, member added or removed, through the admin API) shows in directory
    /// reads — `GET /users/{id}` and a group's transitive members — which until then show the
    /// object as it was: Entra ID's replicas converge eventually, and reads with
    /// `ConsistencyLevel: eventual` come from an index that "might not be up-to-date with recent
    /// changes" (Graph's docs). Teams calls see every change at once. Only changes made under the
    /// knobs in force lag: `PUT`/`DELETE /_sim/faults` and a change to these settings start with
    /// fresh reads, as for `readLagMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_lag_ms: Option<u64>,
    /// The share (0–1) of transitive-member reads that leave out one member, drawn at random:
    /// a read (every page of it, the `@odata.count` too) misses that member, the next read may
    /// not. Eventually consistent reads come from replicas that can lag one another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_flap: Option<f64>,
    /// Milliseconds a transitive-members `@odata.nextLink` stays usable: an older one answers
    /// 400 `Directory_ExpiredPageToken`, and the client has to start the read again. Graph's
    /// directory page tokens expire after a few minutes. Absent or 0 = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token_ttl_ms: Option<u64>,
    /// Milliseconds before an app or definition added through the admin API (or a definition's
    /// new publishing state) shows in `/appCatalogs/teamsApps` reads, which until then show the
    /// catalog as it was — Teams' catalog is a replicated service of its own. Installs and
    /// upgrades go by what the catalog shows: an app it does not show yet is a 404 as for an
    /// unknown app, a version it does not show yet is not upgraded to. Only changes made under
    /// the knobs in force lag, as for `directoryLagMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_lag_ms: Option<u64>,
    /// Apps the tenant admin blocked for everyone (Teams admin center, org-wide app settings),
    /// by catalog id or manifest id (`externalId`): installing or upgrading one answers 403
    /// `Forbidden` "… explicitly blocked by the tenant admin.", whatever the user's own app
    /// permission policy says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_apps: Option<Vec<String>>,
}

/// The tenant-wide Teams app settings Graph serves at `GET /teamwork/teamsAppSettings`. In the
/// seed (`tenants[].teamsAppSettings`) and as the body of
/// `PATCH /_sim/tenants/{tenant}/teamsAppSettings`; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamsAppSettings {
    /// Whether users may install apps that need resource-specific consent in their personal
    /// scope (default true). False: installing or upgrading (the simulator's installations are
    /// all personal) to a definition that requires any application RSC permission is 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_user_personal_scope_resource_specific_consent_enabled: Option<bool>,
}

impl TeamsAppSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The longest page token lifetime a knob accepts: a day.
const MAX_TTL_MS: u64 = 86_400_000;

fn check_lag(name: &str, ms: Option<u64>) -> Result<(), String> {
    match ms {
        Some(ms) if ms > MAX_LAG_MS => Err(format!("{name} must be at most {MAX_LAG_MS}")),
        _ => Ok(()),
    }
}

impl TenantSettings {
    pub fn validate(&self) -> Result<(), String> {
        check_lag("directoryLagMs", self.directory_lag_ms)?;
        check_lag("catalogLagMs", self.catalog_lag_ms)?;
        if self
            .directory_flap
            .is_some_and(|f| !(f.is_finite() && (0.0..=1.0).contains(&f)))
        {
            return Err("directoryFlap must be between 0 and 1".into());
        }
        if self
            .blocked_apps
            .iter()
            .flatten()
            .any(|a| a.trim().is_empty())
        {
            return Err("blockedApps names an empty app id".into());
        }
        if self.page_token_ttl_ms.is_some_and(|ms| ms > MAX_TTL_MS) {
            return Err(format!("pageTokenTtlMs must be at most {MAX_TTL_MS}"));
        }
        Ok(())
    }

    /// These settings with `change`'s values where it has them.
    pub fn merged(&self, change: &TenantSettings) -> TenantSettings {
        TenantSettings {
            directory_lag_ms: change.directory_lag_ms.or(self.directory_lag_ms),
            directory_flap: change.directory_flap.or(self.directory_flap),
            page_token_ttl_ms: change.page_token_ttl_ms.or(self.page_token_ttl_ms),
            catalog_lag_ms: change.catalog_lag_ms.or(self.catalog_lag_ms),
            blocked_apps: change
                .blocked_apps
                .clone()
                .or_else(|| self.blocked_apps.clone()),
        }
    }
}
