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
}

fn check_lag(name: &str, ms: Option<u64>) -> Result<(), String> {
    match ms {
        Some(ms) if ms > MAX_LAG_MS => Err(format!("{name} must be at most {MAX_LAG_MS}")),
        _ => Ok(()),
    }
}

impl TenantSettings {
    pub fn validate(&self) -> Result<(), String> {
        check_lag("directoryLagMs", self.directory_lag_ms)
    }

    /// These settings with `change`'s values where it has them.
    pub fn merged(&self, change: &TenantSettings) -> TenantSettings {
        TenantSettings {
            directory_lag_ms: change.directory_lag_ms.or(self.directory_lag_ms),
        }
    }
}
