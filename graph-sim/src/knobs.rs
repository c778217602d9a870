//! The knobs in force for one tenant at one moment: the fault configuration's, and the tenant's
//! settings (seed, admin PATCH) with `PUT /_sim/faults` overriding them for every tenant while it
//! sets them.

use std::time::{Duration, Instant};

use super::faults::{ConsentRefusal, FaultConfig, UpgradeAtLatest};
use super::seed::TenantSettings;
use super::state::App;

pub(crate) struct Knobs {
    pub now: Instant,
    /// `readLagMs` (every tenant); zero = none.
    pub read_lag: Duration,
    /// `upgradeAtLatest` (every tenant).
    pub upgrade_at_latest: UpgradeAtLatest,
    /// `directoryLagMs`; zero = none.
    pub directory_lag: Duration,
    /// `directoryFlap`: the chance that a transitive-members read leaves a member out.
    pub directory_flap: f64,
    /// `pageTokenTtlMs`; `None` = page tokens never expire.
    pub page_token_ttl: Option<Duration>,
    /// `catalogLagMs`; zero = none.
    pub catalog_lag: Duration,
    /// `blockedApps`: catalog or manifest ids the tenant admin blocked.
    pub blocked_apps: Vec<String>,
    /// `consentRefusal` (every tenant): how a consent that does not match is refused.
    pub consent_refusal: Option<ConsentRefusal>,
}

impl Knobs {
    pub fn for_tenant(tenant: &TenantSettings, faults: &FaultConfig, now: Instant) -> Knobs {
        let knobs = tenant.merged(&faults.tenant_overrides());
        let ms = |ms: Option<u64>| Duration::from_millis(ms.unwrap_or(0));
        Knobs {
            now,
            read_lag: ms(faults.read_lag_ms),
            upgrade_at_latest: faults.upgrade_at_latest.unwrap_or_default(),
            directory_lag: ms(knobs.directory_lag_ms),
            directory_flap: knobs.directory_flap.unwrap_or(0.0),
            page_token_ttl: Some(ms(knobs.page_token_ttl_ms)).filter(|ttl| !ttl.is_zero()),
            catalog_lag: ms(knobs.catalog_lag_ms),
            blocked_apps: knobs.blocked_apps.unwrap_or_default(),
            consent_refusal: faults.consent_refusal.clone(),
        }
    }

    /// True when the tenant admin blocked `app` (by catalog id or manifest id).
    pub fn blocks(&self, app: &App) -> bool {
        self.blocked_apps.iter().any(|b| app.answers_to(b))
    }
}
